//! State shared by every handler.

use crate::settings::Settings;
use metrics_exporter_prometheus::PrometheusHandle;
use orchestrator::gateway::Gateway;
use std::{sync::Arc, time::Instant};
use tokio::sync::watch;

/// Cheap to clone; everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    /// The effective configuration.
    pub settings: Arc<Settings>,
    /// When the service started, for uptime.
    pub started_at: Instant,
    /// Renders the Prometheus exposition.
    pub prometheus: PrometheusHandle,
    /// The router and the models.
    pub gateway: Arc<Gateway>,
    draining: Arc<watch::Sender<bool>>,
}

impl AppState {
    /// State for a service that has not begun shutting down.
    pub fn new(settings: Settings, gateway: Gateway, prometheus: PrometheusHandle) -> Self {
        Self {
            settings: Arc::new(settings),
            started_at: Instant::now(),
            prometheus,
            gateway: Arc::new(gateway),
            draining: Arc::new(watch::channel(false).0),
        }
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
