//! Text in, tier out: the classifier every request passes through.

use super::conversation::Conversation;
use super::features::Structural;
use super::model::{ArtefactError, Contribution, RouterModel};
use crate::{ModelsSettings, RouterSettings, Tier};
use serde::Serialize;
use std::time::Instant;

/// Counter of classifications by category.
pub const CLASSIFICATIONS_TOTAL: &str = "router_classifications_total";
/// Histogram of classification time in seconds.
pub const CLASSIFICATION_SECONDS: &str = "router_classification_seconds";

/// What the router decided about a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// The small tier can serve it.
    Simple,
    /// It needs the large tier.
    Complex,
}

impl Category {
    /// Lower-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Simple => "simple",
            Category::Complex => "complex",
        }
    }
}

/// The router's answer for one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Simple or complex.
    pub category: Category,
    /// Calibrated probability in [0, 1] that the prompt needs the large tier.
    pub complexity: f32,
    /// Tier that serves it.
    pub tier: Tier,
    /// Configured model name that serves that tier.
    pub model: String,
    /// The structural signals that, with the n-grams, drove the score.
    pub signals: Structural,
    /// Large because an earlier turn of the same conversation went large
    /// (`router.sticky_conversations`), whatever this turn's own score.
    pub sticky: bool,
}

/// Why the router cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The model artefact is unreadable, corrupt or incompatible.
    #[error(transparent)]
    Artefact(#[from] ArtefactError),
    /// No configured model serves a tier.
    #[error("no model is configured for the {0} tier (set `tier: {0}` on one model)")]
    NoModelForTier(&'static str),
}

/// The trained router with the threshold and tier models in force.
#[derive(Debug, Clone)]
pub struct Classifier {
    model: RouterModel,
    threshold: f32,
    small_model: String,
    large_model: String,
}

impl Classifier {
    /// A classifier over `model`; `threshold` overrides the trained one.
    pub fn new(
        model: RouterModel,
        threshold: Option<f32>,
        small_model: impl Into<String>,
        large_model: impl Into<String>,
    ) -> Self {
        Self {
            threshold: threshold.unwrap_or(model.threshold),
            model,
            small_model: small_model.into(),
            large_model: large_model.into(),
        }
    }

    /// Loads the artefact named by `router.model_path`, or the embedded one, and
    /// resolves each tier's model from `models`.
    pub fn from_settings(
        router: &RouterSettings,
        models: &ModelsSettings,
    ) -> Result<Self, RouterError> {
        let model = match &router.model_path {
            Some(path) => RouterModel::load(path)?,
            None => RouterModel::embedded()?,
        };
        let name = |tier: Tier| {
            models
                .model_for_tier(tier)
                .map(str::to_owned)
                .ok_or(RouterError::NoModelForTier(tier.as_str()))
        };
        Ok(Self::new(
            model,
            router.threshold,
            name(Tier::Small)?,
            name(Tier::Large)?,
        ))
    }

    /// Classifies a prompt and records the router metrics.
    pub fn classify(&self, text: &str) -> Classification {
        self.classify_conversation(&Conversation::single(text))
    }

    /// Classifies the last turn of a conversation, given the earlier user
    /// turns, and records the router metrics.
    pub fn classify_conversation(&self, conversation: &Conversation<'_>) -> Classification {
        let started = Instant::now();
        let (complexity, signals) = self.model.score_conversation(conversation);
        let (category, tier, model) = if complexity >= self.threshold {
            (Category::Complex, Tier::Large, &self.large_model)
        } else {
            (Category::Simple, Tier::Small, &self.small_model)
        };
        metrics::counter!(CLASSIFICATIONS_TOTAL, "category" => category.as_str(), "tier" => tier.as_str())
            .increment(1);
        metrics::histogram!(CLASSIFICATION_SECONDS).record(started.elapsed().as_secs_f64());
        Classification {
            category,
            complexity,
            tier,
            model: model.clone(),
            signals,
            sticky: false,
        }
    }

    /// `classification` moved to the large tier because its conversation went
    /// large before (its complexity stays the turn's own score).
    pub fn held_large(&self, classification: Classification) -> Classification {
        Classification {
            category: Category::Complex,
            tier: Tier::Large,
            model: self.large_model.clone(),
            sticky: true,
            ..classification
        }
    }

    /// The `top` signals and n-grams that moved the score most.
    pub fn explain(&self, text: &str, top: usize) -> Vec<Contribution> {
        self.model.explain(text, top)
    }

    /// As [`Classifier::explain`] for a conversation.
    pub fn explain_conversation(
        &self,
        conversation: &Conversation<'_>,
        top: usize,
    ) -> Vec<Contribution> {
        self.model.explain_conversation(conversation, top)
    }

    /// Probability at or above which prompts go to the large tier.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The underlying model.
    pub fn model(&self) -> &RouterModel {
        &self.model
    }
}
