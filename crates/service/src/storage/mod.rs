//! Durable state: tenants, API keys, quotas and the usage ledger.
//!
//! One schema, two backends through `sqlx`'s `Any` driver: a SQLite file
//! under `storage.data_dir` by default (WAL, `synchronous=FULL`, so a commit
//! acknowledged to a client survives a crash), or PostgreSQL when
//! `DATABASE_URL` says so (several replicas behind a load balancer). SQL stays
//! portable: `$n` placeholders, TEXT ids made here, BIGINT Unix milliseconds.

pub mod keys;
pub mod leases;
pub mod notify;
pub mod responses;
pub mod tenants;
pub mod usage;
pub mod volume;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The `storage` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// Directory of the SQLite file (`harpoon.db`), created on first start.
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL instead (env `DATABASE_URL`).
    pub database_url: Option<orchestrator::Secret>,
    /// Most pooled connections.
    pub max_connections: u32,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database_url: None,
            max_connections: 8,
        }
    }
}

impl StorageSettings {
    /// Checks the URL scheme and the pool size.
    pub fn validate(&self) -> Result<(), orchestrator::InvalidSetting> {
        if let Some(url) = &self.database_url
            && !url.expose().starts_with("postgres://")
            && !url.expose().starts_with("postgresql://")
        {
            return Err(orchestrator::InvalidSetting::new(
                "storage.database_url",
                "must start with postgres:// (leave it unset for the SQLite file)",
            ));
        }
        if !(1..=256).contains(&self.max_connections) {
            return Err(orchestrator::InvalidSetting::new(
                "storage.max_connections",
                format!("{} is out of range 1..=256", self.max_connections),
            ));
        }
        Ok(())
    }
}

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database could not be opened or migrated.
    #[error("storage {target}: {source}")]
    Open {
        /// The file or the (credential-free) server it tried.
        target: String,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A query failed.
    #[error("storage: {0}")]
    Query(#[from] sqlx::Error),
    /// The thing asked for does not exist (or belongs to another tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique value is taken.
    #[error("{0}")]
    Conflict(String),
    /// The shared store of budgets (`cluster.redis_url`) did not answer.
    #[error(transparent)]
    SharedCounters(#[from] crate::quota_store::CounterError),
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The connection pool and what it talks to.
#[derive(Debug, Clone)]
pub struct Storage {
    pool: AnyPool,
    backend: Backend,
    target: String,
    /// PostgreSQL's address, for the listener of [`notify`] (never printed).
    url: Option<orchestrator::Secret>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Storage {
    /// Opens (creating on first use) and migrates the configured database.
    pub async fn open(settings: &StorageSettings) -> Result<Self, StorageError> {
        sqlx::any::install_default_drivers();
        let (url, backend, target) = match &settings.database_url {
            Some(url) => {
                let url = url.expose().to_owned();
                // Name the server in errors without its credentials.
                // Host, port and database only: no user, password or query string.
                let after_at = url.rsplit('@').next().unwrap_or("postgres");
                let target = after_at.split('?').next().unwrap_or(after_at).to_owned();
                (url, Backend::Postgres, format!("postgres {target}"))
            }
            None => {
                std::fs::create_dir_all(&settings.data_dir).map_err(|e| StorageError::Open {
                    target: settings.data_dir.display().to_string(),
                    source: Box::new(e),
                })?;
                let file = settings.data_dir.join("harpoon.db");
                (
                    format!("sqlite://{}?mode=rwc", file.display()),
                    Backend::Sqlite,
                    file.display().to_string(),
                )
            }
        };
        let open_err = |e: sqlx::Error| StorageError::Open {
            target: target.clone(),
            source: Box::new(e),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(open_err)?;
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; FULL makes every
                        // acknowledged commit durable; busy_timeout waits out the
                        // single writer lock instead of failing.
                        conn.execute("PRAGMA journal_mode=WAL").await?;
                        conn.execute("PRAGMA synchronous=FULL").await?;
                        conn.execute("PRAGMA busy_timeout=10000").await?;
                        conn.execute("PRAGMA foreign_keys=ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(open_err)?;
        MIGRATOR.run(&pool).await.map_err(|e| StorageError::Open {
            target: target.clone(),
            source: Box::new(e),
        })?;
        Ok(Self {
            pool,
            backend,
            target,
            url: (backend == Backend::Postgres).then(|| orchestrator::Secret::new(url)),
        })
    }

    /// The pool, for the repositories.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The file or server (without credentials), for reports.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// One round trip to the database (`SELECT 1`), for readiness and health.
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A new random id with a readable kind prefix, e.g. `ten_…`.
pub fn new_id(kind: &str) -> String {
    format!("{kind}_{}", uuid::Uuid::new_v4().simple())
}

/// True for a unique-constraint violation on either backend.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.message().contains("UNIQUE constraint failed")
                || db.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}
