//! Classifying a prompt: which tier it needs, and why (REST's `POST /classify`
//! and MCP's `classify`).

use crate::{
    error::ApiError,
    ops::chat::Role,
    ops::inference::ChatTexts,
    ops::{Validate, non_blank},
    state::AppState,
};
use orchestrator::Tier;
use orchestrator::router::{Category, Contribution};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use utoipa::ToSchema;

/// How many contributions `explain` returns.
const EXPLAIN_TOP: usize = 8;

/// Body of `POST /classify`: `text` or `messages`, exactly one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// A single prompt; must contain more than whitespace. Give this or `messages`.
    #[schema(min_length = 1, pattern = "\\S")]
    pub text: Option<String>,
    /// A conversation, as chat completions take it: the last `user` message is
    /// classified, the user messages before it weigh in as context (see
    /// docs/routing.md). Give this or `text`.
    #[schema(min_items = 1)]
    pub messages: Option<Vec<ClassifyMessage>>,
    /// Add the signals and n-grams that moved the score most.
    #[serde(default)]
    pub explain: bool,
}

/// One message of a conversation to classify.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyMessage {
    /// Author: `system`, `developer`, `user`, `assistant`, `tool` or `function`.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl ClassifyRequest {
    /// The router's texts of the request.
    fn texts(&self) -> ChatTexts {
        match (&self.text, &self.messages) {
            (Some(text), _) => ChatTexts::of([(Role::User.speaker(), text.clone())]),
            (None, Some(messages)) => ChatTexts::of(
                messages
                    .iter()
                    .map(|m| (m.role.speaker(), m.content.clone())),
            ),
            (None, None) => ChatTexts::default(),
        }
    }
}

impl Validate for ClassifyRequest {
    fn validate(&self) -> Result<(), ApiError> {
        match (&self.text, &self.messages) {
            (Some(_), Some(_)) => Err(ApiError::invalid_param(
                "messages",
                "give `text` or `messages`, not both",
            )),
            (None, None) => Err(ApiError::invalid_param(
                "text",
                "required (or `messages`, a conversation)",
            )),
            (Some(text), None) => non_blank("text", text),
            (None, Some(messages)) => {
                if !messages.iter().any(|m| m.role == Role::User) {
                    return Err(ApiError::validation(
                        "messages: needs a `user` message (the last one is classified)",
                    ));
                }
                non_blank("messages: the last user message", self.texts().last())
            }
        }
    }
}

/// One term of an explanation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Signal {
    /// A structural signal (e.g. `code_fences`) or an n-gram (`word:prove`, `pair:step by`, `prefix:summ`, `suffix:rize`).
    pub signal: String,
    /// Signed contribution to the score before calibration; positive pushes towards complex.
    pub weight: f32,
}

impl From<Contribution> for Signal {
    fn from(c: Contribution) -> Self {
        Self {
            signal: c.signal,
            weight: c.weight,
        }
    }
}

/// Body of a classification.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClassifyResponse {
    /// `simple` or `complex`.
    #[schema(value_type = String, example = "simple")]
    pub category: Category,
    /// Calibrated probability in [0, 1] that the prompt needs the large tier.
    pub complexity: f32,
    /// `small` or `large`.
    #[schema(value_type = String, example = "small")]
    pub tier: Tier,
    /// Configured model that serves the tier.
    pub model: String,
    /// Time the classification took, measured, in milliseconds.
    pub latency_ms: f64,
    /// With `explain: true`: the strongest contributions, largest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signals: Option<Vec<Signal>>,
}

/// The router's decision on a validated request (REST and MCP). It reports
/// the router's own score: sticky conversations apply to routed chat
/// requests, and a classification neither reads nor changes them.
pub fn classify_text(state: &AppState, request: &ClassifyRequest) -> ClassifyResponse {
    let texts = request.texts();
    // Microseconds of CPU: cheaper inline than a hop to the blocking pool.
    let started = Instant::now();
    let c = texts.with(|conversation| state.selector.classify_conversation(conversation));
    let latency_ms = started.elapsed().as_secs_f64() * 1_000.0;
    let signals = request.explain.then(|| {
        texts.with(|conversation| {
            state
                .selector
                .classifier
                .explain_conversation(conversation, EXPLAIN_TOP)
                .into_iter()
                .map(Signal::from)
                .collect()
        })
    });
    ClassifyResponse {
        category: c.category,
        complexity: c.complexity,
        tier: c.tier,
        model: c.model,
        latency_ms,
        signals,
    }
}
