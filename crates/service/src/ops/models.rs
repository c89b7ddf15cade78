//! The model list: `auto` and every configured model (REST's `GET /v1/models`,
//! MCP's `harpoon://models`).

use crate::{ops::inference::unix_now, state::AppState};
use orchestrator::selector::AUTO;
use serde::Serialize;
use utoipa::ToSchema;

/// One model entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelCard {
    /// Name to send as `model`.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// Unix seconds (the service's start).
    pub created: u64,
    /// `harpoon`.
    pub owned_by: &'static str,
    /// Tier it serves; for `auto`, absent (the router picks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<&'static str>,
    /// Engine (`mlx`, `openai`, `hosted_ai`, or `router` for `auto`).
    pub engine: &'static str,
    /// Whether it can serve now.
    pub available: bool,
}

/// The model list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// `auto` first, then every configured model.
    pub data: Vec<ModelCard>,
}

/// `auto` and every configured model, as listed now (REST and MCP).
pub fn model_list(state: &AppState) -> ModelList {
    let created = unix_now().saturating_sub(state.started_at.elapsed().as_secs());
    let models: Vec<ModelCard> = state
        .selector
        .registry
        .iter()
        .map(|m| {
            let status = m.status();
            ModelCard {
                id: status.name,
                object: "model",
                created,
                owned_by: "harpoon",
                tier: status.tier.map(orchestrator::Tier::as_str),
                engine: status.engine,
                available: status.available,
            }
        })
        .collect();
    let auto = ModelCard {
        id: AUTO.to_owned(),
        object: "model",
        created,
        owned_by: "harpoon",
        tier: None,
        engine: "router",
        available: models.iter().any(|m| m.available),
    };
    ModelList {
        object: "list",
        data: std::iter::once(auto).chain(models).collect(),
    }
}
