//! Quotas shared by replicas through a real Redis (Debian's `redis-server`,
//! started here on a free loopback port): two sets of counters stand for two
//! replicas, and each limit holds across both (issue 22). The cluster test
//! (tests/cluster) drives the same through three real replicas and HAProxy.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure should panic

mod common;

use service::quota::{Limits, Quotas, Refused, Slot};
use service::quota_store::SharedCounters;
use service::settings::cluster::{ClusterSettings, OnRedisError};
use service::storage::tenants::Quota;
use service::storage::usage::{UsageRecorder, UsageRow};
use service::storage::{Storage, StorageSettings, now_ms};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A `redis-server` of our own, stopped by its PID when dropped.
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start() -> Self {
        let port = common::free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server from Debian's package (make setup installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
        }
    }

    fn counters(&self, on_error: OnRedisError, lease: Duration) -> Arc<SharedCounters> {
        connect(&self.url, on_error, lease)
    }
}

/// Counters at `url` with a lease of `lease` (whole seconds).
fn connect(url: &str, on_error: OnRedisError, lease: Duration) -> Arc<SharedCounters> {
    let settings = ClusterSettings {
        redis_url: Some(orchestrator::Secret::new(url.to_owned())),
        on_redis_error: on_error,
        lease_secs: lease.as_secs(),
        ..ClusterSettings::default()
    };
    Arc::new(SharedCounters::connect(&settings).unwrap().unwrap())
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn limits(requests_per_minute: u32, max_concurrent: u32) -> Limits {
    Limits {
        requests_per_minute,
        max_concurrent,
        tokens_per_day: None,
    }
}

const LEASE: Duration = Duration::from_secs(3);

#[tokio::test]
async fn two_replicas_share_one_request_bucket() {
    let redis = Redis::start();
    let a = Quotas::shared(redis.counters(OnRedisError::Closed, LEASE));
    let b = Quotas::shared(redis.counters(OnRedisError::Closed, LEASE));
    let l = limits(6, 100);
    let mut admitted = 0;
    let mut waits = Vec::new();
    for i in 0..12 {
        let replica = if i % 2 == 0 { &a } else { &b };
        match replica.admit("acme", &l).await {
            Ok(_slot) => admitted += 1,
            Err(Refused::Rate(wait)) => waits.push(wait),
            Err(other) => panic!("{other:?}"),
        }
    }
    // Per process each would have let 6 through: 12 in all.
    assert_eq!(admitted, 6, "one bucket of 6 for both replicas");
    // 6 a minute: the next one in at most 10 s.
    assert!(
        waits
            .iter()
            .all(|w| *w > Duration::from_secs(8) && *w <= Duration::from_secs(10)),
        "{waits:?}"
    );
    assert!(
        a.admit("globex", &l).await.is_ok(),
        "tenants have their own buckets"
    );
}

#[tokio::test]
async fn slots_are_leases_that_replicas_share_and_that_outlive_a_dead_one_briefly() {
    let redis = Redis::start();
    let a = Quotas::shared(redis.counters(OnRedisError::Closed, LEASE));
    let b = Quotas::shared(redis.counters(OnRedisError::Closed, LEASE));
    let l = limits(1_000, 2);
    let held_a = a.admit("acme", &l).await.unwrap();
    assert!(matches!(held_a, Slot::Shared(_)));
    let held_b = b.admit("acme", &l).await.unwrap();
    for replica in [&a, &b] {
        assert!(
            matches!(replica.admit("acme", &l).await, Err(Refused::Concurrency)),
            "2 in flight across both replicas"
        );
    }

    // A slot given back on one replica is free on the other.
    drop(held_a);
    let again = wait_for_slot(&b, &l, Duration::from_secs(2)).await;

    // Held longer than the lease time: renewed, so still counted.
    tokio::time::sleep(LEASE * 2).await;
    assert!(
        matches!(a.admit("acme", &l).await, Err(Refused::Concurrency)),
        "held slots are renewed past the lease time"
    );

    // Replica b dies holding two slots: nothing lets them go, they lapse.
    drop(b);
    drop(held_b);
    drop(again);
    let died = Instant::now();
    assert!(matches!(
        a.admit("acme", &l).await,
        Err(Refused::Concurrency)
    ));
    let _slot = wait_for_slot(&a, &l, LEASE * 2).await;
    let waited = died.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited <= LEASE + Duration::from_secs(1),
        "a dead replica's slots come back within the lease time: {waited:?}"
    );
}

async fn wait_for_slot(quotas: &Quotas, l: &Limits, within: Duration) -> Slot {
    let deadline = Instant::now() + within;
    loop {
        match quotas.admit("acme", l).await {
            Ok(slot) => return slot,
            Err(Refused::Concurrency) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("no slot within {within:?}: {other:?}"),
        }
    }
}

fn row(tenant: &str, tokens: i64) -> UsageRow {
    UsageRow {
        tenant_id: tenant.into(),
        route: "/v1/chat/completions".into(),
        model: "gemma".into(),
        tier: None,
        prompt_tokens: tokens / 2,
        completion_tokens: tokens - tokens / 2,
        latency_ms: 1.0,
        status: 200,
        created_at: now_ms(),
        ttft_ms: None,
        tokens_per_second: None,
    }
}

#[tokio::test]
async fn a_daily_budget_is_reserved_and_settled_once_for_every_replica() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageSettings {
        data_dir: dir.path().to_path_buf(),
        ..StorageSettings::default()
    })
    .await
    .unwrap();
    let tenant = storage
        .create_tenant("acme", Quota::default())
        .await
        .unwrap();
    // 300 tokens spent today before the shared counter existed.
    let (before, writer) = UsageRecorder::start(storage.clone());
    before.record(row(&tenant.id, 300));
    drop(before);
    writer.finish().await.unwrap();

    let (a, _wa) = UsageRecorder::start(storage.clone());
    let a = a.share_budgets(redis.counters(OnRedisError::Closed, LEASE));
    let (b, _wb) = UsageRecorder::start(storage.clone());
    let b = b.share_budgets(redis.counters(OnRedisError::Closed, LEASE));
    let reserve = |recorder: &UsageRecorder, tokens: u64| {
        let (recorder, storage, id) = (recorder.clone(), storage.clone(), tenant.id.clone());
        async move {
            recorder
                .reserve(&storage, &id, 1_000, tokens, now_ms())
                .await
                .unwrap()
        }
    };
    let first = reserve(&a, 400)
        .await
        .expect("seeded with 300: 300 committed");
    let _second = reserve(&b, 400).await.expect("700 committed");
    let refused = reserve(&a, 1).await.unwrap_err();
    assert_eq!(refused.committed, 1_100, "300 spent + 800 held");
    assert!(
        reserve(&b, 0).await.is_err(),
        "the other replica sees it too"
    );

    // The first request spent 50 of its 400: added and let go in one step.
    a.record_settling(row(&tenant.id, 50), Some(first));
    let deadline = Instant::now() + Duration::from_secs(2);
    while reserve(&b, 0).await.is_err() {
        assert!(Instant::now() < deadline, "settled within 2 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _third = reserve(&b, 300).await.expect("750 committed");
    let refused = reserve(&b, 0).await.unwrap_err();
    assert_eq!(refused.committed, 1_050, "350 spent + 700 held");
}

#[tokio::test]
async fn an_unreachable_store_refuses_when_closed_and_counts_locally_when_open() {
    let nothing = format!("redis://127.0.0.1:{}/0", common::free_port());
    let l = limits(2, 1);

    let closed = Quotas::shared(connect(&nothing, OnRedisError::Closed, LEASE));
    let started = Instant::now();
    for _ in 0..3 {
        assert!(matches!(
            closed.admit("acme", &l).await,
            Err(Refused::StoreUnavailable(_))
        ));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused promptly: {:?}",
        started.elapsed()
    );

    // Open: this process's own limits, never none.
    let open = Quotas::shared(connect(&nothing, OnRedisError::Open, LEASE));
    let slot = open.admit("acme", &l).await.unwrap();
    assert!(matches!(slot, Slot::Local(_)));
    assert!(matches!(
        open.admit("acme", &l).await,
        Err(Refused::Concurrency)
    ));
    drop(slot);
    assert!(
        matches!(open.admit("acme", &l).await, Err(Refused::Rate(_))),
        "2 a minute, both taken"
    );
}

/// Through the real binary: with the store down, a request is refused with
/// a 503 that says why (never let through unlimited), and the same request
/// passes once a store answers at the configured address.
#[tokio::test]
async fn the_service_refuses_with_503_while_its_store_is_down() {
    let port = common::free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let svc = common::Service::start(&[("REDIS_URL", url.as_str())]);
    let client = reqwest::Client::new();
    let classify = || {
        client
            .post(svc.url("/classify"))
            .json(&serde_json::json!({"text": "What is 2 + 2?"}))
            .send()
    };
    let refused = classify().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_store_unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cluster.redis_url") && message.contains("on_redis_error"),
        "{message}"
    );
    assert!(
        !message.contains(&port.to_string()),
        "no address in the answer"
    );

    // A store on that address: the connection comes back by itself.
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _redis = Redis {
        child,
        url: url.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = classify().await.unwrap().status();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} with the store up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request that leaves (or times out) while its admission is on its way
/// does not keep the slot the store gave it until the lease lapses.
#[tokio::test]
async fn a_slot_taken_for_a_request_that_left_is_given_back() {
    let redis = Redis::start();
    let a = Quotas::shared(redis.counters(OnRedisError::Closed, Duration::from_secs(30)));
    let l = limits(1_000, 1);
    // The script is loaded (EVALSHA finds it), so what is sent is what runs.
    drop(a.admit("warm-up", &l).await.unwrap());
    // The store stops answering for a while (CLIENT PAUSE from a connection
    // of its own): the admission is sent, and its caller gives up before the
    // store runs it.
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut sleeper = client.get_multiplexed_async_connection().await.unwrap();
    let asleep = tokio::spawn(async move {
        let _: Result<(), _> = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(1_500)
            .arg("ALL")
            .query_async(&mut sleeper)
            .await;
    });
    let mut probe = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ping = redis::cmd("PING");
        let ping = ping.query_async::<String>(&mut probe);
        if tokio::time::timeout(Duration::from_millis(50), ping)
            .await
            .is_err()
        {
            break; // asleep
        }
        assert!(Instant::now() < deadline, "the store never slept");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gave_up = tokio::time::timeout(Duration::from_millis(200), a.admit("acme", &l)).await;
    assert!(gave_up.is_err(), "the store was asleep");
    asleep.await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await; // the pause is over
    // Long before the 30 s lease lapses, the slot is free again.
    let slot = wait_for_slot(&a, &l, Duration::from_secs(2)).await;
    assert!(matches!(slot, Slot::Shared(_)));
}
