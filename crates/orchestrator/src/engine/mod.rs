//! Engines run models: `mlx` (embedded Python, feature `pymlx`), `openai` (any
//! OpenAI-compatible server) and `hosted_ai` (in `crate::hosted_ai`).

#[cfg(feature = "pymlx")]
pub mod mlx;
pub mod openai;

use crate::generation::{Chunk, Generation, GenerationRequest};
use futures_util::{StreamExt, stream::BoxStream};
use std::time::Duration;

/// A stream of generated chunks, ending with [`Chunk::Done`] or an error.
pub type ChunkStream = BoxStream<'static, Result<Chunk, EngineError>>;

/// Why an engine could not serve a request. Each variant maps to one HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The engine cannot serve at all (not compiled in, not configured, not loaded): 503.
    #[error("{0}")]
    Unavailable(String),
    /// The upstream could not be reached: 503.
    #[error("upstream unreachable: {0}")]
    Connect(String),
    /// The upstream did not answer in time: 504.
    #[error("upstream timed out after {0:?}")]
    Timeout(Duration),
    /// The upstream answered with an error or something unparseable: 502.
    #[error("upstream error: {0}")]
    Upstream(String),
    /// The request does not fit the model's context: 400.
    #[error("{0}")]
    ContextLength(String),
    /// The request is invalid for this engine: 400.
    #[error("{0}")]
    InvalidRequest(String),
    /// The engine failed while generating: 500.
    #[error("generation failed: {0}")]
    Failed(String),
    /// The upstream asks for fewer requests: 429 with `Retry-After` (the
    /// upstream's own when it sent one, else a short default).
    #[error("{message}")]
    RateLimited {
        /// What the client is told.
        message: String,
        /// How long the upstream asked to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// No capacity now, some expected later (a full pool, too many waiting):
    /// 503 with `Retry-After`.
    #[error("{message}")]
    Busy {
        /// What the client is told.
        message: String,
        /// How long the client should wait before trying again.
        retry_after: Duration,
    },
    /// An error of the kind `kind`, worded in full by the engine that raised
    /// it: the message is shown as it is (hosted_ai names itself and the
    /// model, never the pod's address); the status is `kind`'s.
    #[error("{message}")]
    Worded {
        /// What the client is told.
        message: String,
        /// The error as raised, which decides the status.
        kind: Box<EngineError>,
    },
}

impl EngineError {
    /// The error as raised, under any wording ([`EngineError::Worded`]).
    pub fn kind(&self) -> &EngineError {
        match self {
            EngineError::Worded { kind, .. } => kind.kind(),
            other => other,
        }
    }
}

/// Whether an engine's model is in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadState {
    /// Weights are loaded; requests start at once.
    Loaded,
    /// Weights load on the next request.
    Unloaded,
    /// Weights are being loaded.
    Loading,
    /// The last load failed; the next request tries again.
    Failed,
    /// A remote server holds the model; nothing to load here.
    Remote,
}

/// An OpenAI endpoint besides chat, which Harpoon passes to upstream servers
/// as it is (only they serve it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/completions` (legacy text completion).
    Completions,
    /// `POST /v1/embeddings`.
    Embeddings,
}

impl Endpoint {
    /// The path under the API root, e.g. `embeddings`.
    pub fn path(self) -> &'static str {
        match self {
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
        }
    }
}

/// An upstream's answer to a forwarded request.
pub enum Forwarded {
    /// The whole JSON answer.
    Whole(serde_json::Value),
    /// The `data:` objects of an event stream, up to (without) `[DONE]`.
    Stream(BoxStream<'static, Result<serde_json::Value, EngineError>>),
}

/// Requests an engine holds: waiting for their turn, and being generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineLoad {
    /// Accepted, not started.
    pub queued: usize,
    /// Being generated.
    pub running: usize,
}

/// A way of running one model.
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// Engine kind, as in configuration (`mlx`, `openai`).
    fn kind(&self) -> &'static str;

    /// Whether the model is in memory.
    fn load_state(&self) -> LoadState;

    /// The engine's own queue, where it has one (the in-process engine);
    /// `None` where requests wait elsewhere (an upstream server).
    fn load(&self) -> Option<EngineLoad> {
        None
    }

    /// Gets capacity ready for requests soon to come (a `hosted_ai` pool
    /// subscribes); by default there is nothing to prepare.
    fn prewarm(&self) {}

    /// Whether [`Engine::forward`] serves anything.
    fn forwards(&self) -> bool {
        false
    }

    /// Streams a reply; the stream ends with [`Chunk::Done`].
    async fn stream(&self, request: GenerationRequest) -> Result<ChunkStream, EngineError>;

    /// Generates a whole reply (by default, by collecting [`Engine::stream`]).
    async fn generate(&self, request: GenerationRequest) -> Result<Generation, EngineError> {
        collect(self.stream(request).await?).await
    }

    /// Passes an OpenAI request of `endpoint` on as it is (`model` set to
    /// what the upstream serves); by default the engine does not serve it.
    async fn forward(
        &self,
        endpoint: Endpoint,
        _body: serde_json::Value,
    ) -> Result<Forwarded, EngineError> {
        Err(EngineError::Unavailable(format!(
            "the {} engine does not serve /v1/{}: only `openai` upstreams do",
            self.kind(),
            endpoint.path()
        )))
    }
}

/// Collects a chunk stream into a generation.
pub async fn collect(mut stream: ChunkStream) -> Result<Generation, EngineError> {
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk? {
            Chunk::Delta(delta) | Chunk::Upstream { text: delta, .. } => text.push_str(&delta),
            Chunk::Done {
                finish_reason,
                usage,
            } => {
                return Ok(Generation {
                    text,
                    finish_reason,
                    usage,
                    choices: None,
                });
            }
        }
    }
    Err(EngineError::Upstream(
        "the stream ended without a finish reason".into(),
    ))
}
