//! What the inference routes add to the routing decision over HTTP: the
//! headers that say how a request was routed.

use crate::ops::inference::Routing;
use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// Tier that served the request.
pub const TIER_HEADER: HeaderName = HeaderName::from_static("x-harpoon-tier");
/// Router complexity, when the router chose the model.
pub const COMPLEXITY_HEADER: HeaderName = HeaderName::from_static("x-harpoon-complexity");

/// `x-harpoon-tier` and, when the router chose, `x-harpoon-complexity`.
pub fn routing_headers(routing: &Routing) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(tier) = routing.tier() {
        headers.insert(TIER_HEADER, HeaderValue::from_static(tier.as_str()));
    }
    if let (Some(c), true) = (&routing.classification, routing.routed)
        && let Ok(v) = HeaderValue::from_str(&format!("{:.4}", c.complexity))
    {
        headers.insert(COMPLEXITY_HEADER, v);
    }
    headers
}
