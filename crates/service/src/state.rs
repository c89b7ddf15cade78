//! State shared by every handler.

use crate::callers::Callers;
use crate::quota::Quotas;
use crate::settings::AuthMode;
use crate::settings::Settings;
use crate::storage::Storage;
use crate::storage::tenants::Tenant;
use crate::storage::usage::UsageRecorder;
use metrics_exporter_prometheus::PrometheusHandle;
use orchestrator::selector::ModelSelector;
use std::{sync::Arc, time::Instant};
use tokio::sync::watch;

/// Cheap to clone: one reference count. axum clones the state for every
/// middleware and extractor of every request, so its parts live behind a
/// single `Arc` instead of being cloned one by one.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What every handler shares, reached through [`AppState`].
pub struct Shared {
    /// The effective configuration.
    pub settings: Arc<Settings>,
    /// When the service started, for uptime.
    pub started_at: Instant,
    /// Renders the Prometheus exposition.
    pub prometheus: PrometheusHandle,
    /// Chooses each request's model: the classifier and the model registry.
    pub selector: Arc<ModelSelector>,
    /// Durable state.
    pub storage: Storage,
    /// Queue of usage-ledger rows.
    pub usage: UsageRecorder,
    /// Live per-tenant counters.
    pub quotas: Arc<Quotas>,
    /// Who is calling, by API key.
    pub callers: Arc<Callers>,
    /// Authentication in force.
    pub auth_mode: AuthMode,
    /// Sign-in for people (GitHub, OIDC) and their sessions.
    pub signin: Arc<crate::signin::flow::SignIn>,
    /// Owner of requests when auth is disabled.
    pub local_tenant: Tenant,
    /// Covenants, harmony reviews, strikes and cables.
    pub bridge: harpoon_bridge::Bridge,
    /// The fusion engine (its own rayon pool and score cache).
    pub fusion: Arc<harpoon_core::HarpoonEngine>,
    /// The hosted·ai pool manager, when hosted·ai is configured.
    pub hosted_ai: Option<Arc<orchestrator::hosted_ai::PoolManager>>,
    /// This replica in a cluster on PostgreSQL (none on SQLite).
    pub membership: Option<crate::cluster::Membership>,
    draining: watch::Sender<bool>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// State for a service that has not begun shutting down.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Settings,
        selector: ModelSelector,
        prometheus: PrometheusHandle,
        storage: Storage,
        usage: UsageRecorder,
        local_tenant: Tenant,
        auth_mode: AuthMode,
        bridge: harpoon_bridge::Bridge,
        fusion: Arc<harpoon_core::HarpoonEngine>,
        hosted_ai: Option<Arc<orchestrator::hosted_ai::PoolManager>>,
        shared_counters: Option<Arc<crate::quota_store::SharedCounters>>,
        membership: Option<crate::cluster::Membership>,
    ) -> Self {
        let callers = Arc::new(Callers::new(
            storage.clone(),
            auth_mode,
            local_tenant.clone(),
            settings.quotas.clone(),
        ));
        let signin = Arc::new(crate::signin::flow::SignIn::new(
            settings.auth.github.clone(),
            settings.auth.oidc.clone(),
            settings.auth.session_hours,
            settings.service.public_url(),
            settings.service.bind_ip().is_loopback(),
            storage.clone(),
        ));
        Self(Arc::new(Shared {
            signin,
            callers,
            bridge,
            storage,
            usage,
            quotas: Arc::new(shared_counters.map(Quotas::shared).unwrap_or_default()),
            auth_mode,
            local_tenant,
            fusion,
            hosted_ai,
            membership,
            settings: Arc::new(settings),
            started_at: Instant::now(),
            prometheus,
            selector: Arc::new(selector),
            draining: watch::channel(false).0,
        }))
    }

    /// Marks the service as shutting down: `/ready` turns 503 from now on.
    pub fn begin_drain(&self) {
        self.draining.send_replace(true);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Resolves once shutdown has begun.
    pub async fn drained_begun(&self) {
        let mut rx = self.draining.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|draining| *draining).await;
    }
}
