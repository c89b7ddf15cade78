//! One span and one log line per request (method, route template, request
//! id, status, error code, latency; never a key, never the body unless
//! `service.log_bodies` asks for it, and then redacted).

use super::request_id::REQUEST_ID;
use crate::error::ErrorCode;
use crate::telemetry::UNMATCHED_ROUTE;
use axum::{
    extract::{MatchedPath, Request as AxumRequest},
    http::{Request, Response},
    middleware::Next,
    response::IntoResponse,
};
use std::time::Duration;
use tower_http::trace::{MakeSpan, OnResponse};
use tracing::Span;

/// Span per request: method, route template and request id; never the body.
/// With traces on it continues the caller's W3C trace (`traceparent`).
#[derive(Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let span = tracing::info_span!(
            target: crate::otel::REQUEST_SPAN_TARGET,
            "request",
            method = %request.method(),
            route,
            request_id,
            status = tracing::field::Empty,
            code = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        crate::otel::continue_trace(&span, request.headers(), request.method().as_str(), route);
        span
    }
}

/// Records status and latency on the span and logs one line per response.
#[derive(Clone, Copy)]
pub struct LogResponse;

impl<B> OnResponse<B> for LogResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        span.record("status", response.status().as_u16());
        crate::otel::responded(span, response.status().as_u16());
        if let Some(code) = response.extensions().get::<ErrorCode>() {
            span.record("code", code.as_str());
        }
        // Whole microseconds: sub-microsecond digits are noise in a log line.
        span.record("latency_ms", (latency.as_micros() as f64) / 1_000.0);
        tracing::info!("response");
    }
}

/// With `service.log_bodies`, logs each request body at debug level; the
/// log writer redacts it like every other line. The body is read (within the
/// body limit) and handed on unchanged.
pub async fn log_request_body(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: AxumRequest,
    next: Next,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => {
            tracing::debug!(body = %String::from_utf8_lossy(&bytes), "request body");
            next.run(AxumRequest::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        Err(_) => crate::error::ApiError::new(
            crate::error::ErrorCode::PayloadTooLarge,
            "the request body is larger than service.body_limit_bytes",
        )
        .into_response(),
    }
}
