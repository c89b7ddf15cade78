//! The bridge's hooks into the service: the hygiene gate generated files pass
//! on a strike's generate path (the fusion engine's score), the usage ledger
//! its tokens go to, and the bridge built from the configuration.

use crate::settings::Settings;
use crate::storage::usage::{UsageRecorder, UsageRow};
use crate::storage::{Storage, now_ms};
use harpoon_bridge::{Bridge, BridgeError, HygieneGate, UsageSink};
use harpoon_core::{Fragment, HarpoonEngine};
use orchestrator::{Tier, selector::ModelSelector};
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

/// Ledger route of the tokens a strike's generate path spends.
pub const STRIKE_GENERATE_ROUTE: &str = "strike/generate";

/// Writes the generate path's spend to the usage ledger: one row per
/// repository of a strike, so strikes count against the tenant's daily tokens.
pub struct LedgerSink(pub UsageRecorder);

impl UsageSink for LedgerSink {
    fn record(
        &self,
        tenant: &str,
        model: &str,
        usage: orchestrator::generation::Usage,
        elapsed: std::time::Duration,
        ok: bool,
    ) {
        let (ttft_ms, tokens_per_second) = crate::storage::usage::timings(&usage);
        self.0.record(UsageRow {
            tenant_id: tenant.to_owned(),
            route: STRIKE_GENERATE_ROUTE.to_owned(),
            model: model.to_owned(),
            tier: Some(Tier::Large.as_str().to_owned()),
            prompt_tokens: i64::from(usage.prompt_tokens),
            completion_tokens: i64::from(usage.completion_tokens),
            latency_ms: elapsed.as_secs_f64() * 1_000.0,
            // 422: the model answered but its change was refused (or it failed).
            status: if ok { 200 } else { 422 },
            created_at: now_ms(),
            ttft_ms,
            tokens_per_second,
        });
    }
}

/// The bridge over the service's pool, with the large tier for the generate
/// path, `harpoon.hygiene_threshold` as the bar generated files must clear,
/// and the usage ledger for the tokens it spends.
pub fn build(
    settings: &Settings,
    storage: &Storage,
    selector: &ModelSelector,
    fusion: Arc<HarpoonEngine>,
    usage: UsageRecorder,
) -> Result<Bridge, BridgeError> {
    Ok(Bridge::new(
        storage.pool().clone(),
        &settings.bridge,
        &settings.storage.data_dir,
        Arc::new(FusionGate(fusion)),
    )?
    .with_generation(
        selector.registry.for_tier(Tier::Large),
        f64::from(settings.harpoon.hygiene_threshold),
    )
    .with_usage_sink(Arc::new(LedgerSink(usage))))
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
