//! `POST /classify`: which tier a prompt needs, and why.

use crate::{
    error::ErrorBody,
    extract::ApiJson,
    ops::classify::{ClassifyRequest, ClassifyResponse, classify_text},
    state::AppState,
};
use axum::{Json, extract::State};

/// Classifies a prompt, or the last turn of a conversation, as simple or complex and names the tier and model that would serve it.
#[utoipa::path(
    post,
    path = "/classify",
    tag = "routing",
    request_body = ClassifyRequest,
    responses(
        (status = 200, description = "The router's decision", body = ClassifyResponse),
        (status = 400, description = "Malformed JSON, or both or neither of `text` and `messages` (`param` names the field)", body = ErrorBody),
        (status = 413, description = "Body larger than service.body_limit_bytes", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Empty text, no user message, an empty last user message, or an unknown field", body = ErrorBody),
    )
)]
pub async fn classify(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ClassifyRequest>,
) -> Json<ClassifyResponse> {
    Json(classify_text(&state, &request))
}
