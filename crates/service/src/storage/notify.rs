//! Telling every replica that callers changed (a key revoked, a tenant
//! suspended or activated), through PostgreSQL's own LISTEN/NOTIFY: each
//! replica drops its cached callers at once instead of serving them until
//! their cache entry expires. With SQLite there is one process and nothing
//! to tell.

use super::{Backend, Storage};
use std::time::Duration;

/// The channel callers' changes are announced on.
const CALLERS_CHANNEL: &str = "harpoon_callers";

/// Longest wait between two attempts to listen again after the connection broke.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Storage {
    /// Announces that callers changed to every replica listening (PostgreSQL
    /// only). A failure is logged: each replica's cache expires on its own anyway.
    pub async fn announce_callers_changed(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CALLERS_CHANNEL)
            .execute(self.pool())
            .await
        {
            tracing::warn!(error = %e, "could not announce a change of callers to the other replicas");
        }
    }

    /// Calls `changed` whenever any replica announces that callers changed,
    /// and after each reconnection (announcements may have been missed), for
    /// as long as the process runs (PostgreSQL only).
    pub fn watch_callers(&self, changed: impl Fn() + Send + 'static) {
        let Some(url) = self.url.clone() else {
            return;
        };
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match sqlx::postgres::PgListener::connect(url.expose()).await {
                    Ok(mut listener) => match listener.listen(CALLERS_CHANNEL).await {
                        Ok(()) => {
                            backoff = Duration::from_millis(100);
                            changed();
                            // `recv` reconnects by itself; an error means it could not.
                            while listener.recv().await.is_ok() {
                                changed();
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot listen for changes of callers")
                        }
                    },
                    Err(e) => tracing::warn!(error = %e, "cannot listen for changes of callers"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
    }
}
