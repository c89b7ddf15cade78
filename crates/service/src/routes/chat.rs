//! `POST /v1/chat/completions`, the OpenAI-compatible entry point.
//!
//! The request is parsed and validated in full, so clients learn about bad
//! input now; this build has no inference engine, so a valid request is
//! answered with 503 `engine_unavailable` rather than with invented output.

use crate::{
    error::{ApiError, ErrorBody},
    extract::{ApiJson, Validate},
};
use serde::Deserialize;
use utoipa::ToSchema;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions from the application.
    System,
    /// OpenAI's newer name for `system`.
    Developer,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
}

/// One part of a multi-part message; only text parts are understood.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// A piece of text.
    Text {
        /// The text.
        text: String,
    },
}

/// Message content: a string or a list of text parts.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Text parts, concatenated in order.
    Parts(Vec<ContentPart>),
}

/// One chat message.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// Author.
    pub role: Role,
    /// Content; may be null for assistant messages that only called tools.
    pub content: Option<Content>,
}

/// Stop sequences: one string or several.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Stop {
    /// One sequence.
    One(String),
    /// Up to four sequences.
    Many(Vec<String>),
}

/// Body of `POST /v1/chat/completions` (the fields Harpoon honours; others are ignored).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// `auto` lets the router pick the tier; a configured model name pins it.
    #[serde(default = "auto")]
    pub model: String,
    /// The conversation; at least one message.
    pub messages: Vec<ChatMessage>,
    /// Most tokens to generate (clamped to the model's `max_new_tokens`).
    pub max_tokens: Option<u32>,
    /// Newer name for `max_tokens`; wins when both are given.
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature, 0–2.
    pub temperature: Option<f32>,
    /// Nucleus-sampling mass, (0, 1].
    pub top_p: Option<f32>,
    /// Stream tokens as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Sequences that end generation.
    pub stop: Option<Stop>,
    /// Seed for reproducible sampling.
    pub seed: Option<i64>,
    /// Number of choices; only 1 is supported.
    pub n: Option<u32>,
}

fn auto() -> String {
    "auto".into()
}

impl Validate for ChatCompletionRequest {
    fn validate(&self) -> Result<(), ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::validation(
                "model: must not be empty (use \"auto\")",
            ));
        }
        if self.messages.is_empty() {
            return Err(ApiError::validation(
                "messages: at least one message is required",
            ));
        }
        for (field, value) in [
            ("max_tokens", self.max_tokens),
            ("max_completion_tokens", self.max_completion_tokens),
        ] {
            if value == Some(0) {
                return Err(ApiError::validation(format!("{field}: must be at least 1")));
            }
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(ApiError::validation(format!(
                "temperature: {t} is out of range 0..=2"
            )));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(ApiError::validation(format!(
                "top_p: {p} is out of range (0, 1]"
            )));
        }
        if let Some(Stop::Many(list)) = &self.stop
            && list.len() > 4
        {
            return Err(ApiError::validation("stop: at most 4 sequences"));
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::validation(
                "n: only 1 choice per request is supported",
            ));
        }
        Ok(())
    }
}

/// Creates a chat completion. Without an inference engine this answers 503.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "inference",
    request_body = ChatCompletionRequest,
    responses(
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body larger than service.body_limit_bytes", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A field breaks the schema", body = ErrorBody),
        (status = 503, description = "No engine can serve the request", body = ErrorBody),
    )
)]
pub async fn chat_completions(
    ApiJson(request): ApiJson<ChatCompletionRequest>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    Err(ApiError::unavailable(
        "engine_unavailable",
        format!(
            "no inference engine can serve model {:?}: this build has no engine for any tier \
             (mlx, openai and hosted_ai engines are not available)",
            request.model
        ),
    ))
}
