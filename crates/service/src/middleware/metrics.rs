//! Request counters and durations per method, route template and status,
//! error answers per route and code, and the gateway's own time on inference
//! routes.

use crate::error::ErrorCode;
use crate::telemetry::{
    GATEWAY_OVERHEAD, REQUEST_DURATION, REQUEST_ERRORS_TOTAL, REQUESTS_TOTAL, UNMATCHED_ROUTE,
};
use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, Method},
    middleware::Next,
    response::Response,
};
use orchestrator::registry::engine_time;
use std::time::Instant;

/// Routes whose answers come from a model: their responses say how much of
/// the time to the headers was the gateway's own.
const INFERENCE_ROUTES: &[&str] = &[
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/completions",
    "/v1/embeddings",
    "/run",
    "/v2/process",
];

/// The gateway's own time in milliseconds (as LiteLLM's
/// `x-litellm-overhead-duration-ms`): to the headers, less engine time.
pub const OVERHEAD_HEADER: HeaderName = HeaderName::from_static("x-harpoon-overhead-ms");

/// The deployment (`model/name`) that served an inference request.
pub const DEPLOYMENT_HEADER: HeaderName = HeaderName::from_static("x-harpoon-deployment");

/// Middleware recording [`REQUESTS_TOTAL`] and [`REQUEST_DURATION`], and on
/// inference routes the gateway's overhead ([`GATEWAY_OVERHEAD`], [`OVERHEAD_HEADER`])
/// and the deployment that served it ([`DEPLOYMENT_HEADER`]).
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = if INFERENCE_ROUTES.contains(&route.as_str()) {
        let (mut response, engine) = engine_time::measured(next.run(request)).await;
        let overhead = started.elapsed().saturating_sub(engine.time);
        if let Some(value) = engine
            .deployment
            .and_then(|d| HeaderValue::from_str(&d).ok())
        {
            response.headers_mut().insert(DEPLOYMENT_HEADER, value);
        }
        metrics::histogram!(GATEWAY_OVERHEAD, "route" => route.clone())
            .record(overhead.as_secs_f64());
        if let Ok(value) = HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1e3)) {
            response.headers_mut().insert(OVERHEAD_HEADER, value);
        }
        response
    } else {
        next.run(request).await
    };
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(REQUEST_DURATION, &labels).record(started.elapsed().as_secs_f64());
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        let [_, (_, route), _] = labels;
        metrics::counter!(REQUEST_ERRORS_TOTAL, "route" => route, "code" => code.as_str())
            .increment(1);
    }
    response
}

/// Standard methods by name; anything else as `other`, to bound the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
