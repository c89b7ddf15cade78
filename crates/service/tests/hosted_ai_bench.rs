//! Benchmarks of the hosted·ai path (`make bench-hosted`; ignored in the
//! normal suite): the latency Harpoon adds on the warm path over calling the
//! pod endpoint directly, and cold-start time to first token with every
//! emulator delay at zero.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failure should panic

mod common;

use axum::{Json, Router, routing::get, routing::post};
use common::Service;
use hostedai_emulator::engine::{MlxServer, repo_root};
use hostedai_emulator::{Config, Delays, Emulator, PoolSpec, TeamSpec};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn config(upstream: SocketAddr) -> Config {
    Config {
        pools: vec![PoolSpec {
            id: 1,
            name: "bench".into(),
            gpus: 4,
            sharing_ratio: 1.0,
            time_quantum_secs: 30,
            price_per_vgpu_hour: 1.0,
            gpu_model: "H100".into(),
        }],
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
    }
}

fn service(emu: &Emulator) -> Service {
    let model = repo_root()
        .join("target/test-models/qwen3")
        .display()
        .to_string();
    let base = emu.base_url();
    let env = [
        ("HOSTED_AI_BASE_URL", base.as_str()),
        ("HOSTED_AI_API_KEY", "key-1"),
        ("HOSTED_AI_TEAM_ID", "team-1"),
        ("HARPOON__HOSTED_AI__POLL_INTERVAL_MS", "10"),
        ("HARPOON__MODELS__GEMMA__ENGINE", "hosted_ai"),
        ("HARPOON__MODELS__GEMMA__REPO", model.as_str()),
        ("HARPOON__MODELS__GEMMA__MAX_NEW_TOKENS", "16"),
        ("HARPOON__MODELS__GEMMA__CONTEXT_LIMIT", "2048"),
        ("HARPOON__QUOTAS__REQUESTS_PER_MINUTE", "100000000"),
        ("HARPOON__QUOTAS__MAX_CONCURRENT", "100000"),
        ("HF_HUB_OFFLINE", "1"),
    ];
    Service::start(&env)
}

/// A static OpenAI-compatible upstream: the pod's server without model noise.
async fn static_upstream() -> SocketAddr {
    let answer = json!({"id": "chatcmpl-static", "object": "chat.completion", "created": 0, "model": "static",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris is the capital of France."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}});
    let app = Router::new()
        .route(
            "/v1/models",
            get(|| async { Json(json!({"data": [{"id": "static"}]})) }),
        )
        .route(
            "/v1/chat/completions",
            post(move || {
                let answer = answer.clone();
                async move { Json(answer) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: make bench-hosted"]
async fn warm_path_added_latency() {
    let rounds: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000);
    let emu = Emulator::start(config(static_upstream().await))
        .await
        .unwrap();
    let svc = service(&emu);
    let client = reqwest::Client::new();
    let body = json!({"model": "gemma", "messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 16});
    // Warm up: the first request subscribes.
    for _ in 0..50 {
        assert!(
            client
                .post(svc.url("/v1/chat/completions"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
    }
    let pools: Value = client
        .get(svc.url("/v2/pools"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pod = pools["subscriptions"][0]["endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..50 {
        client
            .post(format!("{pod}/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let (mut via, mut direct) = (Vec::new(), Vec::new());
    for i in 0..2 * rounds {
        let url = if i % 2 == 0 {
            svc.url("/v1/chat/completions")
        } else {
            format!("{pod}/chat/completions")
        };
        let started = Instant::now();
        let r = client.post(url).json(&body).send().await.unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
        let ms = started.elapsed().as_secs_f64() * 1_000.0;
        if i % 2 == 0 {
            via.push(ms)
        } else {
            direct.push(ms)
        }
    }
    via.sort_by(f64::total_cmp);
    direct.sort_by(f64::total_cmp);
    println!("warm path, {rounds} sequential requests each, A/B interleaved (ms):");
    for (name, p) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
        let (a, b) = (percentile(&via, p), percentile(&direct, p));
        println!(
            "  {name}: via Harpoon {a:.3}  direct to pod {b:.3}  added {:.3}",
            a - b
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: make bench-hosted"]
async fn cold_start_time_to_first_token() {
    let rounds: usize = std::env::var("BENCH_COLD_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let engine = tokio::task::spawn_blocking(MlxServer::shared)
        .await
        .unwrap()
        .unwrap();
    let body = json!({"model": "gemma", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 8, "stream": true});
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..rounds {
        let emu = Emulator::start(config(engine.addr)).await.unwrap();
        let mut svc = service(&emu);
        let client = reqwest::Client::new();
        for target in [&mut cold, &mut warm] {
            let started = Instant::now();
            let mut r = client
                .post(svc.url("/v1/chat/completions"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            let mut first = None;
            while let Some(chunk) = r.chunk().await.unwrap() {
                if first.is_none() && String::from_utf8_lossy(&chunk).contains("\"content\"") {
                    first = Some(started.elapsed());
                }
            }
            target.push(first.expect("a token arrived").as_secs_f64() * 1_000.0);
        }
        svc.terminate();
        tokio::task::spawn_blocking(move || svc.wait_exit(Duration::from_secs(30)))
            .await
            .unwrap();
    }
    cold.sort_by(f64::total_cmp);
    warm.sort_by(f64::total_cmp);
    println!(
        "time to first token, {rounds} fresh services, emulator delays 0, mlx_lm.server on the tiny Qwen3 (ms):"
    );
    println!(
        "  cold (subscribe, poll, expose, probe, generate): median {:.1}  max {:.1}",
        percentile(&cold, 0.5),
        percentile(&cold, 1.0)
    );
    println!(
        "  warm (subscription ready):                        median {:.1}  max {:.1}",
        percentile(&warm, 0.5),
        percentile(&warm, 1.0)
    );
}
