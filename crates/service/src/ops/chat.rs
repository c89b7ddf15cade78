//! An OpenAI-compatible chat completion (REST's `POST /v1/chat/completions`):
//! the whole completion, or a stream of `chat.completion.chunk` objects.
//!
//! `model: "auto"` lets the router pick the tier from the last user message;
//! a configured model name goes straight to that model.

use crate::{
    callers::Caller,
    error::{ApiError, ErrorCode},
    ops::Validate,
    ops::inference::{Routing, model_name_problem, unix_now, validate_sampling},
    ops::metering::Metered,
    state::AppState,
};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::StatusCode;
use orchestrator::engine::ChunkStream;
use orchestrator::generation::{Chunk, FinishReason, Message, Role as GenRole, Usage};
use orchestrator::registry::Params;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
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

impl ChatMessage {
    fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .map(|ContentPart::Text { text }| text.as_str())
                .collect(),
        }
    }

    fn to_message(&self) -> Message {
        let role = match self.role {
            Role::System | Role::Developer => GenRole::System,
            Role::User => GenRole::User,
            Role::Assistant => GenRole::Assistant,
            Role::Tool => GenRole::Tool,
        };
        Message::new(role, self.text())
    }
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

/// Streaming options.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with token usage before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

/// Body of `POST /v1/chat/completions` (the fields Harpoon honours; others are ignored).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// `auto` lets the router pick the tier; a configured model name pins it.
    /// At most 256 characters, none of them control characters.
    #[serde(default = "auto")]
    #[schema(
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f\\u00ad\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff]*$"
    )]
    pub model: String,
    /// The conversation; at least one message.
    #[schema(min_items = 1)]
    pub messages: Vec<ChatMessage>,
    /// Most tokens to generate (clamped to the model's `max_new_tokens`).
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    /// Newer name for `max_tokens`; wins when both are given.
    #[schema(minimum = 1)]
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature, 0–2.
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f32>,
    /// Nucleus-sampling mass, (0, 1].
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub top_p: Option<f32>,
    /// Stream tokens as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// Sequences that end generation.
    pub stop: Option<Stop>,
    /// Seed for reproducible sampling.
    pub seed: Option<u64>,
    /// Number of choices; only 1 is supported.
    #[schema(minimum = 1, maximum = 1)]
    pub n: Option<u32>,
}

fn auto() -> String {
    orchestrator::selector::AUTO.into()
}

impl Validate for ChatCompletionRequest {
    fn validate(&self) -> Result<(), ApiError> {
        // 400 like OpenAI's answer to a model it cannot take, before the name
        // reaches the ledger.
        if let Some(why) = model_name_problem(&self.model) {
            return Err(
                ApiError::new(ErrorCode::InvalidRequest, format!("model: {why}"))
                    .with_details(serde_json::json!({ "param": "model" })),
            );
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
        validate_sampling(self.temperature, self.top_p)?;
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

impl ChatCompletionRequest {
    /// The text the router judges: the last user message.
    fn routing_text(&self) -> String {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(ChatMessage::text)
            .unwrap_or_default()
    }

    fn params(&self) -> Params {
        Params {
            messages: self.messages.iter().map(ChatMessage::to_message).collect(),
            max_tokens: self.max_completion_tokens.or(self.max_tokens),
            temperature: self.temperature,
            top_p: self.top_p,
            stop: match &self.stop {
                None => Vec::new(),
                Some(Stop::One(s)) => vec![s.clone()],
                Some(Stop::Many(v)) => v.clone(),
            },
            seed: self.seed,
        }
    }
}

/// Token counts in OpenAI's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatUsage {
    /// Prompt tokens, chat template included.
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// Their sum.
    pub total_tokens: u32,
}

impl From<&Usage> for ChatUsage {
    fn from(u: &Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens.saturating_add(u.completion_tokens),
        }
    }
}

/// The assistant's reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The generated text.
    pub content: String,
}

/// One choice (Harpoon always returns one).
#[derive(Debug, Serialize, ToSchema)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The reply.
    pub message: AssistantMessage,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
}

/// Body of a non-streamed chat completion.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-…`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The configured model that answered.
    pub model: String,
    /// One choice.
    pub choices: Vec<Choice>,
    /// Token counts.
    pub usage: ChatUsage,
}

/// A chat completion and how its request was routed.
pub struct ChatAnswer {
    /// The model that serves the request and the classification behind it.
    pub routing: Routing,
    /// The completion, whole or streamed.
    pub reply: ChatReply,
}

/// A completion: whole, or as the chunks of a stream.
pub enum ChatReply {
    /// `stream: false`: the completion, its usage row written.
    Whole(ChatCompletion),
    /// `stream: true`: a `chat.completion.chunk` with the role first, one per
    /// generated delta, then the last (and, with `include_usage`, the usage
    /// chunk); or, when generation fails once streaming has begun, the error.
    /// The usage row is written when the stream finishes, or, if it is dropped
    /// unfinished (the client left), with status 499.
    Stream(BoxStream<'static, ChatStreamItem>),
}

/// One item of a streamed completion.
pub enum ChatStreamItem {
    /// A `chat.completion.chunk` object.
    Chunk(Value),
    /// Generation failed after the stream began.
    Error(ApiError),
}

/// Answers a validated request, with its usage row under `route`.
pub async fn chat_completion(
    state: &AppState,
    caller: &Caller,
    request: ChatCompletionRequest,
    route: &str,
) -> Result<ChatAnswer, ApiError> {
    let mut ledger = Metered::begin(state, caller, route, &request.model);
    match answer(state, request, &mut ledger).await {
        Ok((routing, Prepared::Whole(completion, usage))) => {
            ledger.finish(StatusCode::OK, Some(&usage));
            Ok(ChatAnswer {
                routing,
                reply: ChatReply::Whole(completion),
            })
        }
        Ok((routing, Prepared::Stream(stream))) => Ok(ChatAnswer {
            routing,
            reply: ChatReply::Stream(stream.chunks(ledger)),
        }),
        Err(e) => {
            ledger.finish(e.status(), None);
            Err(e)
        }
    }
}

/// What [`answer`] got from the model, before the ledger is settled.
enum Prepared {
    Whole(ChatCompletion, Usage),
    Stream(Streaming),
}

/// A started stream and what its chunks carry.
struct Streaming {
    chunks: ChunkStream,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
}

impl Streaming {
    /// The chunks of the stream, given the ledger it finishes when the stream ends.
    fn chunks(self, ledger: Metered) -> BoxStream<'static, ChatStreamItem> {
        let Self {
            chunks,
            id,
            created,
            model,
            include_usage,
        } = self;
        let chunk = move |delta: Value, finish: Option<FinishReason>| {
            json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish.map(FinishReason::as_str)}],
            })
        };
        let first = chunk(json!({"role": "assistant", "content": ""}), None);
        // Finished at the end of the stream; dropped unfinished if the client leaves.
        let mut ledger = Some(ledger);
        futures_util::stream::once(async move { ChatStreamItem::Chunk(first) })
            .chain(chunks.flat_map(move |item| {
                let out: Vec<ChatStreamItem> = match item {
                    Ok(Chunk::Delta(text)) => {
                        if let Some(l) = ledger.as_mut() {
                            l.streamed_delta();
                        }
                        vec![ChatStreamItem::Chunk(chunk(json!({"content": text}), None))]
                    }
                    Ok(Chunk::Done {
                        finish_reason,
                        usage,
                    }) => {
                        if let Some(l) = ledger.take() {
                            l.finish(StatusCode::OK, Some(&usage));
                        }
                        let mut last =
                            vec![ChatStreamItem::Chunk(chunk(json!({}), Some(finish_reason)))];
                        if include_usage {
                            let mut u = chunk(json!({}), None);
                            u["choices"] = json!([]);
                            u["usage"] = json!(ChatUsage::from(&usage));
                            last.push(ChatStreamItem::Chunk(u));
                        }
                        last
                    }
                    // Streaming has begun: the failure is an item of the stream (reported
                    // in-band, as OpenAI does).
                    Err(e) => {
                        let error = ApiError::from(e);
                        if let Some(l) = ledger.take() {
                            l.finish(error.status(), None);
                        }
                        vec![ChatStreamItem::Error(error)]
                    }
                };
                futures_util::stream::iter(out)
            }))
            .boxed()
    }
}

async fn answer(
    state: &AppState,
    request: ChatCompletionRequest,
    ledger: &mut Metered,
) -> Result<(Routing, Prepared), ApiError> {
    let routing = Routing::decide(
        &state.selector,
        &request.model,
        &request.routing_text(),
        false,
    )?;
    ledger.routed(&routing);
    let generation = ledger.prepare(&routing.model, request.params()).await?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = unix_now();
    let model = routing.model.name().to_owned();
    if !request.stream {
        let done = routing.model.generate(generation).await?;
        let body = ChatCompletion {
            id,
            object: "chat.completion",
            created,
            model,
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: done.text,
                },
                finish_reason: done.finish_reason.as_str(),
            }],
            usage: ChatUsage::from(&done.usage),
        };
        return Ok((routing, Prepared::Whole(body, done.usage)));
    }

    let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
    let chunks = routing.model.stream(generation).await?;
    Ok((
        routing,
        Prepared::Stream(Streaming {
            chunks,
            id,
            created,
            model,
            include_usage,
        }),
    ))
}
