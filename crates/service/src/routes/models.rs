//! `GET /v1/models` and `GET /v1/models/{id}`, OpenAI-compatible, with Harpoon's extras.

use crate::{
    error::{ApiError, ErrorBody},
    ops::models::{ModelCard, ModelList, model_card, model_list},
    state::AppState,
};
use axum::{
    Json,
    extract::{Path, State},
};

/// Lists `auto` and every configured model with its tier, engine, availability and capabilities.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "inference",
    responses((status = 200, description = "The models", body = ModelList))
)]
pub async fn list_models(State(state): State<AppState>) -> Json<ModelList> {
    Json(model_list(&state))
}

/// One model of the list, `auto` included.
#[utoipa::path(
    get,
    path = "/v1/models/{id}",
    tag = "inference",
    params(("id" = String, Path, description = "A model id from `GET /v1/models`")),
    responses(
        (status = 200, description = "The model", body = ModelCard),
        (status = 404, description = "No such model (`model_not_found`)", body = ErrorBody),
    )
)]
pub async fn retrieve_model(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelCard>, ApiError> {
    model_card(&state, &id).map(Json)
}
