//! The counters themselves: one connection (reconnecting by itself) and the
//! scripts that take a request, a slot or a reservation in one round trip.

use super::config::OnRedisError;
use super::leases::{Inner, Lease, STORE_ERRORS, keep_renewing};
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// How long one command may take before the store counts as unreachable:
/// admission waits on it, so a hung store must not hold requests for long.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

static RATE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/rate.lua")));
static SLOT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/slot.lua")));
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
    pub(super) inner: Arc<Inner>,
    on_error: OnRedisError,
}

impl std::fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCounters").finish_non_exhaustive()
    }
}

impl SharedCounters {
    /// Counters at `url`, connected on first use (a store that is down at
    /// start is the same as one that goes down later), doing `on_error`
    /// when it does not answer. Needs a Tokio runtime.
    pub fn connect(
        url: &str,
        on_error: OnRedisError,
        lease: Duration,
    ) -> Result<Self, CounterError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
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
        Ok(Self { inner, on_error })
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

    /// One request from the tenant's bucket of `per_minute` (burst as
    /// large), or how long until the next one may go.
    pub async fn take_request(
        &self,
        tenant: &str,
        per_minute: u32,
    ) -> Result<Result<(), Duration>, CounterError> {
        let interval_ms = 60_000.0 / f64::from(per_minute.max(1));
        let wait_ms: u64 = RATE
            .key(format!("harpoon:{{{tenant}}}:rate"))
            .arg(interval_ms)
            .arg(per_minute.max(1))
            .invoke_async(&mut self.inner.connection.clone())
            .await?;
        Ok(if wait_ms == 0 {
            Ok(())
        } else {
            Err(Duration::from_millis(wait_ms))
        })
    }

    /// One of the tenant's `max` concurrent slots, held until the lease is
    /// dropped (or, if this replica dies, until it expires); `None` when
    /// every slot is taken.
    pub async fn take_slot(&self, tenant: &str, max: u32) -> Result<Option<Lease>, CounterError> {
        let key = format!("harpoon:{{{tenant}}}:slots");
        let lease = Lease::new(&self.inner, key, uuid::Uuid::new_v4().simple().to_string());
        let taken: i64 = SLOT
            .key(lease.key())
            .arg(max)
            .arg(lease.member())
            .arg(self.inner.lease_ms())
            .invoke_async(&mut self.inner.connection.clone())
            .await?;
        Ok(if taken == 1 {
            Some(lease.hold())
        } else {
            lease.forget();
            None
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
    /// lets `reservation` go, in one step, in the background: the request is
    /// answered already, and a reservation that cannot be let go expires.
    pub fn settle(&self, tenant: &str, day_ms: i64, tokens: i64, reservation: Option<Lease>) {
        if tokens <= 0 && reservation.is_none() {
            return;
        }
        let (spent, held) = day_keys(tenant, day_ms);
        let member = reservation.map(Lease::into_member).unwrap_or_default();
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
