//! Replicas sharing one team's hosted·ai subscriptions. One replica at a
//! time, elected through a lease kept in a [`PoolDirectory`] (the service's
//! PostgreSQL), does the pool manager's paid work: subscribe, repair, idle
//! release, release at shutdown. Every replica serves through the endpoints
//! the owner publishes there, and a replica that finds none asks the owner
//! for capacity through the directory; it never subscribes itself. An owner
//! that dies stops renewing its lease; the next replica to claim it adopts the
//! published subscriptions (checked against hosted·ai's own listing) instead
//! of subscribing again.
//!
//! The orchestrator only defines what it needs from the directory; the
//! service implements it over its database (no sqlx types here).

use std::time::Duration;

/// Why the directory could not answer (the database was unreachable, say).
#[derive(Debug, Clone, thiserror::Error)]
#[error("hosted·ai cluster directory: {0}")]
pub struct DirectoryError(pub String);

/// An endpoint the owner published for a model.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRecord {
    /// Model served.
    pub model: String,
    /// Pool.
    pub pool_id: String,
    /// Subscription.
    pub subscription_id: String,
    /// Exposed service, deleted at release.
    pub service_id: Option<String>,
    /// vGPUs held.
    pub vgpus: u32,
    /// Estimated hourly cost.
    pub hourly_cost: f64,
    /// OpenAI API root of the pod, ending in `/v1`.
    pub endpoint: String,
    /// Milliseconds since any replica last used it, by the directory's clock.
    pub idle_ms: u64,
}

/// A replica's request for capacity for a model.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityRequest {
    /// Model wanted.
    pub model: String,
    /// vGPUs its tier needs.
    pub vgpus: u32,
    /// A subscription the asker found failing (the owner repairs or replaces it).
    pub failed_subscription: Option<String>,
    /// Why the owner could not provide it, once it has tried.
    pub error: Option<String>,
}

/// What replicas share about one team's hosted·ai capacity: who owns the
/// pool manager, the endpoints it serves, requests for capacity, and usage.
#[async_trait::async_trait]
pub trait PoolDirectory: Send + Sync + std::fmt::Debug {
    /// Takes or renews the owner lease for `ttl`; true while `replica` holds it.
    async fn claim(&self, replica: &str, ttl: Duration) -> Result<bool, DirectoryError>;
    /// Gives the owner lease up at once (a clean handover at shutdown).
    async fn resign(&self, replica: &str) -> Result<(), DirectoryError>;
    /// Whether a replica other than `replica` is alive (its heartbeat current).
    async fn others_alive(&self, replica: &str) -> Result<bool, DirectoryError>;
    /// The endpoints published.
    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, DirectoryError>;
    /// Publishes (or replaces) a model's endpoint, marking it used now.
    async fn publish(&self, record: &EndpointRecord) -> Result<(), DirectoryError>;
    /// Withdraws a model's endpoint if it is still `subscription`'s.
    async fn withdraw(&self, model: &str, subscription: &str) -> Result<(), DirectoryError>;
    /// Marks a model's endpoint as used now (idle release counts from there).
    async fn touch(&self, model: &str) -> Result<(), DirectoryError>;
    /// Asks the owner for capacity for `model` (replacing an earlier answer).
    async fn ask(
        &self,
        model: &str,
        vgpus: u32,
        failed_subscription: Option<&str>,
    ) -> Result<(), DirectoryError>;
    /// Requests not answered yet, for the owner.
    async fn requests(&self) -> Result<Vec<CapacityRequest>, DirectoryError>;
    /// A model's request as it stands (answered with an error, or pending), for the asker.
    async fn request(&self, model: &str) -> Result<Option<CapacityRequest>, DirectoryError>;
    /// Answers a request: done (removed) or failed with `error`.
    async fn answer(&self, model: &str, error: Option<&str>) -> Result<(), DirectoryError>;
    /// Adds held vGPU-seconds and their estimated cost to the shared usage.
    async fn add_usage(
        &self,
        model: &str,
        pool: &str,
        vgpu_seconds: f64,
        cost: f64,
    ) -> Result<(), DirectoryError>;
}

/// How a replica takes part in its team's cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This replica's id (unique among live replicas).
    pub replica_id: String,
    /// How long an owner lease lasts without renewal; renewed every third of it.
    pub lease: Duration,
}

/// Whether this replica owns the team's pool manager, as the snapshot shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterView {
    /// This replica.
    pub replica_id: String,
    /// Whether it holds the owner lease now.
    pub owner: bool,
    /// Owner lease length in seconds.
    pub lease_secs: f64,
}
