//! The counters themselves: one connection (reconnecting by itself) and the
//! scripts that take a request, a slot or a reservation in one round trip.

use super::leases::{Inner, Lease, STORE_ERRORS, keep_renewing};
use crate::settings::cluster::{ClusterSettings, OnRedisError};
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

static ADMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/admit.lua")));
static RESERVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/reserve.lua")));
static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/settle.lua")));

/// Why the shared store could not decide.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    /// The store could not be reached, or the command failed there.
    #[error("the shared quota store (cluster.redis_url) did not answer: {0}")]
    Redis(#[from] redis::RedisError),
}

/// What admitting a request came to.
#[derive(Debug)]
pub enum Admission {
    /// Admitted: the lease is its concurrency slot.
    Admitted(Lease),
    /// Over the rate: the next request may go after this long.
    OverRate(Duration),
    /// Every slot is held.
    NoSlot,
}

/// What a reservation of daily tokens came to.
#[derive(Debug)]
pub enum BudgetCheck {
    /// Admitted; the lease holds the tokens (none for a check of 0 tokens).
    Reserved(Option<Lease>),
    /// Refused: tokens spent today plus those reserved in flight.
    Committed(u64),
    /// The day's counter does not exist yet: read the ledger and try again
    /// with its total.
    NeedsSeed,
}

/// Counters every replica shares, in Redis or Valkey.
pub struct SharedCounters {
    inner: Arc<Inner>,
    on_error: OnRedisError,
}

impl std::fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCounters").finish_non_exhaustive()
    }
}

impl SharedCounters {
    /// Counters as `settings` say, connected on first use (a store that is
    /// down at start is the same as one that goes down later). Needs a
    /// Tokio runtime.
    pub fn connect(settings: &ClusterSettings) -> Result<Option<Self>, CounterError> {
        let Some(url) = &settings.redis_url else {
            return Ok(None);
        };
        let client = redis::Client::open(url.expose())?;
        // Admission waits on each command: a hung store must not hold
        // requests for long.
        let timeout = Duration::from_millis(settings.redis_timeout_ms);
        let lease = Duration::from_secs(settings.lease_secs);
        let on_error = settings.on_redis_error;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        let inner = Arc::new(Inner {
            connection,
            held: Mutex::new(HashMap::new()),
            next_lease: AtomicU64::new(0),
            lease,
        });
        keep_renewing(&inner);
        Ok(Some(Self { inner, on_error }))
    }

    /// After the store failed at `step` of admitting a request: the error
    /// back under `on_redis_error: closed`, or `Ok` to count in this process
    /// instead under `open`; logged and counted either way.
    pub fn fall_back(&self, step: &'static str, error: CounterError) -> Result<(), CounterError> {
        let policy = match self.on_error {
            OnRedisError::Closed => "refused",
            OnRedisError::Open => "local",
        };
        metrics::counter!(STORE_ERRORS, "step" => step, "policy" => policy).increment(1);
        tracing::warn!(%error, step, policy, "the shared quota store failed");
        match self.on_error {
            OnRedisError::Closed => Err(error),
            OnRedisError::Open => Ok(()),
        }
    }

    /// One request from the tenant's bucket of `limits.0` a minute (burst
    /// as large), then one of its `limits.1` concurrent slots, held until
    /// the lease is dropped (or, if this replica dies, until it expires).
    pub async fn admit(
        &self,
        tenant: &str,
        (per_minute, max_concurrent): (u32, u32),
    ) -> Result<Admission, CounterError> {
        let interval_ms = 60_000.0 / f64::from(per_minute.max(1));
        let lease = Lease::new(
            &self.inner,
            format!("harpoon:{{{tenant}}}:slots"),
            uuid::Uuid::new_v4().simple().to_string(),
        );
        let (outcome, wait_ms): (i64, u64) = ADMIT
            .key(format!("harpoon:{{{tenant}}}:rate"))
            .key(lease.key())
            .arg(interval_ms)
            .arg(per_minute.max(1))
            .arg(max_concurrent)
            .arg(lease.member())
            .arg(self.inner.lease_ms())
            .invoke_async(&mut self.inner.connection.clone())
            .await?;
        Ok(match outcome {
            2 => Admission::Admitted(lease.hold()),
            1 => {
                lease.forget();
                Admission::NoSlot
            }
            _ => {
                lease.forget();
                Admission::OverRate(Duration::from_millis(wait_ms))
            }
        })
    }

    /// Reserves `tokens` of the tenant's `budget` for the UTC day starting at
    /// `day_ms` (`now_ms` being the present), seeding the day's counter with
    /// `seed` (the ledger's total) when it is new.
    pub async fn reserve(
        &self,
        tenant: &str,
        (day_ms, now_ms): (i64, i64),
        budget: u64,
        tokens: u64,
        seed: Option<i64>,
    ) -> Result<BudgetCheck, CounterError> {
        let (spent, held) = day_keys(tenant, day_ms);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let lease = Lease::new(&self.inner, held.clone(), format!("{id}:{tokens}"));
        let (outcome, committed): (i64, i64) = RESERVE
            .key(spent)
            .key(held)
            .arg(budget)
            .arg(tokens)
            .arg(id)
            .arg(self.inner.lease_ms())
            .arg(day_keys_lifetime_ms(day_ms, now_ms))
            .arg(seed.map(|s| s.to_string()).unwrap_or_default())
            .invoke_async(&mut self.inner.connection.clone())
            .await?;
        Ok(match outcome {
            1 if tokens > 0 => BudgetCheck::Reserved(Some(lease.hold())),
            1 => {
                lease.forget();
                BudgetCheck::Reserved(None)
            }
            -1 => {
                lease.forget();
                BudgetCheck::NeedsSeed
            }
            _ => {
                lease.forget();
                BudgetCheck::Committed(u64::try_from(committed).unwrap_or(0))
            }
        })
    }

    /// Adds `tokens` spent by the tenant on the day starting at `day_ms` and
    /// lets `reservation` go (from the day it was made on), in one step, in the background: the request is
    /// answered already, and a reservation that cannot be let go expires.
    pub fn settle(&self, tenant: &str, day_ms: i64, tokens: i64, reservation: Option<Lease>) {
        if tokens <= 0 && reservation.is_none() {
            return;
        }
        let (spent, today_held) = day_keys(tenant, day_ms);
        // A reservation is let go from its own day's set (one made before
        // midnight and settled after it is in yesterday's).
        let (held, member) = reservation
            .map(Lease::into_parts)
            .unwrap_or((today_held, String::new()));
        let mut connection = self.inner.connection.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let settled: Result<i64, _> = SETTLE
                .key(spent)
                .key(held)
                .arg(tokens.max(0))
                .arg(member)
                .invoke_async(&mut connection)
                .await;
            if let Err(e) = settled {
                metrics::counter!(STORE_ERRORS, "step" => "settle", "policy" => "none")
                    .increment(1);
                tracing::warn!(error = %e, "spent tokens could not be added to the shared daily budget");
            }
        });
    }
}

/// The day's spent counter and its reservations, one hash slot per tenant.
fn day_keys(tenant: &str, day_ms: i64) -> (String, String) {
    (
        format!("harpoon:{{{tenant}}}:spent:{day_ms}"),
        format!("harpoon:{{{tenant}}}:held:{day_ms}"),
    )
}

/// The day's keys live an hour past its end (a request admitted just before
/// midnight settles against its own day).
fn day_keys_lifetime_ms(day_ms: i64, now_ms: i64) -> i64 {
    (day_ms + 86_400_000 + 3_600_000 - now_ms).max(1_000)
}
