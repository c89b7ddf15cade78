//! The `openai` engine's failure handling against real sockets: refused
//! connections, a peer that never answers, and HTTP error answers, with the
//! retry policy (only connection errors, 429 and 5xx) counted on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use orchestrator::engine::openai::{OpenAiConfig, OpenAiEngine};
use orchestrator::engine::{Engine, EngineError};
use orchestrator::generation::{GenerationRequest, Message, Role};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn request() -> GenerationRequest {
    GenerationRequest {
        messages: vec![Message::new(Role::User, "hi")],
        max_tokens: 8,
        temperature: 0.0,
        top_p: 1.0,
        stop: Vec::new(),
        seed: Some(1),
        enable_thinking: false,
        prompt_tokens: None,
        extra: Default::default(),
    }
}

fn engine(port: u16, read_timeout: Duration) -> OpenAiEngine {
    OpenAiEngine::new(OpenAiConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: None,
        served_model: None,
        connect_timeout: Duration::from_secs(2),
        read_timeout,
        max_attempts: 3,
    })
    .unwrap()
}

/// A peer that answers every request with `status` and `body`, counting requests.
async fn answering(status: &'static str, body: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 16 * 1024];
            let _ = socket.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (port, hits)
}

#[tokio::test]
async fn refused_connections_are_retried_then_reported_as_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = engine(port, Duration::from_secs(5))
        .generate(request())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Connect(_)), "{err:?}");
    // Two back-offs of 100–200 ms and 200–400 ms between three attempts.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_silent_peer_times_out_within_the_read_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // accept, read nothing, answer nothing
        }
    });
    let started = Instant::now();
    let engine = OpenAiEngine::new(OpenAiConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: None,
        served_model: None,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(300),
        max_attempts: 1,
    })
    .unwrap();
    let err = engine.generate(request()).await.unwrap_err();
    assert!(matches!(err, EngineError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn server_errors_and_429_are_retried_other_4xx_are_not() {
    let (port, hits) = answering(
        "500 Internal Server Error",
        r#"{"error":{"message":"boom"}}"#,
    )
    .await;
    let err = engine(port, Duration::from_secs(5))
        .generate(request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::Upstream(m) if m.contains("boom")),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // A 429 stays a 429 (the service answers it with `Retry-After`), with
    // the upstream's own wait when it names one.
    let (port, hits) = answering(
        "429 Too Many Requests\r\nretry-after: 3",
        r#"{"error":{"message":"slow down"}}"#,
    )
    .await;
    let err = engine(port, Duration::from_secs(5))
        .generate(request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::RateLimited { message, retry_after: Some(d) }
            if message.contains("slow down") && *d == Duration::from_secs(3)),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    let (port, hits) = answering(
        "400 Bad Request",
        r#"{"error":{"message":"bad temperature"}}"#,
    )
    .await;
    let err = engine(port, Duration::from_secs(5))
        .generate(request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::InvalidRequest(m) if m.contains("bad temperature")),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "a 400 is never retried");

    let (port, _) = answering(
        "400 Bad Request",
        r#"{"error":{"message":"This model's maximum context length is 512 tokens"}}"#,
    )
    .await;
    let err = engine(port, Duration::from_secs(5))
        .generate(request())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::ContextLength(_)), "{err:?}");

    let (port, hits) = answering("401 Unauthorized", r#"{"error":{"message":"bad key"}}"#).await;
    let err = engine(port, Duration::from_secs(5))
        .generate(request())
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Upstream(_)),
        "a gateway misconfiguration is a 502"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_answer_without_content_is_an_upstream_error_not_an_empty_reply() {
    let (port, _) = answering("200 OK", r#"{"choices":[]}"#).await;
    let err = engine(port, Duration::from_secs(5))
        .generate(request())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Upstream(_)), "{err:?}");
}

/// A peer that answers once with `body` and hands back the request body it got.
async fn recording(body: &'static str) -> (u16, tokio::sync::oneshot::Receiver<serde_json::Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        // Headers, then as many body bytes as they announce (bounded reads).
        for _ in 0..64 {
            let n = socket.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if rest.len() >= length {
                    let _ = tx.send(serde_json::from_str(rest).unwrap());
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = socket.write_all(reply.as_bytes()).await;
    });
    (port, rx)
}

/// Fields beyond the typed ones and the caller's own messages go upstream
/// unchanged, and the upstream's choices (a tool call, null content) come back
/// as they were.
#[tokio::test]
async fn extra_fields_and_wire_messages_pass_through_both_ways() {
    let answer = r#"{"id":"x","object":"chat.completion","created":1,"model":"m",
        "choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,
        "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
        "logprobs":null,"finish_reason":"tool_calls"}],
        "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
    let (port, sent) = recording(answer).await;
    let mut request = request();
    let tools = serde_json::json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    request.extra.insert("tools".into(), tools.clone());
    request
        .extra
        .insert("logit_bias".into(), serde_json::json!({"42": -100}));
    let mut reply = Message::new(Role::Tool, "7");
    reply.wire = Some(serde_json::json!({"role": "tool", "tool_call_id": "c0", "content": "7"}));
    request.messages.push(reply);

    let done = engine(port, Duration::from_secs(5))
        .generate(request)
        .await
        .unwrap();
    assert_eq!(done.text, "");
    assert_eq!(
        done.finish_reason,
        orchestrator::generation::FinishReason::ToolCalls
    );
    let choices = done.choices.unwrap();
    assert_eq!(choices[0]["message"]["tool_calls"][0]["id"], "c1");

    let body = sent.await.unwrap();
    assert_eq!(body["tools"], tools);
    assert_eq!(body["logit_bias"]["42"], -100);
    assert_eq!(
        body["messages"][0],
        serde_json::json!({"role": "user", "content": "hi"})
    );
    assert_eq!(body["messages"][1]["tool_call_id"], "c0");
    assert_eq!(body["max_tokens"], 8);
}
