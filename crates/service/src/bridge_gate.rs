//! The hygiene gate generated files pass on a strike's generate path (the
//! fusion engine's score), and the bridge built from the configuration.

use crate::settings::Settings;
use crate::storage::Storage;
use harpoon_bridge::{Bridge, BridgeError, HygieneGate};
use harpoon_core::{Fragment, HarpoonEngine};
use orchestrator::{Tier, gateway::Gateway};
use std::sync::Arc;

/// Scores a generated file as `/v2/fragments` would (same engine, same cache).
#[derive(Clone)]
pub struct FusionGate(pub Arc<HarpoonEngine>);

impl HygieneGate for FusionGate {
    fn score(&self, path: &str, body: &str) -> f64 {
        let fragment = Fragment {
            path: path.to_owned(),
            idx: 0,
            lines: String::new(),
            body: body.to_owned(),
        };
        self.0.score(&fragment).score
    }
}

/// The bridge over the service's pool, with the large tier for the generate
/// path and `harpoon.hygiene_threshold` as the bar generated files must clear.
pub fn build(
    settings: &Settings,
    storage: &Storage,
    gateway: &Gateway,
    fusion: Arc<HarpoonEngine>,
) -> Result<Bridge, BridgeError> {
    Ok(Bridge::new(
        storage.pool().clone(),
        &settings.bridge,
        &settings.storage.data_dir,
        Arc::new(FusionGate(fusion)),
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
    fn the_gate_is_the_fusion_score() {
        let gate = FusionGate(Arc::new(HarpoonEngine::new(&Default::default())));
        let clean = gate.score(
            "a.rs",
            "/// Adds.\nfn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n",
        );
        let broken = gate.score(
            "a.rs",
            "fn f( {\n    let key = \"AKIAIOSFODNN7EXAMPLE\";\n    dbg!(key);\n  // TODO\n",
        );
        assert!(clean > 0.9, "{clean}");
        assert!(broken < clean - 0.3, "{broken} vs {clean}");
    }
}
