//! The `cluster` section: what replicas share and how long their leases last.

use serde::{Deserialize, Serialize};

/// What admission does when the shared quota store cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRedisError {
    /// Refuse the request with 503 naming the store (the default): quotas
    /// are never silently lifted.
    #[default]
    Closed,
    /// Admit under this replica's own limits (the single-process counters),
    /// logging and counting each time: per-replica limits, never none.
    Open,
}

/// The `cluster` section: replicas sharing quotas through Redis or Valkey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// `redis://host:port[/db]` (or `rediss://`), env `REDIS_URL`: request
    /// rates, concurrency slots and daily token budgets are counted there,
    /// once for every replica; unset, each process counts its own.
    pub redis_url: Option<orchestrator::Secret>,
    /// `closed` (503 while the store is unreachable) or `open` (this
    /// replica's own limits meanwhile).
    pub on_redis_error: OnRedisError,
    /// Seconds a replica's leases last without renewal (renewed every third
    /// of it): its heartbeat and duties on PostgreSQL (the hosted·ai pool
    /// manager's ownership, its running strikes) and its concurrency slots
    /// and budget reservations in the shared store. A dead replica's duties
    /// pass to another, and its slots come back, after at most this long.
    pub lease_secs: u64,
    /// Milliseconds one command to the store may take before the store
    /// counts as unreachable (admission waits on it).
    pub redis_timeout_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            on_redis_error: OnRedisError::Closed,
            lease_secs: 10,
            redis_timeout_ms: 1_000,
        }
    }
}
