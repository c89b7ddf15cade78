//! Request counters and durations per method, route template and status, and
//! error answers per route and code.

use crate::error::ErrorCode;
use crate::telemetry::{REQUEST_DURATION, REQUEST_ERRORS_TOTAL, REQUESTS_TOTAL, UNMATCHED_ROUTE};
use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    middleware::Next,
    response::Response,
};
use std::time::Instant;

/// Middleware recording [`REQUESTS_TOTAL`] and [`REQUEST_DURATION`].
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
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
