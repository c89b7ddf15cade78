//! `/mcp` against the MCP specification (2025-06-18, Streamable HTTP) and
//! JSON-RPC 2.0, in process through [`service::app::router`] with auth off
//! (the local tenant, loopback `Host` names): what each malformed request,
//! refused header and session end is answered with. The SDK clients' view is
//! in `tests/mcp`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode},
    response::Response,
};
use futures_util::StreamExt;
use serde_json::{Value, json};
use service::storage::usage::UsageWriter;
use std::{collections::HashMap, time::Duration};
use tower::ServiceExt;

/// The headers a conforming client sends.
const ACCEPT_BOTH: &str = "application/json, text/event-stream";

struct App {
    router: Router,
    _writer: UsageWriter,
    _data: tempfile::TempDir,
}

impl App {
    async fn start() -> App {
        let data = tempfile::tempdir().expect("temp data dir");
        let vars: HashMap<String, String> = HashMap::from([
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
        let settings = service::settings::Settings::load(None, &vars)
            .expect("valid settings")
            .settings;
        let (state, writer) = service::bootstrap::open_state(settings, false)
            .await
            .expect("state opens");
        App {
            router: service::app::router(state),
            _writer: writer,
            _data: data,
        }
    }

    /// `method /mcp` with `body`, a conforming client's headers, then
    /// `headers` (which replace those of the same name).
    async fn send(
        &self,
        method: Method,
        session: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Response {
        let mut base: Vec<(&str, &str)> = vec![
            ("host", "127.0.0.1"),
            ("accept", ACCEPT_BOTH),
            ("mcp-protocol-version", "2025-06-18"),
        ];
        if body.is_some() {
            base.push(("content-type", "application/json"));
        }
        if let Some(id) = session {
            base.push(("mcp-session-id", id));
        }
        base.retain(|(name, _)| !headers.iter().any(|(n, _)| n == name));
        let mut request = Request::builder().method(method).uri("/mcp");
        for (name, value) in base.iter().chain(headers) {
            request = request.header(*name, *value);
        }
        let request = request
            .body(body.map_or_else(Body::empty, Body::from))
            .unwrap();
        tokio::time::timeout(
            Duration::from_secs(10),
            self.router.clone().oneshot(request),
        )
        .await
        .expect("an answer's head within 10 s")
        .unwrap()
    }

    async fn post(&self, session: Option<&str>, message: &Value) -> Response {
        self.send(Method::POST, session, &[], Some(message.to_string()))
            .await
    }

    /// An initialised session's id.
    async fn session(&self) -> String {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "conformance-test", "version": "0"}}});
        let opened = self.post(None, &init).await;
        assert_eq!(opened.status(), StatusCode::OK);
        let id = opened.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let answer = answer_of(opened).await;
        assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let ack = self.post(Some(&id), &initialized).await;
        assert_eq!(ack.status(), StatusCode::ACCEPTED);
        id
    }

    /// The JSON-RPC answer to `request` (a request with `id`) in `session`.
    async fn call(&self, session: &str, request: Value) -> Value {
        let response = self.post(Some(session), &request).await;
        assert_eq!(response.status(), StatusCode::OK, "{request}");
        let answer = answer_of(response).await;
        assert_eq!(answer["id"], request["id"], "{answer}");
        answer
    }
}

/// The JSON-RPC message answering a request: the JSON body, or the first
/// SSE event carrying a result or an error.
async fn answer_of(response: Response) -> Value {
    let sse = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    let mut stream = response.into_body().into_data_stream();
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if !sse {
                continue;
            }
            let found = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
                .find(|m| m.get("result").is_some() || m.get("error").is_some());
            if let Some(message) = found {
                return message;
            }
        }
        assert!(!sse, "the event stream ended without an answer: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer within 10 s")
}

/// A transport error: its status, and its body, which must be a JSON-RPC
/// error response (not the REST envelope, whose `error.code` is a string).
async fn jsonrpc_refusal(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let ctype = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let body = answer_of(response).await;
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert!(
        body.get("id").is_some(),
        "a JSON-RPC error has an id: {body}"
    );
    assert!(body["error"]["code"].is_i64(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    (status, body)
}

#[tokio::test]
async fn tools_call_without_params_is_invalid_params() {
    let app = App::start().await;
    let session = app.session().await;
    let absent = app
        .call(
            &session,
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call"}),
        )
        .await;
    assert_eq!(absent["error"]["code"], -32602, "{absent}");
    let nameless = app
        .call(
            &session,
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {}}),
        )
        .await;
    assert_eq!(nameless["error"]["code"], -32602, "{nameless}");
    assert!(
        nameless["error"]["message"]
            .as_str()
            .unwrap()
            .contains("name"),
        "{nameless}"
    );
    // A method no one defines is still not found.
    let unknown = app
        .call(
            &session,
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/explode", "params": {}}),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    // And a well-formed call still works.
    let called = app
        .call(
            &session,
            json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                   "params": {"name": "classify", "arguments": {"text": "hi"}}}),
        )
        .await;
    assert_eq!(called["result"]["isError"], false, "{called}");
}

#[tokio::test]
async fn a_malformed_body_is_a_jsonrpc_parse_error() {
    let app = App::start().await;
    for body in ["{\"jsonrpc\": \"2.0\", \"id\": 1,", "not json", ""] {
        let response = app
            .send(Method::POST, None, &[], Some(body.to_owned()))
            .await;
        let (status, error) = jsonrpc_refusal(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(error["error"]["code"], -32700, "{body:?}: {error}");
        assert!(error["id"].is_null(), "{error}");
    }
    // In a session too: the body is read before the session.
    let session = app.session().await;
    let response = app
        .send(Method::POST, Some(&session), &[], Some("{".to_owned()))
        .await;
    let (status, error) = jsonrpc_refusal(response).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!(-32700))
    );
}

#[tokio::test]
async fn a_message_without_jsonrpc_is_an_invalid_request() {
    let app = App::start().await;
    let response = app
        .post(
            None,
            &json!({"id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "x", "version": "0"}}}),
        )
        .await;
    let (status, error) = jsonrpc_refusal(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], -32600, "{error}");
    assert_eq!(error["id"], 1, "the id could be read: {error}");
    for message in [
        json!({"jsonrpc": "1.0", "id": "a", "method": "ping"}),
        json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),
        json!("ping"),
        json!({"jsonrpc": "2.0", "id": 1, "method": 5}),
    ] {
        let (status, error) = jsonrpc_refusal(app.post(None, &message).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
        assert_eq!(error["error"]["code"], -32600, "{message}: {error}");
    }
}

#[tokio::test]
async fn an_accept_without_event_stream_is_406_with_a_jsonrpc_error() {
    let app = App::start().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    for accept in [
        "application/json",
        "text/event-stream",
        "*/*",
        "application/json, text/event-stream;q=0",
    ] {
        let response = app
            .send(
                Method::POST,
                None,
                &[("accept", accept)],
                Some(ping.clone()),
            )
            .await;
        let (status, error) = jsonrpc_refusal(response).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{accept}");
        assert_eq!(error["error"]["code"], -32600, "{accept}: {error}");
        assert!(error["id"].is_null(), "{error}");
    }
    // The header is checked before the body, as the reference servers do.
    let response = app
        .send(
            Method::POST,
            None,
            &[("accept", "application/json")],
            Some("{".to_owned()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);

    // GET opens the session's event stream: it must accept one.
    let session = app.session().await;
    let response = app
        .send(
            Method::GET,
            Some(&session),
            &[("accept", "application/json")],
            None,
        )
        .await;
    let (status, error) = jsonrpc_refusal(response).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("text/event-stream"),
        "{error}"
    );

    // A POST whose body is not JSON by its content type: 415, the same form.
    let response = app
        .send(
            Method::POST,
            None,
            &[("content-type", "text/plain")],
            Some(ping),
        )
        .await;
    let (status, error) = jsonrpc_refusal(response).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error["error"]["code"], -32600, "{error}");
}

#[tokio::test]
async fn ending_a_session_answers_200() {
    let app = App::start().await;
    let session = app.session().await;
    let end = app.send(Method::DELETE, Some(&session), &[], None).await;
    assert_eq!(end.status(), StatusCode::OK);
    let ping = json!({"jsonrpc": "2.0", "id": 9, "method": "ping"});
    let gone = app.post(Some(&session), &ping).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND, "the session ended");
}

#[tokio::test]
async fn a_prompt_naming_a_missing_covenant_is_invalid_params() {
    let app = App::start().await;
    let session = app.session().await;
    for (id, prompt, arguments) in [
        (
            2,
            "covenant.harmony_review",
            json!({"covenant_id": "cov_nope"}),
        ),
        (
            3,
            "strike.delegation",
            json!({"covenant_id": "cov_nope", "repository": "acme/web"}),
        ),
    ] {
        let answer = app
            .call(
                &session,
                json!({"jsonrpc": "2.0", "id": id, "method": "prompts/get",
                       "params": {"name": prompt, "arguments": arguments}}),
            )
            .await;
        assert_eq!(answer["error"]["code"], -32602, "{prompt}: {answer}");
        // The REST refusal rides along, as for tools.
        assert_eq!(answer["error"]["data"]["error"]["status"], 404, "{answer}");
    }
    // A resource URI naming a missing covenant stays "resource not found".
    let read = app
        .call(
            &session,
            json!({"jsonrpc": "2.0", "id": 4, "method": "resources/read",
                   "params": {"uri": "harpoon://covenants/cov_nope"}}),
        )
        .await;
    assert_eq!(read["error"]["code"], -32002, "{read}");
}
