//! The layers every request passes through, outermost first: sensitive
//! headers, request id, trace, metrics, CORS, compression, the JSON error
//! envelope, panics, authentication, quota admission, the request timeout,
//! the body limit and (on request) body logging.

pub mod admission;
pub mod auth;
pub mod cors;
pub mod drain;
pub mod metrics;
pub mod request_id;
pub mod trace;

use crate::error::{ensure_json_errors, response::panic_response};
use crate::state::AppState;
use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, Response, StatusCode, header},
    middleware::{from_fn, from_fn_with_state, map_request, map_response, map_response_with_state},
};
use request_id::REQUEST_ID;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

/// `routes` wrapped in every layer, configured from `state`.
pub fn around(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    let service = &state.settings.service;
    let layers = ServiceBuilder::new()
        // Before anything that could print a request: keys never reach a log.
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
            // Session cookies and their CSRF tokens are credentials too.
            header::COOKIE,
            HeaderName::from_static("x-csrf-token"),
        ]))
        .layer(map_request(request_id::drop_unusable_request_id))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(trace::RequestSpan)
                .on_request(())
                .on_response(trace::LogResponse)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(from_fn(metrics::record_metrics))
        .option_layer(cors::cors(service))
        .layer(CompressionLayer::new())
        .layer(map_response(ensure_json_errors))
        .layer(map_response_with_state(
            state.clone(),
            drain::close_when_draining,
        ))
        // Inside the envelope and the metrics: a panic is answered and counted.
        .map_response(|r: Response<_>| r.map(axum::body::Body::new))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn_with_state(state.clone(), auth::authenticate))
        .layer(from_fn_with_state(state.clone(), admission::admit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(service.request_timeout_secs),
        ))
        .layer(DefaultBodyLimit::max(service.body_limit_bytes))
        .option_layer(
            service
                .log_bodies
                .then(|| from_fn_with_state(service.body_limit_bytes, trace::log_request_body)),
        );
    routes.layer(layers)
}
