//! Prometheus exposition.

use crate::state::AppState;
use axum::{extract::State, http::header, response::IntoResponse};

/// Request counts and latency histograms by route template and status.
///
/// With `auth.metrics_token` set, only its bearer may scrape; without one,
/// anyone may on a loopback bind, and only admin keys on any other bind.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, description = "Wrong or missing `auth.metrics_token` when one is set; without one, off loopback, a missing, unknown or revoked API key", body = crate::error::ErrorBody),
        (status = 403, description = "Off loopback without `auth.metrics_token`: not an admin key (or a suspended tenant)", body = crate::error::ErrorBody),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    crate::telemetry::sample(&state.selector.registry, &state.fusion);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.prometheus.render(),
    )
}
