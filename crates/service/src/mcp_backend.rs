//! The MCP face's backend: `resources::HarpoonBackend` over the same functions
//! the REST handlers call, and the mounting of the MCP transports.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::Validate;
use crate::routes::{
    classify::{ClassifyRequest, classify_text},
    fragments::{FragmentInput, FragmentsRequest, fragments_of, fuse_request, score_fragment},
    models::model_list,
    pools::pools_snapshot,
    run::{RunRequest, run_prompt},
    usage::{UsageQuery, usage_report},
};
use crate::state::AppState;
use async_trait::async_trait;
use harpoon_bridge::{
    CableGraph, Covenant, HarmonyReview, NewCovenant, Page, Paged, StrikeRequest, StrikeStatus,
};
use resources::tools::{ClassifyArgs, FragmentArg, ProcessFragmentsArgs, RunArgs};
use resources::{BackendError, HarpoonBackend};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// Route label of MCP requests in the usage ledger.
const MCP_RUN_ROUTE: &str = "mcp/run";
/// Ledger route of `process_fragments` when the model refiner spends tokens.
const MCP_FUSION_ROUTE: &str = "mcp/process_fragments";

/// What the MCP server calls: the service's shared state.
#[derive(Clone)]
pub struct McpBackend {
    state: AppState,
    /// False in a companion process (stdio): a strike runs in the background
    /// and would die with the IDE's session, leaving its row `running`.
    runs_strikes: bool,
}

impl McpBackend {
    /// A backend over the server's state.
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            runs_strikes: true,
        }
    }

    /// A backend for a companion process that leaves strikes to the server.
    pub fn companion(state: AppState) -> Self {
        Self {
            state,
            runs_strikes: false,
        }
    }
}

impl From<ApiError> for BackendError {
    fn from(e: ApiError) -> Self {
        BackendError::new(e.status().as_u16(), e.code(), e.message())
    }
}

/// The JSON REST would send. Through text, not `to_value`: an `f32` turned
/// straight into a `Value` widens to f64 digits (0.00024548530927859247 for
/// REST's 0.0002454853).
fn json<T: Serialize>(value: &T) -> Result<Value, BackendError> {
    serde_json::to_string(value)
        .and_then(|text| serde_json::from_str(&text))
        .map_err(|e| BackendError::new(500, "internal_error", format!("serialising: {e}")))
}

/// A bridge failure as REST answers it (status, code, message), then as MCP's.
fn bridge_error(e: harpoon_bridge::BridgeError) -> BackendError {
    ApiError::from(e).into()
}

/// REST's fragment from MCP's (the same fields).
fn fragment_input(f: FragmentArg) -> FragmentInput {
    FragmentInput {
        path: f.path,
        idx: f.idx,
        lines: f.lines,
        body: f.body,
    }
}

#[async_trait]
impl HarpoonBackend for McpBackend {
    type Caller = Caller;

    /// The tenant and the key: another tenant's key, or another key of the
    /// same tenant, cannot join, stream from or end the session.
    fn session_owner(&self, caller: &Caller) -> String {
        format!(
            "{}/{}",
            caller.tenant.id,
            caller.key_id.as_deref().unwrap_or("-")
        )
    }

    async fn classify(&self, _caller: &Caller, args: ClassifyArgs) -> Result<Value, BackendError> {
        let request = ClassifyRequest {
            text: args.text,
            explain: args.explain,
        };
        request.validate()?;
        json(&classify_text(&self.state, &request))
    }

    async fn run(&self, caller: &Caller, args: RunArgs) -> Result<Value, BackendError> {
        let request = RunRequest {
            text: args.text,
            model: args.model,
            max_tokens: args.max_tokens,
            temperature: args.temperature,
            top_p: args.top_p,
        };
        request.validate()?;
        json(&run_prompt(&self.state, caller, &request, MCP_RUN_ROUTE).await?)
    }

    async fn process_fragments(
        &self,
        caller: &Caller,
        args: ProcessFragmentsArgs,
    ) -> Result<Value, BackendError> {
        let request = FragmentsRequest {
            fragments: args.fragments.into_iter().map(fragment_input).collect(),
            hygiene_threshold: args.hygiene_threshold,
            max_iterations: args.max_iterations,
            refiner: args.refiner,
        };
        request.validate()?;
        json(&fuse_request(&self.state, caller, MCP_FUSION_ROUTE, request).await?)
    }

    async fn score_fragment(
        &self,
        _caller: &Caller,
        fragment: FragmentArg,
    ) -> Result<Value, BackendError> {
        // The same checks as one fragment of POST /v2/fragments.
        let request = FragmentsRequest {
            fragments: vec![fragment_input(fragment)],
            hygiene_threshold: None,
            max_iterations: None,
            refiner: None,
        };
        request.validate()?;
        let mut fragments = fragments_of(request.fragments);
        let Some(fragment) = fragments.pop() else {
            return Err(BackendError::invalid(
                "fragments: at least one fragment is required",
            ));
        };
        json(&score_fragment(&self.state, fragment).await?)
    }

    async fn create_covenant(
        &self,
        caller: &Caller,
        new: NewCovenant,
    ) -> Result<Covenant, BackendError> {
        // REST's ApiJson runs the same check before its handler.
        new.validate()?;
        self.state
            .bridge
            .create_covenant(&caller.tenant.id, new)
            .await
            .map_err(bridge_error)
    }

    async fn list_covenants(
        &self,
        caller: &Caller,
        page: Page,
    ) -> Result<Paged<Covenant>, BackendError> {
        self.state
            .bridge
            .list_covenants(&caller.tenant.id, page)
            .await
            .map_err(bridge_error)
    }

    async fn get_covenant(&self, caller: &Caller, id: &str) -> Result<Covenant, BackendError> {
        self.state
            .bridge
            .get_covenant(&caller.tenant.id, id)
            .await
            .map_err(bridge_error)
    }

    async fn harmony_review(
        &self,
        caller: &Caller,
        covenant_id: &str,
    ) -> Result<HarmonyReview, BackendError> {
        self.state
            .bridge
            .harmony_review(&caller.tenant.id, covenant_id)
            .await
            .map_err(bridge_error)
    }

    async fn stored_review(
        &self,
        caller: &Caller,
        covenant_id: &str,
    ) -> Result<Option<HarmonyReview>, BackendError> {
        self.state
            .bridge
            .stored_review(&caller.tenant.id, covenant_id)
            .await
            .map_err(bridge_error)
    }

    async fn cables(&self, caller: &Caller) -> Result<CableGraph, BackendError> {
        self.state
            .bridge
            .cables(&caller.tenant.id)
            .await
            .map_err(bridge_error)
    }

    async fn start_strike(
        &self,
        caller: &Caller,
        request: StrikeRequest,
    ) -> Result<String, BackendError> {
        if !self.runs_strikes {
            return Err(ApiError::unavailable(
                "strikes_run_in_the_server",
                "strikes run in the background of the service, not in an MCP stdio process that ends with the session: start them over HTTP (/mcp or POST /v2/strike)",
            )
            .into());
        }
        request.validate()?;
        Ok(crate::routes::covenants::launch_strike(&self.state, caller, request).await?)
    }

    async fn strike_status(
        &self,
        caller: &Caller,
        run_id: &str,
    ) -> Result<StrikeStatus, BackendError> {
        self.state
            .bridge
            .strike_status(&caller.tenant.id, run_id)
            .await
            .map_err(bridge_error)
    }

    async fn models(&self, _caller: &Caller) -> Result<Value, BackendError> {
        json(&model_list(&self.state))
    }

    async fn pools(&self, caller: &Caller) -> Result<Value, BackendError> {
        json(&pools_snapshot(&self.state, caller).await?)
    }

    async fn usage(&self, caller: &Caller) -> Result<Value, BackendError> {
        let query = UsageQuery {
            since: None,
            until: None,
            group_by: Default::default(),
            tenant: None,
        };
        json(&usage_report(&self.state, caller, &query).await?)
    }
}

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
        },
    )
}

/// The dedicated MCP listener (`mcp.enabled`): `/mcp` guarded by
/// `mcp.api_key` when set, else by the same API keys as REST.
pub fn listener_router(state: AppState) -> axum::Router {
    let mcp = &state.settings.mcp;
    let loopback = mcp.bind_ip().is_ok_and(|ip| ip.is_loopback());
    let open = mcp.api_key.is_none() && state.auth_mode == crate::settings::AuthMode::Disabled;
    let service = http_service(&state, loopback && open);
    let router = axum::Router::new().nest_service("/mcp", service);
    let router = if mcp.api_key.is_some() {
        router.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::mcp_shared_key,
        ))
    } else {
        router.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
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
    Serve(#[from] crate::server::ServeError),
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
    let (state, usage_writer) = crate::server::open_state(settings, false).await?;
    let tenant = match tenant {
        Some(name) => state
            .storage
            .find_tenant(&name)
            .await
            .map_err(|e| StdioError::Tenant(name, e))?,
        None => state.local_tenant.clone(),
    };
    let caller = crate::auth::caller_for(&state, tenant)
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
