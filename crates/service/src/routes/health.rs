//! Liveness (`/health`) and readiness (`/ready`).

use crate::{
    error::{ApiError, ErrorCode},
    state::AppState,
};
use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
};
use orchestrator::EngineKind;
use orchestrator::secret::strip_url_credentials;
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
    /// Why, as a stable snake_case code (e.g. `serving`, `no_model_can_serve`,
    /// `timeout`, `not_configured`).
    pub reason: &'static str,
    /// Why, in words naming files, servers and endpoints: admin keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Component {
    fn new(status: ComponentStatus, reason: &'static str, detail: String) -> Self {
        Self {
            status,
            reason,
            detail: Some(detail),
        }
    }
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

/// One configured model as `/health` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelHealth {
    /// Configured name.
    pub name: String,
    /// Tier it serves, if any.
    #[schema(value_type = Option<String>)]
    pub tier: Option<orchestrator::Tier>,
    /// Configured engine.
    pub engine: &'static str,
    /// Whether requests can be served.
    pub available: bool,
    /// Load state, when an engine exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub load_state: Option<orchestrator::engine::LoadState>,
    /// What serves it or why it cannot serve (endpoint, weights): admin keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Body of `GET /health`; the optional fields come with `?detailed=true`.
/// Without an admin key the detailed form holds states and reason codes only:
/// build, uptime, details, endpoints and paths need an admin key, as this
/// route takes none and is reachable by anyone who can reach the port.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always `healthy` while the process answers.
    pub status: &'static str,
    /// Deployment modes that can serve inference right now.
    pub deployment_modes: Vec<DeploymentMode>,
    /// Crate version.
    pub version: &'static str,
    /// Seconds since start-up (detailed, admin key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<u64>,
    /// Build metadata (detailed, admin key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildInfo>,
    /// State of the router, engines, storage and hosted·ai (detailed; each
    /// `detail` with an admin key only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<BTreeMap<&'static str, Component>>,
    /// Each configured model: tier, engine, availability, load state
    /// (detailed; `detail` with an admin key only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<ModelHealth>>,
    /// The hosted·ai pool manager's state, when configured (detailed, admin
    /// key): models, subscriptions and breaker, without pod endpoints or
    /// billing (those are in `GET /v2/pools`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub hosted_ai: Option<HostedAiHealth>,
}

/// Query of `GET /health`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct HealthQuery {
    /// Adds component states and models; with an admin key also uptime,
    /// build info, details and the hosted·ai state.
    #[serde(default)]
    pub detailed: bool,
}

/// Body of a successful `GET /ready`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: &'static str,
}

/// Liveness: answers while the process runs. The detailed form adds
/// uptime, build, details and the hosted·ai state for an admin key (as
/// `Authorization: Bearer` or `X-API-Key`); any other caller, key or not,
/// gets states and reason codes only.
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
    headers: HeaderMap,
) -> Json<Health> {
    let detailed = query.detailed;
    let mut health = Health {
        status: "healthy",
        deployment_modes: deployment_modes(&state),
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: None,
        build: None,
        components: None,
        models: None,
        hosted_ai: None,
    };
    if !detailed {
        return Json(health);
    }
    let mut components = components(&state).await;
    let mut models: Vec<ModelHealth> = state
        .selector
        .registry
        .iter()
        .map(|m| model_health(m.status()))
        .collect();
    if crate::middleware::auth::is_admin(&state, &headers).await {
        health.uptime_secs = Some(state.started_at.elapsed().as_secs());
        health.build = Some(BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            git_sha: option_env!("HARPOON_GIT_SHA").unwrap_or("unknown"),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        });
        health.hosted_ai = state
            .hosted_ai
            .as_ref()
            .map(|m| HostedAiHealth::of(m.snapshot()));
    } else {
        for c in components.values_mut() {
            c.detail = None;
        }
        for m in &mut models {
            m.detail = None;
        }
    }
    health.components = Some(components);
    health.models = Some(models);
    Json(health)
}

/// A model's status with any `user:password@` removed from its endpoint:
/// even an admin's answer must not carry a configured secret.
fn model_health(status: orchestrator::registry::ModelStatus) -> ModelHealth {
    ModelHealth {
        name: status.name,
        tier: status.tier,
        engine: status.engine,
        available: status.available,
        load_state: status.load_state,
        detail: Some(strip_url_credentials(&status.detail)),
    }
}

/// Modes with at least one model that can serve now.
fn deployment_modes(state: &AppState) -> Vec<DeploymentMode> {
    let available: Vec<EngineKind> = state
        .selector
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
    let statuses: Vec<_> = state.selector.registry.iter().map(|m| m.status()).collect();
    let serving: Vec<&str> = statuses
        .iter()
        .filter(|s| s.available)
        .map(|s| s.name.as_str())
        .collect();
    if serving.is_empty() {
        let why: Vec<String> = statuses
            .iter()
            .map(|s| format!("{}: {}", s.name, strip_url_credentials(&s.detail)))
            .collect();
        Component::new(
            ComponentStatus::Unavailable,
            "no_model_can_serve",
            format!(
                "no model can serve; inference requests get 503 ({})",
                why.join("; ")
            ),
        )
    } else {
        Component::new(
            ComponentStatus::Ok,
            "serving",
            format!("serving: {}", serving.join(", ")),
        )
    }
}

/// How long readiness and health wait for the database before calling it down.
const STORAGE_PROBE: std::time::Duration = std::time::Duration::from_secs(2);

/// Why the database did not answer: a reason code and the words behind it.
struct StorageDown {
    reason: &'static str,
    detail: String,
}

/// `SELECT 1` against the database, bounded by [`STORAGE_PROBE`]; why not, if it failed.
async fn probe_storage(state: &AppState) -> Result<(), StorageDown> {
    match tokio::time::timeout(STORAGE_PROBE, state.storage.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(StorageDown {
            reason: "error",
            detail: e.to_string(),
        }),
        Err(_) => Err(StorageDown {
            reason: "timeout",
            detail: format!("no answer within {} s", STORAGE_PROBE.as_secs()),
        }),
    }
}

async fn components(state: &AppState) -> BTreeMap<&'static str, Component> {
    let backend = match state.storage.backend() {
        crate::storage::Backend::Sqlite => "SQLite",
        crate::storage::Backend::Postgres => "PostgreSQL",
    };
    let storage = match probe_storage(state).await {
        Ok(()) => Component::new(
            ComponentStatus::Ok,
            "answering",
            format!("{backend} at {}", state.storage.target()),
        ),
        Err(down) => Component::new(
            ComponentStatus::Unavailable,
            down.reason,
            format!("{backend} at {}: {}", state.storage.target(), down.detail),
        ),
    };
    let hosted_ai = if let Some(manager) = &state.hosted_ai {
        let s = manager.snapshot();
        let (status, reason) = if s.shutting_down {
            (ComponentStatus::Unavailable, "shutting_down")
        } else {
            (ComponentStatus::Ok, "running")
        };
        Component::new(
            status,
            reason,
            format!(
                "team {}: {} subscription(s) held, panel breaker {:?}",
                s.team_id,
                s.subscriptions.len(),
                s.panel_breaker
            ),
        )
    } else if state.settings.hosted_ai.is_configured() {
        Component::new(
            ComponentStatus::Unavailable,
            "team_id_missing",
            "hosted_ai.base_url and api_key are set but hosted_ai.team_id is not".into(),
        )
    } else {
        Component::new(
            ComponentStatus::NotConfigured,
            "not_configured",
            "hosted_ai.base_url and hosted_ai.api_key are not set".into(),
        )
    };
    let classifier = &state.selector.classifier;
    let router = classifier.model();
    let origin = match &state.settings.router.model_path {
        Some(path) => path.display().to_string(),
        None => "embedded".to_owned(),
    };
    BTreeMap::from([
        (
            "router",
            Component::new(
                ComponentStatus::Ok,
                "loaded",
                format!(
                    "linear model ({origin}), threshold {:.3}, cross-validated AUROC {:.4}",
                    classifier.threshold(),
                    router.facts.cv_auroc
                ),
            ),
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
        return Err(ApiError::new(
            ErrorCode::NotReady,
            "the service is shutting down and draining in-flight requests",
        )
        .with_details(serde_json::json!({ "reasons": ["shutting_down"] })));
    }
    if let Err(down) = probe_storage(&state).await {
        // The probe's words may name the database file or server: logged,
        // not answered, as this route takes no key.
        tracing::warn!(reason = down.reason, detail = %down.detail, "readiness: the database does not answer");
        return Err(
            ApiError::new(ErrorCode::NotReady, "the database does not answer")
                .with_details(serde_json::json!({ "reasons": ["storage_unavailable"] })),
        );
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

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn on_loopback_without_auth_the_details_hold_while_the_database_is_down() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::settings::Settings::default();
        settings.storage.data_dir = dir.path().to_owned();
        let (state, _writer) = crate::bootstrap::open_state(settings, false).await.unwrap();
        let app = crate::app::router(state.clone());
        state.storage.close().await;
        let request = axum::http::Request::get("/health?detailed=true")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let storage = &health["components"]["storage"];
        assert_eq!(storage["status"], "unavailable", "{health}");
        assert!(storage["detail"].is_string(), "{health}");
        assert!(health["build"]["git_sha"].is_string(), "{health}");
    }
}
