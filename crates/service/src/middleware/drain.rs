//! While the service drains (after SIGTERM), every answer closes its
//! connection: a load balancer's kept-alive connection would otherwise go on
//! carrying new requests to a replica that is about to close its listener.

use crate::state::AppState;
use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::Response,
};

/// Adds `Connection: close` to answers given while draining.
pub async fn close_when_draining(
    State(state): State<AppState>,
    mut response: Response,
) -> Response {
    if state.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
