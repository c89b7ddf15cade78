//! `GET /v2/pools`: the hosted·ai pool manager's view.

use crate::{
    error::{ApiError, ErrorBody},
    state::AppState,
};
use axum::{Json, extract::State};
use std::time::Duration;

/// Known pools (sharing ratio, free slots, price, breaker), our subscriptions
/// and their states, endpoint health, and billing next to our estimate.
#[utoipa::path(
    get,
    path = "/v2/pools",
    tag = "operations",
    responses(
        (status = 200, description = "The pool manager's state", body = Object),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 503, description = "hosted·ai is not configured", body = ErrorBody),
    )
)]
pub async fn pools(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let manager = state.hosted_ai.as_ref().ok_or_else(|| {
        ApiError::unavailable(
            "hosted_ai_not_configured",
            "hosted·ai is not configured: set hosted_ai.base_url, api_key and team_id",
        )
    })?;
    // A slow panel delays this view, never hangs it; failures show in the snapshot.
    let limit = Duration::from_secs(manager.settings().call_timeout_secs.min(10));
    let _ = tokio::time::timeout(limit, manager.refresh()).await;
    Ok(Json(
        serde_json::to_value(manager.snapshot()).unwrap_or(serde_json::Value::Null),
    ))
}
