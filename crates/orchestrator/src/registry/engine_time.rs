//! Time a request spends waiting on engines, so that the gateway can say how
//! much of its answer time was its own (`x-harpoon-overhead-ms`, TensorZero's
//! latency overhead): the HTTP layer runs the request inside [`measured`],
//! and every engine call of [`super::ModelHandle`] adds its duration.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

tokio::task_local! {
    static ENGINE_TIME: Arc<AtomicU64>;
}

/// Runs `work`, returning its output and the time its engine calls took.
pub async fn measured<F: Future>(work: F) -> (F::Output, Duration) {
    let total = Arc::new(AtomicU64::new(0));
    let output = ENGINE_TIME.scope(total.clone(), work).await;
    (output, Duration::from_nanos(total.load(Ordering::Relaxed)))
}

/// Adds one engine call's duration to the measuring request, if any.
pub(crate) fn add(elapsed: Duration) {
    let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    // Outside `measured` (a background task, a test) there is nothing to add to.
    let _ = ENGINE_TIME.try_with(|total| total.fetch_add(nanos, Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn engine_calls_inside_a_measured_request_add_up() {
        let ((), took) = measured(async {
            add(Duration::from_millis(3));
            add(Duration::from_millis(4));
        })
        .await;
        assert_eq!(took, Duration::from_millis(7));
        add(Duration::from_millis(1)); // outside: ignored, no panic
    }
}
