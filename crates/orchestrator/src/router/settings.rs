//! Settings of the router (the `router` section), with their invariants.

use crate::InvalidSetting;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How prompts are routed between tiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterStrategy {
    /// The trained linear classifier.
    #[default]
    Linear,
}

/// The `router` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterSettings {
    /// Classification strategy.
    pub strategy: RouterStrategy,
    /// Artefact written by `train-router` to use instead of the embedded one.
    pub model_path: Option<PathBuf>,
    /// Complexity at or above which prompts go to the large tier; unset uses
    /// the trained value (maximum accuracy on held-back data).
    pub threshold: Option<f32>,
    /// Once a conversation went to the large tier, keep its later turns there
    /// (keyed by a hash of its earlier turns; no text is stored).
    pub sticky_conversations: bool,
}

impl RouterSettings {
    /// Checks the threshold's range.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if let Some(t) = self.threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(InvalidSetting::new(
                "router.threshold",
                format!("{t} is out of range 0.0..=1.0"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_threshold_names_its_key() {
        RouterSettings::default().validate().unwrap();
        let bad = RouterSettings {
            threshold: Some(1.5),
            ..RouterSettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "router.threshold");
    }
}
