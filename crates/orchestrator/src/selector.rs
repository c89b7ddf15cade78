//! Chooses the model of every inference request: `auto` goes through the
//! classifier to its tier's model, a model name goes straight to that model.

use crate::Tier;
use crate::registry::{ModelHandle, ModelNotFound, Registry};
use crate::router::{Classification, Classifier};
use std::sync::Arc;

/// The model name that asks the router to choose.
pub const AUTO: &str = "auto";

/// Why a request cannot be given a model.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SelectError {
    /// The requested name is not configured.
    #[error(transparent)]
    NotFound(#[from] ModelNotFound),
    /// The router chose a tier that no configured model serves.
    #[error("no model serves the {} tier (set `tier` on a model)", .0.as_str())]
    NoModelForTier(Tier),
}

/// Chooses the model for each request: the classifier decides the tier, the
/// registry holds the models.
#[derive(Debug)]
pub struct ModelSelector {
    /// The complexity router.
    pub classifier: Classifier,
    /// The configured models.
    pub registry: Registry,
}

impl ModelSelector {
    /// Classifies a prompt (microseconds; records the router metrics).
    pub fn classify(&self, text: &str) -> Classification {
        self.classifier.classify(text)
    }

    /// The model for `requested`: a configured name, or `auto` (or empty) with
    /// the classification that decides.
    pub fn resolve(
        &self,
        requested: &str,
        classification: Option<&Classification>,
    ) -> Result<Arc<ModelHandle>, SelectError> {
        if requested.is_empty() || requested == AUTO {
            let tier = classification.map_or(Tier::Small, |c| c.tier);
            return self
                .registry
                .for_tier(tier)
                .ok_or(SelectError::NoModelForTier(tier));
        }
        Ok(self.registry.get(requested)?)
    }
}
