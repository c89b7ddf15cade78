//! What engines did for a request, so that the gateway can say how much of
//! its answer time was its own (`x-harpoon-overhead-ms`, TensorZero's
//! latency overhead) and which deployment served it
//! (`x-harpoon-deployment`): the HTTP layer runs the request inside
//! [`measured`], every engine call of [`super::ModelHandle`] adds its
//! duration, and each attempt names its deployment.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Report {
    nanos: AtomicU64,
    deployment: Mutex<Option<String>>,
}

tokio::task_local! {
    static REPORT: Arc<Report>;
}

/// What the engines did for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineReport {
    /// Time spent inside engine calls.
    pub time: Duration,
    /// The deployment (`model/name`) of the last attempt, if one was made.
    pub deployment: Option<String>,
}

/// Runs `work`, returning its output and what its engine calls did.
pub async fn measured<F: Future>(work: F) -> (F::Output, EngineReport) {
    let report = Arc::new(Report::default());
    let output = REPORT.scope(report.clone(), work).await;
    let deployment = report
        .deployment
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    (
        output,
        EngineReport {
            time: Duration::from_nanos(report.nanos.load(Ordering::Relaxed)),
            deployment,
        },
    )
}

/// Adds one engine call's duration to the measuring request, if any.
pub(crate) fn add(elapsed: Duration) {
    let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    // Outside `measured` (a background task, a test) there is nothing to add to.
    let _ = REPORT.try_with(|r| r.nanos.fetch_add(nanos, Ordering::Relaxed));
}

/// Names the deployment the measuring request is (now) being served by.
pub(crate) fn served_by(deployment: &str) {
    let _ = REPORT.try_with(|r| {
        *r.deployment.lock().unwrap_or_else(|e| e.into_inner()) = Some(deployment.to_owned());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn engine_calls_inside_a_measured_request_add_up() {
        let ((), report) = measured(async {
            add(Duration::from_millis(3));
            served_by("m/a");
            add(Duration::from_millis(4));
            served_by("m/b");
        })
        .await;
        assert_eq!(report.time, Duration::from_millis(7));
        assert_eq!(report.deployment.as_deref(), Some("m/b"));
        add(Duration::from_millis(1)); // outside: ignored, no panic
    }
}
