//! OpenAI endpoints that Harpoon passes to upstream servers as they are
//! (REST's `POST /v1/embeddings` and `POST /v1/completions`): the model is
//! resolved (`auto` routes a completion's prompt like chat), the caller's
//! budget reserved, the body forwarded to the model's `openai` engine, and
//! the answer metered from the upstream's own usage. Engines that do not
//! serve the endpoint answer 503 saying so.

use crate::{
    callers::Caller,
    error::{ApiError, ErrorCode},
    ops::Validate,
    ops::inference::{Routing, model_name_problem},
    ops::metering::Metered,
    state::AppState,
};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::StatusCode;
use orchestrator::engine::{Endpoint, Forwarded};
use orchestrator::generation::Usage;
use orchestrator::selector::AUTO;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// Body of `POST /v1/embeddings`: `model` and `input` are checked here; every
/// other field (`encoding_format`, `dimensions`, `user`) goes to the upstream,
/// which honours or refuses it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// A configured model served by an `openai` upstream that embeds.
    #[schema(max_length = 256)]
    pub model: String,
    /// A string, a list of strings, or token ids.
    #[schema(value_type = Object)]
    pub input: Value,
    /// Every other field, as sent.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

impl Validate for EmbeddingsRequest {
    fn validate(&self) -> Result<(), ApiError> {
        model_problem(&self.model)?;
        if self.model == AUTO {
            return Err(ApiError::invalid_param(
                "model",
                "embeddings need a named model: the router picks chat tiers, not embedding models",
            ));
        }
        non_empty_input("input", &self.input)
    }
}

/// Body of `POST /v1/completions` (legacy text completion): `model`,
/// `prompt`, `max_tokens` and `stream` are checked here; every other field
/// goes to the upstream, which honours or refuses it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CompletionsRequest {
    /// A configured model, or `auto` to route the prompt like chat.
    #[schema(max_length = 256)]
    pub model: String,
    /// A string, a list of strings, or token ids.
    #[schema(value_type = Object)]
    pub prompt: Value,
    /// Most tokens to generate.
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    /// Stream `text_completion` chunks as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Every other field, as sent.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

impl Validate for CompletionsRequest {
    fn validate(&self) -> Result<(), ApiError> {
        model_problem(&self.model)?;
        if self.max_tokens == Some(0) {
            return Err(ApiError::invalid_param("max_tokens", "must be at least 1"));
        }
        if self
            .extra
            .get("stream_options")
            .is_some_and(|o| !o.is_object() && !o.is_null())
        {
            return Err(ApiError::invalid_param(
                "stream_options",
                "an object, such as {\"include_usage\": true}",
            ));
        }
        non_empty_input("prompt", &self.prompt)
    }
}

fn model_problem(model: &str) -> Result<(), ApiError> {
    match model_name_problem(model) {
        Some(why) => Err(ApiError::invalid_param("model", why)),
        None if model.is_empty() => Err(ApiError::invalid_param("model", "must be given")),
        None => Ok(()),
    }
}

/// 400 unless `value` is a non-empty string or a non-empty list.
fn non_empty_input(field: &str, value: &Value) -> Result<(), ApiError> {
    let ok = match value {
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_param(
            field,
            "a non-empty string or list is required",
        ))
    }
}

/// The text of a prompt or input, for routing and for the budget's bound.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// An upstream's answer and how the request was routed.
pub struct PassedAnswer {
    /// The model that serves the request.
    pub routing: Routing,
    /// The upstream's answer, `model` renamed to Harpoon's.
    pub reply: PassedReply,
}

/// A whole answer, or the objects of a stream.
pub enum PassedReply {
    /// The JSON answer.
    Whole(Value),
    /// The stream's objects (then `[DONE]`); an error after the start is an item.
    Stream(BoxStream<'static, Result<Value, ApiError>>),
}

/// Forwards an embeddings request.
pub async fn embeddings(
    state: &AppState,
    caller: &Caller,
    request: EmbeddingsRequest,
    route: &str,
) -> Result<PassedAnswer, ApiError> {
    let text = text_of(&request.input);
    let mut body = Value::Object(request.extra);
    body["model"] = json!(request.model);
    body["input"] = request.input;
    let passed = Passed {
        endpoint: Endpoint::Embeddings,
        model: &request.model,
        text,
        most_generated: 0,
        body,
    };
    forward(state, caller, passed, route).await
}

/// Forwards a completions request.
pub async fn completions(
    state: &AppState,
    caller: &Caller,
    request: CompletionsRequest,
    route: &str,
) -> Result<PassedAnswer, ApiError> {
    let text = text_of(&request.prompt);
    let mut body = Value::Object(request.extra);
    body["model"] = json!(request.model);
    body["prompt"] = request.prompt;
    if let Some(max) = request.max_tokens {
        body["max_tokens"] = max.into();
    }
    if request.stream {
        body["stream"] = true.into();
    }
    // OpenAI's default for legacy completions is 16 tokens.
    let most = request.max_tokens.unwrap_or(16);
    let passed = Passed {
        endpoint: Endpoint::Completions,
        model: &request.model,
        text,
        most_generated: most,
        body,
    };
    forward(state, caller, passed, route).await
}

/// A request to pass on, and what its routing and budget need.
struct Passed<'a> {
    endpoint: Endpoint,
    /// As the caller named it (`auto` routes `text`).
    model: &'a str,
    /// The prompt's text.
    text: String,
    /// The most tokens the upstream may generate.
    most_generated: u32,
    body: Value,
}

async fn forward(
    state: &AppState,
    caller: &Caller,
    passed: Passed<'_>,
    route: &str,
) -> Result<PassedAnswer, ApiError> {
    let Passed {
        endpoint,
        model,
        text,
        most_generated,
        mut body,
    } = passed;
    // At most one token per byte of text (byte-level tokenizers never do worse).
    let bound = u64::try_from(text.len()).unwrap_or(u64::MAX);
    let mut ledger = Metered::begin(state, caller, route, model);
    let outcome = async {
        let routing = Routing::decide(&state.selector, model, &text, false)?;
        ledger.routed(&routing);
        ledger.reserve(bound + u64::from(most_generated)).await?;
        let asked_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
        let stream = body["stream"].as_bool() == Some(true);
        if stream {
            // Metering needs the upstream's count; the caller sees it only if asked.
            let options = body
                .as_object_mut()
                .map(|fields| fields.entry("stream_options").or_insert_with(|| json!({})));
            match options {
                Some(Value::Object(options)) => {
                    options.insert("include_usage".into(), true.into());
                }
                Some(options @ Value::Null) => *options = json!({"include_usage": true}),
                _ => {
                    return Err(ApiError::invalid_param(
                        "stream_options",
                        "an object, such as {\"include_usage\": true}",
                    ));
                }
            }
        }
        let name = routing.model.name().to_owned();
        let forwarded = routing.model.forward(endpoint, body).await.map_err(|e| {
            let error = ApiError::from(e);
            if error.code() == ErrorCode::EngineUnavailable {
                ApiError::new(error.code(), format!("model {name:?}: {}", error.message()))
            } else {
                error
            }
        })?;
        Ok::<_, ApiError>((routing, forwarded, asked_usage))
    }
    .await;
    let (routing, forwarded, asked_usage) = match outcome {
        Ok(done) => done,
        Err(e) => {
            ledger.finish(e.status(), None);
            return Err(e);
        }
    };
    let name = routing.model.name().to_owned();
    let reply = match forwarded {
        Forwarded::Whole(mut value) => {
            if let Err(e) = conform(endpoint, &name, &mut value) {
                ledger.finish(e.status(), None);
                return Err(e);
            }
            // Without the upstream's count, the request is charged what it reserved.
            let usage = charged(usage_of(&value), &name, bound, most_generated);
            ledger.finish(StatusCode::OK, Some(&usage));
            PassedReply::Whole(value)
        }
        Forwarded::Stream(objects) => {
            let mut ledger = Some(ledger);
            let mut usage: Option<Usage> = None;
            let mut objects = objects;
            let chunks = async_stream::stream! {
                while let Some(item) = objects.next().await {
                    match item {
                        Ok(mut value) => {
                            if value.get("usage").is_some_and(|u| !u.is_null()) {
                                usage = usage_of(&value);
                                let only_usage = value["choices"].as_array().is_none_or(Vec::is_empty);
                                if !asked_usage {
                                    if only_usage {
                                        continue;
                                    }
                                    if let Some(fields) = value.as_object_mut() {
                                        fields.remove("usage");
                                    }
                                }
                            }
                            if let Err(error) = conform(endpoint, &name, &mut value) {
                                if let Some(l) = ledger.take() {
                                    l.finish(error.status(), Some(&charged(usage, &name, bound, most_generated)));
                                }
                                yield Err(error);
                                return;
                            }
                            if let Some(l) = ledger.as_mut() {
                                l.streamed_delta("");
                            }
                            yield Ok(value);
                        }
                        Err(e) => {
                            let error = ApiError::from(e);
                            if let Some(l) = ledger.take() {
                                l.finish(error.status(), Some(&charged(usage, &name, bound, most_generated)));
                            }
                            yield Err(error);
                            return;
                        }
                    }
                }
                if let Some(l) = ledger.take() {
                    l.finish(StatusCode::OK, Some(&charged(usage, &name, bound, most_generated)));
                }
            };
            PassedReply::Stream(chunks.boxed())
        }
    };
    Ok(PassedAnswer { routing, reply })
}

/// An upstream's answer as OpenAI's schema has it: `model` is Harpoon's
/// name, and a completion's object says `text_completion` with each choice's
/// `logprobs` present (`mlx_lm.server` labels its usage chunk
/// `chat.completion` and leaves `logprobs` out). Anything but a JSON object
/// is the upstream's error.
fn conform(endpoint: Endpoint, model: &str, value: &mut Value) -> Result<(), ApiError> {
    let Some(fields) = value.as_object_mut() else {
        return Err(ApiError::from(orchestrator::engine::EngineError::Upstream(
            format!("model {model:?}: the upstream answered something other than a JSON object"),
        )));
    };
    fields.insert("model".into(), json!(model));
    if endpoint != Endpoint::Completions {
        return Ok(());
    }
    fields.insert("object".into(), json!("text_completion"));
    for choice in fields
        .get_mut("choices")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        choice.entry("logprobs").or_insert(Value::Null);
    }
    Ok(())
}

/// The upstream's count, or, when it gave none, what the request reserved
/// (one token per byte of text, and the most it may generate).
fn charged(usage: Option<Usage>, model: &str, bound: u64, most_generated: u32) -> Usage {
    usage.unwrap_or_else(|| {
        tracing::warn!(
            model,
            "the upstream answered without usage; charging the reservation"
        );
        Usage {
            prompt_tokens: u32::try_from(bound).unwrap_or(u32::MAX),
            completion_tokens: most_generated,
            ..Usage::default()
        }
    })
}

/// The upstream's token counts (embeddings count only the prompt), if it gave them.
fn usage_of(value: &Value) -> Option<Usage> {
    let usage = value.get("usage").filter(|u| u.is_object())?;
    let count = |key: &str| {
        usage[key]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    };
    Some(Usage {
        prompt_tokens: count("prompt_tokens"),
        completion_tokens: count("completion_tokens"),
        ..Usage::default()
    })
}
