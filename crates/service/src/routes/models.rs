//! `GET /v1/models`, OpenAI-compatible, with Harpoon's extras.

use crate::{
    ops::models::{ModelList, model_list},
    state::AppState,
};
use axum::{Json, extract::State};

/// Lists `auto` and every configured model with its tier, engine and availability.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "inference",
    responses((status = 200, description = "The models", body = ModelList))
)]
pub async fn list_models(State(state): State<AppState>) -> Json<ModelList> {
    Json(model_list(&state))
}
