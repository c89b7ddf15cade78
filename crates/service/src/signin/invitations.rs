//! People invited by their GitHub login into a tenant: let in as that
//! tenant and role even when no `auth.github.org_tenants` rule maps them
//! (so a tenant can start before its organisation is mapped).

use super::config::Role;
use crate::storage::{Storage, StorageError, now_ms};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

/// The provider invitations are for.
const PROVIDER: &str = "github";

/// An invitation, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Invitation {
    /// The GitHub login, lowercase.
    pub github_login: String,
    /// The tenant it lets them into.
    pub tenant_id: String,
    /// `admin` or `member`.
    #[schema(value_type = String)]
    pub role: Role,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Whether `login` has GitHub's shape: 1–39 letters, digits or single `-`,
/// not at either end.
pub fn is_github_login(login: &str) -> bool {
    (1..=39).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--")
}

/// Invites `login` into a tenant with `role`; a second invitation of the
/// same login replaces the first (one tenant per person).
pub async fn invite(
    storage: &Storage,
    login: &str,
    tenant_id: &str,
    role: Role,
) -> Result<Invitation, StorageError> {
    let invitation = Invitation {
        github_login: login.to_ascii_lowercase(),
        tenant_id: tenant_id.to_owned(),
        role,
        created_at: now_ms(),
    };
    sqlx::query(
        "INSERT INTO signin_invitations (provider, login, tenant_id, role, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider, login) DO UPDATE SET \
         tenant_id = excluded.tenant_id, role = excluded.role, created_at = excluded.created_at",
    )
    .bind(PROVIDER)
    .bind(&invitation.github_login)
    .bind(&invitation.tenant_id)
    .bind(role.as_str())
    .bind(invitation.created_at)
    .execute(storage.pool())
    .await?;
    Ok(invitation)
}

fn invitation(row: &sqlx::any::AnyRow) -> Result<Invitation, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(Invitation {
        github_login: row.try_get("login")?,
        tenant_id: row.try_get("tenant_id")?,
        role: Role::parse(&role),
        created_at: row.try_get("created_at")?,
    })
}

/// A tenant's invitations, by login.
pub async fn list(storage: &Storage, tenant_id: &str) -> Result<Vec<Invitation>, StorageError> {
    let rows = sqlx::query(
        "SELECT login, tenant_id, role, created_at FROM signin_invitations \
         WHERE provider = $1 AND tenant_id = $2 ORDER BY login",
    )
    .bind(PROVIDER)
    .bind(tenant_id)
    .fetch_all(storage.pool())
    .await?;
    Ok(rows.iter().map(invitation).collect::<Result<_, _>>()?)
}

/// Withdraws a tenant's invitation of `login`; whether there was one.
pub async fn withdraw(
    storage: &Storage,
    tenant_id: &str,
    login: &str,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "DELETE FROM signin_invitations WHERE provider = $1 AND login = $2 AND tenant_id = $3",
    )
    .bind(PROVIDER)
    .bind(login.to_ascii_lowercase())
    .bind(tenant_id)
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The invitation of GitHub user `login`, if any.
pub async fn find(storage: &Storage, login: &str) -> Result<Option<Invitation>, StorageError> {
    let row = sqlx::query(
        "SELECT login, tenant_id, role, created_at FROM signin_invitations \
         WHERE provider = $1 AND login = $2",
    )
    .bind(PROVIDER)
    .bind(login.to_ascii_lowercase())
    .fetch_optional(storage.pool())
    .await?;
    Ok(row.as_ref().map(invitation).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_logins_are_checked_for_their_shape() {
        for ok in ["octocat", "a", "mona-lisa", "x1"] {
            assert!(is_github_login(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "a_b", "a b", &"a".repeat(40)] {
            assert!(!is_github_login(bad), "{bad}");
        }
    }
}
