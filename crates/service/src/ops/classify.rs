//! Classifying a prompt: which tier it needs, and why (REST's `POST /classify`
//! and MCP's `classify`).

use crate::{
    error::ApiError,
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

/// Body of `POST /classify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// The prompt; must contain more than whitespace.
    #[schema(min_length = 1, pattern = "\\S")]
    pub text: String,
    /// Add the signals and n-grams that moved the score most.
    #[serde(default)]
    pub explain: bool,
}

impl Validate for ClassifyRequest {
    fn validate(&self) -> Result<(), ApiError> {
        non_blank("text", &self.text)?;
        Ok(())
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

/// The router's decision on a validated request (REST and MCP).
pub fn classify_text(state: &AppState, request: &ClassifyRequest) -> ClassifyResponse {
    // Microseconds of CPU: cheaper inline than a hop to the blocking pool.
    let started = Instant::now();
    let c = state.selector.classify(&request.text);
    let latency_ms = started.elapsed().as_secs_f64() * 1_000.0;
    let signals = request.explain.then(|| {
        state
            .selector
            .classifier
            .explain(&request.text, EXPLAIN_TOP)
            .into_iter()
            .map(Signal::from)
            .collect()
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
