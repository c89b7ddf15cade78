//! Chooses the model of every inference request: `auto` goes through the
//! classifier to its tier's model, a model name goes straight to that model.

use crate::Tier;
use crate::capability::Need;
use crate::registry::{ModelHandle, ModelNotFound, Registry};
use crate::router::{Classification, Classifier, Conversation, StickyConversations};
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
    /// The model (pinned, or every model `auto` could choose) cannot take
    /// something the request asks.
    #[error("{param}: {why}")]
    Unsupported {
        /// The request field that asks it.
        param: String,
        /// Which model lacks what, and what to do.
        why: String,
    },
}

/// Chooses the model for each request: the classifier decides the tier, the
/// registry holds the models.
#[derive(Debug)]
pub struct ModelSelector {
    /// The complexity router.
    pub classifier: Classifier,
    /// The configured models.
    pub registry: Registry,
    /// Conversations that went large, with `router.sticky_conversations`.
    pub sticky: Option<StickyConversations>,
}

impl ModelSelector {
    /// Classifies a prompt (microseconds; records the router metrics).
    pub fn classify(&self, text: &str) -> Classification {
        self.classifier.classify(text)
    }

    /// Classifies the last turn of a conversation given the earlier ones.
    pub fn classify_conversation(&self, conversation: &Conversation<'_>) -> Classification {
        self.classifier.classify_conversation(conversation)
    }

    /// The routing decision for a conversation the router is choosing the
    /// model of: its classification, held on the large tier when sticky
    /// conversations are on and an earlier turn went large; a large decision
    /// is remembered for the next turn.
    /// Conversations are `owner`'s (a tenant's): stickiness never crosses owners.
    pub fn route_conversation(
        &self,
        owner: &str,
        conversation: &Conversation<'_>,
    ) -> Classification {
        let classification = self.classifier.classify_conversation(conversation);
        let Some(sticky) = &self.sticky else {
            return classification;
        };
        let keys = sticky.keys(owner, conversation);
        let classification = if classification.tier != Tier::Large
            && keys.earlier.is_some_and(|k| sticky.holds(k))
        {
            metrics::counter!(crate::router::sticky::STICKY_HOLDS_TOTAL).increment(1);
            self.classifier.held_large(classification)
        } else {
            classification
        };
        if classification.tier == Tier::Large {
            sticky.remember(keys.whole);
        }
        classification
    }

    /// The model for `requested`: a configured name, or `auto` (or empty) with
    /// the classification that decides.
    pub fn resolve(
        &self,
        requested: &str,
        classification: Option<&Classification>,
    ) -> Result<Arc<ModelHandle>, SelectError> {
        self.resolve_for(requested, classification, &[])
    }

    /// As [`ModelSelector::resolve`], for a request that asks `needs`: `auto`
    /// takes the classified tier's model when it can serve them, else the
    /// nearest tier's that can; a pinned model that cannot is refused, naming
    /// the field.
    pub fn resolve_for(
        &self,
        requested: &str,
        classification: Option<&Classification>,
        needs: &[Need],
    ) -> Result<Arc<ModelHandle>, SelectError> {
        if requested.is_empty() || requested == AUTO {
            let tier = classification.map_or(Tier::Small, |c| c.tier);
            let wanted = self
                .registry
                .for_tier(tier)
                .ok_or(SelectError::NoModelForTier(tier))?;
            let Some(need) = wanted.capabilities().unmet(needs) else {
                return Ok(wanted);
            };
            return self
                .registry
                .by_tier_preference(tier)
                .into_iter()
                .find(|m| m.is_available() && m.capabilities().unmet(needs).is_none())
                .ok_or_else(|| SelectError::Unsupported {
                    param: need.param.clone(),
                    why: format!(
                        "no model `auto` can choose takes {} (the {} tier's model {:?} does not); \
                         docs/openai-compatibility.md says which engine honours what",
                        need.kind.as_str(),
                        tier.as_str(),
                        wanted.name()
                    ),
                });
        }
        let model = self.registry.get(requested)?;
        if let Some(need) = model.capabilities().unmet(needs) {
            return Err(SelectError::Unsupported {
                param: need.param.clone(),
                why: format!(
                    "the model {:?} ({} engine) does not take {}; \
                     docs/openai-compatibility.md says which engine honours what",
                    model.name(),
                    model.settings().engine.as_str(),
                    need.kind.as_str()
                ),
            });
        }
        Ok(model)
    }
}
