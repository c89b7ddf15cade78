//! `POST /v2/fragments`: fusion — hygiene scores, duplicates and a verifiable
//! envelope for a set of code fragments (the work is in [`crate::ops::fragments`]).

use crate::{
    callers::Caller,
    error::{ApiError, ErrorBody},
    extract::ApiJson,
    ops::fragments::{FragmentsRequest, fuse_request},
    state::AppState,
};
use axum::{Extension, Json, extract::MatchedPath, extract::State};
use harpoon_core::Envelope;

/// Scores the fragments, drops repeats, refines what falls short and returns the envelope.
#[utoipa::path(
    post,
    path = "/v2/fragments",
    tag = "fusion",
    request_body = FragmentsRequest,
    responses(
        (status = 200, description = "The envelope: absorbed (with scores and signals), pending (with reasons), duplicates, near-duplicates, events, anchor chain, envelope hash, mean hygiene, iterations used", body = Object),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body, fragment count or a fragment over the limits", body = ErrorBody),
        (status = 422, description = "No fragments, an empty body, an unknown refiner, or a threshold or round limit out of range", body = ErrorBody),
        (status = 429, description = "Refiner `model` and the tenant's tokens for the day are spent", body = ErrorBody),
        (status = 503, description = "Refiner `model` and no small-tier model can serve", body = ErrorBody),
    )
)]
pub async fn fuse(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    route: MatchedPath,
    ApiJson(request): ApiJson<FragmentsRequest>,
) -> Result<Json<Envelope>, ApiError> {
    fuse_request(&state, &caller, route.as_str(), request)
        .await
        .map(Json)
}
