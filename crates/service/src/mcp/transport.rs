//! How MCP is reached: Streamable HTTP on `/mcp` (on the service port and on
//! the dedicated listener), and stdio for a companion process.

use super::backend::McpBackend;
use crate::state::AppState;
use std::sync::Arc;

/// The Streamable HTTP service for `/mcp`. `loopback_hosts_only` keeps the
/// SDK's DNS-rebinding guard on where nothing else protects the endpoint.
pub fn http_service(state: &AppState, loopback_hosts_only: bool) -> resources::McpHttpService {
    let shutdown = tokio_util::sync::CancellationToken::new();
    // Open sessions and streams end when the service starts draining, so they
    // do not hold shutdown for the whole grace period.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let (state, shutdown) = (state.clone(), shutdown.clone());
        runtime.spawn(async move {
            state.drained_begun().await;
            shutdown.cancel();
        });
    }
    resources::http_service(
        Arc::new(McpBackend::new(state.clone())),
        resources::HttpOptions {
            loopback_hosts_only,
            max_body_bytes: state.settings.service.body_limit_bytes,
            shutdown,
            stateless: stateless(state),
        },
    )
}

/// Whether `/mcp` runs without sessions: as configured, or (`auto`) when
/// storage is PostgreSQL, where several replicas may answer one client.
fn stateless(state: &AppState) -> bool {
    match state.settings.mcp.sessions {
        resources::SessionMode::Stateless => true,
        resources::SessionMode::Stateful => false,
        resources::SessionMode::Auto => {
            state.storage.backend() == crate::storage::Backend::Postgres
        }
    }
}

/// The dedicated MCP listener (`mcp.enabled`): `/mcp` guarded by
/// `mcp.api_key` when set, else by the same API keys as REST.
pub fn listener_router(state: AppState) -> axum::Router {
    let mcp = &state.settings.mcp;
    let loopback = state.settings.mcp_bind_ip().is_loopback();
    let open = mcp.api_key.is_none() && state.auth_mode == crate::settings::AuthMode::Disabled;
    let service = http_service(&state, loopback && open);
    let router = axum::Router::new().nest_service("/mcp", service).layer(
        axum::middleware::from_fn_with_state(state.clone(), crate::middleware::admission::admit),
    );
    let router = if mcp.api_key.is_some() {
        router.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::auth::mcp_shared_key,
        ))
    } else {
        router.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::auth::authenticate,
        ))
    };
    router.layer(axum::middleware::map_response(
        crate::error::ensure_json_errors,
    ))
}

/// Why `service mcp --stdio` stopped.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// The state could not be opened (configuration, router, storage).
    #[error(transparent)]
    Open(#[from] crate::bootstrap::OpenError),
    /// The tenant to act as is unknown.
    #[error("tenant {0:?}: {1}")]
    Tenant(String, crate::storage::StorageError),
    /// Its limits could not be read.
    #[error("{0}")]
    Caller(String),
    /// The MCP session failed.
    #[error(transparent)]
    Mcp(#[from] resources::StdioError),
}

/// Serves MCP over stdin/stdout as `tenant` (default the local tenant) until
/// the client closes stdin, then lets the usage writer drain.
pub async fn serve_stdio(
    settings: crate::settings::Settings,
    tenant: Option<String>,
) -> Result<(), StdioError> {
    let (state, usage_writer) = crate::bootstrap::open_state(settings, false).await?;
    let tenant = match tenant {
        Some(name) => state
            .storage
            .find_tenant(&name)
            .await
            .map_err(|e| StdioError::Tenant(name, e))?,
        None => state.local_tenant.clone(),
    };
    let caller = state
        .callers
        .for_tenant(tenant)
        .await
        .map_err(|e| StdioError::Caller(e.to_string()))?;
    tracing::info!(tenant = %caller.tenant.name, "serving MCP on stdio");
    let storage = state.storage.clone();
    let outcome =
        resources::serve_stdio(Arc::new(McpBackend::companion(state.clone())), caller).await;
    drop(state);
    if tokio::time::timeout(std::time::Duration::from_secs(5), usage_writer.finish())
        .await
        .is_err()
    {
        tracing::warn!("usage writer did not drain within 5 s");
    }
    storage.close().await;
    Ok(outcome?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::settings::Settings;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)]) -> Result<Settings, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load(None, &env)
            .map(|l| l.settings)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn mcp_section_reads_the_seed_names() {
        let s = load(&[
            ("HARPOON__MCP__ENABLED", "true"),
            ("MCP_WS_HOST", "127.0.0.1"),
            ("MCP_WS_PORT", "4010"),
            ("MCP_API_KEY", "k"),
        ])
        .unwrap();
        assert!(s.mcp.enabled);
        assert_eq!(s.mcp.port, 4010);
        assert_eq!(s.mcp.api_key.unwrap().expose(), "k");
    }

    #[test]
    fn a_keyless_listener_off_loopback_without_auth_is_refused() {
        let refused = load(&[
            ("HARPOON__MCP__ENABLED", "true"),
            ("MCP_WS_HOST", "0.0.0.0"),
        ])
        .unwrap_err();
        assert!(refused.contains("mcp.api_key"), "{refused}");
        // With a key, or with API keys required, it may listen anywhere.
        assert!(
            load(&[
                ("HARPOON__MCP__ENABLED", "true"),
                ("MCP_WS_HOST", "0.0.0.0"),
                ("MCP_API_KEY", "k"),
            ])
            .is_ok()
        );
        assert!(
            load(&[
                ("HARPOON__MCP__ENABLED", "true"),
                ("MCP_WS_HOST", "0.0.0.0"),
                ("HARPOON__AUTH__MODE", "required"),
            ])
            .is_ok()
        );
        let bad_port = load(&[("MCP_WS_PORT", "70000")]).unwrap_err();
        assert!(bad_port.contains("mcp.port"), "{bad_port}");
    }
}
