//! Quota admission as a layer, inside authentication: one request from the
//! caller's per-minute bucket and one of its concurrency slots, held until
//! the answer (a stream's last byte included) is sent. Token budgets are
//! reserved by the use cases that spend tokens ([`crate::ops::metering`]).

use crate::callers::Caller;
use crate::error::ApiError;
use crate::quota::{Refused, Slot};
use crate::state::AppState;
use crate::telemetry::QUOTA_REFUSALS;
use axum::{
    body::Body,
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use std::time::Duration;
use tracing::Instrument;

/// Applies the caller's request-rate and concurrency quotas; requests without
/// a caller (public routes, `/metrics`) pass as they are.
pub async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Caller>() else {
        return next.run(request).await;
    };
    // A trace's `quota` span: the checks only, not the work they admit.
    let span = tracing::info_span!(target: orchestrator::SPANS, "quota",
        harpoon.tenant = %caller.tenant.id);
    let slot = match take(&state, caller).instrument(span).await {
        Ok(slot) => slot,
        Err(refused) => return refused.into_response(),
    };
    let response = next.run(request).await;
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !streaming {
        return response; // complete: the slot is released here
    }
    // A streamed body is still in flight: hold the slot until it ends.
    let (parts, body) = response.into_parts();
    let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
        let _held = &slot;
        chunk
    }));
    Response::from_parts(parts, body)
}

/// One request from the caller's per-minute bucket and one of its slots, or
/// 429 with `Retry-After` (503 when the shared store cannot say).
async fn take(state: &AppState, caller: &Caller) -> Result<Slot, ApiError> {
    let tenant = &caller.tenant;
    let limits = &caller.limits;
    let refusal = |refused: Refused| match refused {
        Refused::Rate(wait) => {
            metrics::counter!(QUOTA_REFUSALS, "kind" => "requests_per_minute").increment(1);
            ApiError::too_many_requests(
                format!(
                    "tenant {:?} is over its {} requests per minute",
                    tenant.name, limits.requests_per_minute
                ),
                wait,
            )
        }
        Refused::Concurrency => {
            metrics::counter!(QUOTA_REFUSALS, "kind" => "max_concurrent").increment(1);
            ApiError::too_many_requests(
                format!(
                    "tenant {:?} already has {} requests in flight",
                    tenant.name, limits.max_concurrent
                ),
                Duration::from_secs(1),
            )
        }
        Refused::StoreUnavailable(e) => ApiError::from(e),
    };
    state
        .quotas
        .admit(&tenant.id, limits)
        .await
        .map_err(refusal)
}
