//! Strikes across replicas on one database: each running strike has an
//! owner (the replica running it) and a lease that replica renews while the
//! strike runs. Only a strike whose lease expired (its replica died) is
//! marked interrupted, by any replica, and may then be resumed anywhere.
//! Cancel and progress reach a strike from any replica through the database:
//! a cancel flag its owner polls, and progress read back from the stored
//! phases.

use crate::store::{StrikeOwner, now_ms};
use crate::types::{Phase, StrikeEvent, StrikeStatus};
use crate::{Bridge, BridgeError};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How often the owner looks for cancels asked through other replicas, and
/// how often a follower reads a remote strike's progress back.
const POLL: Duration = Duration::from_millis(500);

/// Longest a follower of another replica's strike reads its progress.
const FOLLOW_LIMIT: Duration = Duration::from_secs(24 * 3_600);

impl Bridge {
    /// Runs strikes as replica `replica` whose leases last `lease` unrenewed
    /// (several replicas on one PostgreSQL). Without it, one process owns
    /// every strike, as on SQLite. The first call wins.
    pub fn with_owner(self, replica: &str, lease: Duration) -> Self {
        let _ = self.inner.owner.set(StrikeOwner {
            replica: replica.to_owned(),
            lease,
        });
        self
    }

    /// This replica as a strike owner, when strikes are shared.
    pub(crate) fn owner(&self) -> Option<&StrikeOwner> {
        self.inner.owner.get()
    }

    fn live_ids(&self) -> Vec<String> {
        self.inner
            .live
            .lock()
            .map(|l| l.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Renews the leases of the strikes running here, delivers cancels asked
    /// through other replicas, and marks strikes of dead replicas
    /// interrupted, for as long as the process runs (shared strikes only).
    pub fn spawn_lease_keeper(&self) -> Option<tokio::task::JoinHandle<()>> {
        let owner = self.owner()?.clone();
        let bridge = self.clone();
        let renew_every = (owner.lease / 3).max(POLL);
        Some(tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(POLL).await;
                match bridge.inner.store.cancels_for(&owner).await {
                    Ok(ids) => {
                        for id in ids {
                            bridge.signal_cancel(&id);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read cancels of strikes"),
                }
                if renewed.elapsed() < renew_every {
                    continue;
                }
                renewed = Instant::now();
                if let Err(e) = bridge
                    .inner
                    .store
                    .renew_strikes(&owner, &bridge.live_ids())
                    .await
                {
                    tracing::warn!(error = %e, "cannot renew the leases of running strikes");
                }
                match bridge.inner.store.mark_expired_interrupted().await {
                    Ok(ids) if !ids.is_empty() => {
                        tracing::warn!(strikes = ?ids, "strikes of a replica that stopped renewing their lease are interrupted; resume them with POST /v2/strike/{{run_id}}/resume");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot look for strikes of dead replicas")
                    }
                }
            }
        }))
    }

    /// Signals a strike running here to stop; false when it does not run here.
    pub(crate) fn signal_cancel(&self, run_id: &str) -> bool {
        self.inner
            .live
            .lock()
            .ok()
            .and_then(|l| l.get(run_id).map(|l| l.cancel.send_replace(true)))
            .is_some()
    }

    /// Asks whichever replica runs `run_id` to cancel it; false when none does.
    pub(crate) async fn cancel_elsewhere(&self, run_id: &str) -> Result<bool, BridgeError> {
        if self.owner().is_none() {
            return Ok(false);
        }
        self.inner.store.request_cancel(run_id).await
    }

    /// Progress of a strike another replica runs, read back from its stored
    /// phases: one event per change of a repository's phase, and a last one
    /// when the strike ends.
    pub(crate) fn follow_remote(
        &self,
        tenant: &str,
        status: &StrikeStatus,
    ) -> Option<broadcast::Receiver<StrikeEvent>> {
        if self.owner().is_none() || status.state != "running" {
            return None;
        }
        let (events, rx) = broadcast::channel(256);
        let bridge = self.clone();
        let (tenant, run_id) = (tenant.to_owned(), status.run_id.clone());
        let mut seen: HashMap<String, Phase> = status
            .repos
            .iter()
            .map(|r| (r.repo.clone(), r.phase))
            .collect();
        tokio::spawn(async move {
            let until = Instant::now() + FOLLOW_LIMIT;
            while Instant::now() < until && events.receiver_count() > 0 {
                tokio::time::sleep(POLL).await;
                let Ok(now) = bridge.strike_status(&tenant, &run_id).await else {
                    continue;
                };
                for repo in &now.repos {
                    if seen.get(&repo.repo) != Some(&repo.phase) {
                        seen.insert(repo.repo.clone(), repo.phase);
                        let _ = events.send(StrikeEvent {
                            run_id: run_id.clone(),
                            repo: Some(repo.repo.clone()),
                            phase: repo.phase.as_str().to_owned(),
                            detail: repo.error.clone().unwrap_or_default(),
                            at: now_ms(),
                        });
                    }
                }
                if now.state != "running" {
                    let _ = events.send(StrikeEvent {
                        run_id: run_id.clone(),
                        repo: None,
                        phase: now.state.clone(),
                        detail: "strike finished".into(),
                        at: now_ms(),
                    });
                    return;
                }
            }
        });
        Some(rx)
    }
}
