//! An engine that forwards to any OpenAI-compatible server (vLLM, llama.cpp
//! server, Ollama, `mlx_lm.server`, or OpenAI itself).
//!
//! Retries happen only before any answer has been received, and only for
//! connection failures, 429 and 5xx, with jittered exponential back-off; other
//! 4xx are never retried.

use super::{ChunkStream, Endpoint, Engine, EngineError, Forwarded, LoadState};
use crate::Secret;
use crate::generation::{Chunk, FinishReason, Generation, GenerationRequest, Usage};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Connection settings of an OpenAI-compatible upstream.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// API root including `/v1`, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<Secret>,
    /// `model` sent upstream; omitted when unset (single-model servers).
    pub served_model: Option<String>,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed between bytes of the answer.
    pub read_timeout: Duration,
    /// Attempts for retryable failures (1 = no retry).
    pub max_attempts: u32,
}

/// The `openai` engine.
#[derive(Debug, Clone)]
pub struct OpenAiEngine {
    /// Identity of this engine (shared by its clones) in each thread's clients.
    clients: Arc<()>,
    config: OpenAiConfig,
    /// Parsed once: parsing (IDNA included) per request showed in profiles.
    endpoint: reqwest::Url,
}

impl OpenAiEngine {
    /// An engine for one upstream.
    pub fn new(config: OpenAiConfig) -> Result<Self, EngineError> {
        let endpoint = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        let endpoint = reqwest::Url::parse(&endpoint).map_err(|e| {
            let shown = crate::secret::strip_url_credentials(&endpoint);
            EngineError::Unavailable(format!("base_url {shown:?}: {e}"))
        })?;
        let engine = Self {
            clients: Arc::new(()),
            config,
            endpoint,
        };
        // Builds this thread's client now, so a TLS set-up that cannot work
        // fails at start-up rather than on the first request.
        engine.client()?;
        Ok(engine)
    }

    /// This thread's HTTP client (and so connection pool) for this upstream.
    ///
    /// A pooled connection is driven by a task on the runtime that opened
    /// it. With one pool shared by the serving threads, a request often
    /// reused a connection opened on another thread and woke that thread
    /// twice; a pool per thread keeps the upstream call on the request's
    /// own thread (see `service::workers`).
    fn client(&self) -> Result<reqwest::Client, EngineError> {
        thread_local! {
            static CLIENTS: RefCell<Vec<(Weak<()>, reqwest::Client)>> = const { RefCell::new(Vec::new()) };
        }
        CLIENTS.with_borrow_mut(|clients| {
            let me = Arc::downgrade(&self.clients);
            if let Some((_, client)) = clients.iter().find(|(id, _)| id.ptr_eq(&me)) {
                return Ok(client.clone());
            }
            let client = reqwest::Client::builder()
                .connect_timeout(self.config.connect_timeout)
                .read_timeout(self.config.read_timeout)
                .build()
                .map_err(|e| EngineError::Unavailable(format!("HTTP client: {e}")))?;
            // Engines come and go with hosted·ai leases: forget dropped ones.
            clients.retain(|(id, _)| id.strong_count() > 0);
            clients.push((me, client.clone()));
            Ok(client)
        })
    }

    fn body(&self, request: &GenerationRequest, stream: bool) -> Value {
        let mut body = json!({
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stream": stream,
        });
        if let Some(model) = &self.config.served_model {
            body["model"] = json!(model);
        }
        if !request.stop.is_empty() {
            body["stop"] = json!(request.stop);
        }
        if let Some(seed) = request.seed {
            body["seed"] = json!(seed);
        }
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        // Everything else the caller sent goes on unchanged: the upstream
        // honours or refuses it itself.
        if let Value::Object(fields) = &mut body {
            for (name, value) in &request.extra {
                fields.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
        body
    }

    /// Sends to the chat endpoint with retries; returns the first non-retryable answer.
    async fn send(&self, body: &Value) -> Result<reqwest::Response, EngineError> {
        self.send_to(&self.endpoint, body).await
    }

    /// Sends to `url` with retries; returns the first non-retryable answer.
    async fn send_to(
        &self,
        url: &reqwest::Url,
        body: &Value,
    ) -> Result<reqwest::Response, EngineError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut builder = self.client()?.post(url.clone()).json(body);
            if let Some(key) = &self.config.api_key {
                builder = builder.bearer_auth(key.expose());
            }
            let outcome = match builder.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status();
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    let error = upstream_status_error(resp).await;
                    if !retryable {
                        return Err(error);
                    }
                    error
                }
                Err(e) => {
                    let error = self.transport_error(&e);
                    if !(e.is_connect() || e.is_timeout()) {
                        return Err(error);
                    }
                    error
                }
            };
            if attempt >= self.config.max_attempts {
                return Err(outcome);
            }
            let base = 100u64 << (attempt - 1).min(5);
            let jitter = rand::rng().random_range(0..=base);
            tokio::time::sleep(Duration::from_millis(base + jitter)).await;
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> EngineError {
        // reqwest names the URL, user-info and all, in its errors; these
        // reach callers and logs.
        let shown = |text: &str| crate::secret::strip_url_credentials(text);
        if e.is_timeout() {
            EngineError::Timeout(self.config.read_timeout)
        } else if e.is_connect() {
            EngineError::Connect(shown(&format!("{}: {e}", self.config.base_url)))
        } else {
            EngineError::Upstream(shown(&e.to_string()))
        }
    }
}

/// Turns an upstream error answer into an engine error, keeping its message.
async fn upstream_status_error(resp: reqwest::Response) -> EngineError {
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            v["error"]["message"]
                .as_str()
                .or_else(|| v["error"].as_str())
                .or_else(|| v["message"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| text.chars().take(300).collect());
    let lower = message.to_lowercase();
    match status.as_u16() {
        400 if lower.contains("context")
            && (lower.contains("length") || lower.contains("maximum")) =>
        {
            EngineError::ContextLength(message)
        }
        400 | 422 => {
            EngineError::InvalidRequest(format!("upstream rejected the request: {message}"))
        }
        429 => EngineError::RateLimited {
            message: format!("upstream rate limit (HTTP {status}): {message}"),
            retry_after,
        },
        _ => EngineError::Upstream(format!("HTTP {status}: {message}")),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by model servers).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The `data:` objects of an upstream's event stream, up to `[DONE]`.
fn sse_objects(
    resp: reqwest::Response,
    read_timeout: Duration,
) -> futures_util::stream::BoxStream<'static, Result<Value, EngineError>> {
    let mut events = resp.bytes_stream().eventsource();
    async_stream::try_stream! {
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| broken_stream(e, read_timeout))?;
            if event.data.trim() == "[DONE]" {
                break;
            }
            let value: Value = serde_json::from_str(&event.data)
                .map_err(|e| EngineError::Upstream(format!("bad chunk {:?}: {e}", event.data)))?;
            yield value;
        }
    }
    .boxed()
}

/// A failed event stream: a read timeout, or anything else that broke it.
fn broken_stream(
    e: eventsource_stream::EventStreamError<reqwest::Error>,
    read_timeout: Duration,
) -> EngineError {
    match e {
        eventsource_stream::EventStreamError::Transport(t) if t.is_timeout() => {
            EngineError::Timeout(read_timeout)
        }
        other => EngineError::Upstream(format!("broken event stream: {other}")),
    }
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

fn finish_reason(value: &Value) -> Option<FinishReason> {
    match value.as_str()? {
        "length" => Some(FinishReason::Length),
        "tool_calls" | "function_call" => Some(FinishReason::ToolCalls),
        "content_filter" => Some(FinishReason::ContentFilter),
        _ => Some(FinishReason::Stop),
    }
}

fn usage_of(value: &Value) -> Option<WireUsage> {
    serde_json::from_value(value.get("usage")?.clone()).ok()
}

fn timed_usage(prompt: u32, completion: u32, started: Instant, first: Option<Instant>) -> Usage {
    let now = Instant::now();
    let first = first.unwrap_or(now);
    let generating = now.duration_since(first).as_secs_f64();
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        time_to_first_token: first.duration_since(started),
        tokens_per_second: if generating > 0.0 {
            f64::from(completion.saturating_sub(1)) / generating
        } else {
            0.0
        },
    }
}

#[async_trait::async_trait]
impl Engine for OpenAiEngine {
    fn kind(&self) -> &'static str {
        "openai"
    }

    fn load_state(&self) -> LoadState {
        LoadState::Remote
    }

    fn forwards(&self) -> bool {
        true
    }

    async fn generate(&self, request: GenerationRequest) -> Result<Generation, EngineError> {
        let started = Instant::now();
        let resp = self.send(&self.body(&request, false)).await?;
        let mut value: Value = resp.json().await.map_err(|e| self.transport_error(&e))?;
        let choice = &value["choices"][0];
        let message = &choice["message"];
        // Content is null when the model only called tools.
        let text = match &message["content"] {
            Value::String(text) => text.clone(),
            Value::Null if message.is_object() => String::new(),
            _ => {
                return Err(EngineError::Upstream(format!(
                    "no choices[0].message.content in {value}"
                )));
            }
        };
        let finish = finish_reason(&choice["finish_reason"]).unwrap_or(FinishReason::Stop);
        let usage = usage_of(&value)
            .ok_or_else(|| EngineError::Upstream("no usage in the answer".into()))?;
        let elapsed = started.elapsed().as_secs_f64();
        Ok(Generation {
            text,
            finish_reason: finish,
            usage: Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                // Without streaming the first token arrives with the last.
                time_to_first_token: started.elapsed(),
                tokens_per_second: if elapsed > 0.0 {
                    f64::from(usage.completion_tokens) / elapsed
                } else {
                    0.0
                },
            },
            choices: Some(value["choices"].take()),
        })
    }

    async fn forward(&self, endpoint: Endpoint, mut body: Value) -> Result<Forwarded, EngineError> {
        let url = format!(
            "{}/{}",
            self.config.base_url.trim_end_matches('/'),
            endpoint.path()
        );
        let url = reqwest::Url::parse(&url)
            .map_err(|e| EngineError::Unavailable(format!("base_url: {e}")))?;
        // The caller named Harpoon's model; the upstream knows its own name
        // (or, as a single-model server, none).
        match (&self.config.served_model, body.as_object_mut()) {
            (Some(model), Some(fields)) => {
                fields.insert("model".into(), json!(model));
            }
            (None, Some(fields)) => {
                fields.remove("model");
            }
            _ => {}
        }
        let stream = body["stream"].as_bool().unwrap_or(false);
        let resp = self.send_to(&url, &body).await?;
        if !stream {
            let value = resp.json().await.map_err(|e| self.transport_error(&e))?;
            return Ok(Forwarded::Whole(value));
        }
        let read_timeout = self.config.read_timeout;
        let events = sse_objects(resp, read_timeout);
        Ok(Forwarded::Stream(events))
    }

    async fn stream(&self, request: GenerationRequest) -> Result<ChunkStream, EngineError> {
        let started = Instant::now();
        let resp = self.send(&self.body(&request, true)).await?;
        let read_timeout = self.config.read_timeout;
        let mut events = resp.bytes_stream().eventsource();
        let stream = async_stream::try_stream! {
            let mut first: Option<Instant> = None;
            let mut deltas = 0u32;
            let mut finish: Option<FinishReason> = None;
            let mut usage: Option<WireUsage> = None;
            while let Some(event) = events.next().await {
                let event = event.map_err(|e| broken_stream(e, read_timeout))?;
                if event.data.trim() == "[DONE]" {
                    break;
                }
                let mut value: Value = serde_json::from_str(&event.data)
                    .map_err(|e| EngineError::Upstream(format!("bad chunk {:?}: {e}", event.data)))?;
                if let Some(u) = usage_of(&value) {
                    usage = Some(u);
                }
                let Some(choices) = value.get_mut("choices").map(Value::take) else {
                    continue;
                };
                if choices.as_array().is_none_or(Vec::is_empty) {
                    continue;
                }
                // With `n` > 1 a chunk may carry any choice; the text and the
                // finish reason kept here are the first choice's.
                let first_choice = choices
                    .as_array()
                    .and_then(|list| list.iter().find(|c| c["index"].as_u64().unwrap_or(0) == 0));
                let mut text = String::new();
                if let Some(choice) = first_choice {
                    if let Some(f) = finish_reason(&choice["finish_reason"]) {
                        finish = Some(f);
                    }
                    text = choice["delta"]["content"].as_str().unwrap_or_default().to_owned();
                    if !text.is_empty() || choice["delta"].get("tool_calls").is_some() {
                        first.get_or_insert_with(Instant::now);
                    }
                }
                if !text.is_empty() {
                    deltas += 1;
                }
                yield Chunk::Upstream { text, choices };
            }
            let finish_reason = finish.ok_or_else(|| {
                EngineError::Upstream("the stream ended without a finish reason".into())
            })?;
            // Servers that ignore include_usage: count one token per delta, the
            // usual granularity of OpenAI-compatible streams.
            let (prompt, completion) = usage.map_or((0, deltas), |u| (u.prompt_tokens, u.completion_tokens));
            yield Chunk::Done {
                finish_reason,
                usage: timed_usage(prompt, completion, started, first),
            };
        };
        Ok(stream.boxed())
    }
}
