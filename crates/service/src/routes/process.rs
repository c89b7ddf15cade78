//! `POST /v2/process`: the seed's combined call — classify, choose where to
//! run, generate — with the deployment made explicit.

use crate::{
    auth::Caller,
    error::{ApiError, ErrorBody},
    extract::{ApiJson, Validate, non_blank},
    routes::{
        inference::{Ledger, Routing, admit},
        run::RunUsage,
    },
    state::AppState,
};
use axum::{Extension, Json, extract::State};
use orchestrator::EngineKind;
use orchestrator::generation::{Message, Role};
use orchestrator::registry::Params;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where inference should run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Deployment {
    /// On this deployment's own engines (MLX, or an OpenAI-compatible server it is configured with).
    #[default]
    #[serde(alias = "Native")]
    Native,
    /// On a hosted·ai GPU pool.
    #[serde(alias = "HostedAI", alias = "hostedai", alias = "HostedAi")]
    HostedAi,
}

impl Deployment {
    fn as_str(self) -> &'static str {
        match self {
            Deployment::Native => "native",
            Deployment::HostedAi => "hosted_ai",
        }
    }

    fn allows(self, engine: EngineKind) -> bool {
        match self {
            Deployment::Native => matches!(engine, EngineKind::Mlx | EngineKind::Openai),
            Deployment::HostedAi => engine == EngineKind::HostedAi,
        }
    }
}

/// Body of `POST /v2/process`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessRequest {
    /// The prompt; must contain more than whitespace.
    #[schema(min_length = 1, pattern = "\\S")]
    pub text: String,
    /// `native` (default) or `hosted_ai`; the seed's `Native`, `HostedAI` and `hostedai` are accepted.
    #[serde(default)]
    pub deployment: Deployment,
    /// Code fragments for fusion (objects); accepted and echoed until fusion lands.
    #[schema(value_type = Option<Vec<Object>>)]
    pub fragment_context: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    /// Covenant this request belongs to; echoed.
    pub covenant_id: Option<String>,
}

impl Validate for ProcessRequest {
    fn validate(&self) -> Result<(), ApiError> {
        non_blank("text", &self.text)?;
        Ok(())
    }
}

/// The router's decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessClassification {
    /// `simple` or `complex`.
    pub category: &'static str,
    /// Calibrated probability of needing the large tier.
    pub complexity: f32,
    /// `small` or `large`.
    pub tier: &'static str,
    /// Model that serves the tier.
    pub model: String,
}

/// The generation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessInference {
    /// Generated text.
    pub output: String,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
    /// Token counts and timings.
    pub usage: RunUsage,
}

/// Body of a `/v2/process` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessResponse {
    /// How the prompt was classified.
    pub classification: ProcessClassification,
    /// What the model generated.
    pub inference: ProcessInference,
    /// Where it ran.
    pub deployment_used: Deployment,
    /// The request's fragments, unchanged (fusion is not applied yet).
    #[schema(value_type = Option<Vec<Object>>)]
    pub fragment_context: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    /// The request's covenant id.
    pub covenant_id: Option<String>,
}

/// Classifies once, runs on the requested deployment, and reports both.
#[utoipa::path(
    post,
    path = "/v2/process",
    tag = "inference",
    request_body = ProcessRequest,
    responses(
        (status = 200, description = "Classification and generation", body = ProcessResponse),
        (status = 400, description = "Malformed JSON or context length exceeded", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Empty text, unknown deployment or field", body = ErrorBody),
        (status = 502, description = "Upstream error", body = ErrorBody),
        (status = 503, description = "The deployment has no engine for the chosen tier", body = ErrorBody),
        (status = 504, description = "Upstream timeout", body = ErrorBody),
    )
)]
pub async fn process(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<ProcessRequest>,
) -> Result<Json<ProcessResponse>, ApiError> {
    let mut ledger = Ledger::start(&state, &caller, "/v2/process", "");
    let outcome = answer(&state, &caller, request, &mut ledger).await;
    ledger.settle(outcome).map(Json)
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    request: ProcessRequest,
    ledger: &mut Ledger,
) -> Result<(ProcessResponse, orchestrator::generation::Usage), ApiError> {
    admit(state, caller).await?;
    let routing = Routing::decide(&state.gateway, "", &request.text, false)?;
    ledger.routed(&routing);
    let engine = routing.model.settings().engine;
    if !request.deployment.allows(engine) {
        return Err(ApiError::unavailable(
            "engine_unavailable",
            format!(
                "deployment {} cannot serve this prompt: the {} tier's model {:?} runs on the {} engine",
                request.deployment.as_str(),
                routing.tier().map_or("routed", orchestrator::Tier::as_str),
                routing.model.name(),
                engine.as_str()
            ),
        ));
    }
    let generation = routing.model.prepare(Params {
        messages: vec![Message::new(Role::User, request.text.as_str())],
        ..Params::default()
    })?;
    let done = routing.model.generate(generation).await?;
    let c = routing
        .classification
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("router_unavailable", "no classification was made"))?;
    let usage = done.usage;
    Ok((
        ProcessResponse {
            classification: ProcessClassification {
                category: c.category.as_str(),
                complexity: c.complexity,
                tier: c.tier.as_str(),
                model: routing.model.name().to_owned(),
            },
            inference: ProcessInference {
                output: done.text,
                finish_reason: done.finish_reason.as_str(),
                usage: RunUsage::from(&done.usage),
            },
            deployment_used: request.deployment,
            fragment_context: request.fragment_context,
            covenant_id: request.covenant_id,
        },
        usage,
    ))
}
