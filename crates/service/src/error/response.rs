//! How an [`ApiError`] travels over HTTP: the JSON envelope, the SSE error
//! event of a stream whose headers are gone, a handler's panic, and the
//! plain-text errors of layers rewritten into the envelope.

use super::{api_error::ApiError, code::ErrorCode};
use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response, sse::Event},
};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// OpenAI's error object (`message`, `type`, `param`, `code`, each always
/// present) with optional structured details.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// What happened and, where it helps, what to do about it.
    pub message: String,
    /// OpenAI's error type, by which its SDKs branch: `invalid_request_error`,
    /// `authentication_error`, `permission_error`, `not_found_error`,
    /// `rate_limit_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field the error is about; null when it is about none.
    #[schema(required = true)]
    pub param: Option<String>,
    /// Stable snake_case code from Harpoon's closed set, e.g. `not_found`,
    /// `validation_error`.
    pub code: String,
    /// Extra structured context (e.g. readiness reasons); absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl From<&ApiError> for ErrorBody {
    fn from(e: &ApiError) -> Self {
        Self {
            error: ErrorDetail {
                message: e.message().to_owned(),
                kind: e.code().openai_type().to_owned(),
                param: e.param().map(str::to_owned),
                code: e.code().as_str().to_owned(),
                details: e.details().cloned(),
            },
        }
    }
}

impl ApiError {
    /// The event that ends a stream in-band once its headers are sent, as
    /// OpenAI reports a failure mid-stream: `data: {"error":{…}}`.
    pub fn sse_event(&self) -> Event {
        Event::default().data(serde_json::to_string(&ErrorBody::from(self)).unwrap_or_default())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(ErrorBody::from(&self))).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // For the request's log line and metrics, which see the response only.
        response.extensions_mut().insert(self.code());
        log(&self);
        response
    }
}

/// Logs an answered error at its code's level: what the operator must fix
/// at error, a part outside the service at warn, the caller's mistakes at
/// debug (the request's own line already says its status and code).
fn log(e: &ApiError) {
    let (code, reason) = (e.code().as_str(), e.message());
    match e.code().log_level() {
        tracing::Level::ERROR => tracing::error!(code, reason, "answered with an error"),
        tracing::Level::WARN => tracing::warn!(code, reason, "answered with an error"),
        _ => tracing::debug!(code, reason, "answered with an error"),
    }
}

/// A handler's panic as a JSON 500 with code `internal` (for
/// `CatchPanicLayer`): the connection stays usable and the client gets the
/// envelope; the panic's text goes to the log, never to the client.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "a handler panicked");
    ApiError::new(
        ErrorCode::Internal,
        "the service failed on this request; the log has the detail",
    )
    .into_response()
}

/// Largest plain-text error body carried over into the JSON message.
const MAX_CARRIED_MESSAGE: usize = 1024;

/// Marks an error response that is a page for a person's browser on
/// purpose (a refused sign-in), which [`ensure_json_errors`] leaves as it is.
#[derive(Debug, Clone, Copy)]
pub struct PageForPeople;

/// Middleware that turns every non-JSON error response into the JSON envelope,
/// keeping the status and headers (such as `Allow` on a 405).
pub async fn ensure_json_errors(response: Response) -> Response {
    if response.extensions().get::<PageForPeople>().is_some() {
        return response;
    }
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Error bodies from axum and tower-http are short plain text; anything
    // larger than the cap is not a message worth carrying.
    let text = axum::body::to_bytes(body, MAX_CARRIED_MESSAGE)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty());
    let message = text.unwrap_or_else(|| default_message(status));
    let mut rebuilt = ApiError::from_status(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rebuilt.headers_mut().append(name.clone(), value.clone());
        }
    }
    rebuilt
}

fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "no route matches this path".into(),
        StatusCode::METHOD_NOT_ALLOWED => {
            "this route does not accept that method; see the Allow header".into()
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
            "the request did not complete within service.request_timeout_secs".into()
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than service.body_limit_bytes".into()
        }
        s => s.canonical_reason().unwrap_or("error").to_owned(),
    }
}
