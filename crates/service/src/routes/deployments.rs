//! `GET /v2/deployments`: each model's deployments and the latest decisions among them.

use crate::{
    callers::Caller,
    error::{ApiError, ErrorBody},
    state::AppState,
};
use axum::{Extension, Json, extract::State};

/// Each model's deployments (role, engine, breaker, in flight, queue,
/// recent time to first token, requests served and failed) and where its
/// latest requests went and why.
#[utoipa::path(
    get,
    path = "/v2/deployments",
    tag = "operations",
    responses(
        (status = 200, description = "Every model's deployments and latest routing decisions", body = Object),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key: the view names upstream servers", body = ErrorBody),
    )
)]
pub async fn deployments(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = crate::ops::deployments::deployments(&state, &caller)?;
    Ok(Json(serde_json::json!({ "models": list })))
}
