//! What `/mcp` answers itself, in front of `rmcp`'s Streamable HTTP service,
//! where `rmcp` answers otherwise than the MCP specification (2025-06-18,
//! Streamable HTTP) and JSON-RPC 2.0, and than the reference servers of the
//! official TypeScript and Python SDKs:
//!
//! - a body that is not JSON is a JSON-RPC parse error (-32700) and one that is
//!   JSON but no JSON-RPC message an invalid request (-32600), both HTTP 400
//!   (`rmcp` answers 415 for either, as if the content type were wrong);
//! - an `Accept` header without the media types the answer may take is 406
//!   with a JSON-RPC error body (`rmcp`'s is plain text, which the service
//!   would turn into its REST envelope), as is a content type other than JSON
//!   (415);
//! - ending a session with `DELETE` is 200 (`rmcp` answers 202, which the
//!   Python SDK client logs as "Session termination failed").
//!
//! The checks are `rmcp`'s own, in its order (`Accept`, content type, body),
//! so what passes them reaches `rmcp` unchanged. They run before its
//! DNS-rebinding guard but have no effect of their own: a refused request
//! opens no session and reads nothing.

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{ClientJsonRpcMessage, ErrorCode};
use serde_json::{Value, json};

const JSON_MIME: &str = "application/json";
const EVENT_STREAM_MIME: &str = "text/event-stream";

/// A JSON-RPC error response, as the answer to the whole HTTP request.
/// `id` is the request's when it could be read, else null (JSON-RPC 2.0 §5).
fn jsonrpc_error(status: StatusCode, id: Value, code: ErrorCode, message: String) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    });
    (status, axum::Json(body)).into_response()
}

/// A transport refusal (headers the endpoint cannot serve), as the reference
/// servers send it: a JSON-RPC "invalid request" without an id.
fn refusal(status: StatusCode, message: &str) -> Response {
    jsonrpc_error(
        status,
        Value::Null,
        ErrorCode::INVALID_REQUEST,
        message.to_owned(),
    )
}

/// The media ranges an `Accept` header lists, less those weighted `q=0`.
/// A weight that is not a number is ignored, as `rmcp` ignores it.
fn accepted(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';');
            let essence = parts.next()?.trim();
            let refused = parts.any(|parameter| {
                parameter.split_once('=').is_some_and(|(name, weight)| {
                    name.trim().eq_ignore_ascii_case("q")
                        && weight.trim().parse::<f32>().is_ok_and(|q| q == 0.0)
                })
            });
            (!refused).then_some(essence)
        })
}

fn accepts(headers: &HeaderMap, media: &str) -> bool {
    accepted(headers).any(|essence| essence.eq_ignore_ascii_case(media))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(JSON_MIME))
}

/// The whole body, or `rmcp`'s answer when it is larger than `limit` or
/// cannot be read.
async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, Response> {
    let mut collected = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to read request body: {e}"),
            )
                .into_response()
        })?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit.saturating_sub(collected.len()) {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("Payload Too Large: request body exceeds {limit} bytes"),
                )
                    .into_response());
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected.into())
}

/// Why a POST body is no message `rmcp` can take, as the JSON-RPC error that
/// says so; `None` when it is one.
fn unreadable(body: &[u8]) -> Option<Response> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            return Some(jsonrpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                ErrorCode::PARSE_ERROR,
                format!("Parse error: {e}"),
            ));
        }
    };
    let id = value
        .get("id")
        .filter(|id| id.is_string() || id.is_number())
        .cloned()
        .unwrap_or(Value::Null);
    let problem = match &value {
        Value::Array(_) => {
            "a POST carries one JSON-RPC message; batches are not accepted".to_owned()
        }
        Value::Object(message) if message.get("jsonrpc") != Some(&json!("2.0")) => {
            r#"a JSON-RPC 2.0 message has "jsonrpc": "2.0""#.to_owned()
        }
        Value::Object(_) => match serde_json::from_value::<ClientJsonRpcMessage>(value) {
            Ok(_) => return None,
            Err(e) => e.to_string(),
        },
        _ => "a JSON-RPC message is an object".to_owned(),
    };
    Some(jsonrpc_error(
        StatusCode::BAD_REQUEST,
        id,
        ErrorCode::INVALID_REQUEST,
        format!("Invalid Request: {problem}"),
    ))
}

/// The middleware: refuses what `rmcp` would refuse in the wrong form, passes
/// the rest on, and answers a session's end with 200.
pub(crate) async fn conform(
    axum::extract::State(max_body_bytes): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let headers = request.headers();
    if method == Method::GET && !accepts(headers, EVENT_STREAM_MIME) {
        return refusal(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Client must accept text/event-stream",
        );
    }
    let request = if method == Method::POST {
        if !(accepts(headers, JSON_MIME) && accepts(headers, EVENT_STREAM_MIME)) {
            return refusal(
                StatusCode::NOT_ACCEPTABLE,
                "Not Acceptable: Client must accept both application/json and text/event-stream",
            );
        }
        if !is_json(headers) {
            return refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type: Content-Type must be application/json",
            );
        }
        let (parts, body) = request.into_parts();
        let body = match read_body(body, max_body_bytes).await {
            Ok(body) => body,
            Err(answer) => return answer,
        };
        if let Some(answer) = unreadable(&body) {
            return answer;
        }
        axum::extract::Request::from_parts(parts, Body::from(body))
    } else {
        request
    };
    let response = next.run(request).await;
    if method == Method::DELETE && response.status() == StatusCode::ACCEPTED {
        // The session is gone; 200 is what the reference servers answer and
        // what the SDK clients take for success.
        let (mut parts, _) = response.into_parts();
        parts.status = StatusCode::OK;
        return Response::from_parts(parts, Body::empty());
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn accept(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn accept_ranges_weighted_zero_are_refused_and_others_kept() {
        let headers = accept(&[
            "text/plain;q=0, application/json; q=0.000",
            "text/event-stream;q=abc, */*;q=0.5",
        ]);
        let listed: Vec<&str> = accepted(&headers).collect();
        assert_eq!(listed, ["text/event-stream", "*/*"]);
        assert!(accepts(
            &accept(&["Application/JSON, text/event-stream"]),
            JSON_MIME
        ));
        assert!(!accepts(&accept(&["*/*"]), EVENT_STREAM_MIME));
        assert!(!accepts(&HeaderMap::new(), JSON_MIME));
    }

    async fn body_of(response: Response) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn bodies_that_are_no_message_are_jsonrpc_errors() {
        let (status, parse) = body_of(unreadable(b"{not json").unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(parse["error"]["code"], -32700);
        assert!(parse["id"].is_null(), "{parse}");
        for (body, id) in [
            (r#"{"id": 3, "method": "ping"}"#, json!(3)),
            (
                r#"{"jsonrpc": "1.0", "id": "a", "method": "ping"}"#,
                json!("a"),
            ),
            (
                r#"[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]"#,
                Value::Null,
            ),
            (r#"{"jsonrpc": "2.0", "id": {}, "method": 5}"#, Value::Null),
            ("7", Value::Null),
        ] {
            let (status, invalid) = body_of(unreadable(body.as_bytes()).unwrap()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(invalid["error"]["code"], -32600, "{body}");
            assert_eq!(invalid["id"], id, "{body}");
            assert_eq!(invalid["jsonrpc"], "2.0");
        }
        // Requests, notifications and responses pass, also with params that do
        // not fit their method: that is the handler's -32602, not the transport's.
        for body in [
            r#"{"jsonrpc": "2.0", "id": 1, "method": "ping"}"#,
            r#"{"jsonrpc": "2.0", "id": 2, "method": "tools/call"}"#,
            r#"{"jsonrpc": "2.0", "method": "notifications/initialized"}"#,
            r#"{"jsonrpc": "2.0", "id": 1, "result": {}}"#,
        ] {
            assert!(unreadable(body.as_bytes()).is_none(), "{body}");
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_before_parsing() {
        let answer = read_body(Body::from("x".repeat(11)), 10).await.unwrap_err();
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let whole = read_body(Body::from("x".repeat(10)), 10).await.unwrap();
        assert_eq!(whole.len(), 10);
    }
}
