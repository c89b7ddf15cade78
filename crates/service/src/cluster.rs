//! This replica's membership in a cluster of replicas on one PostgreSQL:
//! its id, its heartbeat lease, and the database-backed directory through
//! which one replica at a time owns the hosted·ai pool manager. On SQLite
//! there is one replica and none of this runs.

use crate::storage::{Backend, Storage, leases::REPLICA_PREFIX};
use orchestrator::hosted_ai::{
    CapacityRequest, ClusterConfig, DirectoryError, EndpointRecord, PoolDirectory,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// This replica in the cluster.
#[derive(Debug, Clone)]
pub struct Membership {
    storage: Storage,
    replica_id: String,
    lease: Duration,
    /// Set by [`Self::leave`]: the heartbeat stops beating.
    left: Arc<AtomicBool>,
}

impl Membership {
    /// Joins when the database is PostgreSQL (several replicas may share it):
    /// starts the heartbeat, renewed every third of `lease`, for as long as
    /// the process runs.
    pub fn join(storage: &Storage, lease: Duration) -> Option<Self> {
        if storage.backend() != Backend::Postgres {
            return None;
        }
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "replica".to_owned());
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let replica_id = format!("{host}-{}-{}", std::process::id(), &nonce[..8]);
        let membership = Self {
            storage: storage.clone(),
            replica_id,
            lease,
            left: Arc::new(AtomicBool::new(false)),
        };
        let beating = membership.clone();
        tokio::spawn(async move {
            let period = (beating.lease / 3).max(Duration::from_millis(100));
            while !beating.left.load(Ordering::Acquire) {
                if let Err(e) = beating
                    .storage
                    .claim_lease(
                        &beating.heartbeat_name(),
                        &beating.replica_id,
                        beating.lease,
                    )
                    .await
                {
                    tracing::warn!(error = %e, "cannot renew this replica's heartbeat");
                }
                if beating.left.load(Ordering::Acquire) {
                    // Left while this beat was on its way: take it back.
                    beating.end_heartbeat().await;
                    return;
                }
                tokio::time::sleep(period).await;
            }
        });
        tracing::info!(replica = %membership.replica_id, lease_secs = lease.as_secs_f64(), "joined the cluster of replicas on this database");
        Some(membership)
    }

    /// This replica's id.
    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    /// Owner leases last this long without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn heartbeat_name(&self) -> String {
        format!("{REPLICA_PREFIX}{}", self.replica_id)
    }

    /// Ends the heartbeat as shutdown begins, so the others stop counting
    /// this replica at once (replicas stopped together then see each other
    /// go, and the last hosted·ai owner releases instead of handing over).
    pub async fn leave(&self) {
        self.left.store(true, Ordering::Release);
        self.end_heartbeat().await;
    }

    async fn end_heartbeat(&self) {
        if let Err(e) = self
            .storage
            .release_lease(&self.heartbeat_name(), &self.replica_id)
            .await
        {
            tracing::warn!(error = %e, "could not end this replica's heartbeat; it lapses by itself");
        }
    }

    /// The directory through which replicas share `team`'s hosted·ai capacity.
    pub fn hosted_ai_directory(&self, team: &str) -> (Arc<dyn PoolDirectory>, ClusterConfig) {
        let directory = HostedAiDirectory {
            storage: self.storage.clone(),
            team: team.to_owned(),
        };
        let config = ClusterConfig {
            replica_id: self.replica_id.clone(),
            lease: self.lease,
        };
        (Arc::new(directory), config)
    }
}

/// One team's hosted·ai directory over the database.
#[derive(Debug)]
struct HostedAiDirectory {
    storage: Storage,
    team: String,
}

impl HostedAiDirectory {
    fn lease_name(&self) -> String {
        format!("hosted_ai:{}", self.team)
    }
}

fn directory_error(e: crate::storage::StorageError) -> DirectoryError {
    DirectoryError(e.to_string())
}

#[async_trait::async_trait]
impl PoolDirectory for HostedAiDirectory {
    async fn claim(&self, replica: &str, ttl: Duration) -> Result<bool, DirectoryError> {
        self.storage
            .claim_lease(&self.lease_name(), replica, ttl)
            .await
            .map_err(directory_error)
    }

    async fn resign(&self, replica: &str) -> Result<(), DirectoryError> {
        self.storage
            .release_lease(&self.lease_name(), replica)
            .await
            .map_err(directory_error)
    }

    async fn others_alive(&self, replica: &str) -> Result<bool, DirectoryError> {
        self.storage
            .other_replicas_alive(replica)
            .await
            .map_err(directory_error)
    }

    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, DirectoryError> {
        self.storage
            .hosted_endpoints(&self.team)
            .await
            .map_err(directory_error)
    }

    async fn publish(&self, record: &EndpointRecord) -> Result<(), DirectoryError> {
        self.storage
            .publish_hosted_endpoint(&self.team, record)
            .await
            .map_err(directory_error)
    }

    async fn withdraw(&self, model: &str, subscription: &str) -> Result<(), DirectoryError> {
        self.storage
            .withdraw_hosted_endpoint(&self.team, model, subscription)
            .await
            .map_err(directory_error)
    }

    async fn touch(&self, model: &str) -> Result<(), DirectoryError> {
        self.storage
            .touch_hosted_endpoint(&self.team, model)
            .await
            .map_err(directory_error)
    }

    async fn ask(
        &self,
        model: &str,
        vgpus: u32,
        failed_subscription: Option<&str>,
    ) -> Result<(), DirectoryError> {
        self.storage
            .ask_hosted_capacity(&self.team, model, vgpus, failed_subscription)
            .await
            .map_err(directory_error)
    }

    async fn requests(&self) -> Result<Vec<CapacityRequest>, DirectoryError> {
        self.storage
            .hosted_requests(&self.team, None)
            .await
            .map_err(directory_error)
    }

    async fn request(&self, model: &str) -> Result<Option<CapacityRequest>, DirectoryError> {
        Ok(self
            .storage
            .hosted_requests(&self.team, Some(model))
            .await
            .map_err(directory_error)?
            .into_iter()
            .next())
    }

    async fn answer(&self, model: &str, error: Option<&str>) -> Result<(), DirectoryError> {
        self.storage
            .answer_hosted_request(&self.team, model, error)
            .await
            .map_err(directory_error)
    }

    async fn add_usage(
        &self,
        model: &str,
        pool: &str,
        vgpu_seconds: f64,
        cost: f64,
    ) -> Result<(), DirectoryError> {
        self.storage
            .add_hosted_usage(&self.team, model, pool, vgpu_seconds, cost)
            .await
            .map_err(directory_error)
    }
}
