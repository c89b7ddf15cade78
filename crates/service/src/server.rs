//! Binding, serving and graceful shutdown.

use crate::{app, settings::Settings};
use std::{net::SocketAddr, time::Duration};
use tokio::net::TcpListener;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is taken or not ours to bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// What we tried to bind.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// What a request needs could not be opened.
    #[error(transparent)]
    Open(#[from] crate::bootstrap::OpenError),
    /// Interrupted strikes could not be recovered.
    #[error("bridge: {0}")]
    Bridge(#[from] harpoon_bridge::BridgeError),
    /// Accepting connections failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves until SIGTERM or SIGINT; then `/ready` answers 503 while requests
/// are still accepted for `service.drain_delay_secs` (a load balancer's
/// probe takes the replica out meanwhile), then stops accepting, lets
/// in-flight requests finish for up to `service.shutdown_grace_secs`, and returns.
pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    let addr = SocketAddr::new(settings.service.bind_ip(), settings.service.port);
    let grace = Duration::from_secs(settings.service.shutdown_grace_secs);
    let mcp_addr = settings
        .mcp
        .enabled
        .then(|| SocketAddr::new(settings.mcp_bind_ip(), settings.mcp.port));

    // Before anything opens a file: every connection costs a descriptor.
    let open_files = crate::connections::raise_open_file_limit();
    let connections = crate::connections::Connections::new(
        crate::connections::Limits::from_settings(&settings.service, open_files),
    );
    // Everything slow (router, migrations) before binding: once the port
    // accepts, serving and signal handling must follow at once.
    let (state, usage_writer) = crate::bootstrap::open_state(settings, true).await?;
    // Only the server recovers strikes: an MCP stdio process beside it must
    // not mark the server's running strikes interrupted.
    state.bridge.recover().await?;
    // Another replica's revocation or suspension reaches this one's cache at once.
    let callers = state.callers.clone();
    state.storage.watch_callers(move || callers.clear());
    let _pr_monitor = state.bridge.spawn_pr_monitor();
    // Several replicas: renew this one's strike leases, take cancels asked elsewhere.
    let _strike_leases = state.bridge.spawn_lease_keeper();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener.local_addr()?;
    let upkeep = state.prometheus.clone();
    tokio::spawn(async move {
        // Histograms buffer samples until upkeep folds them in; bound that memory.
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let storage = state.storage.clone();
    let drain_delay = Duration::from_secs(state.settings.service.drain_delay_secs);
    // The listeners close once draining has been announced for the drain delay.
    let stop = {
        let state = state.clone();
        move || {
            let state = state.clone();
            async move {
                state.drained_begun().await;
                tokio::time::sleep(drain_delay).await;
            }
        }
    };
    if let Some(addr) = mcp_addr {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let app = crate::mcp::transport::listener_router(state.clone());
        tracing::info!(addr = %listener.local_addr()?, "MCP listener");
        // One thread: MCP sessions are few and long. It shares the
        // connection cap, which guards the process' descriptors.
        crate::workers::Workers::start(listener, 1, app, connections.clone(), &stop)?;
    }
    let app = app::router(state.clone());
    let workers = crate::workers::count(state.settings.service.workers);
    let limits = connections.limits();
    tracing::info!(
        addr = %local,
        workers,
        max_connections = limits.max,
        header_read_timeout_secs = limits.header_read.as_secs(),
        keep_alive_timeout_secs = limits.keep_alive.as_secs(),
        "listening"
    );

    let on_signal = {
        let state = state.clone();
        async move {
            shutdown_signal().await;
            tracing::info!(
                drain_delay_secs = drain_delay.as_secs(),
                grace_secs = grace.as_secs(),
                "shutting down: /ready says 503, then the listener closes and in-flight requests finish"
            );
            state.begin_drain();
            if let Some(membership) = &state.membership {
                membership.leave().await;
            }
        }
    };
    let workers = crate::workers::Workers::start(listener, workers, app, connections, stop)?;
    let deadline = async {
        on_signal.await;
        tokio::time::sleep(drain_delay + grace).await;
    };
    tokio::select! {
        result = workers.stopped() => result?,
        () = deadline => tracing::warn!("grace period over with requests still in flight; exiting"),
    }
    if let Some(manager) = &state.hosted_ai {
        // Rented GPUs cost money until released: release them before exiting.
        let limit = Duration::from_secs(manager.settings().call_timeout_secs * 2 + 5);
        if tokio::time::timeout(limit, manager.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("hosted·ai subscriptions not all released within {limit:?}");
        }
    }
    // Let the usage writer drain what was queued, then close the database.
    drop(state);
    if tokio::time::timeout(Duration::from_secs(5), usage_writer.finish())
        .await
        .is_err()
    {
        tracing::warn!("usage writer did not drain within 5 s");
    }
    storage.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
