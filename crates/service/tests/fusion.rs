//! `POST /v2/fragments` and the fusion part of `/v2/process`, against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use common::Service;
use harpoon_core::{
    envelope::{GENESIS, chain_hash, next_link},
    fragment_hash,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CLEAN: &str = "fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n";
const LEAKY: &str = "fn key() -> &'static str {\n    \"AKIAIOSFODNN7EXAMPLE\"\n}\n";

async fn post(svc: &Service, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(svc.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn fragments_become_a_verifiable_envelope() {
    let svc = Service::start(&[]);
    let dirty =
        "def area(w, h):   \n    print(w, h)\n    print(w)\n    print(h)\n    return w * h\n";
    let (status, env) = post(
        &svc,
        "/v2/fragments",
        json!({
            "fragments": [
                {"path": "src/a.rs", "idx": 3, "lines": "10-12", "body": CLEAN},
                {"path": "src/copy.rs", "body": CLEAN.replace('\n', "\r\n")},
                {"path": "src/key.rs", "body": LEAKY},
                {"path": "geo.py", "body": dirty}
            ],
            "hygiene_threshold": 0.9
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{env}");

    let absorbed = env["absorbed"].as_array().unwrap();
    let paths: Vec<&str> = absorbed
        .iter()
        .map(|a| a["fragment"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["src/a.rs", "geo.py"]);
    assert_eq!(absorbed[0]["fragment"]["lines"], "10-12");
    assert_eq!(absorbed[0]["fragment"]["idx"], 3);
    assert_eq!(absorbed[1]["refinements"], 1);
    assert!(
        !absorbed[1]["fragment"]["body"]
            .as_str()
            .unwrap()
            .contains("print")
    );

    assert_eq!(env["duplicates"][0]["fragment"]["path"], "src/copy.rs");
    assert_eq!(env["duplicates"][0]["duplicate_of"]["path"], "src/a.rs");

    let pending = &env["pending"][0];
    assert_eq!(pending["fragment"]["path"], "src/key.rs");
    assert_eq!(pending["reason"], "refiner_exhausted");
    let secret = pending["hygiene"]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "hard_coded_secrets")
        .unwrap();
    assert_eq!(secret["weight"], 0.7);
    assert!(
        secret["detail"]
            .as_str()
            .unwrap()
            .contains("aws_access_key_id on line 2")
    );
    assert!(
        !env.to_string().contains("AKIAIOSFODNN7EXAMPLE")
            || env["pending"][0]["fragment"]["body"] == LEAKY
    );

    // The chain recomputes from the bodies alone.
    let mut prev = GENESIS.to_owned();
    let mut chain = Vec::new();
    for (a, link) in absorbed.iter().zip(env["chain"].as_array().unwrap()) {
        let anchor = fragment_hash(a["fragment"]["body"].as_str().unwrap());
        assert_eq!(a["anchor"], anchor.as_str());
        prev = next_link(&prev, &anchor);
        assert_eq!(link, prev.as_str());
        chain.push(prev.clone());
    }
    assert_eq!(chain.len(), 2);
    assert_eq!(env["envelope_hash"], chain_hash(&chain).as_str());
    assert_eq!(env["hygiene_score"], 1.0);
    assert!(env["iterations"].as_u64().unwrap() >= 1);
    let kinds: Vec<&str> = env["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in ["absorbed", "refined", "rejected"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
}

#[tokio::test]
async fn bad_requests_are_422_and_limits_are_413() {
    let svc = Service::start(&[
        ("HARPOON__HARPOON__MAX_FRAGMENTS", "2"),
        ("HARPOON__HARPOON__MAX_FRAGMENT_BYTES", "64"),
    ]);
    for (body, code) in [
        (json!({"fragments": []}), "validation_error"),
        (json!({"fragments": [{"body": "   "}]}), "validation_error"),
        (
            json!({"fragments": [{"body": "x"}], "hygiene_threshold": 1.5}),
            "validation_error",
        ),
        (
            json!({"fragments": [{"body": "x"}], "max_iterations": 5000}),
            "validation_error",
        ),
        (
            json!({"fragments": [{"body": "x", "colour": "red"}]}),
            "validation_error",
        ),
    ] {
        let (status, err) = post(&svc, "/v2/fragments", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {err}");
        assert_eq!(err["error"]["code"], code);
    }
    let (status, err) = post(
        &svc,
        "/v2/fragments",
        json!({"fragments": [{"body": "a"}, {"body": "b"}, {"body": "c"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(err["error"]["code"], "too_many_fragments");
    let (status, err) = post(
        &svc,
        "/v2/fragments",
        json!({"fragments": [{"body": "x".repeat(65)}]}),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(err["error"]["code"], "fragment_too_large");
    // The same limits hold for /v2/process, before any model is needed.
    let (status, err) = post(
        &svc,
        "/v2/process",
        json!({"text": "y".repeat(65), "fragment_context": [{"path": "a.rs"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    assert_eq!(err["error"]["code"], "fragment_too_large");
    let (status, _) = post(
        &svc,
        "/v2/process",
        json!({"text": "hi", "hygiene_threshold": -1}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_model_refiner_needs_a_small_tier_that_can_serve() {
    // The lightweight build has no mlx engine: the default small-tier model cannot serve.
    let svc = Service::start(&[]);
    let body = json!({"fragments": [{"path": "a.rs", "body": LEAKY}], "refiner": "model"});
    let (status, err) = post(&svc, "/v2/fragments", body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert_eq!(err["error"]["code"], "refiner_unavailable");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("gemma"),
        "{err}"
    );
    // The mechanical refiner (the default) needs no model.
    let (status, _) = post(
        &svc,
        "/v2/fragments",
        json!({"fragments": [{"path": "a.rs", "body": LEAKY}], "refiner": "mechanical"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = post(
        &svc,
        "/v2/fragments",
        json!({"fragments": [{"path": "a.rs", "body": LEAKY}], "refiner": "oracle"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
}

/// A label-less sample's value in a Prometheus exposition (0 when absent).
fn sample(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn scrape(svc: &Service) -> String {
    reqwest::get(svc.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Fusion statistics (issue 23): a cycle's absorbed and pending fragments
/// are counted, and the same cycle again is scored entirely from the cache.
#[tokio::test]
async fn fusion_statistics_count_fragments_scores_and_cache_hits() {
    let svc = Service::start(&[]);
    let body = json!({
        "fragments": [
            {"path": "src/a.rs", "body": CLEAN},
            {"path": "src/key.rs", "body": LEAKY}
        ],
        "hygiene_threshold": 0.9
    });
    let (status, first) = post(&svc, "/v2/fragments", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let after_first = scrape(&svc).await;
    let scored = sample(&after_first, "harpoon_fusion_fragments_scored_total");
    assert!(scored >= 2.0, "{after_first}");
    assert!(sample(&after_first, "harpoon_fusion_score_cache_entries") >= 2.0);
    let (status, second) = post(&svc, "/v2/fragments", body).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let after = scrape(&svc).await;
    let count = |env: &Value, key: &str| env[key].as_array().unwrap().len() as f64;
    assert_eq!(
        sample(&after, "harpoon_fusion_fragments_absorbed_total"),
        count(&first, "absorbed") + count(&second, "absorbed")
    );
    assert_eq!(
        sample(&after, "harpoon_fusion_fragments_pending_total"),
        count(&first, "pending") + count(&second, "pending")
    );
    assert!(
        count(&first, "absorbed") >= 1.0 && count(&first, "pending") >= 1.0,
        "{first}"
    );
    // The second cycle scores what the first did, every score from the cache.
    let again = sample(&after, "harpoon_fusion_fragments_scored_total") - scored;
    let hits = sample(&after, "harpoon_fusion_score_cache_hits_total")
        - sample(&after_first, "harpoon_fusion_score_cache_hits_total");
    assert_eq!(again, scored, "{after}");
    assert_eq!(hits, again, "{after}");
}
