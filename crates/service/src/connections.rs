//! The open client connections: how many may be open, how long one may
//! dawdle, and which are closed to make room at the cap.
//!
//! Every socket costs a file descriptor whether or not it ever sends a
//! request, so a caller without a key can otherwise hold the process at its
//! open-file limit and no new client, `/health` included, gets in. Four rules
//! keep room: a connection that has not sent a whole request head within
//! `header_read_timeout_secs` is closed, so is one whose request body has not
//! all arrived within `body_read_timeout_secs`, and one idle longer than
//! `keep_alive_timeout_secs` between requests; at `max_connections` the
//! acceptor closes first the connections still sending their request (head
//! or body), then those idle longest, to admit the new one. A connection
//! whose request is being answered (a streamed answer, an MCP event stream)
//! is never picked.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::Notify;

/// How many connections may be open and how long one may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once.
    pub max: usize,
    /// Time to send a whole request head, from connecting or from the last answer.
    pub header_read: Duration,
    /// Time to send a whole request body, from the end of its head.
    pub body_read: Duration,
    /// Time a connection may sit idle between requests.
    pub keep_alive: Duration,
}

impl Limits {
    /// The limits `settings` ask for; `max_connections: 0` means half of
    /// `open_files` (the process' soft limit), the other half kept for
    /// upstream connections, the database and files: a proxied request holds
    /// two sockets.
    pub fn from_settings(settings: &crate::settings::ServiceSettings, open_files: u64) -> Self {
        let fit = usize::try_from(open_files / 2).unwrap_or(usize::MAX).max(1);
        let max = match settings.max_connections {
            0 => fit,
            asked if asked > fit => {
                tracing::warn!(
                    asked,
                    open_files,
                    used = fit,
                    "service.max_connections exceeds half the open-file limit; using that"
                );
                fit
            }
            asked => asked,
        };
        Self {
            max,
            header_read: Duration::from_secs(settings.header_read_timeout_secs),
            body_read: Duration::from_secs(settings.body_read_timeout_secs),
            keep_alive: Duration::from_secs(settings.keep_alive_timeout_secs),
        }
    }
}

/// Raises the soft open-file limit to the hard one (Linux and macOS start
/// processes at a soft 1,024 or 256 whatever the hard limit allows) and
/// returns the soft limit now in force.
pub fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // What an unlimited hard limit is taken as: macOS refuses RLIM_INFINITY
    // as a soft limit, and no server here needs more.
    const CEILING: u64 = 1 << 20;
    let now = getrlimit(Resource::Nofile);
    let soft = now.current.unwrap_or(CEILING);
    let hard = now.maximum.unwrap_or(CEILING).min(CEILING);
    if hard > soft {
        let raised = Rlimit {
            current: Some(hard),
            maximum: now.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return hard,
            Err(e) => tracing::warn!(error = %e, soft, hard, "open-file limit not raised"),
        }
    }
    soft
}

/// Why a connection was closed by us rather than by its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Picked to make room at the cap.
    Evicted,
    /// No whole request head in time.
    HeaderTimeout,
    /// No whole request body in time.
    BodyTimeout,
    /// Idle between requests for too long.
    IdleTimeout,
}

impl Closed {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Evicted => "evicted",
            Self::HeaderTimeout => "header_timeout",
            Self::BodyTimeout => "body_timeout",
            Self::IdleTimeout => "idle_timeout",
        }
    }
}

/// The table of open connections, shared by the acceptors of both listeners.
#[derive(Debug)]
pub struct Connections {
    limits: Limits,
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl Connections {
    /// An empty table with these limits.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.table().len()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        // The table holds no invariant a panicking holder could break halfway.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// Registers a newly accepted connection; at the cap, first closes idle
    /// ones to make room. `None` when every open connection is busy: the
    /// caller closes the new one.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut table = self.table();
        if table.len() >= self.limits.max {
            // Evict a batch, so a flood pays for one scan every few dozen accepts.
            let batch = (self.limits.max / 64).max(1);
            let over = table.len() - self.limits.max;
            if evict(&mut table, batch + over) == 0 {
                drop(table);
                metrics::counter!(crate::telemetry::CONNECTIONS_REFUSED).increment(1);
                return None;
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            in_flight: AtomicU32::new(0),
            uploads: AtomicU32::new(0),
            heads: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(self.now_ms()),
            head_started_ms: AtomicU64::new(NONE),
            upload_started_ms: AtomicU64::new(NONE),
            evicted: AtomicBool::new(false),
            close: Notify::new(),
        });
        table.insert(id, connection.clone());
        metrics::gauge!(crate::telemetry::OPEN_CONNECTIONS).set(table.len() as f64);
        Some(Admitted {
            table: self.clone(),
            id,
            connection,
        })
    }

    /// Makes room when the process has run out of file descriptors:
    /// closes up to `count` idle connections, the least useful first.
    pub fn shed(&self, count: usize) -> usize {
        evict(&mut self.table(), count)
    }
}

/// Closes up to `count` connections that are not being answered: those
/// still sending a request (head or body) first, then those idle longest.
/// They leave the table at once, so the count they free is available to the
/// caller now.
fn evict(table: &mut HashMap<u64, Arc<Connection>>, count: usize) -> usize {
    let mut idle: Vec<(bool, u64, u64)> = table
        .iter()
        .filter(|(_, c)| c.answering() == 0)
        .map(|(id, c)| {
            let idle_only = !c.still_sending();
            (idle_only, c.last_active_ms.load(Ordering::Relaxed), *id)
        })
        .collect();
    let count = count.min(idle.len());
    if count == 0 {
        return 0;
    }
    if count < idle.len() {
        idle.select_nth_unstable(count - 1);
    }
    for (_, _, id) in &idle[..count] {
        if let Some(victim) = table.remove(id) {
            victim.evicted.store(true, Ordering::Release);
            victim.close.notify_one();
        }
    }
    metrics::counter!(crate::telemetry::CONNECTIONS_CLOSED, "reason" => Closed::Evicted.label())
        .increment(count as u64);
    metrics::gauge!(crate::telemetry::OPEN_CONNECTIONS).set(table.len() as f64);
    count
}

/// One open connection's activity, as its serving task and requests see it.
#[derive(Debug)]
struct Connection {
    /// Requests whose head has arrived and whose answer is not done.
    in_flight: AtomicU32,
    /// Of those, the ones whose body is still arriving.
    uploads: AtomicU32,
    /// Request heads received so far.
    heads: AtomicU64,
    /// When the last answer finished (or the connection opened), in ms since the table's epoch.
    last_active_ms: AtomicU64,
    /// When the first byte of a request head arrived after the last answer ([`NONE`] if none has).
    head_started_ms: AtomicU64,
    /// When the oldest body still arriving began ([`NONE`] if none is).
    upload_started_ms: AtomicU64,
    evicted: AtomicBool,
    close: Notify,
}

/// No time recorded.
const NONE: u64 = u64::MAX;

impl Connection {
    /// Requests being answered: in flight with their whole body received.
    fn answering(&self) -> u32 {
        self.in_flight
            .load(Ordering::Acquire)
            .saturating_sub(self.uploads.load(Ordering::Acquire))
    }

    /// Still owes us a whole request: never sent a head, has begun the
    /// next one, or is sending a body.
    fn still_sending(&self) -> bool {
        self.heads.load(Ordering::Relaxed) == 0
            || self.head_started_ms.load(Ordering::Relaxed) != NONE
            || self.uploads.load(Ordering::Acquire) > 0
    }
}

/// A connection's place in the table; leaving it frees the place.
#[derive(Debug)]
pub struct Admitted {
    table: Arc<Connections>,
    id: u64,
    connection: Arc<Connection>,
}

impl Admitted {
    /// Marks a request head received; the request counts as in flight until
    /// the returned guard (held by its answer's body) is dropped.
    pub fn begin_request(&self) -> InFlight {
        let c = &self.connection;
        c.heads.fetch_add(1, Ordering::Relaxed);
        c.in_flight.fetch_add(1, Ordering::AcqRel);
        c.head_started_ms.store(NONE, Ordering::Relaxed);
        InFlight {
            table: self.table.clone(),
            connection: c.clone(),
        }
    }

    /// Marks a request body arriving; the returned guard is dropped when it
    /// has all arrived (or the request is dropped).
    pub fn begin_upload(&self) -> Uploading {
        let c = &self.connection;
        if c.uploads.fetch_add(1, Ordering::AcqRel) == 0 {
            c.upload_started_ms
                .store(self.table.now_ms(), Ordering::Relaxed);
        }
        Uploading {
            connection: c.clone(),
        }
    }

    /// Resolves when the acceptor picked this connection to make room.
    pub async fn evicted(&self) {
        loop {
            let notified = self.connection.close.notified();
            if self.connection.evicted.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// When the connection must have made progress, and what closing it then
    /// would be; `None` while a request is being answered, which has no
    /// deadline here (`request_timeout_secs` bounds the wait for its start).
    pub fn deadline(&self) -> Option<(Instant, Closed)> {
        let limits = self.table.limits;
        let c = &self.connection;
        let ms = |field: &AtomicU64| field.load(Ordering::Relaxed);
        if c.uploads.load(Ordering::Acquire) > 0 {
            let started = self.table.at(ms(&c.upload_started_ms));
            return Some((started + limits.body_read, Closed::BodyTimeout));
        }
        if c.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let (since, allowed, why) = match ms(&c.head_started_ms) {
            _ if c.heads.load(Ordering::Relaxed) == 0 => (
                ms(&c.last_active_ms),
                limits.header_read,
                Closed::HeaderTimeout,
            ),
            NONE => (
                ms(&c.last_active_ms),
                limits.keep_alive,
                Closed::IdleTimeout,
            ),
            started => (started, limits.header_read, Closed::HeaderTimeout),
        };
        Some((self.table.at(since) + allowed, why))
    }

    /// Notes bytes read from the client: with no request in flight they
    /// begin a request head, whose time then runs.
    pub fn bytes_read(&self) {
        let c = &self.connection;
        if c.in_flight.load(Ordering::Acquire) == 0
            && c.head_started_ms.load(Ordering::Relaxed) == NONE
        {
            c.head_started_ms
                .store(self.table.now_ms(), Ordering::Relaxed);
        }
    }

    /// Why the connection must be closed now, if it has outstayed its
    /// deadline (counted in `harpoon_connections_closed_total`).
    pub fn expired(&self) -> Option<Closed> {
        let (deadline, why) = self.deadline()?;
        if Instant::now() < deadline {
            return None;
        }
        metrics::counter!(crate::telemetry::CONNECTIONS_CLOSED, "reason" => why.label())
            .increment(1);
        Some(why)
    }

    /// When the serving task should next look: the deadline, and never later
    /// than the shortest timeout from now, so a connection whose deadline
    /// moved earlier in between (a head begun after an idle spell, an answer
    /// ended) overstays it by at most that.
    ///
    /// Requests do not wake the task when they begin or end: on a busy
    /// keep-alive connection that cost a task poll and a timer update per
    /// request. A check that comes early just sets the next one.
    pub fn next_check(&self) -> Instant {
        let limits = self.table.limits;
        let shortest = limits
            .header_read
            .min(limits.body_read)
            .min(limits.keep_alive);
        let recheck = Instant::now() + shortest;
        self.deadline().map_or(recheck, |(at, _)| at.min(recheck))
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut table = self.table.table();
        table.remove(&self.id);
        metrics::gauge!(crate::telemetry::OPEN_CONNECTIONS).set(table.len() as f64);
    }
}

/// A request in flight on a connection; dropped when its answer is done.
#[derive(Debug)]
pub struct InFlight {
    table: Arc<Connections>,
    connection: Arc<Connection>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let c = &self.connection;
        c.last_active_ms
            .store(self.table.now_ms(), Ordering::Relaxed);
        c.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request body still arriving; dropped when it has all arrived.
#[derive(Debug)]
pub struct Uploading {
    connection: Arc<Connection>,
}

impl Drop for Uploading {
    fn drop(&mut self) {
        let c = &self.connection;
        if c.uploads.fetch_sub(1, Ordering::AcqRel) == 1 {
            c.upload_started_ms.store(NONE, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max: usize) -> Arc<Connections> {
        Connections::new(Limits {
            max,
            header_read: Duration::from_millis(50),
            body_read: Duration::from_millis(100),
            keep_alive: Duration::from_millis(200),
        })
    }

    fn evicted(a: &Admitted) -> bool {
        a.connection.evicted.load(Ordering::Acquire)
    }

    #[test]
    fn at_the_cap_connections_still_sending_go_first_then_the_longest_idle() {
        let t = table(4);
        let served_early = t.admit().unwrap();
        drop(served_early.begin_request());
        std::thread::sleep(Duration::from_millis(5));
        let served_late = t.admit().unwrap();
        drop(served_late.begin_request());
        let headless = t.admit().unwrap();
        let uploading = t.admit().unwrap();
        let _request = uploading.begin_request();
        let _body = uploading.begin_upload();
        assert_eq!(t.open(), 4);

        let fifth = t.admit().unwrap();
        drop(fifth.begin_request());
        let sixth = t.admit().unwrap();
        drop(sixth.begin_request());
        assert!(
            evicted(&headless) && evicted(&uploading),
            "still sending: first"
        );
        assert!(!evicted(&served_early));

        let _seventh = t.admit().unwrap();
        assert!(evicted(&served_early), "the one idle longest goes next");
        assert!(!evicted(&served_late));
        assert_eq!(t.open(), 4);
    }

    #[test]
    fn connections_being_answered_are_never_evicted_and_a_full_busy_table_refuses() {
        let t = table(2);
        let a = t.admit().unwrap();
        let b = t.admit().unwrap();
        let _busy_a = a.begin_request();
        let busy_b = b.begin_request();
        assert!(t.admit().is_none());
        assert!(!evicted(&a));
        drop(busy_b);
        let _c = t.admit().expect("b is idle now");
        assert!(evicted(&b));
    }

    #[test]
    fn timeouts_apply_only_while_the_client_owes_us_something() {
        let t = table(8);
        let fresh = t.admit().unwrap();
        assert_eq!(fresh.expired(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(fresh.expired(), Some(Closed::HeaderTimeout));

        let busy = t.admit().unwrap();
        let guard = busy.begin_request();
        assert_eq!(busy.deadline(), None, "a request being answered has none");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(busy.expired(), None, "a long answer is not idle");
        drop(guard);
        assert_eq!(
            busy.expired(),
            None,
            "idle time counts from the answer's end"
        );
        std::thread::sleep(Duration::from_millis(210));
        assert_eq!(busy.expired(), Some(Closed::IdleTimeout));
    }

    #[test]
    fn a_body_must_arrive_within_its_time_however_it_trickles() {
        let t = table(8);
        let conn = t.admit().unwrap();
        let _request = conn.begin_request();
        let body = conn.begin_upload();
        for _ in 0..3 {
            conn.bytes_read();
            std::thread::sleep(Duration::from_millis(40));
        }
        assert_eq!(conn.expired(), Some(Closed::BodyTimeout));
        drop(body);
        assert_eq!(conn.deadline(), None, "whole body in: being answered");
    }

    #[test]
    fn a_head_begun_after_an_answer_has_the_header_time_not_the_idle_time() {
        let t = table(8);
        let conn = t.admit().unwrap();
        drop(conn.begin_request());
        conn.bytes_read();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(conn.expired(), Some(Closed::HeaderTimeout));
        drop(conn.begin_request());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(conn.expired(), None, "idle, not mid-head: keep-alive time");
    }

    #[test]
    fn leaving_frees_the_place() {
        let t = table(1);
        let a = t.admit().unwrap();
        let busy = a.begin_request();
        assert!(t.admit().is_none());
        drop(busy);
        drop(a);
        assert_eq!(t.open(), 0);
        assert!(t.admit().is_some());
    }

    #[test]
    fn auto_cap_is_half_the_open_files_and_an_explicit_one_is_held_to_it() {
        let mut s = crate::settings::ServiceSettings::default();
        assert_eq!(Limits::from_settings(&s, 256).max, 128);
        s.max_connections = 100;
        assert_eq!(Limits::from_settings(&s, 256).max, 100);
        s.max_connections = 10_000;
        assert_eq!(Limits::from_settings(&s, 256).max, 128);
    }
}
