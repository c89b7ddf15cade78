//! Running one prompt: the routed model's answer (REST's `POST /run` and
//! MCP's `run`).

use crate::{
    callers::Caller,
    error::ApiError,
    ops::inference::{Routing, model_name_problem, validate_sampling},
    ops::metering::Metered,
    ops::{Validate, non_blank},
    state::AppState,
};
use orchestrator::generation::{Message, Role, Usage};
use orchestrator::registry::Params;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use utoipa::ToSchema;

/// Body of `POST /run`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The prompt; must contain more than whitespace.
    #[schema(min_length = 1, pattern = "\\S")]
    pub text: String,
    /// `auto` (default) routes by complexity; a configured model name pins it.
    /// At most 256 characters, none of them control characters.
    #[serde(default)]
    #[schema(
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f\\u00ad\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff]*$"
    )]
    pub model: Option<String>,
    /// Most tokens to generate (clamped to the model's `max_new_tokens`).
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0–2.
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f32>,
    /// Nucleus-sampling mass, (0, 1].
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub top_p: Option<f32>,
}

impl Validate for RunRequest {
    fn validate(&self) -> Result<(), ApiError> {
        non_blank("text", &self.text)?;
        if let Some(why) = self.model.as_deref().and_then(model_name_problem) {
            return Err(ApiError::validation(format!("model: {why}")));
        }
        if self.max_tokens == Some(0) {
            return Err(ApiError::validation("max_tokens: must be at least 1"));
        }
        validate_sampling(self.temperature, self.top_p)
    }
}

/// Token counts and timings of a generation.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunUsage {
    /// Prompt tokens, chat template included.
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// Their sum.
    pub total_tokens: u32,
    /// Milliseconds from dispatch to the first generated token.
    pub time_to_first_token_ms: f64,
    /// Generated tokens per second.
    pub tokens_per_second: f64,
}

impl From<&Usage> for RunUsage {
    fn from(u: &Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens.saturating_add(u.completion_tokens),
            time_to_first_token_ms: u.time_to_first_token.as_secs_f64() * 1_000.0,
            tokens_per_second: u.tokens_per_second,
        }
    }
}

/// Body of a `/run` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunResponse {
    /// The generated text.
    pub output: String,
    /// The configured model that answered.
    pub model: String,
    /// Tier of that model (`small`/`large`), when it has one.
    pub tier: Option<&'static str>,
    /// Router category of the prompt.
    pub category: &'static str,
    /// Router complexity of the prompt, in [0, 1].
    pub complexity: f32,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
    /// Token counts and timings.
    pub usage: RunUsage,
    /// Milliseconds for the whole request.
    pub latency_ms: f64,
}

/// Routes and answers a validated request, with its usage row under `route`
/// (REST and MCP).
pub async fn run_prompt(
    state: &AppState,
    caller: &Caller,
    request: &RunRequest,
    route: &str,
) -> Result<RunResponse, ApiError> {
    let requested = request.model.as_deref().unwrap_or_default();
    let mut ledger = Metered::begin(state, caller, route, requested);
    let outcome = answer(state, request, &mut ledger).await;
    ledger.settle(outcome)
}

async fn answer(
    state: &AppState,
    request: &RunRequest,
    ledger: &mut Metered,
) -> Result<(RunResponse, Usage), ApiError> {
    let started = Instant::now();
    let requested = request.model.as_deref().unwrap_or_default();
    let routing = Routing::decide(&state.selector, requested, &request.text, true)?;
    ledger.routed(&routing);
    let generation = ledger
        .prepare(
            &routing.model,
            Params {
                messages: vec![Message::new(Role::User, request.text.as_str())],
                max_tokens: request.max_tokens,
                temperature: request.temperature,
                top_p: request.top_p,
                ..Params::default()
            },
        )
        .await?;
    let done = routing.model.generate(generation).await?;
    ledger.finished_because(done.finish_reason);
    ledger.completed_text(&done.text);
    let (category, complexity) = routing
        .classification
        .as_ref()
        .map_or(("simple", 0.0), |c| (c.category.as_str(), c.complexity));
    Ok((
        RunResponse {
            output: done.text,
            model: routing.model.name().to_owned(),
            tier: routing.tier().map(orchestrator::Tier::as_str),
            category,
            complexity,
            finish_reason: done.finish_reason.as_str(),
            usage: RunUsage::from(&done.usage),
            latency_ms: started.elapsed().as_secs_f64() * 1_000.0,
        },
        done.usage,
    ))
}
