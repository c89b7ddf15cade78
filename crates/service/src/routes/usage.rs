//! `GET /v2/usage`: the caller's usage ledger, summed.

use crate::{
    callers::Caller,
    error::{ApiError, ErrorBody},
    ops::usage::{UsageQuery, UsageReport, usage_report},
    state::AppState,
};
use axum::{
    Extension, Json,
    extract::{Query, State},
};

/// Usage of the caller's tenant (or, for admins, of `tenant`) between two
/// instants, grouped by model or by UTC day.
#[utoipa::path(
    get,
    path = "/v2/usage",
    tag = "tenancy",
    params(UsageQuery),
    responses(
        (status = 200, description = "Summed usage", body = UsageReport),
        (status = 400, description = "Bad query string", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "Unknown tenant, or another tenant's (never 403)", body = ErrorBody),
        (status = 422, description = "Unparseable dates or since after until", body = ErrorBody),
    )
)]
pub async fn usage(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    usage_report(&state, &caller, &query).await.map(Json)
}
