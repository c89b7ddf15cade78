//! The one error shape of the HTTP API: `{"error":{"code","message"}}`.
//!
//! Handlers return [`ApiError`]; [`ensure_json_errors`] rewrites any error that
//! a layer or axum itself produced as plain text, so no client ever sees a
//! non-JSON error.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// Machine-readable code, human-readable message, optional structured details.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `not_found`, `validation_error`.
    pub code: String,
    /// What happened and, where it helps, what to do about it.
    pub message: String,
    /// Extra structured context (e.g. readiness reasons); absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// An error a handler returns; rendered as [`ErrorBody`] with its status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<serde_json::Value>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 429 with `Retry-After` rounded up to whole seconds (at least 1).
    pub fn too_many_requests(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self {
            retry_after: Some(secs.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    /// Attaches structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 422: the request parsed but a field breaks the schema.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            message,
        )
    }

    /// 503: a part needed to serve the request is missing.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

impl From<orchestrator::engine::EngineError> for ApiError {
    fn from(e: orchestrator::engine::EngineError) -> Self {
        use orchestrator::engine::EngineError as E;
        let (status, code) = match &e {
            E::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable"),
            E::Connect(_) => (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
            E::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
            E::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_error"),
            E::ContextLength(_) => (StatusCode::BAD_REQUEST, "context_length_exceeded"),
            E::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            E::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "generation_failed"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<orchestrator::selector::SelectError> for ApiError {
    fn from(e: orchestrator::selector::SelectError) -> Self {
        use orchestrator::selector::SelectError as E;
        match e {
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "model_not_found", e.to_string()),
            E::NoModelForTier(_) => Self::unavailable("engine_unavailable", e.to_string()),
        }
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError as E;
        match &e {
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            E::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            E::Open { .. } | E::Query(_) => {
                // The detail may name files or servers; log it, answer plainly.
                tracing::error!(error = %e, "storage failure");
                Self::unavailable("storage_unavailable", "storage is unavailable; try again")
            }
        }
    }
}

/// The code used for an error status when nothing more specific is known.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => "timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_error",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::BAD_GATEWAY => "bad_gateway",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "bad_request",
        _ => "internal_error",
    }
}

/// Largest plain-text error body carried over into the JSON message.
const MAX_CARRIED_MESSAGE: usize = 1024;

/// Middleware that turns every non-JSON error response into the JSON envelope,
/// keeping the status and headers (such as `Allow` on a 405).
pub async fn ensure_json_errors(response: Response) -> Response {
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
    let mut rebuilt = ApiError::new(status, code_for_status(status), message).into_response();
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
