//! Authentication as a layer: reads the API key (`Authorization: Bearer …`
//! or `X-API-Key: …`), asks [`Callers`](crate::callers::Callers) who it is,
//! and puts the [`Caller`] into the request's extensions. Without a key, the
//! dashboard, the admin API and `/auth/*` also take a person's sign-in
//! session cookie (with CSRF checks on writes, `signin::csrf`); routes for
//! programs keep requiring keys. Public routes and `/metrics` have their own
//! rules here; quotas are the next layer's ([`super::admission`]).

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
    "/auth/providers",
    "/auth/github/login",
    "/auth/github/callback",
    "/auth/oidc/{provider}/login",
    "/auth/oidc/{provider}/callback",
];

/// The route saying whether the browser is signed in.
const SESSION_STATUS: &str = "/auth/session";

/// Whether a route (template) takes a sign-in session instead of a key:
/// the dashboard's fragments, its JSON report, the admin API and the
/// session's own routes. Every other route is for programs: keys only.
pub fn accepts_session(route: &str) -> bool {
    route == "/v2/dashboard"
        || route == "/auth/session"
        || route == "/auth/logout"
        || route.starts_with("/dashboard/")
        || route.starts_with("/v2/admin/")
}
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
    let session_cookie = key
        .is_none()
        .then(|| {
            crate::signin::session::cookie_in(
                request
                    .headers()
                    .get_all(header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
                crate::signin::session::SESSION_COOKIE,
            )
        })
        .flatten()
        .map(str::to_owned);
    if let Some(cookie) = session_cookie {
        if route.as_deref().is_some_and(accepts_session) {
            // Owned: the request (its body is not `Sync`) is not held across the lookup.
            let sent = Sent::of(&request);
            return match session_caller(&state, &sent, &cookie).await {
                Ok((caller, signed_in)) => {
                    request.extensions_mut().insert(caller);
                    request.extensions_mut().insert(signed_in);
                    next.run(request).await
                }
                Err(refused) => refused.into_response(),
            };
        }
        if state.auth_mode == AuthMode::Required && route.as_deref() != Some(METRICS) {
            return ApiError::new(
                ErrorCode::ApiKeyRequired,
                "this route is for programs and needs an API key (`Authorization: Bearer <key>`); \
                 a sign-in session is taken by the dashboard, /auth/session and the admin API only",
            )
            .into_response();
        }
    }
    // The page asks whether it is signed in before anyone is: no cookie and
    // no key is an answer there, not a refusal.
    if route.as_deref() == Some(SESSION_STATUS) && key.is_none() {
        return next.run(request).await;
    }
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

/// What the CSRF checks read from a request.
struct Sent {
    method: axum::http::Method,
    host: Option<String>,
    origin: Option<String>,
    token: Option<String>,
}

impl Sent {
    fn of(request: &Request) -> Self {
        let text = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            method: request.method().clone(),
            host: text("host"),
            origin: text("origin"),
            token: text(crate::signin::csrf::HEADER),
        }
    }
}

/// The caller behind a session cookie, its CSRF checks passed for a write.
async fn session_caller(
    state: &AppState,
    sent: &Sent,
    cookie: &str,
) -> Result<(Caller, crate::signin::flow::SignedIn), ApiError> {
    use crate::signin::{config::Role, csrf, flow::SessionRefusal, flow::record};
    let signed_in = state.signin.session(cookie).await.map_err(|e| match e {
        SessionRefusal::Tampered => {
            record("session", "invalid_cookie", None, &e.to_string());
            ApiError::new(ErrorCode::InvalidSession, e.to_string())
        }
        SessionRefusal::Ended => ApiError::new(ErrorCode::InvalidSession, e.to_string()),
        SessionRefusal::Suspended(_) => ApiError::new(ErrorCode::TenantSuspended, e.to_string()),
        SessionRefusal::Storage(e) => e.into(),
    })?;
    let own_origin = state.signin.own_origin(sent.host.as_deref()).ok();
    csrf::check(
        &sent.method,
        sent.origin.as_deref(),
        own_origin.as_deref(),
        sent.token.as_deref(),
        &signed_in.session.csrf_token,
    )
    .map_err(|e| {
        record(
            &signed_in.session.provider,
            "csrf",
            Some(&signed_in.session.subject),
            &e.to_string(),
        );
        ApiError::new(ErrorCode::CsrfRefused, e.to_string())
    })?;
    let mut caller = state.callers.for_tenant(signed_in.tenant.clone()).await?;
    caller.scope = match signed_in.session.role {
        Role::Admin => Scope::Admin,
        Role::Member => Scope::Tenant,
    };
    Ok((caller, signed_in))
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
