//! End to end against the real binary: routes, error envelopes, request ids,
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic
//! metrics, OpenAPI, CORS, compression, timeouts and graceful shutdown.

mod common;

use common::Service;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

async fn json_of(resp: reqwest::Response) -> Value {
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        ctype.starts_with("application/json"),
        "content-type {ctype:?}"
    );
    resp.json().await.unwrap()
}

/// Asserts the error envelope and returns its code.
async fn error_code(resp: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(resp.status(), status);
    let body = json_of(resp).await;
    let error = body["error"].as_object().expect("error object");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    error["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn health_in_both_forms_and_ready() {
    let svc = Service::start(&[]);
    let http = reqwest::Client::new();

    let plain = json_of(http.get(svc.url("/health")).send().await.unwrap()).await;
    assert_eq!(plain["status"], "healthy");
    assert_eq!(plain["version"], env!("CARGO_PKG_VERSION"));
    assert!(plain["deployment_modes"].is_array());
    assert!(
        plain.get("components").is_none(),
        "plain form has no details"
    );

    let detailed = json_of(
        http.get(svc.url("/health?detailed=true"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(detailed["status"], "healthy");
    assert!(detailed["uptime_secs"].is_u64());
    assert_eq!(detailed["build"]["version"], env!("CARGO_PKG_VERSION"));
    for component in ["router", "engines", "storage", "hosted_ai"] {
        let c = &detailed["components"][component];
        assert!(
            c["status"].is_string() && c["detail"].is_string(),
            "{component}: {c}"
        );
    }

    let ready = http.get(svc.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(json_of(ready).await["status"], "ready");
}

#[tokio::test]
async fn every_error_is_a_json_envelope() {
    let svc = Service::start(&[("HARPOON__SERVICE__BODY_LIMIT_BYTES", "4096")]);
    let http = reqwest::Client::new();
    let chat = svc.url("/v1/chat/completions");

    let code = error_code(
        http.get(svc.url("/no/such/route")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(code, "not_found");

    let resp = http.delete(svc.url("/health")).send().await.unwrap();
    let allow = resp
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        error_code(resp, StatusCode::METHOD_NOT_ALLOWED).await,
        "method_not_allowed"
    );
    assert!(
        allow.is_some_and(|a| a.contains("GET")),
        "Allow header kept"
    );

    let malformed = http
        .post(&chat)
        .header("content-type", "application/json")
        .body("{\"messages\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(malformed, StatusCode::BAD_REQUEST).await,
        "invalid_json"
    );

    let too_big = http
        .post(&chat)
        .header("content-type", "application/json")
        .body(format!("{{\"model\":\"{}\"}}", "x".repeat(8192)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(too_big, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );

    for (body, field) in [
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "robot", "content": "hi"}]}),
            "role",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 7}),
            "temperature",
        ),
        (json!({"model": "auto"}), "messages"),
    ] {
        let resp = http.post(&chat).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let err = json_of(resp).await;
        assert_eq!(err["error"]["code"], "validation_error");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "422 names {field}: {message}");
    }

    let no_ctype = http.post(&chat).body("{}").send().await.unwrap();
    assert_eq!(
        error_code(no_ctype, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
        "unsupported_media_type"
    );

    let bad_query = http
        .get(svc.url("/health?detailed=perhaps"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(bad_query, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );

    // A valid request with no engine: an honest 503 naming the missing piece.
    let valid = http
        .post(&chat)
        .json(&json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(valid.status(), StatusCode::SERVICE_UNAVAILABLE);
    let err = json_of(valid).await;
    assert_eq!(err["error"]["code"], "engine_unavailable");
    assert!(err["error"]["message"].as_str().unwrap().contains("engine"));
}

#[tokio::test]
async fn classify_routes_prompts_and_rejects_bad_input() {
    let svc = Service::start(&[("HARPOON__SERVICE__BODY_LIMIT_BYTES", "4096")]);
    let http = reqwest::Client::new();
    let url = svc.url("/classify");

    let simple = json_of(
        http.post(&url)
            .json(&json!({"text": "hi there"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(simple["category"], "simple");
    assert_eq!(simple["tier"], "small");
    assert_eq!(simple["model"], "gemma");
    let p = simple["complexity"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    assert!(simple["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(simple.get("signals").is_none());

    let proof = "Prove that the square root of 2 is irrational, then generalise the argument \
                 to every prime p, justifying each step.";
    let complex = json_of(
        http.post(&url)
            .json(&json!({"text": proof, "explain": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(complex["category"], "complex");
    assert_eq!(complex["tier"], "large");
    assert_eq!(complex["model"], "qwen");
    let signals = complex["signals"].as_array().unwrap();
    assert!(!signals.is_empty());
    assert!(
        signals
            .iter()
            .all(|s| s["signal"].is_string() && s["weight"].is_number())
    );

    for body in [
        json!({"text": "   \n\t "}),
        json!({}),
        json!({"text": "hi", "colour": 1}),
    ] {
        let resp = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(
            error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await,
            "validation_error",
            "{body}"
        );
    }
    let big = http
        .post(&url)
        .json(&json!({"text": "x".repeat(8192)}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(big, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );

    let metrics = http
        .get(svc.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("router_classifications_total{category=\"simple\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("router_classifications_total{category=\"complex\"} 1"));
    assert!(metrics.contains("router_classification_seconds_bucket"));
}

#[tokio::test]
async fn request_ids_are_generated_or_propagated() {
    let svc = Service::start(&[]);
    let http = reqwest::Client::new();
    let given = http
        .get(svc.url("/health"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");

    // An id too long, or not of the characters trace ids use, is replaced:
    // it is echoed and logged with every line of the request.
    for unusable in ["A".repeat(60_000), "a b".into(), "a\"b".into(), "é".into()] {
        let resp = http
            .get(svc.url("/health"))
            .header("x-request-id", unusable.as_bytes())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let id = resp.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 36, "a fresh UUID instead of {unusable:.20}: {id}");
    }
    let longest = "t".repeat(128);
    let kept = http
        .get(svc.url("/health"))
        .header("x-request-id", &longest)
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], longest.as_str());

    let mut seen = std::collections::HashSet::new();
    for path in ["/health", "/health", "/nope"] {
        let resp = http.get(svc.url(path)).send().await.unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert!(seen.insert(id), "ids are unique");
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_request_just_made() {
    let svc = Service::start(&[]);
    let http = reqwest::Client::new();
    for _ in 0..3 {
        http.get(svc.url("/ready")).send().await.unwrap();
    }
    http.get(svc.url("/users/12345")).send().await.unwrap();

    let text = http
        .get(svc.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");

    let count = |route: &str, status: &str| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| {
                s.metric == "http_requests_total"
                    && s.labels.get("route") == Some(route)
                    && s.labels.get("status") == Some(status)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("unexpected value {other:?}"),
            })
            .sum()
    };
    assert_eq!(count("/ready", "200"), 3.0);
    assert_eq!(count("unmatched", "404"), 1.0);
    assert!(
        !text.contains("12345"),
        "raw paths never become label values"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "http_request_duration_seconds"
                && s.labels.get("route") == Some("/ready")),
        "latency histogram by route"
    );
}

#[tokio::test]
async fn openapi_documents_every_route_and_the_error_shape() {
    let svc = Service::start(&[]);
    let doc = json_of(reqwest::get(svc.url("/openapi.json")).await.unwrap()).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "/classify",
            "/health",
            "/metrics",
            "/openapi.json",
            "/ready",
            "/run",
            "/v1/chat/completions",
            "/v1/models",
            "/v2/admin/keys/{id}/revoke",
            "/v2/admin/tenants",
            "/v2/admin/tenants/{id}/activate",
            "/v2/admin/tenants/{id}/keys",
            "/v2/admin/tenants/{id}/suspend",
            "/v2/cables",
            "/v2/covenant",
            "/v2/covenant/{id}",
            "/v2/covenant/{id}/harmony",
            "/v2/covenants",
            "/v2/fragments",
            "/v2/pools",
            "/v2/process",
            "/v2/repos",
            "/v2/strike",
            "/v2/strike/{run_id}",
            "/v2/strike/{run_id}/cancel",
            "/v2/strike/{run_id}/events",
            "/v2/strike/{run_id}/resume",
            "/v2/usage"
        ]
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let chat_responses = &paths["/v1/chat/completions"]["post"]["responses"];
    for status in ["400", "413", "422", "503"] {
        let schema = &chat_responses[status]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(schema, "#/components/schemas/ErrorBody", "{status}");
    }
    // Authenticated operations declare the key schemes and the 401/403/429
    // the middleware can answer; public ones do not.
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let usage = &paths["/v2/usage"]["get"];
    assert!(usage["security"].is_array());
    for status in ["401", "403", "429"] {
        assert!(usage["responses"][status].is_object(), "/v2/usage {status}");
    }
    assert!(paths["/health"]["get"].get("security").is_none());
    for status in ["400", "413", "415", "422"] {
        assert!(
            paths["/run"]["post"]["responses"][status].is_object(),
            "/run {status}"
        );
    }
    // The served document is the one the code generates.
    let generated: Value = serde_json::to_value(service::app::openapi()).unwrap();
    assert_eq!(doc, generated);
}

#[tokio::test]
async fn cors_and_compression() {
    let svc = Service::start(&[("HARPOON__SERVICE__CORS_ORIGINS", "https://app.example.com")]);
    let http = reqwest::Client::new();
    let preflight = http
        .request(reqwest::Method::OPTIONS, svc.url("/v1/chat/completions"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let foreign = http
        .get(svc.url("/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let compressed = http
        .get(svc.url("/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
}

/// Sends the head of a POST and part of its body, leaving the request in flight.
fn start_slow_upload(port: u16, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        body.len(),
        &body[..body.len() / 2]
    )
    .unwrap();
    stream.flush().unwrap();
    stream
}

fn read_response(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&response);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    if len.is_some_and(|len| body.len() >= len) {
                        break;
                    }
                }
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }
    String::from_utf8(response).unwrap()
}

const CHAT_BODY: &str =
    r#"{"model":"auto","messages":[{"role":"user","content":"finish me after the signal"}]}"#;

#[test]
fn a_slow_request_outlives_sigterm_and_new_connections_are_refused() {
    let mut svc = Service::start(&[("HARPOON__SERVICE__SHUTDOWN_GRACE_SECS", "10")]);
    let mut in_flight = start_slow_upload(svc.port, CHAT_BODY);
    std::thread::sleep(Duration::from_millis(300));

    svc.terminate();
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", svc.port)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        svc.child.try_wait().unwrap().is_none(),
        "waits for the in-flight request"
    );

    in_flight
        .write_all(&CHAT_BODY.as_bytes()[CHAT_BODY.len() / 2..])
        .unwrap();
    let response = read_response(&mut in_flight);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("engine_unavailable"), "{response}");

    let status = svc.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn shutdown_does_not_wait_past_the_grace_period() {
    let mut svc = Service::start(&[("HARPOON__SERVICE__SHUTDOWN_GRACE_SECS", "1")]);
    let _stalled = start_slow_upload(svc.port, CHAT_BODY);
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    svc.terminate();
    let status = svc.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "waited for the grace period: {took:?}"
    );
}

#[test]
fn a_request_over_the_timeout_gets_a_json_504() {
    let svc = Service::start(&[("HARPOON__SERVICE__REQUEST_TIMEOUT_SECS", "1")]);
    let mut stalled = start_slow_upload(svc.port, CHAT_BODY);
    let response = read_response(&mut stalled);
    assert!(response.starts_with("HTTP/1.1 504"), "{response}");
    let body: Value = serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["error"]["code"], "timeout");
}
