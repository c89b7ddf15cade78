//! Routing on the whole conversation: `/classify` with `messages`, and chat
//! completions routed by `auto` with and without `router.sticky_conversations`,
//! served by a static OpenAI-compatible upstream on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use axum::{
    Json, Router,
    body::Body,
    http::{Request, StatusCode},
    response::Response,
    routing::{get, post},
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use tower::ServiceExt;

/// A static OpenAI-compatible upstream for both tiers' models.
async fn static_upstream() -> SocketAddr {
    let answer = json!({"id": "chatcmpl-static", "object": "chat.completion", "created": 0, "model": "static",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Here is the answer."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}});
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

/// The application in process, both models on the static upstream.
struct App {
    router: Router,
    _writer: service::storage::usage::UsageWriter,
    _data: tempfile::TempDir,
}

impl App {
    async fn start(sticky: bool) -> App {
        let upstream = format!("http://{}/v1", static_upstream().await);
        let data = tempfile::tempdir().unwrap();
        let mut vars: HashMap<String, String> = HashMap::new();
        for (k, v) in [
            (
                "HOME",
                std::env::temp_dir()
                    .join("harpoon-test-home-absent")
                    .display()
                    .to_string(),
            ),
            (
                "HARPOON__STORAGE__DATA_DIR",
                data.path().display().to_string(),
            ),
            ("HARPOON__MODELS__GEMMA__ENGINE", "openai".into()),
            ("HARPOON__MODELS__GEMMA__BASE_URL", upstream.clone()),
            ("HARPOON__MODELS__QWEN__ENGINE", "openai".into()),
            ("HARPOON__MODELS__QWEN__BASE_URL", upstream),
            ("HARPOON__ROUTER__STICKY_CONVERSATIONS", sticky.to_string()),
        ] {
            vars.insert(k.to_owned(), v);
        }
        let settings = service::settings::Settings::load(None, &vars)
            .expect("valid settings")
            .settings;
        assert_eq!(settings.router.sticky_conversations, sticky);
        let (state, writer) = service::bootstrap::open_state(settings, false)
            .await
            .expect("state opens");
        App {
            router: service::app::router(state),
            _writer: writer,
            _data: data,
        }
    }

    async fn post_json(&self, uri: &str, body: &Value) -> Response {
        let request = Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.router.clone().oneshot(request).await.unwrap()
    }

    /// The tier a routed chat completion of `messages` was served on.
    async fn chat_tier(&self, messages: &Value) -> String {
        let resp = self
            .post_json(
                "/v1/chat/completions",
                &json!({"model": "auto", "messages": messages}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.headers()["x-harpoon-tier"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    async fn classify(&self, body: &Value) -> (StatusCode, Value) {
        let resp = self.post_json("/classify", body).await;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }
}

const HARD: &str = "Prove that there are infinitely many primes.";
const ANSWER: &str =
    "Suppose there were finitely many; their product plus one has a prime factor none of them is.";
/// A fresh, self-contained question: small on its own and after HARD.
const SWITCH: &str = "thanks! unrelated: what's the capital of Spain?";

fn chat(turns: &[&str]) -> Value {
    let messages: Vec<Value> = turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            json!({"role": role, "content": t})
        })
        .collect();
    Value::Array(messages)
}

#[tokio::test]
async fn classify_reads_a_conversation_and_a_follow_up_of_a_hard_question_is_large() {
    let app = App::start(false).await;
    let (status, alone) = app.classify(&json!({"text": "ok and for 3?"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(alone["tier"], "small", "{alone}");
    let (_, follow_up) = app
        .classify(&json!({"messages": chat(&["What is the probability of two sixes in three rolls of a fair die? Show the working.", "It is 15/216 = 5/72.", "ok and for 3?"]), "explain": true}))
        .await;
    assert_eq!(follow_up["tier"], "large", "{follow_up}");
    assert!(
        follow_up["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["signal"].as_str().unwrap().starts_with("context:")),
        "{follow_up}"
    );
    let (_, simple) = app
        .classify(&json!({"messages": chat(&["What's 2+2?", "4.", "ok and for 3?"])}))
        .await;
    assert_eq!(simple["tier"], "small", "{simple}");
    // A system message is read but not scored; the last user turn decides.
    let (_, system) = app
        .classify(&json!({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi there"}]}))
        .await;
    assert_eq!(system["tier"], "small", "{system}");

    // Exactly one of `text` and `messages`: both or neither is 400 naming the field.
    for (body, param) in [
        (json!({"text": "hi", "messages": chat(&["hi"])}), "messages"),
        (json!({"explain": true}), "text"),
    ] {
        let (status, err) = app.classify(&body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["error"]["param"], param, "{err}");
        assert_eq!(err["error"]["code"], "invalid_request", "{err}");
    }
    for body in [
        json!({"messages": []}),
        json!({"messages": [{"role": "assistant", "content": "hello"}]}),
        json!({"messages": [{"role": "user", "content": "  "}]}),
        json!({"messages": [{"role": "user", "content": "hi", "colour": 1}]}),
    ] {
        let (status, err) = app.classify(&body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
        assert_eq!(err["error"]["code"], "validation_error", "{err}");
    }
}

#[tokio::test]
async fn chat_routing_reads_the_conversation() {
    let app = App::start(false).await;
    assert_eq!(app.chat_tier(&chat(&["ok and for 3?"])).await, "small");
    let follow_up = chat(&[
        "A bag holds 4 red and 6 green balls. I draw 3 without replacement. What is the probability that exactly two are green? Show the working.",
        "It is 1/2.",
        "ok and for 3?",
    ]);
    assert_eq!(app.chat_tier(&follow_up).await, "large");
}

#[tokio::test]
async fn sticky_conversations_keep_a_large_conversation_large() {
    let switch = chat(&[HARD, ANSWER, SWITCH]);
    let later = chat(&[HARD, ANSWER, SWITCH, "Madrid.", "and of Portugal?"]);
    let other = chat(&["What's 2+2?", "4.", SWITCH]);

    // Off: each turn is routed on its own merits.
    let app = App::start(false).await;
    let (_, own) = app.classify(&json!({"messages": switch})).await;
    assert_eq!(
        own["tier"], "small",
        "the follow-up is small on its own: {own}"
    );
    assert_eq!(app.chat_tier(&chat(&[HARD])).await, "large");
    assert_eq!(app.chat_tier(&switch).await, "small");
    assert_eq!(app.chat_tier(&later).await, "small");

    // On: the conversation that went large stays large, turn after turn.
    let app = App::start(true).await;
    assert_eq!(app.chat_tier(&other).await, "small");
    assert_eq!(app.chat_tier(&chat(&[HARD])).await, "large");
    assert_eq!(app.chat_tier(&switch).await, "large");
    assert_eq!(app.chat_tier(&later).await, "large");
    // Another conversation with the same last turn is not held.
    assert_eq!(app.chat_tier(&other).await, "small");
    let metrics = app
        .router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let metrics = axum::body::to_bytes(metrics.into_body(), usize::MAX)
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("router_sticky_holds_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    // /classify reports the router's own view and does not stick.
    let (_, own) = app.classify(&json!({"messages": switch})).await;
    assert_eq!(own["tier"], "small", "{own}");
}
