//! Liveness (`/health`) and readiness (`/ready`).

use crate::{error::ApiError, state::AppState};
use axum::{
    Json,
    extract::{Query, State},
};
use orchestrator::EngineKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Where inference can run.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentMode {
    /// On this machine, through MLX.
    Native,
    /// On GPUs rented from a hosted·ai pool.
    HostedAi,
}

/// State of one part of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    /// Working.
    Ok,
    /// Configured but unable to serve.
    Unavailable,
    /// Not set up in this deployment.
    NotConfigured,
}

/// A component's state with the reason behind it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Component {
    /// Its state.
    pub status: ComponentStatus,
    /// Why it is in that state.
    pub detail: String,
}

/// How the binary was built.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BuildInfo {
    /// Crate version.
    pub version: &'static str,
    /// Commit the binary was built from, when known.
    pub git_sha: &'static str,
    /// `release` or `debug`.
    pub profile: &'static str,
    /// CPU architecture and OS.
    pub target: String,
}

/// Body of `GET /health`; the optional fields come with `?detailed=true`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always `healthy` while the process answers.
    pub status: &'static str,
    /// Deployment modes that can serve inference right now.
    pub deployment_modes: Vec<DeploymentMode>,
    /// Crate version.
    pub version: &'static str,
    /// Seconds since start-up (detailed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<u64>,
    /// Build metadata (detailed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildInfo>,
    /// State of the router, engines, storage and hosted·ai (detailed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<BTreeMap<&'static str, Component>>,
    /// Each configured model: tier, engine, availability, load state (detailed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub models: Option<Vec<orchestrator::registry::ModelStatus>>,
    /// The hosted·ai pool manager's state, when configured (detailed): models,
    /// subscriptions and breaker, without pod endpoints or billing (those are
    /// in the admin-only `GET /v2/pools`, as this route needs no key).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub hosted_ai: Option<HostedAiHealth>,
}

/// Query of `GET /health`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct HealthQuery {
    /// Adds uptime, build info and component states.
    #[serde(default)]
    pub detailed: bool,
}

/// Body of a successful `GET /ready`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: &'static str,
}

/// Liveness: answers while the process runs.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    params(HealthQuery),
    responses(
        (status = 200, description = "The process is alive", body = Health),
        (status = 400, description = "Bad query string", body = crate::error::ErrorBody),
    )
)]
pub async fn health(
    State(state): State<AppState>,
    Query(query): Query<HealthQuery>,
) -> Json<Health> {
    let detailed = query.detailed;
    Json(Health {
        status: "healthy",
        deployment_modes: deployment_modes(&state),
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: detailed.then(|| state.started_at.elapsed().as_secs()),
        build: detailed.then(|| BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            git_sha: option_env!("HARPOON_GIT_SHA").unwrap_or("unknown"),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        }),
        components: if detailed {
            Some(components(&state).await)
        } else {
            None
        },
        models: detailed.then(|| state.gateway.registry.iter().map(|m| m.status()).collect()),
        hosted_ai: state
            .hosted_ai
            .as_ref()
            .filter(|_| detailed)
            .map(|m| HostedAiHealth::of(m.snapshot())),
    })
}

/// Modes with at least one model that can serve now.
fn deployment_modes(state: &AppState) -> Vec<DeploymentMode> {
    let available: Vec<EngineKind> = state
        .gateway
        .registry
        .iter()
        .filter(|m| m.is_available())
        .map(|m| m.settings().engine)
        .collect();
    let mut modes = Vec::new();
    if available
        .iter()
        .any(|e| matches!(e, EngineKind::Mlx | EngineKind::Openai))
    {
        modes.push(DeploymentMode::Native);
    }
    if available.contains(&EngineKind::HostedAi) {
        modes.push(DeploymentMode::HostedAi);
    }
    modes
}

fn engines(state: &AppState) -> Component {
    let statuses: Vec<_> = state.gateway.registry.iter().map(|m| m.status()).collect();
    let serving: Vec<&str> = statuses
        .iter()
        .filter(|s| s.available)
        .map(|s| s.name.as_str())
        .collect();
    if serving.is_empty() {
        let why: Vec<String> = statuses
            .iter()
            .map(|s| format!("{}: {}", s.name, s.detail))
            .collect();
        Component {
            status: ComponentStatus::Unavailable,
            detail: format!(
                "no model can serve; inference requests get 503 ({})",
                why.join("; ")
            ),
        }
    } else {
        Component {
            status: ComponentStatus::Ok,
            detail: format!("serving: {}", serving.join(", ")),
        }
    }
}

/// How long readiness and health wait for the database before calling it down.
const STORAGE_PROBE: std::time::Duration = std::time::Duration::from_secs(2);

/// `SELECT 1` against the database, bounded by [`STORAGE_PROBE`]; why not, if it failed.
async fn probe_storage(state: &AppState) -> Result<(), String> {
    match tokio::time::timeout(STORAGE_PROBE, state.storage.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", STORAGE_PROBE.as_secs())),
    }
}

async fn components(state: &AppState) -> BTreeMap<&'static str, Component> {
    let backend = match state.storage.backend() {
        crate::storage::Backend::Sqlite => "SQLite",
        crate::storage::Backend::Postgres => "PostgreSQL",
    };
    let storage = match probe_storage(state).await {
        Ok(()) => Component {
            status: ComponentStatus::Ok,
            detail: format!("{backend} at {}", state.storage.target()),
        },
        Err(why) => Component {
            status: ComponentStatus::Unavailable,
            detail: format!("{backend} at {}: {why}", state.storage.target()),
        },
    };
    let hosted_ai = if let Some(manager) = &state.hosted_ai {
        let s = manager.snapshot();
        Component {
            status: if s.shutting_down {
                ComponentStatus::Unavailable
            } else {
                ComponentStatus::Ok
            },
            detail: format!(
                "team {}: {} subscription(s) held, panel breaker {:?}",
                s.team_id,
                s.subscriptions.len(),
                s.panel_breaker
            ),
        }
    } else if state.settings.hosted_ai.is_configured() {
        Component {
            status: ComponentStatus::Unavailable,
            detail: "hosted_ai.base_url and api_key are set but hosted_ai.team_id is not".into(),
        }
    } else {
        Component {
            status: ComponentStatus::NotConfigured,
            detail: "hosted_ai.base_url and hosted_ai.api_key are not set".into(),
        }
    };
    let classifier = &state.gateway.classifier;
    let router = classifier.model();
    let origin = match &state.settings.router.model_path {
        Some(path) => path.display().to_string(),
        None => "embedded".to_owned(),
    };
    BTreeMap::from([
        (
            "router",
            Component {
                status: ComponentStatus::Ok,
                detail: format!(
                    "linear model ({origin}), threshold {:.3}, cross-validated AUROC {:.4}",
                    classifier.threshold(),
                    router.facts.cv_auroc
                ),
            },
        ),
        ("engines", engines(state)),
        ("storage", storage),
        ("hosted_ai", hosted_ai),
    ])
}

/// Readiness for load balancers: 503 once shutdown has begun, or while the
/// database does not answer (keys, quotas and the ledger live there).
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Can take traffic", body = Ready),
        (status = 503, description = "Cannot take traffic; `details.reasons` says why", body = crate::error::ErrorBody),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if state.is_draining() {
        return Err(ApiError::unavailable(
            "not_ready",
            "the service is shutting down and draining in-flight requests",
        )
        .with_details(serde_json::json!({ "reasons": ["shutting_down"] })));
    }
    if let Err(why) = probe_storage(&state).await {
        return Err(ApiError::unavailable(
            "not_ready",
            format!("the database does not answer: {why}"),
        )
        .with_details(serde_json::json!({ "reasons": ["storage_unavailable"] })));
    }
    Ok(Json(Ready { status: "ready" }))
}

/// The public part of the pool manager's state.
#[derive(Debug, Clone, Serialize)]
pub struct HostedAiHealth {
    /// Each hosted model's allocation state.
    pub models: Vec<orchestrator::hosted_ai::ModelSlotView>,
    /// Our subscriptions, without their endpoints.
    pub subscriptions: Vec<SubscriptionHealth>,
    /// The panel's circuit breaker.
    pub panel_breaker: orchestrator::hosted_ai::BreakerState,
    /// Shutting down: no new subscriptions.
    pub shutting_down: bool,
}

/// One subscription, as `/health` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionHealth {
    /// Model it serves.
    pub model: String,
    /// Pool.
    pub pool_id: String,
    /// `ready` or `unhealthy`.
    pub state: &'static str,
    /// Whether the endpoint answered on its last use.
    pub endpoint_healthy: bool,
    /// Requests running on it.
    pub in_flight: usize,
}

impl HostedAiHealth {
    fn of(snapshot: orchestrator::hosted_ai::PoolsSnapshot) -> Self {
        Self {
            models: snapshot.models,
            subscriptions: snapshot
                .subscriptions
                .into_iter()
                .map(|s| SubscriptionHealth {
                    model: s.model,
                    pool_id: s.pool_id,
                    state: s.state,
                    endpoint_healthy: s.endpoint_healthy,
                    in_flight: s.in_flight,
                })
                .collect(),
            panel_breaker: snapshot.panel_breaker,
            shutting_down: snapshot.shutting_down,
        }
    }
}
