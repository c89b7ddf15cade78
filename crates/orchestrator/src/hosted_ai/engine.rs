//! The `hosted_ai` engine: a lease from the pool manager, then the `openai`
//! engine at the pod's endpoint. A request that fails as if the pod were
//! lost, before anything reached the client, is retried once (on the same
//! endpoint unless the panel says the pod is gone); one failure never tears
//! the pod's service down (see `PoolManager::report_failure`). A pod lost
//! mid-stream ends the stream with an error. The pod's own answers keep the pod: a 429
//! goes to the client as a 429 with `Retry-After`, a 5xx is retried once on
//! the same pod after a short back-off. Errors name the model and the cause
//! class, never the pod's endpoint. With `fallback: native` the model's
//! local engine serves when hosted·ai cannot.

use super::manager::{Lease, PoolManager};
use crate::Tier;
use crate::engine::{ChunkStream, Engine, EngineError, LoadState};
use crate::generation::{Generation, GenerationRequest};
use futures_util::StreamExt;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;

/// The engine of one hosted_ai model.
pub struct HostedAiEngine {
    manager: Arc<PoolManager>,
    model: String,
    tier: Option<Tier>,
    fallback: Option<Arc<dyn Engine>>,
    /// A pre-warming allocation is under way.
    prewarming: Arc<std::sync::atomic::AtomicBool>,
    /// When the last pre-warm failed: the next waits [`PREWARM_RETRY`].
    prewarm_failed: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
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

/// A 5xx the model server answered itself (not a gateway status that
/// means the pod is gone, see [`pod_lost`]): worth one more try after a
/// short back-off on the same pod.
fn pod_server_error(e: &EngineError) -> bool {
    matches!(e, EngineError::Upstream(m) if m.starts_with("HTTP 5")) && !pod_lost(e)
}

/// How long a failed pre-warm keeps the next from being tried.
const PREWARM_RETRY: Duration = Duration::from_secs(30);

/// Back-off before retrying a pod's own 5xx: this plus up to as much again (jitter).
const POD_RETRY_BACKOFF: Duration = Duration::from_millis(250);
/// `Retry-After` of a pod's 429 that named no wait.
pub const POD_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A failure at `model`'s pod as the client sees it: `hosted_ai: `, the
/// model and the cause class. The detail (which names the pod's endpoint,
/// admin-only) goes to the log.
fn pod_error(model: &str, e: EngineError) -> EngineError {
    let prefix = format!("hosted_ai: model {model}: ");
    match e {
        // Already worded (a manager error, or worded on an earlier pass).
        e @ (EngineError::Worded { .. } | EngineError::Busy { .. }) => e,
        e if e.to_string().starts_with("hosted_ai: ") => e,
        EngineError::RateLimited {
            message,
            retry_after,
        } => {
            tracing::warn!(model, error = %message, ?retry_after, "the pod is rate limiting");
            EngineError::RateLimited {
                message: format!("{prefix}the pod is rate limiting requests (HTTP 429)"),
                retry_after: Some(retry_after.unwrap_or(POD_RETRY_AFTER)),
            }
        }
        // The model server's own words about the request: the caller's to fix.
        EngineError::InvalidRequest(m) => EngineError::InvalidRequest(format!("{prefix}{m}")),
        EngineError::ContextLength(m) => EngineError::ContextLength(format!("{prefix}{m}")),
        kind => {
            tracing::warn!(model, error = %kind, "the pod failed");
            let class = match &kind {
                EngineError::Connect(_) => "the pod could not be reached".to_owned(),
                EngineError::Timeout(d) => format!("the pod did not answer within {d:?}"),
                EngineError::Upstream(m) if m.starts_with("HTTP ") => {
                    let status = m.split(':').next().unwrap_or(m.as_str());
                    format!("the pod answered {status}")
                }
                EngineError::Upstream(_) => {
                    "the pod's answer broke off or could not be read".to_owned()
                }
                EngineError::Unavailable(_) => "the pod's endpoint cannot be used".to_owned(),
                _ => "the pod failed while generating".to_owned(),
            };
            let message = format!("{prefix}{class}");
            // The raised error keeps its kind, not its detail.
            let kind = match kind {
                EngineError::Connect(_) => EngineError::Connect(class),
                EngineError::Upstream(_) => EngineError::Upstream(class),
                EngineError::Unavailable(_) => EngineError::Unavailable(class),
                EngineError::Failed(_) => EngineError::Failed(class),
                other => other,
            };
            EngineError::Worded {
                message,
                kind: Box::new(kind),
            }
        }
    }
}

/// Sleeps [`POD_RETRY_BACKOFF`] plus jitter.
async fn pod_backoff() {
    let jitter = rand::rng().random_range(0..=POD_RETRY_BACKOFF.as_millis() as u64);
    tokio::time::sleep(POD_RETRY_BACKOFF + Duration::from_millis(jitter)).await;
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
            prewarming: Arc::default(),
            prewarm_failed: Arc::default(),
        }
    }

    async fn acquire(&self) -> Result<Arc<Lease>, EngineError> {
        self.manager
            .acquire(&self.model, self.tier)
            .await
            .map_err(|e| super::engine_error(e, Some(&self.model)))
    }

    async fn hosted_generate(
        &self,
        request: &GenerationRequest,
    ) -> Result<Generation, EngineError> {
        let mut retried = false;
        loop {
            let lease = self.acquire().await?;
            let guard = lease.begin();
            let outcome = lease.engine().generate(request.clone()).await;
            drop(guard);
            match outcome {
                // Nothing reached the client yet, so one retry is safe: on
                // the same endpoint unless the panel says the pod is gone.
                Err(e) if pod_lost(&e) && !retried => {
                    tracing::warn!(model = %self.model, error = %e, "the pod failed; retrying once");
                    self.manager.report_failure(&lease).await;
                    retried = true;
                }
                // The model server's own 5xx: once more on the same pod, after a pause.
                Err(e) if pod_server_error(&e) && !retried => {
                    tracing::warn!(model = %self.model, error = %e, "the pod answered a server error; retrying once");
                    pod_backoff().await;
                    retried = true;
                }
                Err(e) => {
                    if pod_lost(&e) {
                        let manager = self.manager.clone();
                        tokio::spawn(async move { manager.report_failure(&lease).await });
                    }
                    return Err(pod_error(&self.model, e));
                }
                ok => {
                    lease.succeeded();
                    return ok;
                }
            }
        }
    }

    async fn hosted_stream(&self, request: &GenerationRequest) -> Result<ChunkStream, EngineError> {
        let mut retried = false;
        loop {
            let lease = self.acquire().await?;
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
                    lease.succeeded();
                    let manager = self.manager.clone();
                    let lease = lease.clone();
                    let model = self.model.clone();
                    let stream = async_stream::stream! {
                        let _guard = guard;
                        yield Ok(chunk);
                        let mut rest = rest;
                        while let Some(item) = rest.next().await {
                            match item {
                                Ok(chunk) => yield Ok(chunk),
                                Err(e) => {
                                    if pod_lost(&e) {
                                        // Mid-stream: the client has text already; end cleanly with the error.
                                        let manager = manager.clone();
                                        let lease = lease.clone();
                                        tokio::spawn(async move { manager.report_failure(&lease).await });
                                    }
                                    yield Err(pod_error(&model, e));
                                }
                            }
                        }
                    };
                    return Ok(stream.boxed());
                }
                Err(e) if pod_lost(&e) && !retried => {
                    drop(guard);
                    tracing::warn!(model = %self.model, error = %e, "the pod failed before the first token; retrying once");
                    self.manager.report_failure(&lease).await;
                    retried = true;
                }
                Err(e) if pod_server_error(&e) && !retried => {
                    drop(guard);
                    tracing::warn!(model = %self.model, error = %e, "the pod answered a server error before the first token; retrying once");
                    pod_backoff().await;
                    retried = true;
                }
                Err(e) => {
                    drop(guard);
                    if pod_lost(&e) {
                        let manager = self.manager.clone();
                        tokio::spawn(async move { manager.report_failure(&lease).await });
                    }
                    return Err(pod_error(&self.model, e));
                }
            }
        }
    }
}

/// Whether hosted·ai failed in a way the local engine may cover.
fn may_fall_back(e: &EngineError) -> bool {
    matches!(
        e.kind(),
        EngineError::Unavailable(_)
            | EngineError::Busy { .. }
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

    fn prewarm(&self) {
        use std::sync::atomic::Ordering;
        if self.prewarming.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.prewarming.store(false, Ordering::SeqCst);
            return;
        };
        let failed_at = self.prewarm_failed.clone();
        let lock = |m: &std::sync::Mutex<Option<std::time::Instant>>| {
            *m.lock().unwrap_or_else(|e| e.into_inner())
        };
        // A pool that refused (no capacity, a bad key) is not asked again on
        // every request under load.
        if lock(&failed_at).is_some_and(|at| at.elapsed() < PREWARM_RETRY) {
            self.prewarming.store(false, Ordering::SeqCst);
            return;
        }
        let (manager, model, tier) = (self.manager.clone(), self.model.clone(), self.tier);
        let prewarming = self.prewarming.clone();
        // A lease already held comes back at once; otherwise the allocation
        // runs on, and the requests that overflow later find it ready.
        runtime.spawn(async move {
            let outcome = manager.acquire(&model, tier).await;
            *failed_at.lock().unwrap_or_else(|e| e.into_inner()) = match outcome {
                Ok(_) => None,
                // Still allocating: it goes on by itself.
                Err(super::HostedAiError::StillAllocating(_)) => None,
                Err(e) => {
                    tracing::warn!(model, error = %e, "pre-warming a hosted·ai subscription");
                    Some(std::time::Instant::now())
                }
            };
            prewarming.store(false, Ordering::SeqCst);
        });
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

    #[test]
    fn a_pod_failure_names_the_model_and_the_cause_class_never_the_endpoint() {
        let leaky = [
            EngineError::Connect("http://127.0.0.1:41234/v1: error sending request for url (http://127.0.0.1:41234/v1/chat/completions)".into()),
            EngineError::Upstream("error sending request for url (http://127.0.0.1:41234/v1/chat/completions)".into()),
            EngineError::Upstream("HTTP 500 Internal Server Error: worker at 10.0.0.7:8000 died".into()),
            EngineError::Unavailable("base_url \"http://10.0.0.7:31000/v1\": bad".into()),
            EngineError::Timeout(Duration::from_secs(5)),
        ];
        for e in leaky {
            let worded = pod_error("qwen", e.clone());
            let text = worded.to_string();
            assert!(text.starts_with("hosted_ai: model qwen: "), "{text}");
            assert!(
                !text.contains("127.0.0.1") && !text.contains("10.0.0.7") && !text.contains("http"),
                "{text}"
            );
            assert_eq!(
                std::mem::discriminant(worded.kind()),
                std::mem::discriminant(&e),
                "the kind (and so the status) is kept"
            );
            assert!(!worded.kind().to_string().contains("127.0.0.1"));
        }
        assert!(
            pod_error(
                "qwen",
                EngineError::Upstream("HTTP 500 Internal Server Error: x".into())
            )
            .to_string()
            .ends_with("the pod answered HTTP 500 Internal Server Error")
        );
        match pod_error(
            "qwen",
            EngineError::RateLimited {
                message: "HTTP 429: slow".into(),
                retry_after: None,
            },
        ) {
            EngineError::RateLimited {
                message,
                retry_after,
            } => {
                assert!(message.starts_with("hosted_ai: model qwen: "), "{message}");
                assert_eq!(retry_after, Some(POD_RETRY_AFTER));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_the_pod_s_own_5xx_is_retried_on_the_same_pod() {
        assert!(pod_server_error(&EngineError::Upstream(
            "HTTP 500 Internal Server Error: x".into()
        )));
        assert!(!pod_server_error(&EngineError::Upstream(
            "HTTP 503 Service Unavailable: x".into()
        )));
        assert!(!pod_server_error(&EngineError::Upstream(
            "HTTP 404 Not Found: x".into()
        )));
        assert!(!pod_server_error(&EngineError::RateLimited {
            message: String::new(),
            retry_after: None
        }));
    }
}
