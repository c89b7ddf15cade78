//! CORS for browsers, from `service.cors_origins`; none when the list is empty.

use super::request_id::REQUEST_ID;
use crate::settings::{CorsOrigins, ServiceSettings};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// The CORS layer for the configured origins (`*` for any), if any are set.
pub fn cors(service: &ServiceSettings) -> Option<CorsLayer> {
    let origins = match &service.cors_origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) if list.is_empty() => return None,
        // Made header values when the configuration was read.
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods(Any)
            .allow_headers(Any)
            .expose_headers([
                REQUEST_ID,
                super::metrics::OVERHEAD_HEADER,
                super::metrics::DEPLOYMENT_HEADER,
            ]),
    )
}
