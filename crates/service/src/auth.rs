//! Who is calling: API keys (`Authorization: Bearer …` or `X-API-Key: …`),
//! tenant status, and the per-tenant request quotas, as one middleware.

use crate::error::ApiError;
use crate::quota::Limits;
use crate::settings::AuthMode;
use crate::state::AppState;
use crate::storage::keys::{KeyRefusal, Scope};
use crate::storage::tenants::Tenant;
use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use std::time::Duration;

/// The authenticated caller, in every authenticated request's extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Its tenant.
    pub tenant: Tenant,
    /// What its key may do (`admin` when auth is disabled).
    pub scope: Scope,
    /// Limits in force.
    pub limits: Limits,
    /// Id of the API key presented; `None` when no tenant key was involved
    /// (auth disabled, the shared-key MCP listener, stdio).
    pub key_id: Option<String>,
}

impl Caller {
    /// 403 unless the caller holds an admin key.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.scope == Scope::Admin {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_required",
                "this route needs an admin key",
            ))
        }
    }
}

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
        let caller = parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            // Only reachable if a route were mounted outside the auth layer.
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_api_key",
                "send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            )
        })?;
        caller.require_admin()?;
        Ok(Self(caller))
    }
}

/// Routes anyone may call: probes and the API description.
pub const PUBLIC: &[&str] = &["/health", "/ready", "/openapi.json"];
/// The route guarded by `auth.metrics_token` instead of API keys.
pub const METRICS: &str = "/metrics";

pub(crate) fn presented_key(request: &Request) -> Option<&str> {
    key_in(request.headers())
}

/// The API key in `Authorization: Bearer …` or `X-API-Key`, if any.
pub(crate) fn key_in(headers: &axum::http::HeaderMap) -> Option<&str> {
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

/// Equal without leaking where they differ: digests compared in full.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// Authenticates, applies the request-rate and concurrency quotas, and
/// passes the [`Caller`] on.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    if route.as_deref().is_some_and(|r| PUBLIC.contains(&r)) {
        return next.run(request).await;
    }
    if route.as_deref() == Some(METRICS) {
        // Owned: a borrow of the request (its body is not `Sync`) must not
        // be held across the key lookup.
        let key = presented_key(&request).map(str::to_owned);
        return match metrics_access(&state, key.as_deref()).await {
            Ok(()) => next.run(request).await,
            Err(refused) => refused.into_response(),
        };
    }
    let key = presented_key(&request).map(str::to_owned);
    let caller = match identify(&state, key.as_deref()).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    admit(&state, caller, request, next).await
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
                StatusCode::UNAUTHORIZED,
                "invalid_metrics_token",
                "/metrics needs `Authorization: Bearer <auth.metrics_token>`",
            ))
        };
    }
    // An address that does not parse is treated as reachable from outside.
    let loopback = state
        .settings
        .service
        .bind_ip()
        .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return Ok(());
    }
    identify(state, key).await?.require_admin().map_err(|_| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_required",
            "/metrics needs an admin key, or set auth.metrics_token for a scraper",
        )
    })
}

/// Whether the API key in `headers` (if any) is an admin's; `false` for a
/// missing, unknown or revoked key. Public routes use it to add details
/// only an operator should see; it takes no quota.
pub async fn is_admin(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    // Every local caller is an admin then; no lookup, so the answer holds
    // while the database is down, when the details matter most.
    if state.auth_mode == AuthMode::Disabled {
        return true;
    }
    identify(state, key_in(headers))
        .await
        .is_ok_and(|caller| caller.scope == Scope::Admin)
}

/// Applies the caller's request-rate and concurrency quotas, then runs the
/// request with the [`Caller`] in its extensions; a streamed answer holds its
/// concurrency slot until the stream ends.
async fn admit(state: &AppState, caller: Caller, mut request: Request, next: Next) -> Response {
    if let Err(refused) = take_request(state, &caller) {
        return refused.into_response();
    }
    let Some(slot) = state.quotas.take_slot(&caller.tenant.id, &caller.limits) else {
        return ApiError::too_many_requests(
            format!(
                "tenant {:?} already has {} requests in flight",
                caller.tenant.name, caller.limits.max_concurrent
            ),
            Duration::from_secs(1),
        )
        .into_response();
    };
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !streaming {
        return response; // complete: the slot is released here
    }
    // A streamed body is still in flight: hold the slot until it ends.
    let (parts, body) = response.into_parts();
    let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
        let _held = &slot;
        chunk
    }));
    Response::from_parts(parts, body)
}

/// One request from the caller's per-minute bucket, or 429 with `Retry-After`.
fn take_request(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    state
        .quotas
        .take_request(&caller.tenant.id, &caller.limits)
        .map_err(|wait| {
            ApiError::too_many_requests(
                format!(
                    "tenant {:?} is over its {} requests per minute",
                    caller.tenant.name, caller.limits.requests_per_minute
                ),
                wait,
            )
        })
}

/// How long a resolved caller is reused without asking the database. Admin
/// changes made through this process clear the cache at once; changes made
/// elsewhere (the CLI, another replica) take effect within this time plus
/// one lookup.
const CALLER_TTL: Duration = Duration::from_secs(2);

/// How long an expired caller may still be served while one background
/// lookup refreshes it. Without this, every key's expiry sent each request
/// arriving during the lookup to the database too: at a few thousand
/// requests a second that stampede was the gateway's p99.
const CALLER_STALE_LIMIT: Duration = Duration::from_secs(10);

struct CachedCaller {
    fetched: std::time::Instant,
    caller: Caller,
    /// A background lookup is under way; other requests serve the stale entry.
    refreshing: bool,
}

/// What the cache knows about a key.
enum Cached {
    /// Serve it.
    Fresh(Caller),
    /// Serve it, and this request must start the refresh.
    Stale(Caller),
    /// Ask the database before answering.
    Missing,
}

/// Recently resolved callers by key hash (or the local tenant's marker).
#[derive(Default)]
pub struct CallerCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedCaller>>,
    /// Bumped by every `clear`: a lookup that began before a clear must not
    /// put its (possibly stale) answer back.
    generation: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for CallerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerCache").finish_non_exhaustive()
    }
}

impl CallerCache {
    fn get(&self, id: &str) -> Cached {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = entries.get_mut(id) else {
            return Cached::Missing;
        };
        let age = entry.fetched.elapsed();
        if age < CALLER_TTL || (age < CALLER_STALE_LIMIT && entry.refreshing) {
            Cached::Fresh(entry.caller.clone())
        } else if age < CALLER_STALE_LIMIT {
            entry.refreshing = true;
            Cached::Stale(entry.caller.clone())
        } else {
            Cached::Missing
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn put(&self, id: String, caller: Caller, seen: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if self.generation() != seen {
            return;
        }
        entries.retain(|_, e| e.fetched.elapsed() < CALLER_STALE_LIMIT);
        let fetched = std::time::Instant::now();
        entries.insert(
            id,
            CachedCaller {
                fetched,
                caller,
                refreshing: false,
            },
        );
    }

    /// A refresh failed: a refused key is forgotten (the next request gets
    /// the refusal); on a storage error the next request tries again.
    fn refresh_failed(&self, id: &str, refused: bool) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if refused {
            entries.remove(id);
        } else if let Some(entry) = entries.get_mut(id) {
            entry.refreshing = false;
        }
    }

    /// Forgets every caller (after a suspension, revocation or quota change).
    pub fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.clear();
    }
}

/// Who a request claims to be, before the cache or the database says who it is.
#[derive(Debug, Clone)]
enum Claim<'a> {
    /// An API key (or none) on the main listener.
    Key(Option<std::borrow::Cow<'a, str>>),
    /// The shared-key MCP listener, which runs as the local tenant.
    McpListener,
}

impl Claim<'_> {
    /// The same claim, owning its key (for a background refresh).
    fn into_owned(self) -> Claim<'static> {
        match self {
            Claim::Key(key) => Claim::Key(key.map(|k| std::borrow::Cow::Owned(k.into_owned()))),
            Claim::McpListener => Claim::McpListener,
        }
    }
}

async fn identify(state: &AppState, key: Option<&str>) -> Result<Caller, ApiError> {
    cached_caller(state, Claim::Key(key.map(std::borrow::Cow::Borrowed))).await
}

/// The caller behind a claim, from the cache while fresh; a stale entry is
/// served while one background lookup refreshes it.
async fn cached_caller(state: &AppState, claim: Claim<'_>) -> Result<Caller, ApiError> {
    // Hash once: the cache never holds a key itself.
    let cache_id = match (&claim, state.auth_mode) {
        (Claim::McpListener, _) => "mcp-listener".to_owned(),
        (Claim::Key(_), AuthMode::Disabled) => "local".to_owned(),
        (Claim::Key(Some(k)), AuthMode::Required) => crate::storage::keys::hash_key(k),
        (Claim::Key(None), AuthMode::Required) => String::new(),
    };
    match state.callers.get(&cache_id) {
        Cached::Fresh(caller) => Ok(caller),
        Cached::Stale(caller) => {
            let (state, claim) = (state.clone(), claim.into_owned());
            tokio::spawn(async move {
                let seen = state.callers.generation();
                match resolve_claim(&state, &claim).await {
                    Ok(fresh) => state.callers.put(cache_id, fresh, seen),
                    Err(e) => state
                        .callers
                        .refresh_failed(&cache_id, e.status().is_client_error()),
                }
            });
            Ok(caller)
        }
        Cached::Missing => {
            let seen = state.callers.generation();
            let caller = resolve_claim(state, &claim).await?;
            state.callers.put(cache_id, caller.clone(), seen);
            Ok(caller)
        }
    }
}

async fn resolve_claim(state: &AppState, claim: &Claim<'_>) -> Result<Caller, ApiError> {
    match claim {
        Claim::Key(key) => resolve(state, key.as_deref()).await,
        Claim::McpListener => {
            // Read again, so a suspension of the local tenant holds here too.
            let tenant = state
                .storage
                .find_tenant(&state.local_tenant.id)
                .await
                .map_err(ApiError::from)?;
            if tenant.status != "active" {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "tenant_suspended",
                    format!(
                        "tenant {:?}, which this MCP listener runs as, is suspended",
                        tenant.name
                    ),
                ));
            }
            caller_for(state, tenant).await
        }
    }
}

async fn resolve(state: &AppState, key: Option<&str>) -> Result<Caller, ApiError> {
    let settings = &state.settings;
    let (tenant, scope, key_id) = if state.auth_mode == AuthMode::Disabled {
        (state.local_tenant.clone(), Scope::Admin, None)
    } else {
        let key = key.filter(|k| !k.is_empty()).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_api_key",
                "send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            )
        })?;
        match state
            .storage
            .authenticate(key)
            .await
            .map_err(ApiError::from)?
        {
            Ok((record, tenant)) => (tenant, record.scope, Some(record.id)),
            Err(KeyRefusal::Invalid) => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_api_key",
                    "the API key is unknown or revoked",
                ));
            }
            Err(KeyRefusal::Suspended) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "tenant_suspended",
                    "the tenant of this API key is suspended",
                ));
            }
        }
    };
    let quota = state
        .storage
        .quota(&tenant.id)
        .await
        .map_err(ApiError::from)?;
    Ok(Caller {
        limits: Limits::resolve(&quota, &settings.quotas),
        tenant,
        scope,
        key_id,
    })
}

/// The caller for a tenant reached without a tenant key (MCP over stdio, the
/// shared-key MCP listener): the tenant's own limits, tenant scope.
pub async fn caller_for(state: &AppState, tenant: Tenant) -> Result<Caller, ApiError> {
    let quota = state
        .storage
        .quota(&tenant.id)
        .await
        .map_err(ApiError::from)?;
    Ok(Caller {
        limits: Limits::resolve(&quota, &state.settings.quotas),
        tenant,
        scope: Scope::Tenant,
        key_id: None,
    })
}

/// Guard of the dedicated MCP listener when `mcp.api_key` is set: that key,
/// then every request runs as the local tenant (`auth.local_tenant`), under
/// its request-rate and concurrency quotas.
pub async fn mcp_shared_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.settings.mcp.api_key else {
        return next.run(request).await;
    };
    if !presented_key(&request).is_some_and(|k| same_secret(k, expected.expose())) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_mcp_key",
            "this MCP listener needs `Authorization: Bearer <MCP_API_KEY>` or `X-API-Key: <MCP_API_KEY>`",
        )
        .into_response();
    }
    let caller = match cached_caller(&state, Claim::McpListener).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    admit(&state, caller, request, next).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn caller(name: &str) -> Caller {
        Caller {
            tenant: Tenant {
                id: format!("ten_{name}"),
                name: name.to_owned(),
                status: "active".to_owned(),
                created_at: 0,
            },
            scope: Scope::Tenant,
            limits: Limits {
                requests_per_minute: 60,
                max_concurrent: 4,
                tokens_per_day: None,
            },
            key_id: None,
        }
    }

    fn age(cache: &CallerCache, id: &str, by: Duration) {
        let mut entries = cache.entries.lock().unwrap();
        let entry = entries.get_mut(id).unwrap();
        entry.fetched = Instant::now().checked_sub(by).unwrap();
    }

    #[test]
    fn an_expired_caller_is_refreshed_by_one_request_while_others_are_served() {
        let cache = CallerCache::default();
        cache.put("k".into(), caller("a"), cache.generation());
        assert!(matches!(cache.get("k"), Cached::Fresh(_)));
        age(&cache, "k", CALLER_TTL + Duration::from_millis(1));
        assert!(
            matches!(cache.get("k"), Cached::Stale(_)),
            "the first request after expiry starts the refresh"
        );
        assert!(
            matches!(cache.get("k"), Cached::Fresh(_)),
            "the others do not stampede the database"
        );
        age(&cache, "k", CALLER_STALE_LIMIT);
        assert!(
            matches!(cache.get("k"), Cached::Missing),
            "too old to serve at all"
        );
    }

    #[test]
    fn a_refused_refresh_forgets_the_caller_and_a_failed_one_retries() {
        let cache = CallerCache::default();
        cache.put("k".into(), caller("a"), cache.generation());
        age(&cache, "k", CALLER_TTL);
        assert!(matches!(cache.get("k"), Cached::Stale(_)));
        cache.refresh_failed("k", false);
        assert!(
            matches!(cache.get("k"), Cached::Stale(_)),
            "after a storage error the next request tries again"
        );
        cache.refresh_failed("k", true);
        assert!(
            matches!(cache.get("k"), Cached::Missing),
            "a revoked key is not served again"
        );
    }

    /// `/metrics` on an app whose settings bind `host` (nothing is bound:
    /// requests go straight to the router), with an admin and a tenant key.
    async fn metrics_statuses(host: &str) -> Vec<axum::http::StatusCode> {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::settings::Settings::default();
        settings.storage.data_dir = dir.path().to_owned();
        settings.service.host = host.to_owned();
        let (state, _writer) = crate::server::open_state(settings, false).await.unwrap();
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

    #[test]
    fn a_lookup_that_began_before_a_clear_is_not_cached() {
        let cache = CallerCache::default();
        let seen = cache.generation();
        cache.clear();
        cache.put("k".into(), caller("a"), seen);
        assert!(matches!(cache.get("k"), Cached::Missing));
    }
}
