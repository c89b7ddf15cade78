//! The `hosted_ai` engine: a lease from the pool manager, then the `openai`
//! engine at the pod's endpoint. A pod lost before anything reached the
//! client is recovered and the request retried once; a pod lost mid-stream
//! ends the stream with an error. With `fallback: native` the model's local
//! engine serves when hosted·ai cannot.

use super::manager::PoolManager;
use crate::Tier;
use crate::engine::{ChunkStream, Engine, EngineError, LoadState};
use crate::generation::{Generation, GenerationRequest};
use futures_util::StreamExt;
use std::sync::Arc;

/// The engine of one hosted_ai model.
pub struct HostedAiEngine {
    manager: Arc<PoolManager>,
    model: String,
    tier: Option<Tier>,
    fallback: Option<Arc<dyn Engine>>,
}

impl std::fmt::Debug for HostedAiEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostedAiEngine")
            .field("model", &self.model)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

/// Errors that mean the pod (not the request) failed: unreachable, a broken
/// connection or stream, or a gateway status from the path to it. A model
/// server answering its own error (a 500 or 429 from vLLM, say) is alive:
/// tearing down a subscription every tenant shares over one bad request would
/// cut all of their streams.
fn pod_lost(e: &EngineError) -> bool {
    match e {
        EngineError::Connect(_) => true,
        // `openai::upstream_status_error` writes "HTTP <status>: …" for answers.
        EngineError::Upstream(m) => match m.strip_prefix("HTTP ") {
            Some(status) => ["502", "503", "504"].iter().any(|s| status.starts_with(s)),
            None => true,
        },
        _ => false,
    }
}

impl HostedAiEngine {
    /// An engine for `model`, with an optional local fallback.
    pub fn new(
        manager: Arc<PoolManager>,
        model: &str,
        tier: Option<Tier>,
        fallback: Option<Arc<dyn Engine>>,
    ) -> Self {
        Self {
            manager,
            model: model.to_owned(),
            tier,
            fallback,
        }
    }

    async fn hosted_generate(
        &self,
        request: &GenerationRequest,
    ) -> Result<Generation, EngineError> {
        let mut retried = false;
        loop {
            let lease = self.manager.acquire(&self.model, self.tier).await?;
            let guard = lease.begin();
            let outcome = lease.engine().generate(request.clone()).await;
            drop(guard);
            match outcome {
                // Nothing reached the client yet, so one retry on fresh capacity is safe.
                Err(e) if pod_lost(&e) && !retried => {
                    tracing::warn!(model = %self.model, error = %e, "pod lost; recovering and retrying once");
                    self.manager.recover(&lease).await;
                    retried = true;
                }
                Err(e) => {
                    if pod_lost(&e) {
                        let manager = self.manager.clone();
                        tokio::spawn(async move { manager.recover(&lease).await });
                    }
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }

    async fn hosted_stream(&self, request: &GenerationRequest) -> Result<ChunkStream, EngineError> {
        let mut retried = false;
        loop {
            let lease = self.manager.acquire(&self.model, self.tier).await?;
            let guard = lease.begin();
            // Wait for the first item: until then nothing has reached the client.
            let first = match lease.engine().stream(request.clone()).await {
                Ok(mut stream) => match stream.next().await {
                    Some(Ok(chunk)) => Ok((chunk, stream)),
                    Some(Err(e)) => Err(e),
                    None => Err(EngineError::Upstream(
                        "the pod closed the stream at once".into(),
                    )),
                },
                Err(e) => Err(e),
            };
            match first {
                Ok((chunk, rest)) => {
                    let manager = self.manager.clone();
                    let lease = lease.clone();
                    let stream = async_stream::stream! {
                        let _guard = guard;
                        yield Ok(chunk);
                        let mut rest = rest;
                        while let Some(item) = rest.next().await {
                            if let Err(e) = &item && pod_lost(e) {
                                // Mid-stream: the client has text already; end cleanly with the error.
                                let manager = manager.clone();
                                let lease = lease.clone();
                                tokio::spawn(async move { manager.recover(&lease).await });
                            }
                            yield item;
                        }
                    };
                    return Ok(stream.boxed());
                }
                Err(e) if pod_lost(&e) && !retried => {
                    drop(guard);
                    tracing::warn!(model = %self.model, error = %e, "pod lost before the first token; recovering and retrying once");
                    self.manager.recover(&lease).await;
                    retried = true;
                }
                Err(e) => {
                    drop(guard);
                    if pod_lost(&e) {
                        let manager = self.manager.clone();
                        tokio::spawn(async move { manager.recover(&lease).await });
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// Whether hosted·ai failed in a way the local engine may cover.
fn may_fall_back(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::Unavailable(_)
            | EngineError::Connect(_)
            | EngineError::Timeout(_)
            | EngineError::Upstream(_)
    )
}

#[async_trait::async_trait]
impl Engine for HostedAiEngine {
    fn kind(&self) -> &'static str {
        "hosted_ai"
    }

    fn load_state(&self) -> LoadState {
        LoadState::Remote
    }

    async fn generate(&self, request: GenerationRequest) -> Result<Generation, EngineError> {
        match self.hosted_generate(&request).await {
            Err(e) if may_fall_back(&e) => match &self.fallback {
                Some(local) => {
                    tracing::warn!(model = %self.model, error = %e, "hosted·ai cannot serve; falling back to the native engine");
                    local.generate(request).await
                }
                None => Err(e),
            },
            other => other,
        }
    }

    async fn stream(&self, request: GenerationRequest) -> Result<ChunkStream, EngineError> {
        match self.hosted_stream(&request).await {
            Err(e) if may_fall_back(&e) => match &self.fallback {
                Some(local) => {
                    tracing::warn!(model = %self.model, error = %e, "hosted·ai cannot serve; falling back to the native engine");
                    local.stream(request).await
                }
                None => Err(e),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dead_path_to_the_pod_counts_as_losing_it() {
        assert!(pod_lost(&EngineError::Connect("refused".into())));
        assert!(pod_lost(&EngineError::Upstream(
            "broken event stream: reset".into()
        )));
        assert!(pod_lost(&EngineError::Upstream(
            "HTTP 503 Service Unavailable: pod gone".into()
        )));
        assert!(!pod_lost(&EngineError::Upstream(
            "HTTP 500 Internal Server Error: oops".into()
        )));
        assert!(!pod_lost(&EngineError::Upstream(
            "HTTP 429 Too Many Requests: slow down".into()
        )));
        assert!(!pod_lost(&EngineError::InvalidRequest("bad".into())));
    }
}
