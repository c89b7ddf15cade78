//! The model list: `auto` and every configured model (REST's `GET /v1/models`
//! and `GET /v1/models/{id}`, MCP's `harpoon://models`).

use crate::{
    error::{ApiError, ErrorCode},
    ops::inference::unix_now,
    state::AppState,
};
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
    /// What it takes beyond plain chat; for `auto`, what any of its models takes.
    pub capabilities: ModelCapabilities,
}

/// What a model takes beyond plain chat (see docs/openai-compatibility.md).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct ModelCapabilities {
    /// Function tools.
    pub tools: bool,
    /// Image, audio and file content parts.
    pub vision: bool,
    /// `response_format` `json_object` and `json_schema`.
    pub json_schema: bool,
    /// Other OpenAI request fields go to the model's server unchanged.
    pub pass_through: bool,
}

impl From<&orchestrator::capability::Capabilities> for ModelCapabilities {
    fn from(c: &orchestrator::capability::Capabilities) -> Self {
        Self {
            tools: c.tools,
            vision: c.vision,
            json_schema: c.json_schema,
            pass_through: c.pass_through,
        }
    }
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
                capabilities: (&status.capabilities).into(),
            }
        })
        .collect();
    let any = |f: fn(&ModelCapabilities) -> bool| {
        models.iter().any(|m| m.available && f(&m.capabilities))
    };
    let auto = ModelCard {
        id: AUTO.to_owned(),
        object: "model",
        created,
        owned_by: "harpoon",
        tier: None,
        engine: "router",
        available: models.iter().any(|m| m.available),
        capabilities: ModelCapabilities {
            tools: any(|c| c.tools),
            vision: any(|c| c.vision),
            json_schema: any(|c| c.json_schema),
            pass_through: any(|c| c.pass_through),
        },
    };
    ModelList {
        object: "list",
        data: std::iter::once(auto).chain(models).collect(),
    }
}

/// One entry of [`model_list`] by its id (`auto` included).
pub fn model_card(state: &AppState, id: &str) -> Result<ModelCard, ApiError> {
    model_list(state)
        .data
        .into_iter()
        .find(|card| card.id == id)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ModelNotFound,
                format!("the model {id:?} does not exist; GET /v1/models lists the models"),
            )
            .with_param("model")
        })
}
