//! Settings of the fusion engine (the `harpoon` configuration section).

use serde::{Deserialize, Serialize};

/// A fusion setting whose value is outside what the engine accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {reason}")]
pub struct InvalidSetting {
    /// Dotted path of the key, e.g. `harpoon.hygiene_threshold`.
    pub key: &'static str,
    /// Why the value is refused.
    pub reason: String,
}

/// Which refiner works on fragments below the threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum RefinerKind {
    /// Safe mechanical fixes only (whitespace, indentation, debug-output lines); free.
    #[default]
    Mechanical,
    /// Mechanical fixes first, then the small-tier model rewrites what they could not lift (costs tokens).
    Model,
}

/// Tuning of envelope cycles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FusionSettings {
    /// Hygiene score in [0, 1] a fragment needs to be absorbed into an envelope.
    pub hygiene_threshold: f32,
    /// Refinement rounds before a fragment is left pending; cycles never run unbounded.
    pub max_iterations: u32,
    /// Worker threads for scoring; `None` uses every core.
    pub thread_count: Option<usize>,
    /// Largest SimHash distance (in bits, of 64) at which two fragments are reported as near-duplicates.
    pub near_duplicate_distance: u32,
    /// Hygiene reports kept in memory by anchor, so re-scoring unchanged code is free; 0 disables the cache.
    pub cache_entries: usize,
    /// Most fragments one envelope cycle accepts.
    pub max_fragments: usize,
    /// Largest fragment body in bytes.
    pub max_fragment_bytes: usize,
    /// Refiner of requests that name none.
    pub refiner: RefinerKind,
    /// Longest wait for one answer of the model refiner, in seconds.
    pub refiner_timeout_secs: u64,
}

impl Default for FusionSettings {
    fn default() -> Self {
        Self {
            hygiene_threshold: 0.8,
            max_iterations: 10,
            thread_count: None,
            near_duplicate_distance: 6,
            cache_entries: 4096,
            max_fragments: 256,
            max_fragment_bytes: 262_144,
            refiner: RefinerKind::Mechanical,
            refiner_timeout_secs: 120,
        }
    }
}

impl FusionSettings {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if !(0.0..=1.0).contains(&self.hygiene_threshold) {
            return Err(InvalidSetting {
                key: "harpoon.hygiene_threshold",
                reason: format!("{} is out of range 0.0..=1.0", self.hygiene_threshold),
            });
        }
        if !(1..=1_000).contains(&self.max_iterations) {
            return Err(InvalidSetting {
                key: "harpoon.max_iterations",
                reason: format!("{} is out of range 1..=1000", self.max_iterations),
            });
        }
        if self.thread_count == Some(0) {
            return Err(InvalidSetting {
                key: "harpoon.thread_count",
                reason: "0 threads cannot score anything; leave it unset for all cores".into(),
            });
        }
        if self.near_duplicate_distance > 64 {
            return Err(InvalidSetting {
                key: "harpoon.near_duplicate_distance",
                reason: format!("{} is out of range 0..=64", self.near_duplicate_distance),
            });
        }
        if self.max_fragments == 0 {
            return Err(InvalidSetting {
                key: "harpoon.max_fragments",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_fragment_bytes == 0 {
            return Err(InvalidSetting {
                key: "harpoon.max_fragment_bytes",
                reason: "must be at least 1".into(),
            });
        }
        if self.refiner_timeout_secs == 0 {
            return Err(InvalidSetting {
                key: "harpoon.refiner_timeout_secs",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_are_checked() {
        assert_eq!(FusionSettings::default().validate(), Ok(()));
        let bad = FusionSettings {
            max_iterations: 0,
            ..FusionSettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "harpoon.max_iterations");
        let bad = FusionSettings {
            hygiene_threshold: 1.5,
            ..FusionSettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "harpoon.hygiene_threshold");
    }
}
