//! The generate path with a real model: `mlx_lm.server` serving the tiny
//! random-weight Qwen3 (from `make setup`) behind the `openai` engine. Random
//! weights cannot write the JSON a change needs, so each repository must fail
//! cleanly with the reason, after the bounded attempts, and push nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use harpoon_bridge::{Phase, StrikeRequest, UsageSink};
use orchestrator::{EngineKind, ModelsSettings, Tier, registry::Registry};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use support::*;

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One report of the bridge: (tenant, model, prompt, completion, ok).
type Report = (String, String, u32, u32, bool);

/// What the bridge reported spending.
#[derive(Default)]
struct Spend(std::sync::Mutex<Vec<Report>>);

impl UsageSink for Spend {
    fn record(
        &self,
        tenant: &str,
        model: &str,
        usage: orchestrator::generation::Usage,
        _: std::time::Duration,
        ok: bool,
    ) {
        self.0.lock().unwrap().push((
            tenant.to_owned(),
            model.to_owned(),
            usage.prompt_tokens,
            usage.completion_tokens,
            ok,
        ));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn invalid_model_output_fails_each_repository_cleanly() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let server_bin = root.join(".venv/bin/mlx_lm.server");
    let model_dir = root.join("target/test-models/qwen3");
    assert!(
        server_bin.exists() && model_dir.exists(),
        "needs the venv and the tiny models: run `make setup`"
    );
    let port = free_port();
    let _server = Server(
        Command::new(&server_bin)
            .args([
                "--model",
                model_dir.to_str().unwrap(),
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HUB_CACHE", root.join("target/hf-cache"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while http
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "mlx_lm.server did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let mut models = ModelsSettings::default();
    let mut large = models.0["qwen"].clone();
    large.repo = model_dir.to_string_lossy().into_owned();
    large.engine = EngineKind::Openai;
    large.base_url = Some(format!("http://127.0.0.1:{port}/v1"));
    large.tier = Some(Tier::Large);
    large.max_new_tokens = 48;
    large.context_limit = 4096;
    large.enable_thinking = false;
    models.0 = [("qwen".to_owned(), large)].into_iter().collect();
    let registry = Registry::new(&models);
    let model = registry.for_tier(Tier::Large).unwrap();
    assert!(model.is_available(), "{:?}", model.status());

    let tmp = tempfile::tempdir().unwrap();
    let (pool, tenant) = pool(tmp.path()).await;
    let bridge = tuned_bridge(pool, &tmp.path().join("data"), |s| s.generate_attempts = 2)
        .with_generation(Some(model), 0.8);
    let spend = Arc::new(Spend::default());
    let bridge = bridge.with_usage_sink(spend.clone());
    let (a_url, a_bare) = remote(
        tmp.path(),
        "org/auth",
        &[
            ("README.md", "# auth\nsession cookies\n"),
            ("src/session.rs", "pub fn session() {}\n"),
        ],
    );
    let (b_url, b_bare) = remote(
        tmp.path(),
        "org/web",
        &[("README.md", "# web\nlogin page\n")],
    );
    let repos = [new_repo("org/auth", &a_url), new_repo("org/web", &b_url)];
    register_all(&bridge, &tenant, repos).await;
    let covenant = plain_covenant(
        "JWT",
        "Move sessions to JWT.",
        "session cookies",
        "JWT with refresh",
    );
    let cov = bridge.create_covenant(&tenant, covenant).await.unwrap();
    let request = StrikeRequest {
        generate: true,
        ..strike_request(&cov.covenant_id, &["org/auth", "org/web"], None)
    };
    let run_id = bridge.start_strike(&tenant, request).await.unwrap();
    let s = until(&bridge, &tenant, &run_id, 300, |s| s.state != "running").await;
    assert_eq!(s.state, "failed", "{s:#?}");
    for (r, bare) in s.repos.iter().zip([&a_bare, &b_bare]) {
        assert_eq!(r.phase, Phase::Failed, "{r:?}");
        let error = r.error.as_deref().unwrap();
        assert!(
            error.starts_with("generation failed: the model's answer was refused 2 time(s)"),
            "{error}"
        );
        assert_eq!(
            branch_sha(bare, &r.branch),
            None,
            "nothing pushed for {}",
            r.repo
        );
    }
    // Both attempts of both repositories were paid for, and reported as such.
    let spent = spend.0.lock().unwrap();
    assert_eq!(spent.len(), 2, "one record per repository: {spent:?}");
    for (t, model, prompt, completion, ok) in spent.iter() {
        assert_eq!(
            (t.as_str(), model.as_str(), *ok),
            (tenant.as_str(), "qwen", false)
        );
        assert!(*prompt > 0 && *completion > 0, "{spent:?}");
        // Two attempts of at most 48 new tokens each.
        assert!(*completion <= 96, "{spent:?}");
    }
}
