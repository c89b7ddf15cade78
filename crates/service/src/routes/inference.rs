//! What the inference routes share: the routing decision, its headers, and
//! sampling validation.

use crate::error::ApiError;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use orchestrator::Tier;
use orchestrator::gateway::{AUTO, Gateway};
use orchestrator::registry::ModelHandle;
use orchestrator::router::Classification;
use std::sync::Arc;

/// Tier that served the request.
pub const TIER_HEADER: HeaderName = HeaderName::from_static("x-harpoon-tier");
/// Router complexity, when the router chose the model.
pub const COMPLEXITY_HEADER: HeaderName = HeaderName::from_static("x-harpoon-complexity");

/// The model a request goes to, and the classification behind it.
#[derive(Debug)]
pub struct Routing {
    /// The model that serves the request.
    pub model: Arc<ModelHandle>,
    /// The router's view of the prompt (always when `auto`; on request otherwise).
    pub classification: Option<Classification>,
    /// Whether the router chose the model.
    pub routed: bool,
}

impl Routing {
    /// Classifies at most once: when `requested` is `auto`, or when the caller
    /// reports the classification anyway (`always_classify`).
    pub fn decide(
        gateway: &Gateway,
        requested: &str,
        text: &str,
        always_classify: bool,
    ) -> Result<Self, ApiError> {
        let routed = requested.is_empty() || requested == AUTO;
        let classification = (routed || always_classify).then(|| gateway.classify(text));
        let model = gateway.resolve(requested, classification.as_ref())?;
        Ok(Self {
            model,
            classification,
            routed,
        })
    }

    /// The tier that serves the request.
    pub fn tier(&self) -> Option<Tier> {
        match (&self.classification, self.routed) {
            (Some(c), true) => Some(c.tier),
            _ => self.model.settings().tier,
        }
    }

    /// `x-harpoon-tier` and, when the router chose, `x-harpoon-complexity`.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(tier) = self.tier() {
            headers.insert(TIER_HEADER, HeaderValue::from_static(tier.as_str()));
        }
        if let (Some(c), true) = (&self.classification, self.routed)
            && let Ok(v) = HeaderValue::from_str(&format!("{:.4}", c.complexity))
        {
            headers.insert(COMPLEXITY_HEADER, v);
        }
        headers
    }
}

/// Checks sampling parameters' ranges.
pub fn validate_sampling(temperature: Option<f32>, top_p: Option<f32>) -> Result<(), ApiError> {
    if let Some(t) = temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(ApiError::validation(format!(
            "temperature: {t} is out of range 0..=2"
        )));
    }
    if let Some(p) = top_p
        && !(p > 0.0 && p <= 1.0)
    {
        return Err(ApiError::validation(format!(
            "top_p: {p} is out of range (0, 1]"
        )));
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
