//! Binding, serving and graceful shutdown.

use crate::settings::AuthMode;
use crate::storage::{Storage, usage::UsageRecorder};
use crate::{app, settings::Settings, state::AppState, telemetry};
use orchestrator::{registry::Registry, router::Classifier, selector::ModelSelector};
use std::{net::SocketAddr, sync::Arc, time::Duration};
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
    /// The metrics recorder could not be installed.
    #[error("metrics: {0}")]
    Metrics(String),
    /// The configuration names an unusable address.
    #[error(transparent)]
    Settings(#[from] crate::settings::InvalidSetting),
    /// The router model cannot be loaded.
    #[error(transparent)]
    Router(#[from] orchestrator::router::RouterError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The bridge (covenants and strikes) could not be set up.
    #[error("bridge: {0}")]
    Bridge(#[from] harpoon_bridge::BridgeError),
    /// Accepting connections failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves until SIGTERM or SIGINT, then stops accepting, lets in-flight requests
/// finish for up to `service.shutdown_grace_secs`, and returns.
pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    let addr = SocketAddr::new(settings.service.bind_ip()?, settings.service.port);
    let grace = Duration::from_secs(settings.service.shutdown_grace_secs);
    let mcp_addr = settings
        .mcp
        .enabled
        .then(|| {
            settings
                .mcp
                .bind_ip()
                .map(|ip| SocketAddr::new(ip, settings.mcp.port))
        })
        .transpose()?;

    // Before anything opens a file: every connection costs a descriptor.
    let open_files = crate::connections::raise_open_file_limit();
    let connections = crate::connections::Connections::new(
        crate::connections::Limits::from_settings(&settings.service, open_files),
    );
    // Everything slow (router, migrations) before binding: once the port
    // accepts, serving and signal handling must follow at once.
    let (state, usage_writer) = open_state(settings, true).await?;
    // Only the server recovers strikes: an MCP stdio process beside it must
    // not mark the server's running strikes interrupted.
    state.bridge.recover().await?;
    let _pr_monitor = state.bridge.spawn_pr_monitor();
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
    let stop = {
        let state = state.clone();
        move || {
            let state = state.clone();
            async move { state.drained_begun().await }
        }
    };
    if let Some(addr) = mcp_addr {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let app = crate::mcp_backend::listener_router(state.clone());
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
                grace_secs = grace.as_secs(),
                "shutting down: draining in-flight requests"
            );
            state.begin_drain();
        }
    };
    let workers = crate::workers::Workers::start(listener, workers, app, connections, stop)?;
    let deadline = async {
        on_signal.await;
        tokio::time::sleep(grace).await;
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

/// Everything a request needs: models, router, storage (migrated), the local
/// tenant and the usage writer (whose handle drains it at shutdown).
///
/// Only the server (`owns_pools`) runs the hosted·ai pool manager: it holds
/// the team's subscriptions and releases them, which a companion process (MCP
/// over stdio) beside it must not do.
pub async fn open_state(
    settings: Settings,
    owns_pools: bool,
) -> Result<(AppState, crate::storage::usage::UsageWriter), ServeError> {
    let hosted_ai = if owns_pools {
        hosted_ai_manager(&settings)
    } else {
        None
    };
    let gateway = ModelSelector {
        classifier: Classifier::from_settings(&settings.router, &settings.models)?,
        registry: Registry::with_hosted_ai(&settings.models, hosted_ai.as_ref()),
    };
    for model in gateway.registry.iter() {
        let status = model.status();
        tracing::info!(model = %status.name, engine = status.engine, available = status.available, detail = %status.detail, "model");
    }
    let prometheus = telemetry::prometheus().map_err(ServeError::Metrics)?;
    let auth_mode = settings.auth_mode()?;
    let storage = Storage::open(&settings.storage).await?;
    tracing::info!(backend = ?storage.backend(), target = %storage.target(), "storage ready");
    let local_tenant = storage.ensure_tenant(&settings.auth.local_tenant).await?;
    if auth_mode == AuthMode::Disabled {
        tracing::warn!(
            tenant = %local_tenant.name,
            "authentication is disabled (loopback bind): every request runs as the built-in tenant"
        );
    }
    let (usage, usage_writer) = UsageRecorder::start(storage.clone());
    let fusion = Arc::new(harpoon_core::HarpoonEngine::new(&settings.harpoon));
    let bridge =
        crate::bridge_gate::build(&settings, &storage, &gateway, fusion.clone(), usage.clone())?;
    let state = AppState::new(
        settings,
        gateway,
        prometheus,
        storage,
        usage,
        local_tenant,
        auth_mode,
        bridge,
        fusion,
        hosted_ai,
    );
    Ok((state, usage_writer))
}

/// The hosted·ai pool manager when hosted·ai is configured (its upkeep started).
fn hosted_ai_manager(settings: &Settings) -> Option<Arc<orchestrator::hosted_ai::PoolManager>> {
    if !settings.hosted_ai.is_configured() {
        return None;
    }
    match orchestrator::hosted_ai::PoolManager::new(&settings.hosted_ai) {
        Ok(manager) => {
            manager.start_upkeep();
            Some(manager)
        }
        Err(e) => {
            tracing::warn!(error = %e, "hosted·ai is configured but cannot be used");
            None
        }
    }
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
