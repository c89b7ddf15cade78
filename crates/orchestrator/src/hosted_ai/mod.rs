//! hosted·ai GPUaaS: the user-panel client, the pool manager that subscribes,
//! serves and releases, the `hosted_ai` engine, and usage and cost metering.
//! See `docs/hosted-ai.md`.

pub mod client;
pub mod cluster;
pub mod engine;
pub mod manager;
pub mod meter;
pub mod settings;

pub use client::{BreakerState, Client, ClientConfig, HostedAiError};
pub use cluster::{
    CapacityRequest, ClusterConfig, ClusterView, DirectoryError, EndpointRecord, PoolDirectory,
};
pub use engine::HostedAiEngine;
pub use manager::{ModelSlotView, PoolManager, PoolsSnapshot, SubscriptionView};
pub use meter::{Meter, ModelUsage};

use crate::engine::EngineError;
use std::sync::Mutex;
use std::time::Duration;

/// Most distinct pool labels on metrics; later pools report as `other`.
const MAX_POOL_LABELS: usize = 32;

/// A bounded metrics label for a pool id.
pub fn pool_label(pool: &str) -> String {
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.iter().any(|p| p == pool) {
        return pool.to_owned();
    }
    if seen.len() < MAX_POOL_LABELS {
        seen.push(pool.to_owned());
        return pool.to_owned();
    }
    "other".to_owned()
}

/// `Retry-After` when no allowed pool has room (full, or held by our other models).
pub const CAPACITY_RETRY_AFTER: Duration = Duration::from_secs(10);
/// `Retry-After` when an allocation outlasted the request's wait.
pub const ALLOCATING_RETRY_AFTER: Duration = Duration::from_secs(5);
/// `Retry-After` when too many requests already wait for an allocation.
pub const WAITERS_RETRY_AFTER: Duration = Duration::from_secs(2);

/// A manager error as a client sees it: `hosted_ai: ` (and the model, when
/// known) before the reason; capacity that may come back (a full pool, an
/// open breaker, too many waiting) is 503 with `Retry-After`.
pub fn engine_error(e: HostedAiError, model: Option<&str>) -> EngineError {
    let message = match model {
        Some(model) => format!("hosted_ai: model {model}: {e}"),
        None => format!("hosted_ai: {e}"),
    };
    let worded = |kind: EngineError| EngineError::Worded {
        message: message.clone(),
        kind: Box::new(kind),
    };
    match e {
        HostedAiError::Timeout(d) => worded(EngineError::Timeout(d)),
        HostedAiError::Transient(_) => worded(EngineError::Connect(message.clone())),
        HostedAiError::NoCapacity(_) | HostedAiError::InsufficientResources { .. } => {
            EngineError::Busy {
                message,
                retry_after: CAPACITY_RETRY_AFTER,
            }
        }
        HostedAiError::CircuitOpen { retry_in, .. } => EngineError::Busy {
            message,
            retry_after: retry_in.max(Duration::from_secs(1)),
        },
        HostedAiError::Busy(_) => EngineError::Busy {
            message,
            retry_after: WAITERS_RETRY_AFTER,
        },
        HostedAiError::StillAllocating(_) => EngineError::Busy {
            message,
            retry_after: ALLOCATING_RETRY_AFTER,
        },
        HostedAiError::Unavailable(_) => EngineError::Unavailable(message),
        HostedAiError::AlreadySubscribed { .. }
        | HostedAiError::Unauthorized(_)
        | HostedAiError::Forbidden(_)
        | HostedAiError::NotFound(_)
        | HostedAiError::Rejected { .. }
        | HostedAiError::BadResponse(_) => worded(EngineError::Upstream(message.clone())),
    }
}

impl From<HostedAiError> for EngineError {
    fn from(e: HostedAiError) -> Self {
        engine_error(e, None)
    }
}
