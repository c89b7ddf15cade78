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

/// Routes anyone may call: probes and the API description.
const PUBLIC: &[&str] = &["/health", "/ready", "/openapi.json"];

fn presented_key(request: &Request) -> Option<&str> {
    let headers = request.headers();
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn too_many(message: String, retry_after: Duration) -> Response {
    ApiError::too_many_requests(message, retry_after).into_response()
}

/// Authenticates, applies the request-rate and concurrency quotas, and
/// passes the [`Caller`] on.
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
    if route.as_deref() == Some("/metrics") {
        return match &state.settings.auth.metrics_token {
            Some(token) if presented_key(&request) != Some(token.expose()) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_metrics_token",
                "/metrics needs `Authorization: Bearer <auth.metrics_token>`",
            )
            .into_response(),
            _ => next.run(request).await,
        };
    }
    let key = presented_key(&request).map(str::to_owned);
    let caller = match identify(&state, key.as_deref()).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    if let Err(wait) = state.quotas.take_request(&caller.tenant.id, &caller.limits) {
        return too_many(
            format!(
                "tenant {:?} is over its {} requests per minute",
                caller.tenant.name, caller.limits.requests_per_minute
            ),
            wait,
        );
    }
    let Some(slot) = state.quotas.take_slot(&caller.tenant.id, &caller.limits) else {
        return too_many(
            format!(
                "tenant {:?} already has {} requests in flight",
                caller.tenant.name, caller.limits.max_concurrent
            ),
            Duration::from_secs(1),
        );
    };
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    // A streamed body is still in flight: release the slot when it ends.
    let (parts, body) = response.into_parts();
    let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
        let _held = &slot;
        chunk
    }));
    Response::from_parts(parts, body)
}

async fn identify(state: &AppState, key: Option<&str>) -> Result<Caller, ApiError> {
    let settings = &state.settings;
    let (tenant, scope) = if state.auth_mode == AuthMode::Disabled {
        (state.local_tenant.clone(), Scope::Admin)
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
            Ok((record, tenant)) => (tenant, record.scope),
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
    })
}
