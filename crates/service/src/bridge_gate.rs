//! The hygiene gate generated files pass on a strike's generate path, and the
//! bridge built from the configuration.

use crate::settings::Settings;
use crate::storage::Storage;
use harpoon_bridge::{Bridge, BridgeError, HygieneGate};
use orchestrator::{Tier, gateway::Gateway};
use std::sync::Arc;

/// Accepts a file whose text is plausible: not blank and free of NUL and
/// other control characters a source file never holds (the body is UTF-8
/// already). Scores 1.0 or 0.0.
// merged with harpoon-core scoring by the lead
#[derive(Debug, Clone, Copy, Default)]
pub struct PlausibleText;

impl HygieneGate for PlausibleText {
    fn score(&self, _path: &str, body: &str) -> f64 {
        let control = body
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'));
        if body.trim().is_empty() || control {
            0.0
        } else {
            1.0
        }
    }
}

/// The bridge over the service's pool, with the large tier for the generate
/// path and `harpoon.hygiene_threshold` as the bar generated files must clear.
pub fn build(
    settings: &Settings,
    storage: &Storage,
    gateway: &Gateway,
) -> Result<Bridge, BridgeError> {
    Ok(Bridge::new(
        storage.pool().clone(),
        &settings.bridge,
        &settings.storage.data_dir,
        Arc::new(PlausibleText),
    )?
    .with_generation(
        gateway.registry.for_tier(Tier::Large),
        f64::from(settings.harpoon.hygiene_threshold),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_or_binary_text_fails_the_gate() {
        assert_eq!(PlausibleText.score("a.rs", "fn main() {}\n"), 1.0);
        assert_eq!(PlausibleText.score("a.rs", " \n\t"), 0.0);
        assert_eq!(PlausibleText.score("a.bin", "ab\0cd"), 0.0);
    }
}
