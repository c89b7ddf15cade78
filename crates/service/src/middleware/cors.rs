//! CORS for browsers, from `service.cors_origins`; none when the list is empty.

use super::request_id::REQUEST_ID;
use crate::settings::ServiceSettings;
use axum::http::HeaderValue;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// The CORS layer for the configured origins (`*` for any), if any are set.
pub fn cors(service: &ServiceSettings) -> Option<CorsLayer> {
    if service.cors_origins.is_empty() {
        return None;
    }
    let origins = if service.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // Validated as origins at load time, so every one is a valid header value.
        AllowOrigin::list(
            service
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods(Any)
            .allow_headers(Any)
            .expose_headers([REQUEST_ID]),
    )
}
