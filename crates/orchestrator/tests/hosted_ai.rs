//! The hosted·ai client and pool manager against the emulator, whose pods
//! forward to a real `mlx_lm.server` on the tiny Qwen3 model.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use futures_util::StreamExt;
use hostedai_emulator::engine::MlxServer;
use hostedai_emulator::{Config, Delays, Emulator, Fault, PodFault, PoolSpec, TeamSpec};
use orchestrator::engine::{Engine, EngineError};
use orchestrator::generation::{Chunk, GenerationRequest, Message, Role};
use orchestrator::hosted_ai::{HostedAiEngine, HostedAiError, PoolManager};
use orchestrator::{HostedAiSettings, PoolSelection, Secret, Tier};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pool(id: u64, gpus: u32, ratio: f64, price: f64) -> PoolSpec {
    PoolSpec {
        id,
        name: format!("pool-{id}"),
        gpus,
        sharing_ratio: ratio,
        time_quantum_secs: 30,
        price_per_vgpu_hour: price,
        gpu_model: "H100".into(),
    }
}

async fn emulator(pools: Vec<PoolSpec>, delays: Delays) -> Emulator {
    emulator_with(Config {
        pools,
        teams: vec![
            TeamSpec {
                id: "team-1".into(),
                api_key: "key-1".into(),
            },
            TeamSpec {
                id: "team-2".into(),
                api_key: "key-2".into(),
            },
        ],
        delays,
        billing_interval_ms: 100,
        leak_other_teams: true,
        list_sharing_ratio: true,
        ..Config::default()
    })
    .await
}

/// An emulator on `config` whose pods forward to the shared `mlx_lm.server`.
async fn emulator_with(config: Config) -> Emulator {
    let engine = tokio::task::spawn_blocking(MlxServer::shared)
        .await
        .unwrap()
        .expect("mlx_lm.server on target/test-models/qwen3 (run `make setup`)");
    Emulator::start(Config {
        upstream: Some(engine.addr),
        ..config
    })
    .await
    .unwrap()
}

fn settings(emu: &Emulator) -> HostedAiSettings {
    HostedAiSettings {
        base_url: Some(emu.base_url()),
        api_key: Some(Secret::new("key-1")),
        team_id: Some("team-1".into()),
        subscribe_timeout_secs: 20,
        call_timeout_secs: 5,
        poll_interval_ms: 20,
        idle_release_secs: 600,
        ..HostedAiSettings::default()
    }
}

fn request() -> GenerationRequest {
    GenerationRequest {
        messages: vec![Message::new(Role::User, "Say hello")],
        max_tokens: 24,
        temperature: 0.0,
        top_p: 1.0,
        stop: Vec::new(),
        seed: Some(1),
        enable_thinking: false,
        prompt_tokens: None,
        extra: Default::default(),
    }
}

/// A second team's raw call, to set the scene.
async fn subscribe_as(emu: &Emulator, key: &str, team: &str, pool: u64) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/gpuaas/pool/subscribe", emu.base_url()))
        .header("X-API-Key", key)
        .json(&serde_json::json!({"pool_id": pool, "team_id": team, "vgpus": 1}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn full_lifecycle_generates_through_the_pod_and_releases_on_shutdown() {
    let emu = emulator(
        vec![pool(1, 2, 1.0, 2.0)],
        Delays {
            ready_ms: 100,
            expose_ms: 50,
            ..Delays::default()
        },
    )
    .await;
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let engine = HostedAiEngine::new(manager.clone(), "qwen", Some(Tier::Small), None);
    let done = engine.generate(request()).await.unwrap();
    assert!(done.usage.completion_tokens > 0);
    assert_eq!(emu.live_subscriptions(), 1);
    // Streaming goes through the same lease.
    let mut stream = engine.stream(request()).await.unwrap();
    let mut deltas = 0;
    let mut finished = false;
    while let Some(chunk) = stream.next().await {
        match chunk.unwrap() {
            Chunk::Delta(_) | Chunk::Upstream { .. } => deltas += 1,
            Chunk::Done { .. } => finished = true,
        }
    }
    assert!(deltas > 0 && finished);
    assert_eq!(
        emu.subscriptions().len(),
        1,
        "one subscription serves every request"
    );
    let snapshot = manager.snapshot();
    assert_eq!(snapshot.subscriptions.len(), 1);
    assert_eq!(snapshot.subscriptions[0].pool_id, "1");
    manager.shutdown().await;
    assert_eq!(emu.live_subscriptions(), 0, "shutdown releases everything");
    // Shutting down refuses new allocations with a reason.
    let err = engine.generate(request()).await.unwrap_err();
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn overcommit_decides_between_shared_and_dedicated_pools() {
    // Pool 1 is overcommitted 4× and cheaper; pool 2 is dedicated.
    let pools = vec![pool(1, 1, 4.0, 1.0), pool(2, 1, 1.0, 3.0)];
    let emu = emulator(pools.clone(), Delays::default()).await;
    let mut s = settings(&emu);
    s.overcommit = false;
    let manager = PoolManager::new(&s).unwrap();
    let lease = manager.acquire("m", Some(Tier::Small)).await.unwrap();
    assert_eq!(
        lease.pool_id, "2",
        "without overcommit only ratio-1 pools are used"
    );
    manager.shutdown().await;

    let emu = emulator(pools.clone(), Delays::default()).await;
    let mut s = settings(&emu);
    s.overcommit = true;
    let manager = PoolManager::new(&s).unwrap();
    let lease = manager.acquire("m", Some(Tier::Small)).await.unwrap();
    assert_eq!(
        lease.pool_id, "1",
        "with overcommit the cheaper shared pool wins"
    );
    manager.shutdown().await;

    let emu = emulator(pools, Delays::default()).await;
    let mut s = settings(&emu);
    s.overcommit = true;
    s.max_sharing_ratio = 2.0;
    let manager = PoolManager::new(&s).unwrap();
    let lease = manager.acquire("m", Some(Tier::Small)).await.unwrap();
    assert_eq!(
        lease.pool_id, "2",
        "a ratio above max_sharing_ratio is refused"
    );
    manager.shutdown().await;
}

/// The documented team-scope listing carries no sharing ratio: with
/// overcommit any pool may serve; without it only the pools `pool` names
/// (the operator vouches for them), and a pool with an unknown ratio is never
/// taken for dedicated.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_listed_ratio_overcommit_false_uses_only_named_pools() {
    let pools = vec![pool(1, 1, 4.0, 1.0), pool(2, 1, 1.5, 3.0)];
    let start = || {
        emulator_with(Config {
            pools: pools.clone(),
            billing_interval_ms: 100,
            ..Config::default()
        })
    };
    let emu = start().await;
    let mut s = settings(&emu);
    s.overcommit = false;
    let manager = PoolManager::new(&s).unwrap();
    let err = manager.acquire("m", None).await.unwrap_err();
    assert!(
        matches!(err, HostedAiError::NoCapacity(_)),
        "an unknown ratio is not taken for 1: {err:?}"
    );
    assert_eq!(emu.calls("subscribe"), 0);
    let view = manager.snapshot();
    assert!(
        view.pools
            .iter()
            .all(|p| p.sharing_ratio.is_none() && !p.allowed)
    );

    let emu = start().await;
    let mut s = settings(&emu);
    s.overcommit = false;
    s.pool = PoolSelection::Ids(vec!["2".into()]);
    let manager = PoolManager::new(&s).unwrap();
    let lease = manager.acquire("m", None).await.unwrap();
    assert_eq!(lease.pool_id, "2", "the named pool is vouched for");
    manager.shutdown().await;

    let emu = start().await;
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let lease = manager.acquire("m", None).await.unwrap();
    assert_eq!(
        lease.pool_id, "1",
        "overcommit (the default) takes the cheapest"
    );
    manager.shutdown().await;
}

/// A release that fails (429 beyond the client's retries) and a listing that
/// fails as the sweep begins leave nothing running: the sweep retries the
/// listing and releases every live subscription of ours it shows.
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_retries_its_listing_and_releases_what_a_failed_release_left() {
    let emu = emulator(vec![pool(1, 1, 1.0, 1.0)], Delays::default()).await;
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    manager.acquire("m", None).await.unwrap();
    assert_eq!(emu.live_subscriptions(), 1);
    let burst = |n| Fault {
        burst_429: n,
        ..Fault::default()
    };
    // More 429s than one call's attempts (4), on both calls shutdown makes.
    emu.set_fault("unsubscribe", burst(5));
    emu.set_fault("pool-subscription", burst(6));
    manager.shutdown().await;
    assert_eq!(emu.live_subscriptions(), 0, "nothing is left running");
}

/// The panel bills from the accepted subscribe until the row is gone; the
/// meter counts the same span, through idle releases, a failed allocation
/// and shutdown, to within 2 %.
#[tokio::test(flavor = "multi_thread")]
async fn metered_vgpu_seconds_match_the_panels_billing_through_churn() {
    let emu = emulator_with(Config {
        pools: vec![pool(1, 2, 1.0, 1.0), pool(2, 2, 1.0, 2.0)],
        delays: Delays {
            ready_ms: 300,
            unsubscribe_ms: 400,
            ..Delays::default()
        },
        billing_interval_ms: 10,
        ..Config::default()
    })
    .await;
    // Pool 1 never comes up: a subscription billed and released unused.
    emu.set_never_ready(1, true);
    let mut s = settings(&emu);
    s.idle_release_secs = 1;
    s.subscribe_timeout_secs = 3;
    let manager = PoolManager::new(&s).unwrap();
    manager.start_upkeep();
    let hosted = HostedAiEngine::new(manager.clone(), "m", Some(Tier::Small), None);
    assert!(
        hosted.generate(request()).await.is_err(),
        "pool 1 never comes up"
    );
    emu.set_never_ready(1, false);
    for _ in 0..2 {
        hosted.generate(request()).await.unwrap();
        // Idle release, then the row's removal, before the next allocation.
        let limit = Instant::now() + Duration::from_secs(10);
        while emu.subscriptions().iter().any(|_| true) {
            assert!(
                Instant::now() < limit,
                "the idle subscription was never released"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    hosted.generate(request()).await.unwrap();
    manager.shutdown().await;
    // Billing ticks every 10 ms; give the last removal a tick to land.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let billed =
        (emu.billed_vgpu_hours("team-1", 1) + emu.billed_vgpu_hours("team-1", 2)) * 3_600.0;
    let metered = manager.meter().vgpu_seconds("m");
    assert!(billed > 1.0, "billed {billed} vGPU-seconds");
    // The same seconds, split by the pool they were held on.
    let (on_1, on_2) = (
        manager.meter().pool_vgpu_seconds("1"),
        manager.meter().pool_vgpu_seconds("2"),
    );
    assert!(on_1 > 0.0, "pool 1 held the model: {on_1}");
    assert!(
        (on_1 + on_2 - metered).abs() < 1e-6,
        "per pool {on_1} + {on_2} against per model {metered}"
    );
    let ratio = metered / billed;
    eprintln!("metered {metered:.3} / billed {billed:.3} vGPU-seconds = {ratio:.4}");
    assert!(
        (0.98..=1.02).contains(&ratio),
        "metered {metered:.3} against billed {billed:.3} vGPU-seconds ({ratio:.4})"
    );
}

/// A 409 from expose-service means the name is taken, that is, the service
/// exists (a retried call, or a repair racing an allocation): it is looked
/// up, never read as "already subscribed" (which made the manager release
/// the subscription it was repairing).
#[tokio::test(flavor = "multi_thread")]
async fn an_expose_409_is_the_existing_service_not_a_reason_to_release() {
    let emu = emulator_with(Config {
        pools: vec![pool(1, 1, 1.0, 1.0)],
        expose_conflict: true,
        ..Config::default()
    })
    .await;
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let lease = manager.acquire("m", None).await.unwrap();
    let row = manager.client().subscriptions().await.unwrap().remove(0);
    let name = format!("harpoon-m-{}", lease.subscription_id);
    let again = manager
        .client()
        .expose_service(&row.pods[0].pod_name, &lease.subscription_id, 8000, &name)
        .await
        .unwrap();
    assert_eq!(
        again.endpoint().map(|e| format!("{e}/v1")),
        Some(lease.endpoint.clone())
    );
    manager.shutdown().await;
    assert_eq!(emu.calls("unsubscribe"), 1);
}

/// Dropped connections at the pod's node port are the path's, not the pod's:
/// the pod's service is never torn down over them (that cut every other
/// request on the node port), one subscription serves throughout, and a
/// request that failed before anything reached the client is retried once,
/// so clients see fewer errors than the node port dropped.
#[tokio::test(flavor = "multi_thread")]
async fn dropped_connections_at_the_node_port_never_tear_the_service_down() {
    let emu = emulator(vec![pool(1, 1, 1.0, 1.0)], Delays::default()).await;
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let engine = HostedAiEngine::new(manager.clone(), "m", None, None);
    engine.generate(request()).await.unwrap();
    emu.set_pod_fault(hostedai_emulator::PodFault {
        drop_rate: 0.2,
        ..Default::default()
    });
    let before = emu.pod_requests();
    let mut failed = 0;
    for i in 0..40 {
        let outcome = if i % 4 == 0 {
            match engine.stream(request()).await {
                Ok(mut s) => {
                    let mut ok = true;
                    while let Some(item) = s.next().await {
                        ok &= item.is_ok();
                    }
                    ok
                }
                Err(_) => false,
            }
        } else {
            engine.generate(request()).await.is_ok()
        };
        failed += u32::from(!outcome);
    }
    let sent = emu.pod_requests() - before;
    assert_eq!(emu.calls("delete-service"), 0, "the service was torn down");
    assert_eq!(emu.calls("subscribe"), 1, "one subscription throughout");
    assert!(
        f64::from(failed) / 40.0 <= 0.2,
        "{failed} of 40 requests failed with {sent} sent to the node port"
    );
    manager.shutdown().await;
    assert_eq!(emu.live_subscriptions(), 0);
}

/// A request waits for capacity at most `request_wait_secs`, then gets a
/// Busy answer (503 with `Retry-After`); the allocation goes on and serves
/// the requests that follow, with one subscribe call.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_waits_for_capacity_at_most_request_wait_secs() {
    let emu = emulator(
        vec![pool(1, 1, 1.0, 1.0)],
        Delays {
            ready_ms: 2_500,
            ..Delays::default()
        },
    )
    .await;
    let mut s = settings(&emu);
    s.request_wait_secs = 1;
    let manager = PoolManager::new(&s).unwrap();
    let engine = HostedAiEngine::new(manager.clone(), "m", None, None);
    let started = Instant::now();
    let err = engine.generate(request()).await.unwrap_err();
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(1_800), "waited {waited:?}");
    match &err {
        EngineError::Busy {
            message,
            retry_after,
        } => {
            assert!(message.starts_with("hosted_ai: "), "{message}");
            assert!(*retry_after >= Duration::from_secs(1));
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    let limit = Instant::now() + Duration::from_secs(10);
    loop {
        match engine.generate(request()).await {
            Ok(_) => break,
            Err(EngineError::Busy { .. }) if Instant::now() < limit => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(emu.calls("subscribe"), 1, "the first allocation went on");
    manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn insufficient_resources_moves_to_the_next_pool() {
    let emu = emulator(
        vec![pool(1, 1, 1.0, 1.0), pool(2, 1, 1.0, 2.0)],
        Delays::default(),
    )
    .await;
    // The listing says pool 1 is free, but its slot is taken: subscribe gets 10189007.
    emu.set_hidden_allocation(1, 1);
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let lease = manager.acquire("m", None).await.unwrap();
    assert_eq!(lease.pool_id, "2");
    assert_eq!(emu.calls("subscribe"), 2);
    manager.shutdown().await;
    assert_eq!(emu.live_subscriptions(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_capacity_anywhere_fails_with_a_reason_within_the_timeout() {
    let emu = emulator(vec![pool(1, 1, 1.0, 1.0)], Delays::default()).await;
    assert!(
        subscribe_as(&emu, "key-2", "team-2", 1)
            .await
            .status()
            .is_success()
    );
    let mut s = settings(&emu);
    s.subscribe_timeout_secs = 2;
    let manager = PoolManager::new(&s).unwrap();
    let started = Instant::now();
    let err = manager.acquire("m", None).await.unwrap_err();
    assert!(matches!(err, HostedAiError::NoCapacity(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_subscription_is_adopted_after_409() {
    let emu = emulator(vec![pool(1, 2, 1.0, 1.0)], Delays::default()).await;
    let before = subscribe_as(&emu, "key-1", "team-1", 1).await;
    let id = before.json::<serde_json::Value>().await.unwrap()["subscription_id"].clone();
    // Another team's row leaks into our listing; it must be ignored.
    assert!(
        subscribe_as(&emu, "key-2", "team-2", 1)
            .await
            .status()
            .is_success()
    );
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let lease = manager.acquire("m", None).await.unwrap();
    assert!(lease.adopted);
    assert_eq!(lease.subscription_id, id.to_string());
    assert_eq!(
        emu.subscriptions()
            .iter()
            .filter(|s| s.team_id == "team-1")
            .count(),
        1
    );
    manager.shutdown().await;
    assert_eq!(
        emu.subscriptions()
            .iter()
            .filter(|s| s.team_id == "team-1" && s.status != "un_subscribing")
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_errors_are_retried_and_4xx_are_not() {
    let emu = emulator(vec![pool(1, 2, 1.0, 1.0)], Delays::default()).await;
    emu.set_fault(
        "available-pools",
        Fault {
            burst_429: 2,
            ..Fault::default()
        },
    );
    emu.set_fault(
        "pool-subscription",
        Fault {
            drop_rate: 0.3,
            ..Fault::default()
        },
    );
    // With 30 % of answers dropped, five failures in a row (the default
    // breaker) come up now and then over the readiness polls, and an open
    // breaker outlasts the subscribe timeout; the breaker has its own test.
    let manager = PoolManager::new(&HostedAiSettings {
        breaker_failures: 12,
        ..settings(&emu)
    })
    .unwrap();
    let lease = manager.acquire("m", None).await.unwrap();
    assert_eq!(lease.pool_id, "1");
    assert!(emu.calls("available-pools") >= 3, "two 429s, then success");
    manager.shutdown().await;

    // A key for another team's id: 403, once, never retried.
    let mut s = settings(&emu);
    s.team_id = Some("team-2".into());
    let manager = PoolManager::new(&s).unwrap();
    let before = emu.calls("available-pools");
    let err = manager.acquire("m", None).await.unwrap_err();
    assert!(matches!(err, HostedAiError::Forbidden(_)), "{err:?}");
    assert_eq!(emu.calls("available-pools"), before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_auth_works_and_a_bad_key_is_401_without_retry() {
    let emu = emulator(vec![pool(1, 2, 1.0, 1.0)], Delays::default()).await;
    let mut s = settings(&emu);
    s.auth_header = orchestrator::AuthHeader::Bearer;
    let manager = PoolManager::new(&s).unwrap();
    assert_eq!(manager.client().available_pools().await.unwrap().len(), 1);
    s.api_key = Some(Secret::new("wrong"));
    let manager = PoolManager::new(&s).unwrap();
    let started = Instant::now();
    let err = manager.acquire("m", None).await.unwrap_err();
    assert!(matches!(err, HostedAiError::Unauthorized(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "no back-off on 401"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_circuit_breaker_opens_after_consecutive_failures() {
    let emu = emulator(vec![pool(1, 2, 1.0, 1.0)], Delays::default()).await;
    emu.set_fault(
        "available-pools",
        Fault {
            error_rate: 1.0,
            ..Fault::default()
        },
    );
    let mut s = settings(&emu);
    s.max_attempts = 1;
    s.breaker_failures = 2;
    s.breaker_cooldown_secs = 1;
    let manager = PoolManager::new(&s).unwrap();
    let client = manager.client();
    assert!(client.available_pools().await.unwrap_err().is_transient());
    assert!(client.available_pools().await.unwrap_err().is_transient());
    let open = client.available_pools().await.unwrap_err();
    assert!(
        matches!(open, HostedAiError::CircuitOpen { .. }),
        "{open:?}"
    );
    assert_eq!(
        emu.calls("available-pools"),
        2,
        "an open breaker makes no call"
    );
    // After the cool-down one trial call goes through; success closes the breaker.
    emu.clear_faults();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(client.available_pools().await.is_ok());
    assert!(client.available_pools().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn never_ready_subscriptions_time_out_and_are_released() {
    let emu = emulator(vec![pool(1, 2, 1.0, 1.0)], Delays::default()).await;
    emu.set_never_ready(1, true);
    let mut s = settings(&emu);
    s.subscribe_timeout_secs = 2;
    let manager = PoolManager::new(&s).unwrap();
    let engine = HostedAiEngine::new(manager.clone(), "m", None, None);
    let started = Instant::now();
    let err = engine.generate(request()).await.unwrap_err();
    assert!(matches!(err.kind(), EngineError::Timeout(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        emu.live_subscriptions(),
        0,
        "the half-made subscription is released"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_share_one_allocation_and_waiters_are_bounded() {
    let emu = emulator(
        vec![pool(1, 4, 1.0, 1.0)],
        Delays {
            ready_ms: 300,
            ..Delays::default()
        },
    )
    .await;
    let mut s = settings(&emu);
    s.max_waiters = 4;
    let manager = PoolManager::new(&s).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let m = manager.clone();
            tokio::spawn(async move { m.acquire("m", None).await })
        })
        .collect();
    let mut ok = 0;
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(HostedAiError::Busy(_)) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok + busy, 8);
    assert!(ok >= 1 && busy >= 1, "ok {ok}, busy {busy}");
    assert_eq!(
        emu.calls("subscribe"),
        1,
        "one subscription for all of them"
    );
    manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_subscriptions_are_released() {
    let emu = emulator(vec![pool(1, 2, 1.0, 1.0)], Delays::default()).await;
    let mut s = settings(&emu);
    s.idle_release_secs = 1;
    let manager = PoolManager::new(&s).unwrap();
    manager.start_upkeep();
    let engine = HostedAiEngine::new(manager.clone(), "m", None, None);
    engine.generate(request()).await.unwrap();
    assert_eq!(emu.live_subscriptions(), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while emu.live_subscriptions() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        emu.live_subscriptions(),
        0,
        "released after idle_release_secs"
    );
    // Usage held while subscribed was metered and priced.
    assert!(manager.meter().estimated_total() > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_lost_before_the_first_token_is_replaced_and_the_request_retried() {
    let emu = emulator(
        vec![pool(1, 1, 1.0, 1.0), pool(2, 1, 1.0, 2.0)],
        Delays::default(),
    )
    .await;
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let engine = HostedAiEngine::new(manager.clone(), "m", None, None);
    engine.generate(request()).await.unwrap();
    let first = manager.snapshot().subscriptions[0].subscription_id.clone();
    // The pod dies after a few bytes of the next answer.
    emu.evict_after_bytes(Some(10));
    let done = engine.generate(request()).await.unwrap();
    assert!(done.usage.completion_tokens > 0);
    let now = manager.snapshot().subscriptions[0].subscription_id.clone();
    assert_ne!(first, now, "the evicted subscription was replaced");
    manager.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while emu.live_subscriptions() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(emu.live_subscriptions(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_lost_mid_stream_ends_the_stream_with_an_error() {
    let emu = emulator(
        vec![pool(1, 1, 1.0, 1.0), pool(2, 1, 1.0, 2.0)],
        Delays::default(),
    )
    .await;
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let engine = HostedAiEngine::new(manager.clone(), "m", None, None);
    engine.generate(request()).await.unwrap();
    // Enough bytes for the headers and a few chunks, not the whole answer.
    emu.evict_after_bytes(Some(900));
    let mut long = request();
    long.max_tokens = 200;
    let mut stream = engine.stream(long).await.unwrap();
    let mut deltas = 0;
    let mut error = None;
    let limit = Instant::now() + Duration::from_secs(30);
    while let Some(chunk) = stream.next().await {
        assert!(Instant::now() < limit, "the stream hung");
        match chunk {
            Ok(Chunk::Delta(_) | Chunk::Upstream { .. }) => deltas += 1,
            Ok(Chunk::Done { .. }) => panic!("the stream should not finish after the pod died"),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert!(deltas > 0, "some text arrived before the eviction");
    assert!(
        matches!(
            error.as_ref().map(EngineError::kind),
            Some(EngineError::Upstream(_) | EngineError::Connect(_))
        ),
        "{error:?}"
    );
    // The next request is served by replacement capacity.
    assert!(engine.generate(request()).await.is_ok());
    manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn native_fallback_serves_when_hosted_ai_cannot() {
    let emu = emulator(vec![pool(1, 1, 1.0, 1.0)], Delays::default()).await;
    assert!(
        subscribe_as(&emu, "key-2", "team-2", 1)
            .await
            .status()
            .is_success()
    );
    let mut s = settings(&emu);
    s.subscribe_timeout_secs = 1;
    s.pool = PoolSelection::Ids(vec!["1".into()]);
    let manager = PoolManager::new(&s).unwrap();
    let engine_addr = MlxServer::shared().unwrap().addr;
    let local = orchestrator::engine::openai::OpenAiEngine::new(
        orchestrator::engine::openai::OpenAiConfig {
            base_url: format!("http://{engine_addr}/v1"),
            api_key: None,
            served_model: None,
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(30),
            max_attempts: 1,
        },
    )
    .unwrap();
    let engine = HostedAiEngine::new(manager, "m", None, Some(Arc::new(local)));
    let done = engine.generate(request()).await.unwrap();
    assert!(done.usage.completion_tokens > 0);
    assert_eq!(
        emu.subscriptions()
            .iter()
            .filter(|s| s.team_id == "team-1")
            .count(),
        0
    );
}

/// The subscription serving the model now.
fn serving(manager: &PoolManager) -> String {
    manager.snapshot().subscriptions[0].subscription_id.clone()
}

/// What a client of the engine is told starts with `hosted_ai: ` and the
/// model, and never names the pod's endpoint.
fn assert_client_safe(err: &EngineError, model: &str) {
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("hosted_ai: model {model}: ")),
        "{text}"
    );
    assert!(
        !text.contains("127.0.0.1") && !text.contains("http://") && !text.contains("/v1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_429_reaches_the_caller_as_rate_limited_with_its_retry_after() {
    let emu = emulator(vec![pool(1, 1, 1.0, 1.0)], Delays::default()).await;
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let engine = HostedAiEngine::new(manager.clone(), "m", None, None);
    engine.generate(request()).await.unwrap();
    let first = serving(&manager);

    emu.set_pod_fault(PodFault {
        burst_429: 1,
        retry_after_secs: Some(7),
        ..PodFault::default()
    });
    let before = emu.pod_requests();
    let err = engine.generate(request()).await.unwrap_err();
    match &err {
        EngineError::RateLimited { retry_after, .. } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(7)), "the pod's own");
        }
        other => panic!("a pod 429 must stay a 429: {other:?}"),
    }
    assert_client_safe(&err, "m");
    assert_eq!(emu.pod_requests(), before + 1, "a 429 is not retried");

    // Streamed, and without the pod's Retry-After: a short default.
    emu.set_pod_fault(PodFault {
        burst_429: 1,
        ..PodFault::default()
    });
    let err = match engine.stream(request()).await {
        Ok(_) => panic!("the pod answered 429"),
        Err(e) => e,
    };
    assert!(
        matches!(&err, EngineError::RateLimited { retry_after: Some(d), .. } if *d > Duration::ZERO && *d <= Duration::from_secs(5)),
        "{err:?}"
    );
    assert_eq!(serving(&manager), first, "a busy pod is not a lost pod");
    assert_eq!(emu.subscriptions().len(), 1);
    manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_5xx_before_the_first_byte_is_retried_once_then_is_an_upstream_error() {
    let emu = emulator(vec![pool(1, 1, 1.0, 1.0)], Delays::default()).await;
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let engine = HostedAiEngine::new(manager.clone(), "m", None, None);
    engine.generate(request()).await.unwrap();
    let first = serving(&manager);

    // One 500: the retry after a short back-off succeeds.
    emu.set_pod_fault(PodFault {
        burst_500: 1,
        ..PodFault::default()
    });
    let before = emu.pod_requests();
    let done = engine.generate(request()).await.unwrap();
    assert!(done.usage.completion_tokens > 0);
    assert_eq!(emu.pod_requests(), before + 2);

    // Streamed too, before the first chunk.
    emu.set_pod_fault(PodFault {
        burst_500: 1,
        ..PodFault::default()
    });
    let mut stream = engine.stream(request()).await.unwrap();
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
    }

    // Two: one retry only, then an upstream error (502) naming no endpoint.
    emu.set_pod_fault(PodFault {
        burst_500: 2,
        ..PodFault::default()
    });
    let before = emu.pod_requests();
    let err = engine.generate(request()).await.unwrap_err();
    assert!(matches!(err.kind(), EngineError::Upstream(_)), "{err:?}");
    assert_client_safe(&err, "m");
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert_eq!(emu.pod_requests(), before + 2, "exactly one retry");
    assert_eq!(
        serving(&manager),
        first,
        "the pod's own 500 is not a lost pod"
    );
    manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_at_the_pod_never_name_its_endpoint() {
    let emu = emulator(vec![pool(1, 1, 1.0, 1.0)], Delays::default()).await;
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let engine = HostedAiEngine::new(manager.clone(), "m", None, None);
    engine.generate(request()).await.unwrap();
    // Every inference connection is dropped: reqwest's error names the URL.
    emu.set_pod_fault(PodFault {
        drop_rate: 1.0,
        ..PodFault::default()
    });
    let err = engine.generate(request()).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            EngineError::Upstream(_) | EngineError::Connect(_)
        ),
        "{err:?}"
    );
    assert_client_safe(&err, "m");
    assert!(
        !format!("{:?}", err.kind()).contains("127.0.0.1"),
        "{err:?}"
    );
    let err = match engine.stream(request()).await {
        Ok(_) => panic!("the pod drops every connection"),
        Err(e) => e,
    };
    assert_client_safe(&err, "m");
    emu.clear_faults();
    manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_whose_pools_are_held_by_our_other_models_is_told_so_with_a_retry_after() {
    let emu = emulator(
        vec![pool(1, 1, 1.0, 1.0), pool(2, 1, 1.0, 2.0)],
        Delays::default(),
    )
    .await;
    let mut s = settings(&emu);
    s.subscribe_timeout_secs = 2;
    let manager = PoolManager::new(&s).unwrap();
    for model in ["gemma", "qwen"] {
        HostedAiEngine::new(manager.clone(), model, None, None)
            .generate(request())
            .await
            .unwrap();
    }
    let third = HostedAiEngine::new(manager.clone(), "third", None, None);
    let started = Instant::now();
    let err = third.generate(request()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    let text = err.to_string();
    assert!(text.starts_with("hosted_ai: model third: "), "{text}");
    assert!(
        text.contains("our model gemma") && text.contains("our model qwen"),
        "the slots are ours: {text}"
    );
    assert!(
        matches!(&err, EngineError::Busy { retry_after, .. } if *retry_after >= Duration::from_secs(1)),
        "a 503 with Retry-After: {err:?}"
    );
    assert_eq!(emu.live_subscriptions(), 2);
    manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_pool_is_busy_with_a_retry_after_and_a_hosted_ai_prefix() {
    let emu = emulator(vec![pool(1, 1, 1.0, 1.0)], Delays::default()).await;
    assert!(
        subscribe_as(&emu, "key-2", "team-2", 1)
            .await
            .status()
            .is_success()
    );
    let mut s = settings(&emu);
    s.subscribe_timeout_secs = 1;
    let manager = PoolManager::new(&s).unwrap();
    let err = HostedAiEngine::new(manager, "m", None, None)
        .generate(request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::Busy { retry_after, .. } if *retry_after >= Duration::from_secs(1)),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("hosted_ai: model m: "), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_hosted_ai_error_a_client_sees_starts_with_hosted_ai() {
    // Not ready in time: a 504 that says where it came from.
    let emu = emulator(vec![pool(1, 1, 1.0, 1.0)], Delays::default()).await;
    emu.set_never_ready(1, true);
    let mut s = settings(&emu);
    s.subscribe_timeout_secs = 1;
    let manager = PoolManager::new(&s).unwrap();
    let engine = HostedAiEngine::new(manager.clone(), "m", None, None);
    let err = engine.generate(request()).await.unwrap_err();
    assert!(matches!(err.kind(), EngineError::Timeout(_)), "{err:?}");
    assert!(err.to_string().starts_with("hosted_ai: model m: "), "{err}");

    // The panel failing: a 503 with the prefix, and without the panel's address.
    let emu = emulator(vec![pool(1, 1, 1.0, 1.0)], Delays::default()).await;
    emu.set_all_faults(Some(Fault {
        drop_rate: 1.0,
        ..Fault::default()
    }));
    let mut s = settings(&emu);
    s.max_attempts = 1;
    s.subscribe_timeout_secs = 2;
    let manager = PoolManager::new(&s).unwrap();
    let engine = HostedAiEngine::new(manager.clone(), "m", None, None);
    let err = engine.generate(request()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("hosted_ai: model m: "), "{text}");
    assert!(!text.contains("127.0.0.1"), "{text}");

    // Shutting down.
    manager.shutdown().await;
    let err = engine.generate(request()).await.unwrap_err();
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().starts_with("hosted_ai: model m: "), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_billing_summary_is_read_with_string_amounts_and_a_currency_object() {
    let emu = emulator(vec![pool(1, 1, 1.0, 100.0)], Delays::default()).await;
    emu.set_billing_as_strings(true);
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    manager.acquire("m", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    manager.refresh().await;
    let billing = manager.snapshot().billing.expect("refreshed");
    assert_eq!(billing.error, None);
    assert!(billing.billed_today.is_some_and(|b| b > 0.0), "{billing:?}");
    assert_eq!(billing.currency.as_deref(), Some("USD"));
    manager.shutdown().await;
}

/// The hosted_ai engine's own cost on the warm path: the same pod endpoint
/// through `HostedAiEngine` (lease lookup, in-flight guard, first-chunk
/// check) against the bare `openai` engine, A/B interleaved (`make bench-hosted`).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: make bench-hosted"]
async fn bench_engine_overhead_on_the_warm_path() {
    use axum::{Json, Router, routing::get, routing::post};
    let rounds: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000);
    let answer = serde_json::json!({"id": "x", "object": "chat.completion", "created": 0, "model": "static",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}});
    let app = Router::new()
        .route(
            "/v1/models",
            get(|| async { Json(serde_json::json!({"data": []})) }),
        )
        .route(
            "/v1/chat/completions",
            post(move || {
                let answer = answer.clone();
                async move { Json(answer) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let emu = Emulator::start(Config {
        pools: vec![pool(1, 2, 1.0, 1.0)],
        teams: vec![TeamSpec {
            id: "team-1".into(),
            api_key: "key-1".into(),
        }],
        delays: Delays::default(),
        upstream: Some(upstream),
        billing_interval_ms: 1_000,
        leak_other_teams: false,
        list_sharing_ratio: true,
        expose_conflict: false,
    })
    .await
    .unwrap();
    let manager = PoolManager::new(&settings(&emu)).unwrap();
    let hosted = HostedAiEngine::new(manager.clone(), "m", None, None);
    hosted.generate(request()).await.unwrap();
    let direct = manager.acquire("m", None).await.unwrap().engine().clone();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..2 * rounds {
        let started = Instant::now();
        if i % 2 == 0 {
            hosted.generate(request()).await.unwrap();
            a.push(started.elapsed().as_secs_f64() * 1e6);
        } else {
            direct.generate(request()).await.unwrap();
            b.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let p = |v: &[f64], q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "hosted_ai engine vs openai engine at the same pod endpoint, {rounds} requests each (µs):"
    );
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
        println!(
            "  {name}: hosted_ai {:.0}  openai {:.0}  added {:.0}",
            p(&a, q),
            p(&b, q),
            p(&a, q) - p(&b, q)
        );
    }
    manager.shutdown().await;
}

/// The directory two replicas share, in memory: one owner lease, endpoints, requests.
#[derive(Debug, Default)]
struct MemoryDirectory {
    state: std::sync::Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    owner: Option<(String, Instant)>,
    endpoints: Vec<orchestrator::hosted_ai::EndpointRecord>,
    requests: Vec<orchestrator::hosted_ai::CapacityRequest>,
    asked: usize,
}

#[async_trait::async_trait]
impl orchestrator::hosted_ai::PoolDirectory for MemoryDirectory {
    async fn claim(
        &self,
        replica: &str,
        ttl: Duration,
    ) -> Result<bool, orchestrator::hosted_ai::DirectoryError> {
        let mut s = self.state.lock().unwrap();
        let free = match &s.owner {
            None => true,
            Some((who, until)) => who == replica || *until < Instant::now(),
        };
        if free {
            s.owner = Some((replica.to_owned(), Instant::now() + ttl));
        }
        Ok(free)
    }
    async fn resign(&self, replica: &str) -> Result<(), orchestrator::hosted_ai::DirectoryError> {
        let mut s = self.state.lock().unwrap();
        if s.owner.as_ref().is_some_and(|(who, _)| who == replica) {
            s.owner = None;
        }
        Ok(())
    }
    async fn others_alive(&self, _: &str) -> Result<bool, orchestrator::hosted_ai::DirectoryError> {
        Ok(false)
    }
    async fn endpoints(
        &self,
    ) -> Result<Vec<orchestrator::hosted_ai::EndpointRecord>, orchestrator::hosted_ai::DirectoryError>
    {
        Ok(self.state.lock().unwrap().endpoints.clone())
    }
    async fn publish(
        &self,
        record: &orchestrator::hosted_ai::EndpointRecord,
    ) -> Result<(), orchestrator::hosted_ai::DirectoryError> {
        let mut s = self.state.lock().unwrap();
        s.endpoints.retain(|e| e.model != record.model);
        s.endpoints.push(record.clone());
        Ok(())
    }
    async fn withdraw(
        &self,
        model: &str,
        subscription: &str,
    ) -> Result<(), orchestrator::hosted_ai::DirectoryError> {
        let mut s = self.state.lock().unwrap();
        s.endpoints
            .retain(|e| !(e.model == model && e.subscription_id == subscription));
        Ok(())
    }
    async fn touch(&self, _: &str) -> Result<(), orchestrator::hosted_ai::DirectoryError> {
        Ok(())
    }
    async fn ask(
        &self,
        model: &str,
        vgpus: u32,
        failed_subscription: Option<&str>,
    ) -> Result<(), orchestrator::hosted_ai::DirectoryError> {
        let mut s = self.state.lock().unwrap();
        s.asked += 1;
        s.requests.retain(|r| r.model != model);
        s.requests.push(orchestrator::hosted_ai::CapacityRequest {
            model: model.to_owned(),
            vgpus,
            failed_subscription: failed_subscription.map(str::to_owned),
            error: None,
        });
        Ok(())
    }
    async fn requests(
        &self,
    ) -> Result<
        Vec<orchestrator::hosted_ai::CapacityRequest>,
        orchestrator::hosted_ai::DirectoryError,
    > {
        let s = self.state.lock().unwrap();
        Ok(s.requests
            .iter()
            .filter(|r| r.error.is_none())
            .cloned()
            .collect())
    }
    async fn request(
        &self,
        model: &str,
    ) -> Result<
        Option<orchestrator::hosted_ai::CapacityRequest>,
        orchestrator::hosted_ai::DirectoryError,
    > {
        let s = self.state.lock().unwrap();
        Ok(s.requests.iter().find(|r| r.model == model).cloned())
    }
    async fn answer(
        &self,
        model: &str,
        error: Option<&str>,
    ) -> Result<(), orchestrator::hosted_ai::DirectoryError> {
        let mut s = self.state.lock().unwrap();
        match error {
            None => s.requests.retain(|r| r.model != model),
            Some(e) => {
                for r in s.requests.iter_mut().filter(|r| r.model == model) {
                    r.error = Some(e.to_owned());
                }
            }
        }
        Ok(())
    }
    async fn add_usage(
        &self,
        _: &str,
        _: &str,
        _: f64,
        _: f64,
    ) -> Result<(), orchestrator::hosted_ai::DirectoryError> {
        Ok(())
    }
}

/// Two managers sharing a directory: the owner subscribes once for both;
/// the other asks through the directory, serves through the published
/// endpoint, and releases nothing at its shutdown; the owner, last out, does.
#[tokio::test]
async fn a_replica_that_does_not_own_asks_the_owner_and_never_subscribes() {
    use orchestrator::hosted_ai::ClusterConfig;
    let emu = emulator(
        vec![pool(1, 2, 1.0, 1.0)],
        Delays {
            ready_ms: 100,
            expose_ms: 50,
            unsubscribe_ms: 50,
            ..Delays::default()
        },
    )
    .await;
    let directory = Arc::new(MemoryDirectory::default());
    let owner = PoolManager::new(&settings(&emu)).unwrap();
    let other = PoolManager::new(&settings(&emu)).unwrap();
    let lease = Duration::from_millis(900);
    owner.join_cluster(
        directory.clone(),
        ClusterConfig {
            replica_id: "owner".into(),
            lease,
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !owner.snapshot().cluster.is_some_and(|c| c.owner) {
        assert!(Instant::now() < deadline, "the first replica never owned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    other.join_cluster(
        directory.clone(),
        ClusterConfig {
            replica_id: "other".into(),
            lease,
        },
    );
    let served = other.acquire("m", None).await.unwrap();
    assert_eq!(
        directory.state.lock().unwrap().asked,
        1,
        "it asked the owner"
    );
    assert_eq!(emu.calls("subscribe"), 1);
    let owned = owner.acquire("m", None).await.unwrap();
    assert_eq!(served.subscription_id, owned.subscription_id);
    assert_eq!(served.endpoint, owned.endpoint);
    let answer = served.engine().generate(request()).await.unwrap();
    assert!(answer.usage.completion_tokens > 0);
    assert!(!other.snapshot().cluster.unwrap().owner);

    other.shutdown().await;
    assert_eq!(
        emu.live_subscriptions(),
        1,
        "not the owner: releases nothing"
    );
    owner.shutdown().await;
    assert_eq!(emu.live_subscriptions(), 0, "the last owner out releases");
    assert_eq!(emu.calls("subscribe"), 1);
}
