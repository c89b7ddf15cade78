//! The bridge's queries over the service's pool (SQLite or PostgreSQL):
//! portable SQL, `$n` placeholders, JSON kept as TEXT.

use crate::error::BridgeError;
use crate::types::{
    Covenant, HarmonyReview, NewCable, Page, Paged, Phase, Repo, RepoRun, Role, StrikeStatus,
};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A new random id with a readable kind prefix.
pub fn new_id(kind: &str) -> String {
    format!("{kind}_{}", uuid::Uuid::new_v4().simple())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.message().contains("UNIQUE constraint failed")
                || db.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}

/// What a strike was asked to do, frozen when it starts so a resume after a
/// restart does the same work.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The covenant as it was.
    pub covenant: Covenant,
    /// Participants, anchor first.
    pub repos: Vec<PlannedRepo>,
    /// Whether the model writes the change.
    pub generate: bool,
}

/// One participant of a plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedRepo {
    /// The repository as registered.
    pub repo: Repo,
    /// Anchor or agnos.
    pub role: Role,
    /// Its given change, if any.
    pub change: Option<crate::types::RepoChange>,
    /// Repositories it is cabled to, for the covenant file.
    pub cables: Vec<String>,
}

/// Storage of the bridge.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// The database's "now" in Unix milliseconds, as SQL: strike leases are
    /// judged by one clock, whatever the replicas' clocks say.
    now_sql: &'static str,
}

/// Who runs a strike: a replica id and how long its lease lasts unrenewed.
#[derive(Debug, Clone)]
pub struct StrikeOwner {
    /// The replica.
    pub replica: String,
    /// Lease length.
    pub lease: std::time::Duration,
}

impl StrikeOwner {
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }
}

impl Store {
    /// Wraps a migrated pool.
    pub fn new(pool: AnyPool) -> Self {
        let postgres = pool
            .connect_options()
            .database_url
            .scheme()
            .starts_with("postgres");
        let now_sql = if postgres {
            "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
        } else {
            "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
        };
        Self { pool, now_sql }
    }

    /// Saves a new covenant.
    pub async fn insert_covenant(&self, tenant: &str, c: &Covenant) -> Result<(), BridgeError> {
        sqlx::query(
            "INSERT INTO covenants (id, tenant_id, body, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&c.covenant_id)
        .bind(tenant)
        .bind(serde_json::to_string(c)?)
        .bind(c.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A covenant of the tenant.
    pub async fn covenant(&self, tenant: &str, id: &str) -> Result<Covenant, BridgeError> {
        let row = sqlx::query("SELECT body FROM covenants WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| BridgeError::NotFound(format!("covenant {id:?}")))?;
        Ok(serde_json::from_str(&row.try_get::<String, _>("body")?)?)
    }

    /// A page of the tenant's covenants, newest first.
    pub async fn covenants(
        &self,
        tenant: &str,
        page: Page,
    ) -> Result<Paged<Covenant>, BridgeError> {
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM covenants WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let rows = sqlx::query(
            "SELECT body FROM covenants WHERE tenant_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(tenant)
        .bind(i64::from(page.limit))
        .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|r| Ok(serde_json::from_str(&r.try_get::<String, _>("body")?)?))
            .collect::<Result<Vec<Covenant>, BridgeError>>()?;
        let total = u64::try_from(total).unwrap_or(0);
        let next = page.offset + items.len() as u64;
        Ok(Paged {
            items,
            total,
            limit: page.limit,
            offset: page.offset,
            next_offset: (next < total).then_some(next),
        })
    }

    /// Deletes a covenant and its review; strikes keep their own copy.
    pub async fn delete_covenant(&self, tenant: &str, id: &str) -> Result<(), BridgeError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM harmony_reviews WHERE covenant_id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM covenants WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(BridgeError::NotFound(format!("covenant {id:?}")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Registers a repository; a taken name is a conflict.
    pub async fn insert_repo(&self, tenant: &str, r: &Repo) -> Result<(), BridgeError> {
        let done = sqlx::query(
            "INSERT INTO bridge_repos (tenant_id, name, url, default_branch, github_repo, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant)
        .bind(&r.name)
        .bind(&r.url)
        .bind(&r.default_branch)
        .bind(r.github_repo.as_deref())
        .bind(r.created_at)
        .execute(&self.pool)
        .await;
        match done {
            Err(e) if is_unique_violation(&e) => Err(BridgeError::Conflict(format!(
                "a repository named {:?} is registered",
                r.name
            ))),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    /// Every repository of the tenant, by name.
    pub async fn repos(&self, tenant: &str) -> Result<Vec<Repo>, BridgeError> {
        let rows = sqlx::query(
            "SELECT name, url, default_branch, github_repo, created_at FROM bridge_repos \
             WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Repo {
                    name: r.try_get("name")?,
                    url: r.try_get("url")?,
                    default_branch: r.try_get("default_branch")?,
                    github_repo: r.try_get("github_repo")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Removes a repository registration (its declared cables too).
    pub async fn delete_repo(&self, tenant: &str, name: &str) -> Result<(), BridgeError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM declared_cables WHERE tenant_id = $1 AND (from_repo = $2 OR to_repo = $2)",
        )
        .bind(tenant)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM bridge_repos WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(BridgeError::NotFound(format!(
                "repository {}",
                crate::validate::shown(name)
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Declares (or re-weights) a cable.
    pub async fn upsert_cable(
        &self,
        tenant: &str,
        c: &NewCable,
        strength: f64,
    ) -> Result<(), BridgeError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM declared_cables WHERE tenant_id = $1 AND from_repo = $2 AND to_repo = $3",
        )
        .bind(tenant)
        .bind(&c.from)
        .bind(&c.to)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO declared_cables (tenant_id, from_repo, to_repo, strength, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant)
        .bind(&c.from)
        .bind(&c.to)
        .bind(strength)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Declared cables of the tenant: (from, to, strength).
    pub async fn declared_cables(
        &self,
        tenant: &str,
    ) -> Result<Vec<(String, String, f64)>, BridgeError> {
        let rows = sqlx::query(
            "SELECT from_repo, to_repo, strength FROM declared_cables WHERE tenant_id = $1 \
             ORDER BY from_repo, to_repo",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("from_repo")?,
                    r.try_get("to_repo")?,
                    r.try_get("strength")?,
                ))
            })
            .collect()
    }

    /// Stores (replacing) the review of a covenant.
    pub async fn save_review(
        &self,
        tenant: &str,
        review: &HarmonyReview,
    ) -> Result<(), BridgeError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM harmony_reviews WHERE covenant_id = $1")
            .bind(&review.covenant_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO harmony_reviews (covenant_id, tenant_id, body, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&review.covenant_id)
        .bind(tenant)
        .bind(serde_json::to_string(review)?)
        .bind(review.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored review of a covenant, if any.
    pub async fn review(
        &self,
        tenant: &str,
        covenant_id: &str,
    ) -> Result<Option<HarmonyReview>, BridgeError> {
        let row = sqlx::query(
            "SELECT body FROM harmony_reviews WHERE covenant_id = $1 AND tenant_id = $2",
        )
        .bind(covenant_id)
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(serde_json::from_str(
                &r.try_get::<String, _>("body")?,
            )?)),
        }
    }

    /// Saves a new strike with its repositories queued.
    pub async fn insert_strike(
        &self,
        tenant: &str,
        run_id: &str,
        plan: &Plan,
        branch: &str,
        owner: Option<&StrikeOwner>,
    ) -> Result<(), BridgeError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO strikes (id, tenant_id, covenant_id, state, plan, created_at, updated_at, \
               owner, lease_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, CASE WHEN $7 IS NULL THEN NULL ELSE {} + $8 END)",
            self.now_sql
        );
        sqlx::query(&sql)
            .bind(run_id)
            .bind(tenant)
            .bind(&plan.covenant.covenant_id)
            .bind("running")
            .bind(serde_json::to_string(plan)?)
            .bind(now)
            .bind(owner.map(|o| o.replica.clone()))
            .bind(owner.map_or(0, StrikeOwner::lease_ms))
            .execute(&mut *tx)
            .await?;
        for (i, p) in plan.repos.iter().enumerate() {
            sqlx::query(
                "INSERT INTO strike_repos (strike_id, repo, position, role, phase, branch, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(run_id)
            .bind(&p.repo.name)
            .bind(i as i64)
            .bind(role_str(p.role))
            .bind(Phase::Queued.as_str())
            .bind(branch)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A strike's plan and tenant.
    pub async fn plan(&self, run_id: &str) -> Result<(String, Plan), BridgeError> {
        let row = sqlx::query("SELECT tenant_id, plan FROM strikes WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| BridgeError::NotFound(format!("strike {run_id:?}")))?;
        Ok((
            row.try_get("tenant_id")?,
            serde_json::from_str(&row.try_get::<String, _>("plan")?)?,
        ))
    }

    /// A strike of the tenant with its repositories.
    pub async fn strike(&self, tenant: &str, run_id: &str) -> Result<StrikeStatus, BridgeError> {
        let row = sqlx::query(
            "SELECT covenant_id, state, plan, created_at, updated_at FROM strikes \
             WHERE id = $1 AND tenant_id = $2",
        )
        .bind(run_id)
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| BridgeError::NotFound(format!("strike {run_id:?}")))?;
        let plan: Plan = serde_json::from_str(&row.try_get::<String, _>("plan")?)?;
        Ok(StrikeStatus {
            run_id: run_id.to_owned(),
            covenant_id: row.try_get("covenant_id")?,
            state: row.try_get("state")?,
            generate: plan.generate,
            repos: self.strike_repos(run_id).await?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// Strikes of one tenant (or of all) still running or started since
    /// `since` (Unix ms), newest first, at most `limit`, with their repositories.
    pub async fn recent_strikes(
        &self,
        tenant: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<StrikeStatus>, BridgeError> {
        let filter = if tenant.is_some() {
            " AND tenant_id = $3"
        } else {
            ""
        };
        let sql = format!(
            "SELECT id, tenant_id FROM strikes WHERE (created_at >= $1 OR state = 'running'){filter} \
             ORDER BY created_at DESC LIMIT $2"
        );
        let mut query = sqlx::query(&sql).bind(since).bind(limit);
        if let Some(t) = tenant {
            query = query.bind(t);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut strikes = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get("id")?;
            let tenant_id: String = r.try_get("tenant_id")?;
            strikes.push(self.strike(&tenant_id, &id).await?);
        }
        Ok(strikes)
    }

    /// The repositories of a strike, in plan order.
    pub async fn strike_repos(&self, run_id: &str) -> Result<Vec<RepoRun>, BridgeError> {
        let rows = sqlx::query(
            "SELECT repo, role, phase, branch, commit_sha, pr_url, pr_number, pr_state, error, updated_at \
             FROM strike_repos WHERE strike_id = $1 ORDER BY position",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get("role")?;
                let phase: String = r.try_get("phase")?;
                Ok(RepoRun {
                    repo: r.try_get("repo")?,
                    role: if role == "anchor" {
                        Role::Anchor
                    } else {
                        Role::Agnos
                    },
                    phase: Phase::parse(&phase).unwrap_or(Phase::Failed),
                    branch: r.try_get("branch")?,
                    commit: r.try_get("commit_sha")?,
                    pr_url: r.try_get("pr_url")?,
                    pr_number: r.try_get("pr_number")?,
                    pr_state: r.try_get("pr_state")?,
                    error: r.try_get("error")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Moves one repository of a strike to `phase` (clearing or setting the error).
    pub async fn set_phase(
        &self,
        run_id: &str,
        repo: &str,
        phase: Phase,
        error: Option<&str>,
    ) -> Result<(), BridgeError> {
        sqlx::query(
            "UPDATE strike_repos SET phase = $1, error = $2, updated_at = $3 WHERE strike_id = $4 AND repo = $5",
        )
        .bind(phase.as_str())
        .bind(error)
        .bind(now_ms())
        .bind(run_id)
        .bind(repo)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the pushed commit.
    pub async fn set_commit(&self, run_id: &str, repo: &str, sha: &str) -> Result<(), BridgeError> {
        sqlx::query("UPDATE strike_repos SET commit_sha = $1, updated_at = $2 WHERE strike_id = $3 AND repo = $4")
            .bind(sha)
            .bind(now_ms())
            .bind(run_id)
            .bind(repo)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records an opened (or found) pull request.
    pub async fn set_pr(
        &self,
        run_id: &str,
        repo: &str,
        url: &str,
        number: i64,
        state: &str,
    ) -> Result<(), BridgeError> {
        sqlx::query(
            "UPDATE strike_repos SET pr_url = $1, pr_number = $2, pr_state = $3, updated_at = $4 \
             WHERE strike_id = $5 AND repo = $6",
        )
        .bind(url)
        .bind(number)
        .bind(state)
        .bind(now_ms())
        .bind(run_id)
        .bind(repo)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets the strike's overall state.
    pub async fn set_state(&self, run_id: &str, state: &str) -> Result<(), BridgeError> {
        sqlx::query("UPDATE strikes SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(state)
            .bind(now_ms())
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes a strike that is not running (or whose owner's lease expired)
    /// for `owner` to run: false when a live replica runs it.
    pub async fn claim_strike(
        &self,
        run_id: &str,
        owner: &StrikeOwner,
    ) -> Result<bool, BridgeError> {
        let now = self.now_sql;
        let sql = format!(
            "UPDATE strikes SET state = 'running', owner = $2, lease_expires_at = {now} + $3, \
               cancel_requested_at = NULL, updated_at = $4 \
             WHERE id = $1 AND (state <> 'running' OR lease_expires_at IS NULL \
               OR lease_expires_at < {now})"
        );
        let done = sqlx::query(&sql)
            .bind(run_id)
            .bind(&owner.replica)
            .bind(owner.lease_ms())
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Renews `owner`'s lease on the running strikes `run_ids`.
    pub async fn renew_strikes(
        &self,
        owner: &StrikeOwner,
        run_ids: &[String],
    ) -> Result<(), BridgeError> {
        let sql = format!(
            "UPDATE strikes SET lease_expires_at = {} + $2 \
             WHERE id = $1 AND owner = $3 AND state = 'running'",
            self.now_sql
        );
        for id in run_ids {
            sqlx::query(&sql)
                .bind(id)
                .bind(owner.lease_ms())
                .bind(&owner.replica)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Asks the replica running `run_id` to cancel it: false when it is not running.
    pub async fn request_cancel(&self, run_id: &str) -> Result<bool, BridgeError> {
        let sql = format!(
            "UPDATE strikes SET cancel_requested_at = {} WHERE id = $1 AND state = 'running'",
            self.now_sql
        );
        let done = sqlx::query(&sql).bind(run_id).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Running strikes of `owner` that another replica asked to cancel.
    pub async fn cancels_for(&self, owner: &StrikeOwner) -> Result<Vec<String>, BridgeError> {
        let rows = sqlx::query(
            "SELECT id FROM strikes WHERE owner = $1 AND state = 'running' \
             AND cancel_requested_at IS NOT NULL",
        )
        .bind(&owner.replica)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// Marks every running strike and its unfinished repositories as
    /// interrupted (one process, just started: none of them runs); returns
    /// the strikes touched.
    pub async fn mark_interrupted(&self) -> Result<Vec<String>, BridgeError> {
        self.interrupt_where("state = 'running'").await
    }

    /// Marks running strikes whose owner's lease expired (or that have no
    /// owner) as interrupted; a strike whose owner is alive keeps running.
    pub async fn mark_expired_interrupted(&self) -> Result<Vec<String>, BridgeError> {
        let condition = format!(
            "state = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < {})",
            self.now_sql
        );
        self.interrupt_where(&condition).await
    }

    async fn interrupt_where(&self, condition: &str) -> Result<Vec<String>, BridgeError> {
        let rows = sqlx::query(&format!("SELECT id FROM strikes WHERE {condition}"))
            .fetch_all(&self.pool)
            .await?;
        let candidates = rows
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ids = Vec::new();
        for id in candidates {
            let mut tx = self.pool.begin().await?;
            // Checked again in the transaction: a lease renewed meanwhile keeps its strike.
            let taken = sqlx::query(&format!(
                "UPDATE strikes SET state = $1, updated_at = $2 WHERE id = $3 AND {condition}"
            ))
            .bind("interrupted")
            .bind(now_ms())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            if taken.rows_affected() == 0 {
                tx.rollback().await?;
                continue;
            }
            sqlx::query(
                "UPDATE strike_repos SET phase = $1, updated_at = $2 WHERE strike_id = $3 \
                 AND phase NOT IN ('done', 'failed', 'cancelled')",
            )
            .bind(Phase::Interrupted.as_str())
            .bind(now_ms())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Open pull requests to refresh: (run_id, repo, number).
    pub async fn open_prs(&self) -> Result<Vec<(String, String, i64)>, BridgeError> {
        let rows = sqlx::query(
            "SELECT strike_id, repo, pr_number FROM strike_repos WHERE pr_state = $1 AND pr_number IS NOT NULL",
        )
        .bind("open")
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("strike_id")?,
                    r.try_get("repo")?,
                    r.try_get("pr_number")?,
                ))
            })
            .collect()
    }

    /// Updates the state the monitor saw.
    pub async fn set_pr_state(
        &self,
        run_id: &str,
        repo: &str,
        state: &str,
    ) -> Result<(), BridgeError> {
        sqlx::query("UPDATE strike_repos SET pr_state = $1, updated_at = $2 WHERE strike_id = $3 AND repo = $4")
            .bind(state)
            .bind(now_ms())
            .bind(run_id)
            .bind(repo)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The stored name of a role.
pub fn role_str(role: Role) -> &'static str {
    match role {
        Role::Anchor => "anchor",
        Role::Agnos => "agnos",
    }
}
