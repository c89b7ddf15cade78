//! Authentication as a layer: reads the API key (`Authorization: Bearer …`
//! or `X-API-Key: …`), asks [`Callers`](crate::callers::Callers) who it is,
//! and puts the [`Caller`] into the request's extensions. Public routes and
//! `/metrics` have their own rules here; quotas are the next layer's
//! ([`super::admission`]).

use crate::callers::{Caller, same_secret};
use crate::error::{ApiError, ErrorCode};
use crate::settings::AuthMode;
use crate::state::AppState;
use crate::storage::keys::Scope;
use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tracing::Instrument;

/// The authenticated caller of an admin route, or 403 `admin_required`.
///
/// An extractor rather than a check inside the handler: listed before the
/// body extractor, it refuses a non-admin key before the body is read, so
/// such a caller learns nothing about what a valid body looks like.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        // Only missing if a route were mounted outside the auth layer.
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(crate::callers::missing_key)?;
        caller.require_admin()?;
        Ok(Self(caller))
    }
}

/// Routes anyone may call: probes, the API description, and the dashboard's
/// page and assets (which hold no data: the page fetches it with a key).
pub const PUBLIC: &[&str] = &[
    "/health",
    "/ready",
    "/openapi.json",
    "/dashboard",
    "/dashboard/assets/{name}",
];
/// The route guarded by `auth.metrics_token` instead of API keys.
pub const METRICS: &str = "/metrics";

/// The API key in `Authorization: Bearer …` or `X-API-Key`, if any.
pub(crate) fn key_in(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    // An `Authorization` of another scheme (e.g. Basic, for a proxy) does not
    // hide an X-API-Key.
    bearer.or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    })
}

/// Authenticates and passes the [`Caller`] on; public routes pass as they are.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    if route.as_deref().is_some_and(|r| PUBLIC.contains(&r)) {
        return next.run(request).await;
    }
    // Owned: a borrow of the request (its body is not `Sync`) must not be
    // held across the key lookup.
    let key = key_in(request.headers()).map(str::to_owned);
    if route.as_deref() == Some(METRICS) {
        return match metrics_access(&state, key.as_deref()).await {
            Ok(()) => next.run(request).await,
            Err(refused) => refused.into_response(),
        };
    }
    let identified = state
        .callers
        .identify(key.as_deref())
        .instrument(tracing::info_span!(target: orchestrator::SPANS, "auth"))
        .await;
    match identified {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

/// Who may scrape `/metrics`: the holder of `auth.metrics_token` when one is
/// set; without one, anyone on a loopback bind (only this host can connect)
/// and admin keys on any other bind, where the figures (routes, models,
/// pools, tenants' traffic) would otherwise be open to the network.
async fn metrics_access(state: &AppState, key: Option<&str>) -> Result<(), ApiError> {
    if let Some(token) = &state.settings.auth.metrics_token {
        return if key.is_some_and(|k| same_secret(k, token.expose())) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::InvalidMetricsToken,
                "/metrics needs `Authorization: Bearer <auth.metrics_token>`",
            ))
        };
    }
    if state.settings.service.bind_ip().is_loopback() {
        return Ok(());
    }
    state
        .callers
        .identify(key)
        .await?
        .require_admin()
        .map_err(|_| {
            ApiError::new(
                ErrorCode::AdminRequired,
                "/metrics needs an admin key, or set auth.metrics_token for a scraper",
            )
        })
}

/// Whether the API key in `headers` (if any) is an admin's; `false` for a
/// missing, unknown or revoked key. Public routes use it to add details
/// only an operator should see; it takes no quota.
pub async fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    // Every local caller is an admin then; no lookup, so the answer holds
    // while the database is down, when the details matter most.
    if state.auth_mode == AuthMode::Disabled {
        return true;
    }
    state
        .callers
        .identify(key_in(headers))
        .await
        .is_ok_and(|caller| caller.scope == Scope::Admin)
}

/// Guard of the dedicated MCP listener when `mcp.api_key` is set: that key,
/// then every request runs as the local tenant (`auth.local_tenant`).
pub async fn mcp_shared_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.settings.mcp.api_key else {
        return next.run(request).await;
    };
    if !key_in(request.headers()).is_some_and(|k| same_secret(k, expected.expose())) {
        return ApiError::new(
            ErrorCode::InvalidMcpKey,
            "this MCP listener needs `Authorization: Bearer <MCP_API_KEY>` or `X-API-Key: <MCP_API_KEY>`",
        )
        .into_response();
    }
    match state.callers.mcp_listener().await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    /// `/metrics` on an app whose settings bind `host` (nothing is bound:
    /// requests go straight to the router), with an admin and a tenant key.
    async fn metrics_statuses(host: &str) -> Vec<axum::http::StatusCode> {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        // Loaded as at start-up, so the bind address resolves the auth mode.
        let env = [
            ("SERVICE_HOST", host),
            ("HARPOON__STORAGE__DATA_DIR", dir.path().to_str().unwrap()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let settings = crate::settings::Settings::load(None, &env)
            .unwrap()
            .settings;
        let (state, _writer) = crate::bootstrap::open_state(settings, false).await.unwrap();
        let ops = state
            .storage
            .create_tenant("ops", Default::default())
            .await
            .unwrap();
        let acme = state
            .storage
            .create_tenant("acme", Default::default())
            .await
            .unwrap();
        let (admin, _) = state
            .storage
            .create_key(&ops.id, Scope::Admin)
            .await
            .unwrap();
        let (tenant, _) = state
            .storage
            .create_key(&acme.id, Scope::Tenant)
            .await
            .unwrap();
        let app = crate::app::router(state.clone());
        let mut statuses = Vec::new();
        for key in [None, Some(tenant.as_str()), Some(admin.as_str())] {
            let mut request = axum::http::Request::get("/metrics");
            if let Some(key) = key {
                request = request.header("authorization", format!("Bearer {key}"));
            }
            let request = request.body(Body::empty()).unwrap();
            statuses.push(app.clone().oneshot(request).await.unwrap().status());
        }
        state.storage.close().await;
        statuses
    }

    #[tokio::test]
    async fn metrics_without_a_token_are_for_admin_keys_off_loopback() {
        use axum::http::StatusCode as S;
        assert_eq!(
            metrics_statuses("0.0.0.0").await,
            [S::UNAUTHORIZED, S::FORBIDDEN, S::OK],
            "no key, a tenant key, an admin key"
        );
        assert_eq!(
            metrics_statuses("127.0.0.1").await,
            [S::OK, S::OK, S::OK],
            "a loopback bind is reachable from this host only"
        );
    }
}
