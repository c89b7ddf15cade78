//! The usage ledger: one row per inference request, successful or not.
//!
//! Rows go through a background writer that commits them in batches (at most
//! one commit per 100 ms), so a request does not wait for a disk sync of its
//! own bookkeeping; on shutdown the writer drains before the process exits. A
//! crash can lose the last batch (a fraction of a second of rows); nothing
//! acknowledged to a client depends on these rows.

use super::{Storage, StorageError};
use crate::quota_store::{BudgetCheck, Lease, SharedCounters};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use utoipa::ToSchema;

/// Columns bound per ledger row.
const COLUMNS: usize = 12;
/// Rows per INSERT statement.
const ROWS_PER_INSERT: usize = 16;
/// Most rows committed in one transaction.
const BATCH: usize = 512;
/// How often the writer commits what requests queued: one commit per window
/// instead of one per request.
const LINGER: std::time::Duration = std::time::Duration::from_millis(100);

/// One request's usage.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// The caller's tenant.
    pub tenant_id: String,
    /// Route template, e.g. `/v1/chat/completions`.
    pub route: String,
    /// Model that served it (or was asked for).
    pub model: String,
    /// Tier, when known.
    pub tier: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
    /// Whole request time.
    pub latency_ms: f64,
    /// HTTP status answered.
    pub status: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Time to the first generated token, as the engine measured it (none
    /// when nothing was generated).
    pub ttft_ms: Option<f64>,
    /// Generated tokens per second over the generation phase.
    pub tokens_per_second: Option<f64>,
}

/// How `/v2/usage` groups rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One group per model.
    #[default]
    Model,
    /// One group per UTC day.
    Day,
}

/// Totals of one group.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UsageGroup {
    /// Model name, or the UTC day as `YYYY-MM-DD`.
    pub key: String,
    /// Requests.
    pub requests: i64,
    /// Requests answered with an error status.
    pub errors: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
    /// Mean request time.
    pub mean_latency_ms: f64,
}

const DAY_MS: i64 = 86_400_000;

/// `YYYY-MM-DD` of a Unix day number (civil-from-days, proleptic Gregorian).
fn day_string(day: i64) -> String {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

impl Storage {
    /// Commits rows in one transaction, [`ROWS_PER_INSERT`] to a statement
    /// (one statement per row cost more CPU than the request it records).
    pub async fn insert_usage(&self, rows: &[UsageRow]) -> Result<(), StorageError> {
        let sqlite = self.backend() == super::Backend::Sqlite;
        let mut conn = self.pool().acquire().await?;
        if sqlite {
            // Ledger rows are never acknowledged to a client, so their commits
            // skip the fsync (WAL keeps them safe from a process crash; a power
            // loss may drop the last ones). Tenants and keys keep FULL.
            sqlx::query("PRAGMA synchronous=NORMAL")
                .execute(&mut *conn)
                .await?;
        }
        let written = Self::insert_rows(&mut conn, rows).await;
        if sqlite
            && sqlx::query("PRAGMA synchronous=FULL")
                .execute(&mut *conn)
                .await
                .is_err()
        {
            // Never hand a connection with lowered durability back to the pool.
            conn.close_on_drop();
        }
        written
    }

    async fn insert_rows(
        conn: &mut sqlx::AnyConnection,
        rows: &[UsageRow],
    ) -> Result<(), StorageError> {
        use sqlx::Connection;
        // SQLite finds a numbered parameter (`$n`) by a linear scan of the
        // statement's names for each one bound, so binding a statement cost
        // the square of its parameters (2 % of the service's CPU in profiles);
        // anonymous `?` parameters bind by position. PostgreSQL numbers them.
        let numbered = conn.backend_name() != "SQLite";
        let mut tx = conn.begin().await?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p: Vec<String> = (1..=COLUMNS)
                        .map(|c| {
                            if numbered {
                                format!("${}", i * COLUMNS + c)
                            } else {
                                "?".to_owned()
                            }
                        })
                        .collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO usage_ledger (id, tenant_id, route, model, tier, prompt_tokens, \
                 completion_tokens, latency_ms, status, created_at, ttft_ms, tokens_per_second) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for r in chunk {
                query = query
                    // Time-ordered ids append to the primary-key index
                    // instead of splitting pages at random places.
                    .bind(format!("use_{}", uuid::Uuid::now_v7().simple()))
                    .bind(r.tenant_id.clone())
                    .bind(r.route.clone())
                    .bind(r.model.clone())
                    .bind(r.tier.clone())
                    .bind(r.prompt_tokens)
                    .bind(r.completion_tokens)
                    .bind(r.latency_ms)
                    .bind(r.status)
                    .bind(r.created_at)
                    .bind(r.ttft_ms)
                    .bind(r.tokens_per_second);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Prompt plus completion tokens of a tenant since `since_ms`.
    pub async fn tokens_since(&self, tenant_id: &str, since_ms: i64) -> Result<i64, StorageError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS BIGINT) AS total FROM usage_ledger \
             WHERE tenant_id = $1 AND created_at >= $2",
        )
        .bind(tenant_id)
        .bind(since_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("total")?)
    }

    /// A tenant's usage between two instants (Unix ms, `until` exclusive), grouped.
    pub async fn usage_summary(
        &self,
        tenant_id: &str,
        since: i64,
        until: i64,
        group_by: GroupBy,
    ) -> Result<Vec<UsageGroup>, StorageError> {
        // Integer division by a day in milliseconds is portable day bucketing.
        let key = match group_by {
            GroupBy::Model => "model",
            GroupBy::Day => "created_at / 86400000",
        };
        // Sums are cast: PostgreSQL widens SUM(BIGINT) to NUMERIC.
        let sql = format!(
            "SELECT {key} AS k, CAST(COUNT(*) AS BIGINT) AS requests, \
             CAST(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS BIGINT) AS errors, \
             CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
             CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
             CAST(AVG(latency_ms) AS DOUBLE PRECISION) AS mean_latency_ms \
             FROM usage_ledger WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 \
             GROUP BY {key} ORDER BY {key}"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(since)
            .bind(until)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let key = match group_by {
                    GroupBy::Model => r.try_get::<String, _>("k")?,
                    GroupBy::Day => day_string(r.try_get::<i64, _>("k")?),
                };
                Ok(UsageGroup {
                    key,
                    requests: r.try_get("requests")?,
                    errors: r.try_get("errors")?,
                    prompt_tokens: r.try_get("prompt_tokens")?,
                    completion_tokens: r.try_get("completion_tokens")?,
                    mean_latency_ms: r.try_get("mean_latency_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StorageError::from)
    }
}

/// The ledger's timing columns of a generation: none when it generated
/// nothing (the engine's first-token time is then meaningless), and no
/// first-token time where none was measured (a pass-through answer).
pub fn timings(usage: &orchestrator::generation::Usage) -> (Option<f64>, Option<f64>) {
    if usage.completion_tokens == 0 {
        return (None, None);
    }
    let tps = (usage.tokens_per_second.is_finite() && usage.tokens_per_second > 0.0)
        .then_some(usage.tokens_per_second);
    let ttft = (!usage.time_to_first_token.is_zero())
        .then_some(usage.time_to_first_token.as_secs_f64() * 1_000.0);
    (ttft, tps)
}

/// Totals of one time bucket, model, tenant and tier of a window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UsageBucket {
    /// Start of the bucket, Unix milliseconds.
    pub start: i64,
    /// Model that served it (or was asked for).
    pub model: String,
    /// The tenant's name.
    pub tenant: String,
    /// `small`, `large`, or empty when no tier was chosen.
    pub tier: String,
    /// Requests.
    pub requests: i64,
    /// Requests answered with an error status.
    pub errors: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
}

/// One successful request's timings, for percentiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Model that served it.
    pub model: String,
    /// Whole request time.
    pub latency_ms: f64,
    /// Time to the first token, when recorded.
    pub ttft_ms: Option<f64>,
    /// Generated tokens per second, when recorded.
    pub tokens_per_second: Option<f64>,
}

impl Storage {
    /// Ledger rows between two instants (Unix ms, `until` exclusive), of one
    /// tenant or of all, summed per bucket of `bucket_ms`, model, tenant and tier.
    pub async fn usage_buckets(
        &self,
        tenant_id: Option<&str>,
        since: i64,
        until: i64,
        bucket_ms: i64,
    ) -> Result<Vec<UsageBucket>, StorageError> {
        // `since` and the width are integers of ours, written into the text so
        // that PostgreSQL sees one expression in SELECT and GROUP BY.
        let bucket_ms = bucket_ms.max(1);
        let filter = if tenant_id.is_some() {
            " AND u.tenant_id = $3"
        } else {
            ""
        };
        let sql = format!(
            "SELECT (u.created_at - {since}) / {bucket_ms} AS b, u.model AS model, \
             COALESCE(t.name, u.tenant_id) AS tenant, COALESCE(u.tier, '') AS tier, \
             CAST(COUNT(*) AS BIGINT) AS requests, \
             CAST(SUM(CASE WHEN u.status >= 400 THEN 1 ELSE 0 END) AS BIGINT) AS errors, \
             CAST(SUM(u.prompt_tokens) AS BIGINT) AS prompt_tokens, \
             CAST(SUM(u.completion_tokens) AS BIGINT) AS completion_tokens \
             FROM usage_ledger u LEFT JOIN tenants t ON t.id = u.tenant_id \
             WHERE u.created_at >= $1 AND u.created_at < $2{filter} \
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        );
        let mut query = sqlx::query(&sql).bind(since).bind(until);
        if let Some(tenant) = tenant_id {
            query = query.bind(tenant);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(UsageBucket {
                    start: since + r.try_get::<i64, _>("b")? * bucket_ms,
                    model: r.try_get("model")?,
                    tenant: r.try_get("tenant")?,
                    tier: r.try_get("tier")?,
                    requests: r.try_get("requests")?,
                    errors: r.try_get("errors")?,
                    prompt_tokens: r.try_get("prompt_tokens")?,
                    completion_tokens: r.try_get("completion_tokens")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StorageError::from)
    }

    /// Timings of the newest `limit` successful requests between two instants,
    /// of one tenant or of all. The limit bounds the memory and CPU of a
    /// wide window; the caller learns it was reached from the length.
    pub async fn usage_timings(
        &self,
        tenant_id: Option<&str>,
        since: i64,
        until: i64,
        limit: i64,
    ) -> Result<Vec<Timing>, StorageError> {
        let filter = if tenant_id.is_some() {
            " AND tenant_id = $4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT model, latency_ms, ttft_ms, tokens_per_second FROM usage_ledger \
             WHERE created_at >= $1 AND created_at < $2 AND status < 400{filter} \
             ORDER BY created_at DESC LIMIT $3"
        );
        let mut query = sqlx::query(&sql).bind(since).bind(until).bind(limit);
        if let Some(tenant) = tenant_id {
            query = query.bind(tenant);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(Timing {
                    model: r.try_get("model")?,
                    latency_ms: r.try_get("latency_ms")?,
                    ttft_ms: r.try_get("ttft_ms")?,
                    tokens_per_second: r.try_get("tokens_per_second")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StorageError::from)
    }
}

/// Start of the UTC day containing `ms`.
pub fn day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// Hands usage rows to the background writer, and keeps each budgeted
/// tenant's tokens for the day.
#[derive(Debug, Clone)]
pub struct UsageRecorder {
    queue: Arc<Queue>,
    meter: Arc<DayMeter>,
    /// With `cluster.redis_url`: budgets counted once for every replica.
    shared: Option<Arc<SharedCounters>>,
    /// Tenants this replica reserved for in the shared store, by the day it
    /// did: only their rows are added to the store's counters (a tenant
    /// without a budget has none there to add to).
    budgeted: Arc<Mutex<HashMap<String, i64>>>,
}

/// How long a tenant's day total read from the ledger is used before it is
/// read again. Rows this process records are added as they are recorded, so
/// only rows of other replicas sharing the database can be this late.
const METER_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Tokens per tenant for the current UTC day. Checking a daily budget used to
/// sum the tenant's ledger rows for the day on every request: a query whose
/// cost grew through the day, and which missed the rows the writer had not
/// committed yet (up to [`LINGER`] of them).
#[derive(Debug, Default)]
struct DayMeter {
    tenants: Mutex<HashMap<String, Spent>>,
}

/// One tenant's tokens today, as the meter knows them.
#[derive(Debug)]
struct Spent {
    /// Start of the UTC day (Unix ms) these figures are for.
    day: i64,
    /// What the ledger held at the last read.
    stored: i64,
    /// What this process recorded since that read began.
    recorded: i64,
    read_at: std::time::Instant,
    /// When a request began reading the ledger again; meanwhile the others
    /// use the figures there are. A read whose request was dropped midway
    /// never clears this, so one older than [`METER_REFRESH`] is given up on.
    refreshing: Option<std::time::Instant>,
    /// Tokens held by requests admitted and not yet settled.
    reserved: i64,
}

/// Rows waiting for the writer. A request only appends under a short lock:
/// nothing is woken per row, so recording costs no cross-thread wake-up on
/// the request path, and the writer picks rows up on its own clock.
#[derive(Debug, Default)]
struct Queue {
    rows: Mutex<Vec<UsageRow>>,
    /// Set if the writer ever stops while recorders remain (it panicked).
    writer_gone: AtomicBool,
    /// Set by [`UsageWriter::finish`]: drain now and stop.
    closing: AtomicBool,
    wake: tokio::sync::Notify,
}

/// Marks the queue as unattended when the writer ends, however it ends.
struct WriterGone(Arc<Queue>);

impl Drop for WriterGone {
    fn drop(&mut self) {
        self.0.writer_gone.store(true, Ordering::Relaxed);
    }
}

/// The background writer of the usage ledger.
#[derive(Debug)]
pub struct UsageWriter {
    /// Weak, so that only recorders count as holders of the queue.
    queue: std::sync::Weak<Queue>,
    task: tokio::task::JoinHandle<()>,
}

impl UsageWriter {
    /// Whether the writer has ended (every recorder dropped, queue drained).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Commits every row queued so far and stops the writer. Long-lived
    /// holders of a recorder (a strike still running, the pull-request
    /// monitor) do not hold it up; rows they queue afterwards are not written.
    pub async fn finish(self) -> Result<(), tokio::task::JoinError> {
        if let Some(queue) = self.queue.upgrade() {
            queue.closing.store(true, Ordering::Relaxed);
            queue.wake.notify_one();
        }
        self.task.await
    }
}

impl UsageRecorder {
    /// Starts the writer. It commits what was queued every [`LINGER`], and
    /// a last time when [`UsageWriter::finish`] is called or every recorder
    /// clone is dropped.
    pub fn start(storage: Storage) -> (Self, UsageWriter) {
        let queue = Arc::new(Queue::default());
        let gone = WriterGone(queue.clone());
        let task = tokio::spawn(async move {
            let queue = &gone.0;
            let mut tick = tokio::time::interval(LINGER);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = queue.wake.notified() => {}
                }
                // Closing, or only the writer's own handle left (no recorder
                // can add a row after this): what is taken now is the last drain.
                let last = queue.closing.load(Ordering::Relaxed) || Arc::strong_count(queue) == 1;
                let rows =
                    std::mem::take(&mut *queue.rows.lock().unwrap_or_else(PoisonError::into_inner));
                for batch in rows.chunks(BATCH) {
                    if let Err(e) = storage.insert_usage(batch).await {
                        tracing::error!(error = %e, rows = batch.len(), "usage rows could not be written");
                    }
                }
                if last {
                    break;
                }
            }
        });
        let writer = UsageWriter {
            queue: Arc::downgrade(&queue),
            task,
        };
        let meter = Arc::new(DayMeter::default());
        let recorder = Self {
            queue,
            meter,
            shared: None,
            budgeted: Arc::default(),
        };
        (recorder, writer)
    }

    /// Counts daily budgets in the shared store (for every replica) from now on.
    pub fn share_budgets(mut self, counters: Arc<SharedCounters>) -> Self {
        self.shared = Some(counters);
        self
    }

    /// Queues a row (never blocks on I/O, never wakes the writer).
    pub fn record(&self, row: UsageRow) {
        self.record_settling(row, None);
    }

    /// Queues a request's row and lets its reservation go: in the shared
    /// store, the tokens are added and the reservation released in one step.
    pub fn record_settling(&self, row: UsageRow, reservation: Option<Reservation>) {
        if let Some(shared) = &self.shared {
            let lease = reservation.and_then(Reservation::into_lease);
            let day = day_start(row.created_at);
            let budgeted = self
                .budgeted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&row.tenant_id)
                == Some(&day);
            if lease.is_some() || budgeted {
                let tokens = row.prompt_tokens + row.completion_tokens;
                shared.settle(&row.tenant_id, day, tokens, lease);
            }
        }
        if self.queue.writer_gone.load(Ordering::Relaxed) {
            tracing::error!("usage writer has stopped; a usage row was dropped");
            return;
        }
        self.meter.add(&row);
        self.queue
            .rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(row);
    }

    /// The tenant's prompt plus completion tokens for the UTC day of `now_ms`:
    /// the ledger's total (read at most once per [`METER_REFRESH`]) plus what
    /// this process recorded since. Rows recorded before a read and not yet
    /// committed by it are missed until the next read.
    pub async fn tokens_today(
        &self,
        storage: &Storage,
        tenant_id: &str,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let day = day_start(now_ms);
        let started = std::time::Instant::now();
        // What was counted when this read began, if the tenant's day was metered.
        let recorded_before = {
            let mut tenants = self.meter.lock();
            match tenants.get_mut(tenant_id) {
                Some(spent) if spent.day == day => {
                    let reading = spent
                        .refreshing
                        .is_some_and(|since| since.elapsed() < METER_REFRESH);
                    if reading || spent.read_at.elapsed() < METER_REFRESH {
                        return Ok(spent.stored + spent.recorded);
                    }
                    spent.refreshing = Some(started);
                    Some(spent.recorded)
                }
                _ => None,
            }
        };
        let read = storage.tokens_since(tenant_id, day).await;
        let mut tenants = self.meter.lock();
        let current = tenants.get_mut(tenant_id);
        if let (Some(_), Some(spent)) = (recorded_before, &current)
            && spent.refreshing != Some(started)
        {
            // A later read took over from this slow one: its figures stand.
            return read.map(|_| spent.stored + spent.recorded);
        }
        let stored = match read {
            Ok(stored) => stored,
            Err(e) => {
                if let Some(spent) = current {
                    spent.refreshing = None;
                }
                return Err(e);
            }
        };
        let spent = match current {
            Some(spent) => spent,
            None => tenants.entry(tenant_id.to_owned()).or_insert(Spent {
                day,
                stored,
                recorded: 0,
                read_at: started,
                refreshing: None,
                reserved: 0,
            }),
        };
        if spent.day == day {
            // Rows recorded while the query ran may or may not be in its
            // total: keep counting them (erring towards the budget).
            spent.recorded -= recorded_before.unwrap_or(0);
        } else {
            spent.day = day;
            spent.recorded = 0;
            // Reservations of yesterday's requests are let go with their day.
            spent.reserved = 0;
        }
        spent.stored = stored;
        spent.read_at = std::time::Instant::now();
        spent.refreshing = None;
        Ok(spent.stored + spent.recorded)
    }
}

/// Tokens of a tenant's daily budget held for one request in flight,
/// released when dropped: after its usage row is recorded, so the tokens are
/// never counted as free in between.
#[derive(Debug)]
pub struct Reservation(Held);

/// Where the tokens are held.
#[derive(Debug)]
enum Held {
    /// In this process's meter.
    Local(#[expect(dead_code, reason = "held for its Drop")] LocalHold),
    /// In the shared store, for every replica.
    Shared(Lease),
    /// Nothing: a check of 0 tokens.
    Nothing,
}

impl Reservation {
    /// The shared store's lease, if that is where the tokens are held.
    fn into_lease(self) -> Option<Lease> {
        match self.0 {
            Held::Shared(lease) => Some(lease),
            Held::Local(_) | Held::Nothing => None,
        }
    }
}

/// Tokens held in this process's meter.
#[derive(Debug)]
struct LocalHold {
    meter: Arc<DayMeter>,
    tenant_id: String,
    day: i64,
    tokens: i64,
}

impl Drop for LocalHold {
    fn drop(&mut self) {
        let mut tenants = self.meter.lock();
        if let Some(spent) = tenants.get_mut(&self.tenant_id)
            && spent.day == self.day
        {
            spent.reserved = (spent.reserved - self.tokens).max(0);
        }
    }
}

/// Why a reservation was refused: the day's budget is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSpent {
    /// Tokens spent today plus those reserved by requests in flight.
    pub committed: u64,
}

impl UsageRecorder {
    /// Reserves `tokens` of the tenant's `budget` for the UTC day of
    /// `now_ms`, unless what is spent plus what requests in flight hold
    /// already reaches it. A request is admitted while any of the budget is
    /// uncommitted, so concurrent requests overshoot it by at most the last
    /// one's reservation, never by the sum of all in flight.
    pub async fn reserve(
        &self,
        storage: &Storage,
        tenant_id: &str,
        budget: u64,
        tokens: u64,
        now_ms: i64,
    ) -> Result<Result<Reservation, BudgetSpent>, StorageError> {
        if let Some(shared) = &self.shared {
            match self
                .reserve_shared(shared, storage, tenant_id, budget, tokens, now_ms)
                .await
            {
                Ok(reserved) => return Ok(reserved),
                Err(StorageError::SharedCounters(e)) => shared.fall_back("reserve", e)?,
                Err(e) => return Err(e),
            }
        }
        // Brings the tenant's day into the meter (read at most once a second).
        self.tokens_today(storage, tenant_id, now_ms).await?;
        let day = day_start(now_ms);
        let mut tenants = self.meter.lock();
        let Some(spent) = tenants.get_mut(tenant_id).filter(|s| s.day == day) else {
            // The day turned between the read and here: read it again next time.
            return Ok(Err(BudgetSpent { committed: budget }));
        };
        let committed = u64::try_from(spent.stored + spent.recorded + spent.reserved).unwrap_or(0);
        if committed >= budget {
            return Ok(Err(BudgetSpent { committed }));
        }
        let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
        spent.reserved = spent.reserved.saturating_add(tokens);
        Ok(Ok(Reservation(Held::Local(LocalHold {
            meter: self.meter.clone(),
            tenant_id: tenant_id.to_owned(),
            day,
            tokens,
        }))))
    }

    /// [`Self::reserve`] in the shared store: the day's counter is seeded
    /// with the ledger's total the first time any replica reserves that day.
    async fn reserve_shared(
        &self,
        shared: &SharedCounters,
        storage: &Storage,
        tenant_id: &str,
        budget: u64,
        tokens: u64,
        now_ms: i64,
    ) -> Result<Result<Reservation, BudgetSpent>, StorageError> {
        let day = (day_start(now_ms), now_ms);
        let mut check = shared.reserve(tenant_id, day, budget, tokens, None).await?;
        if matches!(check, BudgetCheck::NeedsSeed) {
            // A ledger that cannot be read fails this request (503); a guess
            // would stay in the store as the day's total until midnight.
            let seed = self.tokens_today(storage, tenant_id, now_ms).await?;
            check = shared
                .reserve(tenant_id, day, budget, tokens, Some(seed))
                .await
                .map_err(StorageError::from)?;
        }
        self.budgeted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant_id.to_owned(), day.0);
        Ok(match check {
            BudgetCheck::Reserved(lease) => {
                Ok(Reservation(lease.map_or(Held::Nothing, Held::Shared)))
            }
            BudgetCheck::Committed(committed) => Err(BudgetSpent { committed }),
            BudgetCheck::NeedsSeed => Err(BudgetSpent { committed: budget }),
        })
    }
}

impl DayMeter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Spent>> {
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a row for its tenant, if the tenant's day is being metered.
    fn add(&self, row: &UsageRow) {
        let mut tenants = self.lock();
        if let Some(spent) = tenants.get_mut(&row.tenant_id)
            && spent.day == day_start(row.created_at)
        {
            spent.recorded += row.prompt_tokens + row.completion_tokens;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_render_as_utc_dates() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(20_416), "2025-11-24");
        assert_eq!(day_string(11_016), "2000-02-29");
        assert_eq!(day_start(DAY_MS + 5), DAY_MS);
    }
}
