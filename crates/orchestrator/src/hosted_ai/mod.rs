//! hosted·ai GPUaaS: the user-panel client, the pool manager that subscribes,
//! serves and releases, the `hosted_ai` engine, and usage and cost metering.
//! See `docs/hosted-ai.md`.

pub mod client;
pub mod engine;
pub mod manager;
pub mod meter;
pub mod settings;

pub use client::{BreakerState, Client, ClientConfig, HostedAiError};
pub use engine::HostedAiEngine;
pub use manager::{ModelSlotView, PoolManager, PoolsSnapshot, SubscriptionView};
pub use meter::{Meter, ModelUsage};

use std::sync::Mutex;

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

impl From<HostedAiError> for crate::engine::EngineError {
    fn from(e: HostedAiError) -> Self {
        use crate::engine::EngineError as E;
        let message = format!("hosted_ai: {e}");
        match e {
            HostedAiError::Timeout(d) => E::Timeout(d),
            HostedAiError::Transient(_) => E::Connect(message),
            HostedAiError::NoCapacity(_)
            | HostedAiError::InsufficientResources { .. }
            | HostedAiError::CircuitOpen { .. }
            | HostedAiError::Busy(_)
            | HostedAiError::Unavailable(_) => E::Unavailable(message),
            HostedAiError::AlreadySubscribed { .. }
            | HostedAiError::Unauthorized(_)
            | HostedAiError::Forbidden(_)
            | HostedAiError::NotFound(_)
            | HostedAiError::Rejected { .. }
            | HostedAiError::BadResponse(_) => E::Upstream(message),
        }
    }
}
