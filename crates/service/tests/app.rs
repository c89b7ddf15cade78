//! The application in process: routes, error envelopes, request ids, metrics,
//! OpenAPI, CORS, compression and the request timeout, driven through
//! [`service::app::router`] with `oneshot`, as the binary would serve them
//! but without starting it. What needs the real process (signals, graceful
//! shutdown) is in `http.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use axum::{
    Router,
    body::{Body, Bytes},
    http::{Method, Request, StatusCode},
    response::Response,
};
use futures_util::StreamExt;
use serde_json::{Value, json};
use service::storage::usage::UsageWriter;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tower::ServiceExt;

/// Every test here records into the process-wide Prometheus recorder
/// ([`service::telemetry::prometheus`]). Tests that count what they recorded
/// hold it alone, so no other test's requests land between their two reads;
/// the others share it.
static RECORDER: RwLock<()> = RwLock::const_new(());

/// The application on a fresh SQLite database, configured like the binary
/// from environment-style pairs.
struct App {
    router: Router,
    _writer: UsageWriter,
    _shared: Option<RwLockReadGuard<'static, ()>>,
    _alone: Option<RwLockWriteGuard<'static, ()>>,
    _data: tempfile::TempDir,
}

impl App {
    /// The application with `env` (e.g. `HARPOON__SERVICE__BODY_LIMIT_BYTES`).
    async fn start(env: &[(&str, &str)]) -> App {
        let shared = RECORDER.read().await;
        Self::open(env, Some(shared), None).await
    }

    /// The same, with no other test of this file sending requests meanwhile.
    async fn alone(env: &[(&str, &str)]) -> App {
        let alone = RECORDER.write().await;
        Self::open(env, None, Some(alone)).await
    }

    async fn open(
        env: &[(&str, &str)],
        shared: Option<RwLockReadGuard<'static, ()>>,
        alone: Option<RwLockWriteGuard<'static, ()>>,
    ) -> App {
        let data = tempfile::tempdir().expect("temp data dir");
        let mut vars: HashMap<String, String> = HashMap::from([
            // A HOME without ~/.orchestrator keeps a developer's own file out of tests.
            (
                "HOME".to_owned(),
                std::env::temp_dir()
                    .join("harpoon-test-home-absent")
                    .display()
                    .to_string(),
            ),
            (
                "HARPOON__STORAGE__DATA_DIR".to_owned(),
                data.path().display().to_string(),
            ),
        ]);
        vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let settings = service::settings::Settings::load(None, &vars)
            .expect("valid settings")
            .settings;
        let (state, writer) = service::bootstrap::open_state(settings, false)
            .await
            .expect("state opens");
        App {
            router: service::app::router(state),
            _writer: writer,
            _shared: shared,
            _alone: alone,
            _data: data,
        }
    }

    async fn send(&self, request: Request<Body>) -> Response {
        self.router.clone().oneshot(request).await.unwrap()
    }

    async fn get(&self, uri: &str) -> Response {
        self.send(get(uri)).await
    }

    async fn post_json(&self, uri: &str, body: &Value) -> Response {
        self.send(post(uri, Some("application/json"), body.to_string()))
            .await
    }
}

/// A request with `headers`, whose values are taken as bytes, so one that is
/// not visible ASCII (an unusable request id) can still be sent.
fn request(method: Method, uri: &str, headers: &[(&str, &str)], body: Body) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, value.as_bytes());
    }
    request.body(body).unwrap()
}

fn get(uri: &str) -> Request<Body> {
    request(Method::GET, uri, &[], Body::empty())
}

/// A POST of `body`, with its length and (when given) its content type.
fn post(uri: &str, content_type: Option<&str>, body: String) -> Request<Body> {
    let length = body.len().to_string();
    let mut headers = vec![("content-length", length.as_str())];
    headers.extend(content_type.map(|content_type| ("content-type", content_type)));
    request(Method::POST, uri, &headers, Body::from(body))
}

async fn bytes_of(resp: Response) -> Bytes {
    axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
}

async fn text_of(resp: Response) -> String {
    String::from_utf8(bytes_of(resp).await.to_vec()).unwrap()
}

async fn json_of(resp: Response) -> Value {
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        ctype.starts_with("application/json"),
        "content-type {ctype:?}"
    );
    serde_json::from_slice(&bytes_of(resp).await).unwrap()
}

/// Asserts the error envelope and returns its code.
async fn error_code(resp: Response, status: StatusCode) -> String {
    assert_eq!(resp.status(), status);
    let body = json_of(resp).await;
    let error = body["error"].as_object().expect("error object");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    error["code"].as_str().unwrap().to_owned()
}

/// The recorder's current text, read without a request (which would count).
fn scrape_now() -> prometheus_parse::Scrape {
    parse(&service::telemetry::prometheus().unwrap().render())
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text")
}

/// The sum of `metric`'s counter samples whose labels include `labels`.
fn counted(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == metric
                && labels
                    .iter()
                    .all(|(name, value)| s.labels.get(name) == Some(*value))
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("unexpected value {other:?}"),
        })
        .sum()
}

#[tokio::test]
async fn health_in_both_forms_and_ready() {
    let app = App::start(&[]).await;

    let plain = json_of(app.get("/health").await).await;
    assert_eq!(plain["status"], "healthy");
    assert_eq!(plain["version"], env!("CARGO_PKG_VERSION"));
    assert!(plain["deployment_modes"].is_array());
    assert!(
        plain.get("components").is_none(),
        "plain form has no details"
    );

    let detailed = json_of(app.get("/health?detailed=true").await).await;
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

    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(json_of(ready).await["status"], "ready");
}

#[tokio::test]
async fn every_error_is_a_json_envelope() {
    let app = App::start(&[("HARPOON__SERVICE__BODY_LIMIT_BYTES", "4096")]).await;
    let chat = "/v1/chat/completions";

    let code = error_code(app.get("/no/such/route").await, StatusCode::NOT_FOUND).await;
    assert_eq!(code, "not_found");

    let resp = app
        .send(request(Method::DELETE, "/health", &[], Body::empty()))
        .await;
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

    // Malformed, then over the body limit.
    for (body, status, code) in [
        (
            "{\"messages\": [".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            format!("{{\"model\":\"{}\"}}", "x".repeat(8192)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ] {
        let resp = app.send(post(chat, Some("application/json"), body)).await;
        assert_eq!(error_code(resp, status).await, code);
    }

    // On OpenAI's routes a body that breaks the schema is 400, as OpenAI
    // answers, with the field in `param`; the rest of the API says 422.
    for (body, field) in [
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "robot", "content": "hi"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 7}),
            "temperature",
        ),
        (json!({"model": "auto"}), "messages"),
    ] {
        let resp = app.post_json(chat, &body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err = json_of(resp).await;
        assert_eq!(err["error"]["code"], "invalid_request");
        assert_eq!(err["error"]["type"], "invalid_request_error");
        assert_eq!(err["error"]["param"], field, "{err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "400 names {field}: {message}");
    }
    let resp = app.post_json("/run", &json!({"text": ""})).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let err = json_of(resp).await;
    assert_eq!(err["error"]["code"], "validation_error");
    assert_eq!(err["error"]["type"], "invalid_request_error");

    let no_ctype = app.send(post(chat, None, "{}".into())).await;
    assert_eq!(
        error_code(no_ctype, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
        "unsupported_media_type"
    );

    let bad_query = app.get("/health?detailed=perhaps").await;
    assert_eq!(
        error_code(bad_query, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );

    // A valid request with no engine: an honest 503 naming the missing piece.
    let valid = app
        .post_json(
            chat,
            &json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(valid.status(), StatusCode::SERVICE_UNAVAILABLE);
    let err = json_of(valid).await;
    assert_eq!(err["error"]["code"], "engine_unavailable");
    assert!(err["error"]["message"].as_str().unwrap().contains("engine"));
}

#[tokio::test]
async fn classify_routes_prompts_and_rejects_bad_input() {
    // Alone: it counts the classifications it caused.
    let app = App::alone(&[("HARPOON__SERVICE__BODY_LIMIT_BYTES", "4096")]).await;
    let url = "/classify";
    let before = scrape_now();
    let classified = |scrape: &prometheus_parse::Scrape, category: &str| {
        counted(
            scrape,
            "router_classifications_total",
            &[("category", category)],
        )
    };

    let simple = json_of(app.post_json(url, &json!({"text": "hi there"})).await).await;
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
        app.post_json(url, &json!({"text": proof, "explain": true}))
            .await,
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

    // Neither `text` nor `messages` (conversations: tests/conversations.rs).
    let neither = app.post_json(url, &json!({})).await;
    assert_eq!(
        error_code(neither, StatusCode::BAD_REQUEST).await,
        "invalid_request"
    );
    for body in [
        json!({"text": "   \n\t "}),
        json!({"text": "hi", "colour": 1}),
    ] {
        let resp = app.post_json(url, &body).await;
        assert_eq!(
            error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await,
            "validation_error",
            "{body}"
        );
    }
    let big = app.post_json(url, &json!({"text": "x".repeat(8192)})).await;
    assert_eq!(
        error_code(big, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );

    // The recorder is the process's: the counts are this test's on top of
    // what earlier tests left (in a fresh process, `… 1` each).
    let metrics = text_of(app.get("/metrics").await).await;
    let after = parse(&metrics);
    for (category, tier) in [("simple", "small"), ("complex", "large")] {
        let expected = classified(&before, category) + 1.0;
        assert_eq!(classified(&after, category), expected, "{category}");
        let line = format!(
            "router_classifications_total{{category=\"{category}\",tier=\"{tier}\"}} {expected}"
        );
        assert!(metrics.contains(&line), "{line}: {metrics}");
    }
    // Two prompts classified, so two more timings; the rejected bodies never
    // reach the classifier.
    let timed = |scrape: &prometheus_parse::Scrape| {
        counted(scrape, "router_classification_seconds_count", &[])
    };
    assert_eq!(timed(&after) - timed(&before), 2.0, "{metrics}");
}

#[tokio::test]
async fn request_ids_are_generated_or_propagated() {
    let app = App::start(&[]).await;
    let with_id = |id: &str| {
        request(
            Method::GET,
            "/health",
            &[("x-request-id", id)],
            Body::empty(),
        )
    };
    let given = app.send(with_id("trace-me-42")).await;
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");

    // An id too long, or not of the characters trace ids use, is replaced:
    // it is echoed and logged with every line of the request. In process no
    // server limits the header, so 60,000 bytes meets the same length check
    // as 129, one past the longest kept (128, below).
    for unusable in [
        "A".repeat(60_000),
        "t".repeat(129),
        "a b".into(),
        "a\"b".into(),
        "é".into(),
    ] {
        let resp = app.send(with_id(&unusable)).await;
        assert_eq!(resp.status(), 200);
        let id = resp.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 36, "a fresh UUID instead of {unusable:.20}: {id}");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "a UUID: {id}");
    }
    let longest = "t".repeat(128);
    let kept = app.send(with_id(&longest)).await;
    assert_eq!(kept.headers()["x-request-id"], longest.as_str());

    let mut seen = std::collections::HashSet::new();
    for path in ["/health", "/health", "/nope"] {
        let resp = app.get(path).await;
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert!(seen.insert(id), "ids are unique");
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_request_just_made() {
    // Alone: it counts the requests it made.
    let app = App::alone(&[]).await;
    let before = scrape_now();
    for _ in 0..3 {
        app.get("/ready").await;
    }
    app.get("/users/12345").await;

    let text = text_of(app.get("/metrics").await).await;
    let scrape = parse(&text);

    // The recorder is the process's: these are this test's requests on top
    // of what earlier tests left (in a fresh process, the counts themselves).
    let count = |route: &str, status: &str| -> f64 {
        let labels = [("route", route), ("status", status)];
        counted(&scrape, "http_requests_total", &labels)
            - counted(&before, "http_requests_total", &labels)
    };
    assert_eq!(count("/ready", "200"), 3.0);
    assert_eq!(count("unmatched", "404"), 1.0);
    assert!(
        !text.contains("12345"),
        "raw paths never become label values"
    );
    // The latency histogram by route holds one more timing per request.
    let timed = |scrape: &prometheus_parse::Scrape| {
        counted(
            scrape,
            "http_request_duration_seconds_count",
            &[("route", "/ready")],
        )
    };
    assert_eq!(timed(&scrape) - timed(&before), 3.0, "{text}");
}

#[tokio::test]
async fn openapi_documents_every_route_and_the_error_shape() {
    let app = App::start(&[]).await;
    let doc = json_of(app.get("/openapi.json").await).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "/auth/github/callback",
            "/auth/github/login",
            "/auth/logout",
            "/auth/oidc/{provider}/callback",
            "/auth/oidc/{provider}/login",
            "/auth/providers",
            "/auth/session",
            "/classify",
            "/dashboard",
            "/dashboard/assets/{name}",
            "/dashboard/panels",
            "/dashboard/router",
            "/health",
            "/metrics",
            "/openapi.json",
            "/ready",
            "/run",
            "/v1/chat/completions",
            "/v1/completions",
            "/v1/embeddings",
            "/v1/models",
            "/v1/models/{id}",
            "/v1/responses",
            "/v1/responses/{id}",
            "/v2/admin/keys/{id}/revoke",
            "/v2/admin/tenants",
            "/v2/admin/tenants/{id}/activate",
            "/v2/admin/tenants/{id}/invitations",
            "/v2/admin/tenants/{id}/invitations/{login}",
            "/v2/admin/tenants/{id}/keys",
            "/v2/admin/tenants/{id}/suspend",
            "/v2/cables",
            "/v2/covenant",
            "/v2/covenant/{id}",
            "/v2/covenant/{id}/harmony",
            "/v2/covenants",
            "/v2/dashboard",
            "/v2/deployments",
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
    for status in ["400", "413", "503"] {
        let schema = &chat_responses[status]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(schema, "#/components/schemas/ErrorBody", "{status}");
    }
    assert!(
        chat_responses.get("422").is_none(),
        "OpenAI's routes answer 400"
    );
    // OpenAI's error object: every field present, `param` and `code` nullable.
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    let required: Vec<&str> = detail["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in ["message", "type", "param", "code"] {
        assert!(required.contains(&field), "{field}: {detail}");
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
    // The dashboard's page is public (it holds no data); what it fetches is not.
    assert!(paths["/dashboard"]["get"].get("security").is_none());
    for (path, method) in [
        ("/v2/dashboard", "get"),
        ("/dashboard/panels", "get"),
        ("/dashboard/router", "post"),
    ] {
        assert!(paths[path][method]["security"].is_array(), "{path}");
    }
    // Sign-in's redirects and callbacks are public; the session's routes are not.
    for path in [
        "/auth/providers",
        "/auth/github/login",
        "/auth/oidc/{provider}/callback",
    ] {
        assert!(paths[path]["get"].get("security").is_none(), "{path}");
    }
    assert!(paths["/auth/logout"]["post"]["security"].is_array());
    for status in ["400", "413", "415", "422"] {
        assert!(
            paths["/run"]["post"]["responses"][status].is_object(),
            "/run {status}"
        );
    }
}

#[tokio::test]
async fn cors_and_compression() {
    let app = App::start(&[("HARPOON__SERVICE__CORS_ORIGINS", "https://app.example.com")]).await;
    let preflight = app
        .send(request(
            Method::OPTIONS,
            "/v1/chat/completions",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
            ],
            Body::empty(),
        ))
        .await;
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let foreign = app
        .send(request(
            Method::GET,
            "/health",
            &[("origin", "https://evil.example")],
            Body::empty(),
        ))
        .await;
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let compressed = app
        .send(request(
            Method::GET,
            "/openapi.json",
            &[("accept-encoding", "gzip")],
            Body::empty(),
        ))
        .await;
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
}

/// A valid chat request, whose upload the timeout test stalls halfway.
const CHAT_BODY: &str =
    r#"{"model":"auto","messages":[{"role":"user","content":"answer me in time"}]}"#;

#[tokio::test]
async fn a_request_over_the_timeout_gets_a_json_504() {
    let app = App::start(&[("HARPOON__SERVICE__REQUEST_TIMEOUT_SECS", "1")]).await;
    // Half the body, then nothing more: an upload that stalls in flight.
    let half = Bytes::from_static(&CHAT_BODY.as_bytes()[..CHAT_BODY.len() / 2]);
    let stalled = futures_util::stream::iter([Ok::<_, std::io::Error>(half)])
        .chain(futures_util::stream::pending());
    let length = CHAT_BODY.len().to_string();
    let stalling = request(
        Method::POST,
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            ("content-length", &length),
        ],
        Body::from_stream(stalled),
    );
    let sent = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(20), app.send(stalling))
        .await
        .expect("answered before the test gives up");
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "answered at the timeout: {:?}",
        sent.elapsed()
    );
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let body = json_of(response).await;
    assert_eq!(body["error"]["code"], "timeout");
}
