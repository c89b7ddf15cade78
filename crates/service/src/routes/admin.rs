//! Admin routes: tenants and their keys. Admin-scoped keys only: every
//! handler takes [`AdminCaller`] first, so the scope is checked before a body
//! or path is looked at.

use crate::signin::{
    config::Role,
    invitations::{self, Invitation},
};
use crate::{
    error::{ApiError, ErrorBody},
    extract::ApiJson,
    middleware::auth::AdminCaller,
    ops::Validate,
    state::AppState,
    storage::{
        keys::{KeyRecord, Scope},
        tenants::{Quota, Tenant, TenantStatus},
    },
};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /v2/admin/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Unique name: 1–64 letters, digits, `-`, `_` or `.`.
    #[schema(pattern = "^(?!ten_)[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
    /// Limits; unset fields use the configured defaults.
    #[serde(default)]
    pub quota: Quota,
}

impl Validate for NewTenant {
    fn validate(&self) -> Result<(), ApiError> {
        let ok = !self.name.is_empty()
            && !self.name.starts_with("ten_")
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(ApiError::validation(
                "name: 1-64 letters, digits, '-', '_' or '.', not starting with `ten_`",
            ));
        }
        for (field, v) in [
            ("quota.requests_per_minute", self.quota.requests_per_minute),
            ("quota.max_concurrent", self.quota.max_concurrent),
            ("quota.tokens_per_day", self.quota.tokens_per_day),
        ] {
            if v.is_some_and(|v| v < 1) {
                return Err(ApiError::validation(format!("{field}: must be at least 1")));
            }
        }
        Ok(())
    }
}

/// Body of `POST /v2/admin/tenants/{id}/keys`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// `tenant` (default) or `admin`.
    pub scope: Option<Scope>,
}

impl Validate for NewKey {
    fn validate(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Body of `POST /v2/admin/tenants/{id}/invitations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// The person's GitHub login.
    #[schema(pattern = "^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}$")]
    pub github_login: String,
    /// `member` (default) or `admin`.
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
}

impl Validate for NewInvitation {
    fn validate(&self) -> Result<(), ApiError> {
        if invitations::is_github_login(&self.github_login) {
            Ok(())
        } else {
            Err(ApiError::validation(
                "github_login: 1-39 letters, digits or single hyphens, not at either end",
            ))
        }
    }
}

/// A new key: shown this once, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key. Store it now; only its hash is kept.
    pub key: String,
    /// Its record.
    pub record: KeyRecord,
}

/// Creates a tenant.
#[utoipa::path(post, path = "/v2/admin/tenants", tag = "admin", request_body = NewTenant,
    responses(
        (status = 201, description = "Created", body = Tenant),
        (status = 401, description = "No or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
        (status = 422, description = "Bad name or quota", body = ErrorBody),
    ))]
pub async fn create_tenant(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    let tenant = state.storage.create_tenant(&body.name, body.quota).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// Lists tenants.
#[utoipa::path(get, path = "/v2/admin/tenants", tag = "admin",
    responses(
        (status = 200, description = "Every tenant", body = [Tenant]),
        (status = 401, description = "No or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
    ))]
pub async fn list_tenants(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> Result<Json<Vec<Tenant>>, ApiError> {
    Ok(Json(state.storage.list_tenants().await?))
}

async fn set_status(
    state: &AppState,
    id: &str,
    status: TenantStatus,
) -> Result<Json<Tenant>, ApiError> {
    let tenant = state.storage.find_tenant(id).await?;
    let tenant = state.storage.set_tenant_status(&tenant.id, status).await?;
    if status == TenantStatus::Suspended {
        // Its people's sessions end now, on every replica (each reads the row).
        crate::signin::session::end_tenant_sessions(&state.storage, &tenant.id).await?;
    }
    state.callers.clear();
    Ok(Json(tenant))
}

/// Suspends a tenant: its keys answer 403 until it is reactivated.
#[utoipa::path(post, path = "/v2/admin/tenants/{id}/suspend", tag = "admin",
    params(("id" = String, Path, description = "Tenant id or name")),
    responses(
        (status = 200, description = "Suspended", body = Tenant),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
pub async fn suspend_tenant(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    set_status(&state, &id, TenantStatus::Suspended).await
}

/// Reactivates a suspended tenant.
#[utoipa::path(post, path = "/v2/admin/tenants/{id}/activate", tag = "admin",
    params(("id" = String, Path, description = "Tenant id or name")),
    responses(
        (status = 200, description = "Active", body = Tenant),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
pub async fn activate_tenant(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    set_status(&state, &id, TenantStatus::Active).await
}

/// Creates a key for a tenant; the key is in this answer only.
#[utoipa::path(post, path = "/v2/admin/tenants/{id}/keys", tag = "admin", request_body = NewKey,
    params(("id" = String, Path, description = "Tenant id or name")),
    responses(
        (status = 201, description = "Created", body = CreatedKey),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 422, description = "Bad scope", body = ErrorBody),
    ))]
pub async fn create_key(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let tenant = state.storage.find_tenant(&id).await?;
    let (key, record) = state
        .storage
        .create_key(&tenant.id, body.scope.unwrap_or(Scope::Tenant))
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, record })))
}

/// Lists a tenant's keys (prefixes only).
#[utoipa::path(get, path = "/v2/admin/tenants/{id}/keys", tag = "admin",
    params(("id" = String, Path, description = "Tenant id or name")),
    responses(
        (status = 200, description = "Keys, newest first", body = [KeyRecord]),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
pub async fn list_keys(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<Vec<KeyRecord>>, ApiError> {
    let tenant = state.storage.find_tenant(&id).await?;
    Ok(Json(state.storage.list_keys(&tenant.id).await?))
}

/// Revokes a key at once.
#[utoipa::path(post, path = "/v2/admin/keys/{id}/revoke", tag = "admin",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, description = "Revoked", body = KeyRecord),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ))]
pub async fn revoke_key(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<KeyRecord>, ApiError> {
    let record = state.storage.revoke_key(&id).await?;
    state.callers.clear();
    Ok(Json(record))
}

/// Invites a person by GitHub login into a tenant: GitHub sign-in lets them
/// in as this tenant and role even when no `auth.github.org_tenants` rule
/// maps them. A second invitation of the same login replaces the first.
#[utoipa::path(post, path = "/v2/admin/tenants/{id}/invitations", tag = "admin", request_body = NewInvitation,
    params(("id" = String, Path, description = "Tenant id or name")),
    responses(
        (status = 201, description = "Invited", body = Invitation),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 422, description = "Not a GitHub login, or an unknown role", body = ErrorBody),
    ))]
pub async fn invite(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewInvitation>,
) -> Result<(StatusCode, Json<Invitation>), ApiError> {
    let tenant = state.storage.find_tenant(&id).await?;
    let invitation = invitations::invite(
        &state.storage,
        &body.github_login,
        &tenant.id,
        body.role.unwrap_or(Role::Member),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// A tenant's invitations.
#[utoipa::path(get, path = "/v2/admin/tenants/{id}/invitations", tag = "admin",
    params(("id" = String, Path, description = "Tenant id or name")),
    responses(
        (status = 200, description = "By login", body = [Invitation]),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
pub async fn list_invitations(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<Vec<Invitation>>, ApiError> {
    let tenant = state.storage.find_tenant(&id).await?;
    Ok(Json(invitations::list(&state.storage, &tenant.id).await?))
}

/// Withdraws an invitation (a session already open stays until signed out or suspended).
#[utoipa::path(delete, path = "/v2/admin/tenants/{id}/invitations/{login}", tag = "admin",
    params(
        ("id" = String, Path, description = "Tenant id or name"),
        ("login" = String, Path, description = "The GitHub login"),
    ),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such tenant or invitation", body = ErrorBody),
    ))]
pub async fn withdraw_invitation(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path((id, login)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = state.storage.find_tenant(&id).await?;
    if invitations::withdraw(&state.storage, &tenant.id, &login).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            crate::error::ErrorCode::NotFound,
            format!("tenant {:?} has no invitation of {login:?}", tenant.name),
        ))
    }
}
