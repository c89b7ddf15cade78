//! `GET /v2/pools`: the hosted·ai pool manager's view.

use crate::{
    callers::Caller,
    error::{ApiError, ErrorBody},
    ops::pools::pools_snapshot,
    state::AppState,
};
use axum::{Extension, Json, extract::State};

/// Known pools (sharing ratio, free slots, price, breaker), our subscriptions
/// and their states, endpoint health, and billing next to our estimate.
#[utoipa::path(
    get,
    path = "/v2/pools",
    tag = "operations",
    responses(
        (status = 200, description = "The pool manager's state", body = Object),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key: the view names pod endpoints and team billing", body = ErrorBody),
        (status = 503, description = "hosted·ai is not configured", body = ErrorBody),
    )
)]
pub async fn pools(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let snapshot = pools_snapshot(&state, &caller).await?;
    Ok(Json(
        serde_json::to_value(snapshot).unwrap_or(serde_json::Value::Null),
    ))
}
