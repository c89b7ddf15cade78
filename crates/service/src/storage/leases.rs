//! What replicas on one database coordinate through: named leases (each
//! replica's heartbeat, the hosted·ai pool manager's owner), and the hosted·ai
//! endpoints, requests for capacity and usage the owner shares. Expiry is
//! judged by the database's clock, so replicas' clocks need not agree.

use super::{Backend, Storage, StorageError};
use orchestrator::hosted_ai::{CapacityRequest, EndpointRecord};
use sqlx::Row;
use std::time::Duration;

/// Prefix of each replica's heartbeat lease.
pub const REPLICA_PREFIX: &str = "replica:";

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Storage {
    /// The database's "now" in Unix milliseconds, as SQL.
    fn now_sql(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
        }
    }

    /// Takes or renews lease `name` for `holder` for `ttl`: true when
    /// `holder` holds it afterwards (it was free, expired, or already its).
    pub async fn claim_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StorageError> {
        let now = self.now_sql();
        let sql = format!(
            "INSERT INTO cluster_leases (name, owner, expires_at, updated_at) \
             VALUES ($1, $2, {now} + $3, {now}) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
               expires_at = excluded.expires_at, updated_at = excluded.updated_at \
             WHERE cluster_leases.owner = excluded.owner \
                OR cluster_leases.expires_at < excluded.updated_at \
             RETURNING owner"
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .bind(holder)
            .bind(millis(ttl))
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Gives lease `name` up if `holder` holds it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM cluster_leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Whether a replica other than `replica` has a current heartbeat.
    pub async fn other_replicas_alive(&self, replica: &str) -> Result<bool, StorageError> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM cluster_leases \
             WHERE name LIKE $1 AND owner <> $2 AND expires_at > {}",
            self.now_sql()
        );
        let n: i64 = sqlx::query(&sql)
            .bind(format!("{REPLICA_PREFIX}%"))
            .bind(replica)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        Ok(n > 0)
    }

    /// The hosted·ai endpoints published for `team`.
    pub async fn hosted_endpoints(&self, team: &str) -> Result<Vec<EndpointRecord>, StorageError> {
        let sql = format!(
            "SELECT model, pool_id, subscription_id, service_id, vgpus, hourly_cost, endpoint, \
               {} - last_used_at AS idle_ms \
             FROM hosted_ai_endpoints WHERE team_id = $1",
            self.now_sql()
        );
        let rows = sqlx::query(&sql).bind(team).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(EndpointRecord {
                    model: r.try_get("model")?,
                    pool_id: r.try_get("pool_id")?,
                    subscription_id: r.try_get("subscription_id")?,
                    service_id: r.try_get("service_id")?,
                    vgpus: u32::try_from(r.try_get::<i64, _>("vgpus")?).unwrap_or(0),
                    hourly_cost: r.try_get("hourly_cost")?,
                    endpoint: r.try_get("endpoint")?,
                    idle_ms: u64::try_from(r.try_get::<i64, _>("idle_ms")?).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Publishes (or replaces) `team`'s endpoint for a model, used now.
    pub async fn publish_hosted_endpoint(
        &self,
        team: &str,
        e: &EndpointRecord,
    ) -> Result<(), StorageError> {
        let now = self.now_sql();
        let sql = format!(
            "INSERT INTO hosted_ai_endpoints (team_id, model, pool_id, subscription_id, \
               service_id, vgpus, hourly_cost, endpoint, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {now}, {now}) \
             ON CONFLICT (team_id, model) DO UPDATE SET pool_id = excluded.pool_id, \
               subscription_id = excluded.subscription_id, service_id = excluded.service_id, \
               vgpus = excluded.vgpus, hourly_cost = excluded.hourly_cost, \
               endpoint = excluded.endpoint, last_used_at = excluded.last_used_at"
        );
        sqlx::query(&sql)
            .bind(team)
            .bind(&e.model)
            .bind(&e.pool_id)
            .bind(&e.subscription_id)
            .bind(&e.service_id)
            .bind(i64::from(e.vgpus))
            .bind(e.hourly_cost)
            .bind(&e.endpoint)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Withdraws `team`'s endpoint for `model` if it is still `subscription`'s.
    pub async fn withdraw_hosted_endpoint(
        &self,
        team: &str,
        model: &str,
        subscription: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "DELETE FROM hosted_ai_endpoints \
             WHERE team_id = $1 AND model = $2 AND subscription_id = $3",
        )
        .bind(team)
        .bind(model)
        .bind(subscription)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks `team`'s endpoint for `model` used now.
    pub async fn touch_hosted_endpoint(&self, team: &str, model: &str) -> Result<(), StorageError> {
        let sql = format!(
            "UPDATE hosted_ai_endpoints SET last_used_at = {} WHERE team_id = $1 AND model = $2",
            self.now_sql()
        );
        sqlx::query(&sql)
            .bind(team)
            .bind(model)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Asks `team`'s owner for capacity for `model`, replacing an earlier answer.
    pub async fn ask_hosted_capacity(
        &self,
        team: &str,
        model: &str,
        vgpus: u32,
        failed_subscription: Option<&str>,
    ) -> Result<(), StorageError> {
        let sql = format!(
            "INSERT INTO hosted_ai_requests (team_id, model, vgpus, failed_subscription, error, requested_at) \
             VALUES ($1, $2, $3, $4, NULL, {}) \
             ON CONFLICT (team_id, model) DO UPDATE SET vgpus = excluded.vgpus, \
               failed_subscription = excluded.failed_subscription, error = NULL, \
               requested_at = excluded.requested_at",
            self.now_sql()
        );
        sqlx::query(&sql)
            .bind(team)
            .bind(model)
            .bind(i64::from(vgpus))
            .bind(failed_subscription)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// `team`'s requests for capacity: `model`'s as it stands, or (no model) those not answered yet.
    pub async fn hosted_requests(
        &self,
        team: &str,
        model: Option<&str>,
    ) -> Result<Vec<CapacityRequest>, StorageError> {
        let rows = match model {
            Some(model) => sqlx::query(
                "SELECT model, vgpus, failed_subscription, error FROM hosted_ai_requests \
                 WHERE team_id = $1 AND model = $2",
            )
            .bind(team)
            .bind(model),
            None => sqlx::query(
                "SELECT model, vgpus, failed_subscription, error FROM hosted_ai_requests \
                 WHERE team_id = $1 AND error IS NULL",
            )
            .bind(team),
        }
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CapacityRequest {
                    model: r.try_get("model")?,
                    vgpus: u32::try_from(r.try_get::<i64, _>("vgpus")?).unwrap_or(1),
                    failed_subscription: r.try_get("failed_subscription")?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }

    /// Answers `team`'s request for `model`: removed when served, else the error kept for the asker.
    pub async fn answer_hosted_request(
        &self,
        team: &str,
        model: &str,
        error: Option<&str>,
    ) -> Result<(), StorageError> {
        let query = match error {
            None => sqlx::query("DELETE FROM hosted_ai_requests WHERE team_id = $1 AND model = $2")
                .bind(team)
                .bind(model),
            Some(error) => sqlx::query(
                "UPDATE hosted_ai_requests SET error = $3 WHERE team_id = $1 AND model = $2",
            )
            .bind(team)
            .bind(model)
            .bind(error),
        };
        query.execute(self.pool()).await?;
        Ok(())
    }

    /// Adds held vGPU-seconds and cost to `team`'s shared hosted·ai usage.
    pub async fn add_hosted_usage(
        &self,
        team: &str,
        model: &str,
        pool: &str,
        vgpu_seconds: f64,
        cost: f64,
    ) -> Result<(), StorageError> {
        let sql = format!(
            "INSERT INTO hosted_ai_usage (team_id, model, pool_id, vgpu_seconds, estimated_cost, updated_at) \
             VALUES ($1, $2, $3, $4, $5, {}) \
             ON CONFLICT (team_id, model, pool_id) DO UPDATE SET \
               vgpu_seconds = hosted_ai_usage.vgpu_seconds + excluded.vgpu_seconds, \
               estimated_cost = hosted_ai_usage.estimated_cost + excluded.estimated_cost, \
               updated_at = excluded.updated_at",
            self.now_sql()
        );
        sqlx::query(&sql)
            .bind(team)
            .bind(model)
            .bind(pool)
            .bind(vgpu_seconds)
            .bind(cost)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
