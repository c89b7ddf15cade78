//! Startup assembly: everything a request needs, opened once: the models
//! and router, the hosted·ai pool manager, storage (migrated), the callers,
//! the usage writer, fusion and the bridge. The server and the MCP stdio
//! companion both start here.

use crate::settings::{AuthMode, Settings};
use crate::storage::{Storage, usage::UsageRecorder};
use crate::{state::AppState, telemetry};
use orchestrator::{registry::Registry, router::Classifier, selector::ModelSelector};
use std::sync::Arc;

/// Why what a request needs could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The metrics recorder could not be installed.
    #[error("metrics: {0}")]
    Metrics(String),
    /// The router model cannot be loaded.
    #[error(transparent)]
    Router(#[from] orchestrator::router::RouterError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The bridge (covenants and strikes) could not be set up.
    #[error("bridge: {0}")]
    Bridge(#[from] harpoon_bridge::BridgeError),
    /// The shared quota store's URL is not usable.
    #[error("cluster.redis_url: {0}")]
    SharedCounters(crate::quota_store::CounterError),
}

impl OpenError {
    /// Whether the operator's configuration is at fault (exit code 78):
    /// the router artefact, or the database it names (settings are checked at load).
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Self::Router(_) | Self::Storage(_) | Self::SharedCounters(_)
        )
    }
}

/// Everything a request needs: models, router, storage (migrated), the local
/// tenant and the usage writer (whose handle drains it at shutdown).
///
/// Only the server (`owns_pools`) runs the hosted·ai pool manager: it holds
/// the team's subscriptions and releases them, which a companion process (MCP
/// over stdio) beside it must not do.
pub async fn open_state(
    settings: Settings,
    owns_pools: bool,
) -> Result<(AppState, crate::storage::usage::UsageWriter), OpenError> {
    let hosted_ai = if owns_pools {
        hosted_ai_manager(&settings)
    } else {
        None
    };
    let selector = ModelSelector {
        classifier: Classifier::from_settings(&settings.router, &settings.models)?,
        registry: Registry::with_hosted_ai(&settings.models, hosted_ai.as_ref()),
        sticky: settings
            .router
            .sticky_conversations
            .then(orchestrator::router::StickyConversations::default),
    };
    for model in selector.registry.iter() {
        let status = model.status();
        tracing::info!(model = %status.name, engine = status.engine, available = status.available, detail = %status.detail, "model");
    }
    let prometheus = telemetry::prometheus().map_err(OpenError::Metrics)?;
    let auth_mode = settings.auth_mode();
    let storage = Storage::open(&settings.storage).await?;
    tracing::info!(backend = ?storage.backend(), database = %storage.target(), "storage ready");
    warn_if_the_database_is_ephemeral(&settings, &storage);
    let shared_counters = shared_counters(&settings, &storage)?;
    // Only the server takes part: a companion process beside it is no replica.
    let membership = if owns_pools {
        crate::cluster::Membership::join(
            &storage,
            std::time::Duration::from_secs(settings.cluster.lease_secs),
        )
    } else {
        None
    };
    if let (Some(manager), Some(membership), Some(team)) = (
        &hosted_ai,
        &membership,
        settings.hosted_ai.team_id.as_deref(),
    ) {
        let (directory, config) = membership.hosted_ai_directory(team);
        manager.join_cluster(directory, config);
    }
    let local_tenant = storage.ensure_tenant(&settings.auth.local_tenant).await?;
    if let Some(key) = &settings.auth.admin_key {
        let rec = storage
            .ensure_bootstrap_key(BOOTSTRAP_TENANT, key.expose())
            .await?;
        tracing::info!(tenant = BOOTSTRAP_TENANT, key = %rec.prefix, "bootstrap admin key from auth.admin_key");
    }
    if auth_mode == AuthMode::Disabled {
        tracing::warn!(
            tenant = %local_tenant.name,
            "authentication is disabled (loopback bind): every request runs as the built-in tenant"
        );
    }
    let (mut usage, usage_writer) = UsageRecorder::start(storage.clone());
    if let Some(counters) = &shared_counters {
        usage = usage.share_budgets(counters.clone());
    }
    let fusion = Arc::new(harpoon_core::HarpoonEngine::new(&settings.harpoon));
    let bridge = crate::bridge_gate::build(
        &settings,
        &storage,
        &selector,
        fusion.clone(),
        usage.clone(),
    )?;
    // Shared strikes: each has this replica as owner, under a lease it renews.
    let bridge = match &membership {
        Some(m) => bridge.with_owner(m.replica_id(), m.lease()),
        None => bridge,
    };
    let state = AppState::new(
        settings,
        selector,
        prometheus,
        storage,
        usage,
        local_tenant,
        auth_mode,
        bridge,
        fusion,
        hosted_ai,
        shared_counters,
        membership,
    );
    Ok((state, usage_writer))
}

/// The counters shared with the other replicas, with `cluster.redis_url`;
/// on PostgreSQL without it (several replicas, likely), a warning that each
/// counts its own quotas.
fn shared_counters(
    settings: &Settings,
    storage: &Storage,
) -> Result<Option<Arc<crate::quota_store::SharedCounters>>, OpenError> {
    let counters = crate::quota_store::SharedCounters::connect(&settings.cluster)
        .map_err(OpenError::SharedCounters)?;
    match &counters {
        Some(_) => tracing::info!(
            on_redis_error = ?settings.cluster.on_redis_error,
            "quotas are counted in the shared store (cluster.redis_url)"
        ),
        None if storage.backend() == crate::storage::Backend::Postgres => tracing::warn!(
            "storage is PostgreSQL but cluster.redis_url (REDIS_URL) is unset: request-rate and \
             concurrency quotas and daily token budgets are counted per replica, so N replicas \
             allow up to N times each tenant's limits (docs/scale-out.md)"
        ),
        None => {}
    }
    Ok(counters.map(Arc::new))
}

/// Off loopback (a deployment, not a laptop), SQLite on the container's own
/// file system is lost at the next deploy: say so, and what to do.
fn warn_if_the_database_is_ephemeral(settings: &Settings, storage: &Storage) {
    if storage.backend() != crate::storage::Backend::Sqlite
        || settings.service.bind_ip().is_loopback()
    {
        return;
    }
    let dir = &settings.storage.data_dir;
    if let Some((mount, fstype)) = crate::storage::volume::mount_of(dir)
        && crate::storage::volume::is_ephemeral(&mount, &fstype)
    {
        tracing::warn!(
            data_dir = %dir.display(),
            mount = %mount.display(),
            fstype,
            "the SQLite database is on the container's own disk, which a redeploy erases: \
             mount a volume at storage.data_dir, or set DATABASE_URL to a PostgreSQL server"
        );
    }
}

/// Tenant that owns the bootstrap admin key (`auth.admin_key`).
pub const BOOTSTRAP_TENANT: &str = "admin";

/// The hosted·ai pool manager when hosted·ai is configured (its upkeep started).
fn hosted_ai_manager(settings: &Settings) -> Option<Arc<orchestrator::hosted_ai::PoolManager>> {
    if !settings.hosted_ai.is_configured() {
        return None;
    }
    match orchestrator::hosted_ai::PoolManager::new(&settings.hosted_ai) {
        Ok(manager) => {
            manager.start_upkeep();
            Some(manager)
        }
        Err(e) => {
            tracing::warn!(error = %e, "hosted·ai is configured but cannot be used");
            None
        }
    }
}
