//! What engines are asked for and what they answer, independent of any wire format.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Author of a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions from the application.
    System,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
    /// The caller's own OpenAI message, when it says more than a role and
    /// text (tool calls, a tool call's id, a `developer` or `function` role,
    /// image parts): OpenAI-compatible engines send it as it came, where
    /// `role` and `content` are what a local chat template sees.
    #[serde(skip)]
    pub wire: Option<serde_json::Value>,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            wire: None,
        }
    }
}

impl Serialize for Message {
    /// In OpenAI's form: the caller's own message when there is one.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if let Some(wire) = &self.wire {
            return wire.serialize(serializer);
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("role", &self.role)?;
        map.serialize_entry("content", &self.content)?;
        map.end()
    }
}

/// A request to generate a reply to a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    /// The conversation so far; the reply continues it.
    pub messages: Vec<Message>,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature; 0 is greedy.
    pub temperature: f32,
    /// Nucleus-sampling mass.
    pub top_p: f32,
    /// Sequences that end generation (not included in the text).
    pub stop: Vec<String>,
    /// Seed for reproducible sampling.
    pub seed: Option<u64>,
    /// Whether a reasoning model may think before answering.
    pub enable_thinking: bool,
    /// The prompt's tokens by the model's tokenizer, counted once when the
    /// request was prepared (`None` when the tokenizer is not at hand).
    pub prompt_tokens: Option<u32>,
    /// Request fields beyond the ones above (`tools`, `response_format`,
    /// `logprobs`, …), as the caller sent them: OpenAI-compatible engines
    /// pass them on unchanged; other engines are never given one they do not
    /// honour (see [`crate::capability`]).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// The model ended its turn or hit a stop sequence.
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// The model called tools (an upstream's answer).
    ToolCalls,
    /// The upstream's content filter ended the reply.
    ContentFilter,
}

impl FinishReason {
    /// The OpenAI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
        }
    }
}

/// Token counts and timings of one generation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Tokens in the prompt, chat template included.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// From the request reaching the engine to the first generated token.
    pub time_to_first_token: Duration,
    /// Generated tokens per second, over the generation phase.
    pub tokens_per_second: f64,
}

impl Usage {
    /// Adds another generation's token counts (for work spread over several
    /// generations: retries, refinements); timings are left as they are.
    pub fn add_tokens(&mut self, other: &Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
    }
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The reply (the first choice's text).
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Counts and timings.
    pub usage: Usage,
    /// An OpenAI-compatible upstream's `choices` as it answered them (tool
    /// calls, logprobs, refusals, several choices), to be passed on unchanged.
    pub choices: Option<serde_json::Value>,
}

/// One item of a streamed generation.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// More text.
    Delta(String),
    /// One chunk of an OpenAI-compatible upstream's stream: its `choices` as
    /// received (tool-call deltas, logprobs, finish reasons, several choices),
    /// to be passed on unchanged, and the first choice's text in it.
    Upstream {
        /// The first choice's `delta.content` (may be empty).
        text: String,
        /// The chunk's `choices`.
        choices: serde_json::Value,
    },
    /// The end, with why and how much; always the last item of a stream.
    Done {
        /// Why it ended.
        finish_reason: FinishReason,
        /// Counts and timings.
        usage: Usage,
    },
}
