//! The router: routes registered with their OpenAPI annotations, wrapped in the
//! middleware every request passes through.

use crate::{
    auth,
    error::{ApiError, ensure_json_errors},
    routes::{
        admin, chat, classify, covenants, fragments, health, metrics, models,
        openapi::{self, ApiDoc, OpenApiJson},
        pools, process, run, usage,
    },
    settings::ServiceSettings,
    state::AppState,
    telemetry::{self, UNMATCHED_ROUTE, record_metrics},
};
use axum::{
    Extension, Router,
    extract::{DefaultBodyLimit, MatchedPath},
    http::{HeaderName, HeaderValue, Request, Response, StatusCode},
};
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::{
    compression::CompressionLayer,
    cors::{AllowOrigin, Any, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::{MakeSpan, OnResponse, TraceLayer},
};
use tracing::Span;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Header carrying the request id, generated when the client sends none.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route, registered through `OpenApiRouter` so none can miss the document.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(classify::classify))
        .routes(routes!(chat::chat_completions))
        .routes(routes!(models::list_models))
        .routes(routes!(run::run))
        .routes(routes!(process::process))
        .routes(routes!(fragments::fuse))
        .routes(routes!(usage::usage))
        .routes(routes!(pools::pools))
        .routes(routes!(admin::create_tenant, admin::list_tenants))
        .routes(routes!(admin::suspend_tenant))
        .routes(routes!(admin::activate_tenant))
        .routes(routes!(admin::create_key, admin::list_keys))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(covenants::create_covenant))
        .routes(routes!(covenants::get_covenant, covenants::delete_covenant))
        .routes(routes!(covenants::list_covenants))
        .routes(routes!(covenants::harmony, covenants::stored_harmony))
        .routes(routes!(covenants::register_repo, covenants::list_repos))
        .routes(routes!(covenants::cables, covenants::declare_cable))
        .routes(routes!(covenants::start_strike))
        .routes(routes!(covenants::strike_status))
        .routes(routes!(covenants::strike_events))
        .routes(routes!(covenants::cancel_strike))
        .routes(routes!(covenants::resume_strike))
}

/// The OpenAPI document of every route, completed with the shared security
/// and error responses.
pub fn openapi() -> serde_json::Value {
    openapi::complete(api().into_openapi())
}

/// The full application with its middleware.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = api().split_for_parts();
    let doc_json = openapi::complete(doc).to_string();
    let service = &state.settings.service;

    let middleware = ServiceBuilder::new()
        .layer(axum::middleware::map_request(drop_unusable_request_id))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(RequestSpan)
                .on_request(())
                .on_response(LogResponse)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(axum::middleware::from_fn(record_metrics))
        .option_layer(cors(service))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::map_response(ensure_json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(service.request_timeout_secs),
        ))
        .layer(DefaultBodyLimit::max(service.body_limit_bytes))
        .option_layer(service.log_bodies.then(|| {
            axum::middleware::from_fn_with_state(
                service.body_limit_bytes,
                telemetry::log_request_body,
            )
        }))
        .layer(Extension(OpenApiJson(doc_json.into())));

    // MCP over Streamable HTTP, behind the same middleware (and API keys) as
    // REST; outside the OpenAPI document, which describes REST only.
    let loopback_hosts_only = state.auth_mode == crate::settings::AuthMode::Disabled;
    let mcp = crate::mcp_backend::http_service(&state, loopback_hosts_only);
    routes
        .nest_service("/mcp", mcp)
        .fallback(not_found)
        .layer(middleware)
        .with_state(state)
}

/// Longest `x-request-id` kept from a client; trace ids (W3C's 55, UUIDs'
/// 36, AWS's 40-odd) fit with room to spare.
const REQUEST_ID_MAX: usize = 128;

/// Removes a client's `x-request-id` that is too long or holds characters
/// trace ids do not use, so a fresh one is made: the id is echoed in the
/// answer and written into every log line of the request.
async fn drop_unusable_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    let usable = |id: &[u8]| {
        !id.is_empty()
            && id.len() <= REQUEST_ID_MAX
            && id
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b))
    };
    if let Some(id) = request.headers().get(&REQUEST_ID)
        && !usable(id.as_bytes())
    {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no route matches this path",
    )
}

fn cors(service: &ServiceSettings) -> Option<CorsLayer> {
    if service.cors_origins.is_empty() {
        return None;
    }
    let origins = if service.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // Validated as origins at load time, so every one is a valid header value.
        AllowOrigin::list(
            service
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods(Any)
            .allow_headers(Any)
            .expose_headers([REQUEST_ID]),
    )
}

/// Span per request: method, route template and request id; never the body.
#[derive(Clone, Copy)]
struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route,
            request_id,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        )
    }
}

/// Records status and latency on the span and logs one line per response.
#[derive(Clone, Copy)]
struct LogResponse;

impl<B> OnResponse<B> for LogResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        span.record("status", response.status().as_u16());
        // Whole microseconds: sub-microsecond digits are noise in a log line.
        span.record("latency_ms", (latency.as_micros() as f64) / 1_000.0);
        tracing::info!("response");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use axum::body::Body;
    use tower::ServiceExt;

    /// The state and app on a fresh SQLite database under `name` in the temp dir.
    async fn app_on_disk(name: &str) -> (AppState, Router, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("harpoon-app-{name}-{}", std::process::id()));
        let mut settings = Settings::default();
        settings.storage.data_dir = dir.clone();
        let (state, _writer) = crate::server::open_state(settings, false).await.unwrap();
        let app = router(state.clone());
        (state, app, dir)
    }

    #[tokio::test]
    async fn ready_turns_503_with_reasons_once_draining() {
        let (state, app, dir) = app_on_disk("drain").await;
        let ready = || Request::get("/ready").body(Body::empty()).unwrap();

        let before = app.clone().oneshot(ready()).await.unwrap();
        assert_eq!(before.status(), StatusCode::OK);

        state.begin_drain();
        let after = app.oneshot(ready()).await.unwrap();
        assert_eq!(after.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(after.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "not_ready");
        assert_eq!(body["error"]["details"]["reasons"][0], "shutting_down");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn ready_and_health_report_a_database_that_does_not_answer() {
        let (state, app, dir) = app_on_disk("db").await;
        let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
        let json = |r: axum::response::Response| async {
            let body = axum::body::to_bytes(r.into_body(), 65_536).await.unwrap();
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()
        };

        let health = json(
            app.clone()
                .oneshot(get("/health?detailed=true"))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(health["components"]["storage"]["status"], "ok", "{health}");
        assert!(
            health["components"]["storage"]["detail"]
                .as_str()
                .unwrap()
                .starts_with("SQLite at "),
            "{health}"
        );

        // A closed pool answers nothing, as a database that went away would.
        state.storage.close().await;
        let ready = app.clone().oneshot(get("/ready")).await.unwrap();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = json(ready).await;
        assert_eq!(
            body["error"]["details"]["reasons"][0],
            "storage_unavailable"
        );
        let health = app.oneshot(get("/health?detailed=true")).await.unwrap();
        assert_eq!(
            health.status(),
            StatusCode::OK,
            "liveness does not depend on it"
        );
        let health = json(health).await;
        assert_eq!(
            health["components"]["storage"]["status"], "unavailable",
            "{health}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
