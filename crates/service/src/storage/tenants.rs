//! Tenants and their quotas.

use super::{Storage, StorageError, is_unique_violation, new_id, now_ms};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

/// Whether a tenant's keys may be used. Stored, and shown in JSON, as
/// `active` or `suspended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Its keys work.
    Active,
    /// Its keys answer 403 until it is reactivated.
    Suspended,
}

impl TenantStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// A team sharing the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Tenant {
    /// `ten_…`.
    pub id: String,
    /// Unique, human-chosen name.
    pub name: String,
    /// `active` or `suspended`.
    #[schema(value_type = String)]
    pub status: TenantStatus,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl Tenant {
    /// Whether its keys may be used.
    pub fn is_active(&self) -> bool {
        self.status == TenantStatus::Active
    }
}

/// Limits of one tenant; `None` means the configured default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Quota {
    /// Requests per minute (token bucket).
    pub requests_per_minute: Option<i64>,
    /// Requests in flight at once.
    pub max_concurrent: Option<i64>,
    /// Prompt plus completion tokens per UTC day.
    pub tokens_per_day: Option<i64>,
}

fn tenant(row: &sqlx::any::AnyRow) -> Result<Tenant, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Tenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: TenantStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "\"status\"".to_owned(),
            source: format!("tenant status {status:?} is neither `active` nor `suspended`").into(),
        })?,
        created_at: row.try_get("created_at")?,
    })
}

impl Storage {
    /// Creates an active tenant with its quota; a taken name is a conflict.
    pub async fn create_tenant(&self, name: &str, quota: Quota) -> Result<Tenant, StorageError> {
        let t = Tenant {
            id: new_id("ten"),
            name: name.to_owned(),
            status: TenantStatus::Active,
            created_at: now_ms(),
        };
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO tenants (id, name, status, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(t.status.as_str())
        .bind(t.created_at)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return Err(if is_unique_violation(&e) {
                StorageError::Conflict(format!("a tenant named {name:?} exists"))
            } else {
                e.into()
            });
        }
        sqlx::query(
            "INSERT INTO quotas (tenant_id, requests_per_minute, max_concurrent, tokens_per_day) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&t.id)
        .bind(quota.requests_per_minute)
        .bind(quota.max_concurrent)
        .bind(quota.tokens_per_day)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(t)
    }

    /// Every tenant, oldest first.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StorageError> {
        let rows =
            sqlx::query("SELECT id, name, status, created_at FROM tenants ORDER BY created_at, id")
                .fetch_all(self.pool())
                .await?;
        Ok(rows.iter().map(tenant).collect::<Result<_, _>>()?)
    }

    /// A tenant by id or by name.
    pub async fn find_tenant(&self, id_or_name: &str) -> Result<Tenant, StorageError> {
        // An id wins over a name (names may not look like ids, but be sure).
        let row = sqlx::query(
            "SELECT id, name, status, created_at FROM tenants WHERE id = $1 OR name = $1 \
             ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1",
        )
        .bind(id_or_name)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StorageError::NotFound("tenant"))?;
        Ok(tenant(&row)?)
    }

    /// Sets a tenant's status.
    pub async fn set_tenant_status(
        &self,
        id: &str,
        status: TenantStatus,
    ) -> Result<Tenant, StorageError> {
        let done = sqlx::query("UPDATE tenants SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(id)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound("tenant"));
        }
        self.announce_callers_changed().await;
        self.find_tenant(id).await
    }

    /// A tenant's quota row.
    pub async fn quota(&self, tenant_id: &str) -> Result<Quota, StorageError> {
        let row = sqlx::query(
            "SELECT requests_per_minute, max_concurrent, tokens_per_day FROM quotas WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            None => Quota::default(),
            Some(r) => Quota {
                requests_per_minute: r.try_get("requests_per_minute")?,
                max_concurrent: r.try_get("max_concurrent")?,
                tokens_per_day: r.try_get("tokens_per_day")?,
            },
        })
    }

    /// The tenant called `name`, created with the default quota if missing
    /// (the built-in tenant of a deployment without authentication).
    pub async fn ensure_tenant(&self, name: &str) -> Result<Tenant, StorageError> {
        match self.find_tenant(name).await {
            Ok(t) => Ok(t),
            Err(StorageError::NotFound(_)) => {
                match self.create_tenant(name, Quota::default()).await {
                    Err(StorageError::Conflict(_)) => self.find_tenant(name).await,
                    other => other,
                }
            }
            Err(e) => Err(e),
        }
    }
}
