//! An OpenAI-compatible chat completion (REST's `POST /v1/chat/completions`):
//! the whole completion, or a stream of `chat.completion.chunk` objects.
//!
//! `model: "auto"` lets the router pick the tier from the last user message;
//! a configured model name goes straight to that model.

use crate::{
    callers::Caller,
    error::ApiError,
    ops::Validate,
    ops::inference::{
        ChatTexts, Routing, Speaker, model_name_problem, unix_now, validate_sampling,
    },
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
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
    /// A function result (OpenAI's deprecated form of `tool`).
    Function,
}

impl Role {
    /// How the router reads a message of this role.
    pub fn speaker(self) -> Speaker {
        match self {
            Role::System | Role::Developer => Speaker::System,
            Role::User => Speaker::User,
            Role::Assistant | Role::Tool | Role::Function => Speaker::Other,
        }
    }
}

/// One part of a multi-part message: `text`, or an `image_url`,
/// `input_audio` or `file` part for models that take them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContentPart {
    /// `text`, `image_url`, `input_audio`, `file`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The rest of a non-text part (`image_url`, …), as sent.
    #[serde(flatten)]
    #[schema(ignore)]
    pub rest: Map<String, Value>,
}

/// Message content: a string or a list of parts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Parts; the text parts are concatenated in order.
    Parts(Vec<ContentPart>),
}

/// One chat message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// Author.
    pub role: Role,
    /// Content; may be null for assistant messages that only called tools.
    pub content: Option<Content>,
    /// The message's other fields (`tool_calls`, `tool_call_id`, `name`, …),
    /// passed to OpenAI-compatible upstreams as sent.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

impl ChatMessage {
    fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => parts.iter().filter_map(|p| p.text.as_deref()).collect(),
        }
    }

    /// Whether the message says more than a role and text, so that only its
    /// own form carries it (see [`Message::wire`]).
    fn says_more(&self) -> bool {
        !self.extra.is_empty()
            || matches!(self.role, Role::Developer | Role::Function)
            || matches!(&self.content, Some(Content::Parts(parts)) if parts.iter().any(|p| p.kind != "text"))
    }

    fn to_message(&self) -> Message {
        let role = match self.role {
            Role::System | Role::Developer => GenRole::System,
            Role::User => GenRole::User,
            Role::Assistant => GenRole::Assistant,
            Role::Tool | Role::Function => GenRole::Tool,
        };
        let mut message = Message::new(role, self.text());
        if self.says_more() {
            message.wire = serde_json::to_value(self).ok();
        }
        message
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
    /// Send a last chunk with token usage before `[DONE]` (every chunk before
    /// it carries `"usage": null`).
    #[serde(default)]
    pub include_usage: bool,
}

/// Body of `POST /v1/chat/completions`. The fields below are honoured by
/// every engine; any other field of OpenAI's request (`tools`,
/// `response_format`, `logprobs`, penalties, `logit_bias`, `user`, …) goes
/// unchanged to OpenAI-compatible upstreams and is refused with 400, naming
/// it, by an engine that does not honour it (docs/openai-compatibility.md).
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
    /// Number of choices.
    #[schema(minimum = 1, maximum = 128)]
    pub n: Option<u32>,
    /// Every other field, as sent.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

fn auto() -> String {
    orchestrator::selector::AUTO.into()
}

impl Validate for ChatCompletionRequest {
    fn validate(&self) -> Result<(), ApiError> {
        // 400 like OpenAI's answer to a model it cannot take, before the name
        // reaches the ledger.
        if let Some(why) = model_name_problem(&self.model) {
            return Err(ApiError::invalid_param("model", why));
        }
        if self.messages.is_empty() {
            return Err(ApiError::validation(
                "messages: at least one message is required",
            ));
        }
        for (i, message) in self.messages.iter().enumerate() {
            if let Some(Content::Parts(parts)) = &message.content
                && let Some(j) = parts
                    .iter()
                    .position(|p| p.kind == "text" && p.text.is_none())
            {
                return Err(ApiError::validation(format!(
                    "messages[{i}].content[{j}].text: a text part needs its text"
                )));
            }
        }
        for (field, value) in [
            ("max_tokens", self.max_tokens),
            ("max_completion_tokens", self.max_completion_tokens),
            ("n", self.n),
        ] {
            if value == Some(0) {
                return Err(ApiError::validation(format!("{field}: must be at least 1")));
            }
        }
        if self.n.is_some_and(|n| n > 128) {
            return Err(ApiError::validation("n: at most 128 choices"));
        }
        validate_sampling(self.temperature, self.top_p)?;
        validate_openai_ranges(&self.extra)?;
        if let Some(Stop::Many(list)) = &self.stop
            && list.len() > 4
        {
            return Err(ApiError::validation("stop: at most 4 sequences"));
        }
        Ok(())
    }
}

/// OpenAI's own limits on fields every engine gets as sent: `top_logprobs`
/// 0–20, penalties −2–2, `logit_bias` token ids to −100–100.
fn validate_openai_ranges(extra: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(k) = extra.get("top_logprobs").filter(|v| !v.is_null())
        && k.as_u64().is_none_or(|k| k > 20)
    {
        return Err(ApiError::invalid_param(
            "top_logprobs",
            "must be an integer from 0 to 20",
        ));
    }
    for name in ["presence_penalty", "frequency_penalty"] {
        if let Some(v) = extra.get(name).filter(|v| !v.is_null())
            && v.as_f64().is_none_or(|p| !(-2.0..=2.0).contains(&p))
        {
            return Err(ApiError::invalid_param(
                name,
                "must be a number from -2 to 2",
            ));
        }
    }
    if let Some(bias) = extra.get("logit_bias").filter(|v| !v.is_null()) {
        let Some(map) = bias.as_object() else {
            return Err(ApiError::invalid_param(
                "logit_bias",
                "must map token ids to biases",
            ));
        };
        for (token, value) in map {
            if token.parse::<u32>().is_err()
                || value
                    .as_f64()
                    .is_none_or(|b| !(-100.0..=100.0).contains(&b))
            {
                return Err(ApiError::invalid_param(
                    "logit_bias",
                    format!("{token:?}: keys are token ids, values numbers from -100 to 100"),
                ));
            }
        }
    }
    Ok(())
}

impl ChatCompletionRequest {
    /// What the router reads: system and user messages (the last user turn
    /// is classified, the earlier ones are its context).
    fn routing_texts(&self) -> ChatTexts {
        ChatTexts::of(self.messages.iter().map(|m| (m.role.speaker(), m.text())))
    }

    fn params(&self) -> Params {
        let mut extra = self.extra.clone();
        if let Some(n) = self.n {
            extra.insert("n".into(), n.into());
        }
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
            extra,
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
    pub content: Option<String>,
    /// A refusal, from upstreams that give one; otherwise null.
    pub refusal: Option<String>,
}

/// One choice.
#[derive(Debug, Serialize, ToSchema)]
pub struct Choice {
    /// Its place among the choices.
    pub index: u32,
    /// The reply.
    pub message: AssistantMessage,
    /// Token log-probabilities, when asked for; otherwise null.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<Value>,
    /// `stop`, `length`, or from upstreams `tool_calls` and `content_filter`.
    pub finish_reason: &'static str,
}

/// The choices of a completion: Harpoon's own, or an OpenAI-compatible
/// upstream's as it answered them (tool calls, logprobs, several choices).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Choices {
    /// The one choice of an engine that generates here.
    Own([Choice; 1]),
    /// An upstream's `choices`, completed with the fields OpenAI requires.
    Upstream(Value),
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
    /// The choices (one unless `n` asked an upstream for more).
    #[schema(value_type = Vec<Choice>)]
    pub choices: Choices,
    /// Token counts.
    pub usage: ChatUsage,
}

/// An upstream's choices with what OpenAI's schema requires and some
/// servers leave out (`logprobs`, `message.refusal`, `message.content`)
/// present as null.
fn completed_choices(mut choices: Value) -> Value {
    if let Some(list) = choices.as_array_mut() {
        for choice in list.iter_mut().filter_map(Value::as_object_mut) {
            choice.entry("logprobs").or_insert(Value::Null);
            if let Some(message) = choice.get_mut("message").and_then(Value::as_object_mut) {
                message.entry("content").or_insert(Value::Null);
                message.entry("refusal").or_insert(Value::Null);
            }
        }
    }
    choices
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
    match answer(state, caller, request, &mut ledger).await {
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
        // With `include_usage`, every chunk but the usage chunk says `"usage": null`.
        let envelope = move |choices: Value| {
            let mut chunk = json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": choices,
            });
            if include_usage {
                chunk["usage"] = Value::Null;
            }
            chunk
        };
        let own = move |delta: Value, finish: Option<FinishReason>| json!([{"index": 0, "delta": delta, "finish_reason": finish.map(FinishReason::as_str)}]);
        let first = envelope(own(json!({"role": "assistant", "content": ""}), None));
        // Finished at the end of the stream; dropped unfinished if the client leaves.
        let mut ledger = Some(ledger);
        // An upstream says its own finish reasons; then no other is added.
        let mut finished_upstream = false;
        futures_util::stream::once(async move { ChatStreamItem::Chunk(first) })
            .chain(chunks.flat_map(move |item| {
                let out: Vec<ChatStreamItem> = match item {
                    Ok(Chunk::Delta(text)) => {
                        if let Some(l) = ledger.as_mut() {
                            l.streamed_delta(&text);
                        }
                        vec![ChatStreamItem::Chunk(envelope(own(
                            json!({"content": text}),
                            None,
                        )))]
                    }
                    Ok(Chunk::Upstream { text, choices }) => {
                        if !text.is_empty()
                            && let Some(l) = ledger.as_mut()
                        {
                            l.streamed_delta(&text);
                        }
                        finished_upstream |= choices
                            .as_array()
                            .is_some_and(|list| list.iter().any(|c| !c["finish_reason"].is_null()));
                        vec![ChatStreamItem::Chunk(envelope(choices))]
                    }
                    Ok(Chunk::Done {
                        finish_reason,
                        usage,
                    }) => {
                        if let Some(mut l) = ledger.take() {
                            l.finished_because(finish_reason);
                            l.finish(StatusCode::OK, Some(&usage));
                        }
                        let mut last = Vec::with_capacity(2);
                        if !finished_upstream {
                            last.push(ChatStreamItem::Chunk(envelope(own(
                                json!({}),
                                Some(finish_reason),
                            ))));
                        }
                        if include_usage {
                            let mut u = envelope(json!([]));
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
    caller: &Caller,
    request: ChatCompletionRequest,
    ledger: &mut Metered,
) -> Result<(Routing, Prepared), ApiError> {
    let params = request.params();
    let needs = orchestrator::capability::needs(&params.extra, &params.messages);
    let routing = request.routing_texts().with(|conversation| {
        Routing::decide_for(
            &state.selector,
            &request.model,
            &caller.tenant.id,
            conversation,
            false,
            &needs,
        )
    })?;
    ledger.routed(&routing);
    let generation = ledger.prepare(&routing.model, params).await?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = unix_now();
    let model = routing.model.name().to_owned();
    if !request.stream {
        let done = routing.model.generate(generation).await?;
        ledger.finished_because(done.finish_reason);
        ledger.completed_text(&done.text);
        let choices = match done.choices {
            Some(upstream) => Choices::Upstream(completed_choices(upstream)),
            None => Choices::Own([Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: Some(done.text),
                    refusal: None,
                },
                logprobs: None,
                finish_reason: done.finish_reason.as_str(),
            }]),
        };
        let body = ChatCompletion {
            id,
            object: "chat.completion",
            created,
            model,
            choices,
            usage: ChatUsage::from(&done.usage),
        };
        return Ok((routing, Prepared::Whole(body, done.usage)));
    }

    let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
    let mut chunks = routing.model.stream(generation).await?;
    // An engine that refuses the request before its first token (a grammar
    // that does not compile, a template's rules) answers with the error's
    // status, as OpenAI does, not with 200 and an in-band error.
    let chunks = match chunks.next().await {
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(first)) => futures_util::stream::once(async move { Ok(first) })
            .chain(chunks)
            .boxed(),
        None => chunks,
    };
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
