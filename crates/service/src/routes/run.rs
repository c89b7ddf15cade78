//! `POST /run`: one prompt in, the routed model's answer out.

use crate::{
    callers::Caller,
    error::{ApiError, ErrorBody},
    extract::ApiJson,
    ops::run::{RunRequest, RunResponse, run_prompt},
    state::AppState,
};
use axum::{Extension, Json, extract::MatchedPath, extract::State};

/// Routes a prompt and generates the answer with the chosen model.
#[utoipa::path(
    post,
    path = "/run",
    tag = "inference",
    request_body = RunRequest,
    responses(
        (status = 200, description = "The answer", body = RunResponse),
        (status = 400, description = "Malformed JSON or context length exceeded", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Empty text or a field out of range", body = ErrorBody),
        (status = 502, description = "Upstream error", body = ErrorBody),
        (status = 503, description = "No engine can serve the request", body = ErrorBody),
        (status = 504, description = "Upstream timeout", body = ErrorBody),
    )
)]
pub async fn run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    route: MatchedPath,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<Json<RunResponse>, ApiError> {
    run_prompt(&state, &caller, &request, route.as_str())
        .await
        .map(Json)
}
