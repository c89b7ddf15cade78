//! The caller's usage ledger, summed (REST's `GET /v2/usage`, MCP's
//! `harpoon://usage`), and the instants its queries name.

use crate::{
    callers::Caller,
    error::ApiError,
    state::AppState,
    storage::{
        now_ms,
        usage::{GroupBy, UsageGroup},
    },
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Query of `GET /v2/usage`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// Start, inclusive: `YYYY-MM-DD` (UTC midnight) or RFC 3339; default 30 days ago.
    pub since: Option<String>,
    /// End, exclusive: `YYYY-MM-DD` or RFC 3339; default now.
    pub until: Option<String>,
    /// `model` (default) or `day`.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^(model|day)$")]
    pub group_by: GroupBy,
    /// Another tenant's id or name (admin keys only).
    pub tenant: Option<String>,
}

/// Body of `GET /v2/usage`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    /// Tenant reported.
    pub tenant: String,
    /// Start, Unix milliseconds.
    pub since: i64,
    /// End, Unix milliseconds.
    pub until: i64,
    /// `model` or `day`.
    #[schema(value_type = String)]
    pub group_by: GroupBy,
    /// One entry per group.
    pub groups: Vec<UsageGroup>,
    /// hosted·ai use since the service started, per model: requests, tokens,
    /// pro-rated vGPU-seconds and estimated cost (absent without hosted·ai).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub hosted_ai: Option<Vec<orchestrator::hosted_ai::ModelUsage>>,
}

/// Parses `YYYY-MM-DD` (UTC midnight) or an RFC 3339 instant into Unix ms.
pub fn parse_instant(field: &str, raw: &str) -> Result<i64, ApiError> {
    let rfc3339 = time::format_description::well_known::Rfc3339;
    let parsed = time::OffsetDateTime::parse(raw, &rfc3339).or_else(|_| {
        let date_format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(raw, &date_format).map(|d| d.midnight().assume_utc())
    });
    parsed
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        .map_err(|_| {
            ApiError::validation(format!(
                "{field}: {raw:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"
            ))
        })
}

/// The usage report a query asks for, as `caller` may see it (REST and MCP).
pub async fn usage_report(
    state: &AppState,
    caller: &Caller,
    query: &UsageQuery,
) -> Result<UsageReport, ApiError> {
    let admin = caller.require_admin().is_ok();
    let tenant = match &query.tenant {
        // A non-admin only ever sees its own tenant, found without a lookup.
        Some(t) if !admin && (t == &caller.tenant.id || t == &caller.tenant.name) => {
            caller.tenant.clone()
        }
        // Another tenant's data does not exist for a non-admin caller.
        Some(t)
            if caller.require_admin().is_err()
                && t != &caller.tenant.id
                && t != &caller.tenant.name =>
        {
            return Err(ApiError::from(crate::storage::StorageError::NotFound(
                "tenant",
            )));
        }
        Some(t) => state.storage.find_tenant(t).await?,
        None => caller.tenant.clone(),
    };
    let until = match &query.until {
        Some(raw) => parse_instant("until", raw)?,
        None => now_ms() + 1,
    };
    let since = match &query.since {
        Some(raw) => parse_instant("since", raw)?,
        None => until - 30 * 86_400_000,
    };
    if since > until {
        return Err(ApiError::validation("since: must not be after until"));
    }
    let groups = state
        .storage
        .usage_summary(&tenant.id, since, until, query.group_by)
        .await?;
    let hosted_ai = state
        .hosted_ai
        .as_ref()
        .map(|m| m.meter().tenant(&tenant.id));
    Ok(UsageReport {
        hosted_ai,
        tenant: tenant.id,
        since,
        until,
        group_by: query.group_by,
        groups,
    })
}
