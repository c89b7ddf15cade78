//! API keys: only a SHA-256 hash and a short visible prefix are stored; the
//! key itself is shown once, at creation.

use super::tenants::Tenant;
use super::{Storage, StorageError, new_id, now_ms};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::ToSchema;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The tenant's own API.
    Tenant,
    /// Everything, admin routes included.
    Admin,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Tenant => "tenant",
            Scope::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "admin" {
            Scope::Admin
        } else {
            Scope::Tenant
        }
    }
}

/// A stored key, without the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KeyRecord {
    /// `key_…`.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// `tenant` or `admin`.
    pub scope: Scope,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds, once revoked.
    pub revoked_at: Option<i64>,
}

/// Characters of a key's random part.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Length of the random part: 40 base62 characters, about 238 bits.
const RANDOM_LEN: usize = 40;
/// Visible prefix length: `hk_` and eight characters.
const PREFIX_LEN: usize = 11;

/// SHA-256 of a key, hex.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether `key` has the shape of a Harpoon key: `hk_` and 40 base62 characters.
pub fn is_well_formed(key: &str) -> bool {
    key.strip_prefix("hk_")
        .is_some_and(|r| r.len() == RANDOM_LEN && r.bytes().all(|b| ALPHABET.contains(&b)))
}

/// Id prefix of the bootstrap admin key's rows (`auth.admin_key`).
const BOOTSTRAP_ID: &str = "key_bootstrap_";

/// A fresh key in Harpoon's format.
pub fn generate() -> String {
    let mut rng = rand::rng();
    let random: String = (0..RANDOM_LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("hk_{random}")
}

fn record(row: &sqlx::any::AnyRow) -> Result<KeyRecord, sqlx::Error> {
    let scope: String = row.try_get("scope")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        prefix: row.try_get("prefix")?,
        scope: Scope::parse(&scope),
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Why a presented key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Unknown or revoked: 401.
    Invalid,
    /// The tenant is suspended: 403.
    Suspended,
}

impl Storage {
    /// Creates a key for a tenant; returns the key (shown once) and its record.
    pub async fn create_key(
        &self,
        tenant_id: &str,
        scope: Scope,
    ) -> Result<(String, KeyRecord), StorageError> {
        self.find_tenant(tenant_id).await?;
        let key = generate();
        let rec = KeyRecord {
            id: new_id("key"),
            tenant_id: tenant_id.to_owned(),
            prefix: key[..PREFIX_LEN].to_owned(),
            scope,
            created_at: now_ms(),
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, prefix, key_hash, scope, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&rec.id)
        .bind(&rec.tenant_id)
        .bind(&rec.prefix)
        .bind(hash_key(&key))
        .bind(scope.as_str())
        .bind(rec.created_at)
        .execute(self.pool())
        .await?;
        Ok((key, rec))
    }

    /// Makes `key` (well formed, see [`is_well_formed`]) an admin key of
    /// the tenant `tenant` (created if missing), and revokes any earlier
    /// bootstrap key: the key of `auth.admin_key` at every start, so that
    /// changing the variable rotates it. Only its hash is stored.
    pub async fn ensure_bootstrap_key(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<KeyRecord, StorageError> {
        let owner = self.ensure_tenant(tenant).await?;
        let hash = hash_key(key);
        let id = format!("{BOOTSTRAP_ID}{}", &hash[..16]);
        let now = now_ms();
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE id LIKE 'key_bootstrap_%' AND id <> $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&id)
        .execute(self.pool())
        .await?;
        let rec = KeyRecord {
            id,
            tenant_id: owner.id,
            prefix: key.chars().take(PREFIX_LEN).collect(),
            scope: Scope::Admin,
            created_at: now,
            revoked_at: None,
        };
        // Present already (an unchanged variable): kept as it is, unless an
        // operator revoked it, which stands.
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, prefix, key_hash, scope, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&rec.id)
        .bind(&rec.tenant_id)
        .bind(&rec.prefix)
        .bind(&hash)
        .bind(Scope::Admin.as_str())
        .bind(rec.created_at)
        .execute(self.pool())
        .await?;
        Ok(rec)
    }

    /// A tenant's keys, newest first.
    pub async fn list_keys(&self, tenant_id: &str) -> Result<Vec<KeyRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, prefix, scope, created_at, revoked_at FROM api_keys \
             WHERE tenant_id = $1 ORDER BY created_at DESC, id",
        )
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Revokes a key; revoking twice keeps the first time.
    pub async fn revoke_key(&self, key_id: &str) -> Result<KeyRecord, StorageError> {
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(key_id)
            .execute(self.pool())
            .await?;
        let row = sqlx::query("SELECT id, tenant_id, prefix, scope, created_at, revoked_at FROM api_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StorageError::NotFound("key"))?;
        self.announce_callers_changed().await;
        Ok(record(&row)?)
    }

    /// The key's record and tenant, or why it is refused.
    pub async fn authenticate(
        &self,
        key: &str,
    ) -> Result<Result<(KeyRecord, Tenant), KeyRefusal>, StorageError> {
        let row = sqlx::query(
            "SELECT id, tenant_id, prefix, scope, created_at, revoked_at FROM api_keys WHERE key_hash = $1",
        )
        .bind(hash_key(key))
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(Err(KeyRefusal::Invalid));
        };
        let rec = record(&row)?;
        if rec.revoked_at.is_some() {
            return Ok(Err(KeyRefusal::Invalid));
        }
        let tenant = self.find_tenant(&rec.tenant_id).await?;
        if !tenant.is_active() {
            return Ok(Err(KeyRefusal::Suspended));
        }
        Ok(Ok((rec, tenant)))
    }
}
