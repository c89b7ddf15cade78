//! Model tiers.

use serde::{Deserialize, Serialize};

/// Which class of model serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Short answers, extraction, classification, short rewrites (Gemma 3 270M).
    Small,
    /// Multi-step maths, code, reasoning, long structured writing (Qwen3-30B-A3B).
    Large,
}

impl Tier {
    /// Lower-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Small => "small",
            Tier::Large => "large",
        }
    }
}
