//! `resources::HarpoonBackend` over the operations of [`crate::ops`] that the
//! REST handlers call too: MCP arguments in, the operation's result or error
//! out.

use crate::callers::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::ops::{
    Validate,
    chat::Role,
    classify::{ClassifyMessage, ClassifyRequest, classify_text},
    fragments::{FragmentInput, FragmentsRequest, fragments_of, fuse_request, score_fragment},
    models::model_list,
    pools::pools_snapshot,
    run::{RunRequest, run_prompt},
    strikes::launch_strike,
    usage::{UsageQuery, usage_report},
};
use crate::state::AppState;
use async_trait::async_trait;
use harpoon_bridge::{
    CableGraph, Covenant, HarmonyReview, NewCovenant, Page, Paged, StrikeRequest, StrikeStatus,
};
use resources::tools::{ClassifyArgs, FragmentArg, ProcessFragmentsArgs, RunArgs, TurnRole};
use resources::{BackendError, HarpoonBackend};
use serde::Serialize;
use serde_json::Value;

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
        BackendError::new(e.status().as_u16(), e.code().as_str(), e.message()).with_param(e.param())
    }
}

/// The JSON REST would send. Through text, not `to_value`: an `f32` turned
/// straight into a `Value` widens to f64 digits (0.00024548530927859247 for
/// REST's 0.0002454853).
fn json<T: Serialize>(value: &T) -> Result<Value, BackendError> {
    serde_json::to_string(value)
        .and_then(|text| serde_json::from_str(&text))
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("serialising: {e}")).into())
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
        let messages = args.messages.map(|turns| {
            turns
                .into_iter()
                .map(|t| ClassifyMessage {
                    role: match t.role {
                        TurnRole::System => Role::System,
                        TurnRole::Developer => Role::Developer,
                        TurnRole::User => Role::User,
                        TurnRole::Assistant => Role::Assistant,
                        TurnRole::Tool => Role::Tool,
                        TurnRole::Function => Role::Function,
                    },
                    content: t.content,
                })
                .collect()
        });
        let request = ClassifyRequest {
            text: args.text,
            messages,
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
            return Err(ApiError::new(ErrorCode::StrikesRunInTheServer,
                "strikes run in the background of the service, not in an MCP stdio process that ends with the session: start them over HTTP (/mcp or POST /v2/strike)",
            )
            .into());
        }
        request.validate()?;
        Ok(launch_strike(&self.state, caller, request).await?)
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
