//! `POST /v2/process`: the seed's combined call — classify, choose where to
//! run, generate — with the deployment made explicit.

use crate::{
    callers::Caller,
    error::{ApiError, ErrorBody},
    extract::ApiJson,
    ops::process::{ProcessRequest, ProcessResponse, process_prompt},
    state::AppState,
};
use axum::{Extension, Json, extract::MatchedPath, extract::State};

/// Classifies once, runs on the requested deployment, and reports both.
#[utoipa::path(
    post,
    path = "/v2/process",
    tag = "inference",
    request_body = ProcessRequest,
    responses(
        (status = 200, description = "Classification and generation", body = ProcessResponse),
        (status = 400, description = "Malformed JSON or context length exceeded", body = ErrorBody),
        (status = 413, description = "Body too large, or fragment_context over the fusion limits", body = ErrorBody),
        (status = 422, description = "Empty text, unknown deployment or field, fusion threshold out of range", body = ErrorBody),
        (status = 502, description = "Upstream error", body = ErrorBody),
        (status = 503, description = "The deployment has no engine for the chosen tier", body = ErrorBody),
        (status = 504, description = "Upstream timeout", body = ErrorBody),
    )
)]
pub async fn process(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    route: MatchedPath,
    ApiJson(request): ApiJson<ProcessRequest>,
) -> Result<Json<ProcessResponse>, ApiError> {
    process_prompt(&state, &caller, request, route.as_str())
        .await
        .map(Json)
}
