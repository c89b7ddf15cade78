//! The dashboard: `GET /dashboard` (the page, public: it holds no data),
//! its embedded assets, the HTML fragments it fetches with the caller's key,
//! and `GET /v2/dashboard`, the same report as JSON.

use crate::{
    callers::Caller,
    dashboard,
    error::{ApiError, ErrorBody, ErrorCode},
    extract::ApiJson,
    ops::{
        classify::{ClassifyRequest, classify_text},
        dashboard::{DashboardQuery, DashboardReport, dashboard_report},
    },
    state::AppState,
};
use axum::{
    Extension, Json,
    extract::{Path, Query, State},
    http::header,
    response::{IntoResponse, Response},
};

/// What the page may load: its own script, style and fetches; nothing
/// inline, nothing from elsewhere, no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Fragments carry a tenant's figures: never kept by a cache.
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The dashboard page: sign-in with an API key, then panels over a chosen window.
#[utoipa::path(
    get,
    path = "/dashboard",
    tag = "operations",
    responses((status = 200, description = "The page (its data is fetched with an API key)", content_type = "text/html", body = String))
)]
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        dashboard::PAGE,
    )
        .into_response()
}

/// The page's script or style sheet, embedded in the binary.
#[utoipa::path(
    get,
    path = "/dashboard/assets/{name}",
    tag = "operations",
    params(("name" = String, Path, description = "`dashboard.js` or `dashboard.css`")),
    responses(
        (status = 200, description = "The asset", content(
            (String = "text/javascript; charset=utf-8"),
            (String = "text/css; charset=utf-8"),
        )),
        (status = 404, description = "No such asset", body = ErrorBody),
    )
)]
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (content_type, body) = dashboard::asset(&name)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such dashboard asset"))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// The dashboard's panels for a window, as an HTML fragment with SVG charts.
#[utoipa::path(
    get,
    path = "/dashboard/panels",
    tag = "operations",
    params(DashboardQuery),
    responses(
        (status = 200, description = "Panels: traffic, latency, models, hosted·ai, strikes", content_type = "text/html", body = String),
        (status = 400, description = "Unknown window (`param` names it), or a query string that does not parse (unknown parameters included)", body = ErrorBody),
        (status = 404, description = "Unknown tenant, or another tenant's (never 403)", body = ErrorBody),
    )
)]
pub async fn panels(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<DashboardQuery>,
) -> Result<Response, ApiError> {
    let report = dashboard_report(&state, &caller, &query).await?;
    // Drawing the charts is CPU work: off the serving thread.
    let body = tokio::task::spawn_blocking(move || dashboard::panels(&report))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "drawing the dashboard failed");
            ApiError::new(ErrorCode::Internal, "drawing the dashboard failed")
        })?;
    Ok(html(body))
}

/// The router's decision on a prompt with its signals drawn as bars, as an HTML fragment.
#[utoipa::path(
    post,
    path = "/dashboard/router",
    tag = "routing",
    request_body = ClassifyRequest,
    responses(
        (status = 200, description = "Tier, complexity and signals", content_type = "text/html", body = String),
        (status = 400, description = "Both or neither of `text` and `messages`", body = ErrorBody),
    )
)]
pub async fn router(
    State(state): State<AppState>,
    ApiJson(mut request): ApiJson<ClassifyRequest>,
) -> Response {
    // The box exists to show why: the signals are always asked for.
    request.explain = true;
    let result = classify_text(&state, &request);
    html(dashboard::router_result(&result))
}

/// Requests and tokens over time by model, tenant and tier, latency, first
/// token and tokens/s per model, models and engines, hosted·ai and strikes,
/// over a window: what the dashboard draws.
#[utoipa::path(
    get,
    path = "/v2/dashboard",
    tag = "tenancy",
    params(DashboardQuery),
    responses(
        (status = 200, description = "The report", body = DashboardReport),
        (status = 400, description = "Unknown window (`param` names it), or a query string that does not parse (unknown parameters included)", body = ErrorBody),
        (status = 404, description = "Unknown tenant, or another tenant's (never 403)", body = ErrorBody),
    )
)]
pub async fn report(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<DashboardQuery>,
) -> Result<Json<DashboardReport>, ApiError> {
    dashboard_report(&state, &caller, &query).await.map(Json)
}
