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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
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
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// The model ended its turn or hit a stop sequence.
    Stop,
    /// `max_tokens` was reached.
    Length,
}

impl FinishReason {
    /// The OpenAI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
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
    /// The reply.
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Counts and timings.
    pub usage: Usage,
}

/// One item of a streamed generation.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// More text.
    Delta(String),
    /// The end, with why and how much; always the last item of a stream.
    Done {
        /// Why it ended.
        finish_reason: FinishReason,
        /// Counts and timings.
        usage: Usage,
    },
}
