//! Who is calling: the caller behind an API key (its tenant, scope and
//! limits), resolved through a short-lived cache so the database is not asked
//! on every request. No transport here; the auth middleware reads the key
//! from the request and asks [`Callers`].

use crate::error::{ApiError, ErrorCode};
use crate::quota::Limits;
use crate::settings::{AuthMode, QuotaSettings};
use crate::storage::Storage;
use crate::storage::keys::{KeyRefusal, Scope};
use crate::storage::tenants::Tenant;
use std::borrow::Cow;
use std::sync::Arc;
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
                ErrorCode::AdminRequired,
                "this route needs an admin key",
            ))
        }
    }
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

/// How long a resolved caller is reused without asking the database. Admin
/// changes made through this process clear the cache at once, and on
/// PostgreSQL so do those of every other replica and of the CLI (announced
/// through LISTEN/NOTIFY, `storage::notify`); otherwise they take effect
/// within this time plus one lookup.
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
struct CallerCache {
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
    /// An API key (or none) on the main listener; borrowed from the request,
    /// owned only by a background refresh.
    Key(Option<Cow<'a, str>>),
    /// The shared-key MCP listener, which runs as the local tenant.
    McpListener,
}

impl Claim<'_> {
    /// The same claim, owning its key (for a background refresh).
    fn into_owned(self) -> Claim<'static> {
        match self {
            Claim::Key(key) => Claim::Key(key.map(|k| Cow::Owned(k.into_owned()))),
            Claim::McpListener => Claim::McpListener,
        }
    }
}

/// Resolves API keys to callers, with the cache in front of the database.
pub struct Callers {
    storage: Storage,
    mode: AuthMode,
    local_tenant: Tenant,
    defaults: QuotaSettings,
    cache: CallerCache,
}

impl std::fmt::Debug for Callers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callers")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Callers {
    /// Callers of a service in `mode`, whose tenants' limits default to `defaults`.
    pub fn new(
        storage: Storage,
        mode: AuthMode,
        local_tenant: Tenant,
        defaults: QuotaSettings,
    ) -> Self {
        Self {
            storage,
            mode,
            local_tenant,
            defaults,
            cache: CallerCache::default(),
        }
    }

    /// Forgets every caller (after a suspension, revocation or quota change).
    pub fn clear(&self) {
        self.cache.clear();
    }

    /// The caller presenting `key` (with auth disabled, the local tenant as admin).
    pub async fn identify(self: &Arc<Self>, key: Option<&str>) -> Result<Caller, ApiError> {
        self.cached(Claim::Key(key.map(Cow::Borrowed))).await
    }

    /// The caller of the shared-key MCP listener: the local tenant, unless suspended.
    pub async fn mcp_listener(self: &Arc<Self>) -> Result<Caller, ApiError> {
        self.cached(Claim::McpListener).await
    }

    /// The caller for a tenant reached without a tenant key (MCP over stdio, the
    /// shared-key MCP listener): the tenant's own limits, tenant scope.
    pub async fn for_tenant(&self, tenant: Tenant) -> Result<Caller, ApiError> {
        let quota = self.storage.quota(&tenant.id).await?;
        Ok(Caller {
            limits: Limits::resolve(&quota, &self.defaults),
            tenant,
            scope: Scope::Tenant,
            key_id: None,
        })
    }

    /// The caller behind a claim, from the cache while fresh; a stale entry is
    /// served while one background lookup refreshes it.
    async fn cached(self: &Arc<Self>, claim: Claim<'_>) -> Result<Caller, ApiError> {
        // Hash once: the cache never holds a key itself.
        let cache_id = match (&claim, self.mode) {
            (Claim::McpListener, _) => "mcp-listener".to_owned(),
            (Claim::Key(_), AuthMode::Disabled) => "local".to_owned(),
            (Claim::Key(Some(k)), AuthMode::Required) => crate::storage::keys::hash_key(k),
            (Claim::Key(None), AuthMode::Required) => String::new(),
        };
        match self.cache.get(&cache_id) {
            Cached::Fresh(caller) => Ok(caller),
            Cached::Stale(caller) => {
                let (this, claim) = (self.clone(), claim.into_owned());
                tokio::spawn(async move {
                    let seen = this.cache.generation();
                    match this.resolve(&claim).await {
                        Ok(fresh) => this.cache.put(cache_id, fresh, seen),
                        Err(e) => this
                            .cache
                            .refresh_failed(&cache_id, e.status().is_client_error()),
                    }
                });
                Ok(caller)
            }
            Cached::Missing => {
                let seen = self.cache.generation();
                let caller = self.resolve(&claim).await?;
                self.cache.put(cache_id, caller.clone(), seen);
                Ok(caller)
            }
        }
    }

    async fn resolve(&self, claim: &Claim<'_>) -> Result<Caller, ApiError> {
        match claim {
            Claim::Key(key) => self.resolve_key(key.as_deref()).await,
            Claim::McpListener => {
                // Read again, so a suspension of the local tenant holds here too.
                let tenant = self.storage.find_tenant(&self.local_tenant.id).await?;
                if !tenant.is_active() {
                    return Err(ApiError::new(
                        ErrorCode::TenantSuspended,
                        format!(
                            "tenant {:?}, which this MCP listener runs as, is suspended",
                            tenant.name
                        ),
                    ));
                }
                self.for_tenant(tenant).await
            }
        }
    }

    async fn resolve_key(&self, key: Option<&str>) -> Result<Caller, ApiError> {
        let (tenant, scope, key_id) = if self.mode == AuthMode::Disabled {
            (self.local_tenant.clone(), Scope::Admin, None)
        } else {
            let key = key.filter(|k| !k.is_empty()).ok_or_else(missing_key)?;
            match self.storage.authenticate(key).await? {
                Ok((record, tenant)) => (tenant, record.scope, Some(record.id)),
                Err(KeyRefusal::Invalid) => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidApiKey,
                        "the API key is unknown or revoked",
                    ));
                }
                Err(KeyRefusal::Suspended) => {
                    return Err(ApiError::new(
                        ErrorCode::TenantSuspended,
                        "the tenant of this API key is suspended",
                    ));
                }
            }
        };
        let quota = self.storage.quota(&tenant.id).await?;
        Ok(Caller {
            limits: Limits::resolve(&quota, &self.defaults),
            tenant,
            scope,
            key_id,
        })
    }
}

/// 401 for a request without a key, saying how to send one.
pub fn missing_key() -> ApiError {
    ApiError::new(
        ErrorCode::MissingApiKey,
        "send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
    )
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
                status: crate::storage::tenants::TenantStatus::Active,
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

    #[test]
    fn a_lookup_that_began_before_a_clear_is_not_cached() {
        let cache = CallerCache::default();
        let seen = cache.generation();
        cache.clear();
        cache.put("k".into(), caller("a"), seen);
        assert!(matches!(cache.get("k"), Cached::Missing));
    }
}
