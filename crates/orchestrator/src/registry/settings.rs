//! Settings of the configured models (the `models` section), with their
//! invariants, and [`InvalidSetting`], the refusal every settings section uses.
//!
//! The service loads these from its configuration sources; this crate owns what
//! a valid value is, so every user of a setting can rely on it.

use crate::{Secret, Tier};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A setting whose value is outside what the crate accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {reason}")]
pub struct InvalidSetting {
    /// Dotted path of the key, e.g. `models.gemma.temperature`.
    pub key: String,
    /// Why the value is refused.
    pub reason: String,
}

impl InvalidSetting {
    /// A refusal of `key` for `reason`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// How a model is run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// In this process through MLX (needs the `pymlx` build).
    #[default]
    Mlx,
    /// On an OpenAI-compatible server at `base_url`.
    Openai,
    /// On a hosted·ai GPU pool.
    HostedAi,
}

impl EngineKind {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Mlx => "mlx",
            EngineKind::Openai => "openai",
            EngineKind::HostedAi => "hosted_ai",
        }
    }
}

/// One configured model, keyed by name (`gemma`, `qwen`, …) in [`ModelsSettings`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSettings {
    /// Hugging Face repository id or local directory holding the weights.
    pub repo: String,
    /// Largest prompt plus completion, in the model's own tokens.
    pub context_limit: u32,
    /// Sampling temperature used when a request gives none.
    pub temperature: f32,
    /// Nucleus-sampling mass used when a request gives none.
    pub top_p: f32,
    /// Upper bound on generated tokens; requests asking for more are clamped.
    pub max_new_tokens: u32,
    /// Whether the model may emit a reasoning trace (Qwen3's thinking switch).
    pub enable_thinking: bool,
    /// Tier this model serves by default; at most one model per tier.
    pub tier: Option<Tier>,
    /// Engine that runs it.
    pub engine: EngineKind,
    /// `openai` engine: API root including `/v1`.
    pub base_url: Option<String>,
    /// `openai` engine: bearer token.
    pub api_key: Option<Secret>,
    /// `openai` engine: `model` sent upstream; unset omits it.
    pub served_model: Option<String>,
    /// Keep the weights loaded; unset means true for the small tier, false otherwise.
    pub resident: Option<bool>,
    /// A non-resident model is unloaded after this many idle seconds.
    pub idle_unload_secs: u64,
    /// `openai` engine: seconds to open a connection.
    pub connect_timeout_secs: u64,
    /// `openai` engine: seconds to wait between bytes of an answer.
    pub read_timeout_secs: u64,
    /// What the model can take beyond plain chat; unset entries are detected
    /// from its chat template and engine (see [`crate::capability`]).
    pub capabilities: crate::capability::CapabilitySettings,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            repo: String::new(),
            context_limit: 32_768,
            temperature: 0.7,
            top_p: 0.95,
            max_new_tokens: 1_024,
            enable_thinking: false,
            tier: None,
            engine: EngineKind::Mlx,
            base_url: None,
            api_key: None,
            served_model: None,
            resident: None,
            idle_unload_secs: 600,
            connect_timeout_secs: 5,
            read_timeout_secs: 120,
            capabilities: crate::capability::CapabilitySettings::default(),
        }
    }
}

impl ModelSettings {
    /// Whether the weights stay loaded (explicit, or by default for the small tier).
    pub fn is_resident(&self) -> bool {
        self.resident.unwrap_or(self.tier == Some(Tier::Small))
    }

    /// Checks ranges; `prefix` is the key path of this model (`models.gemma`).
    pub fn validate(&self, prefix: &str) -> Result<(), InvalidSetting> {
        let key = |field: &str| format!("{prefix}.{field}");
        if self.repo.trim().is_empty() {
            return Err(InvalidSetting::new(
                key("repo"),
                "must name a Hugging Face repository or a local directory",
            ));
        }
        if !(1..=10_000_000).contains(&self.context_limit) {
            return Err(InvalidSetting::new(
                key("context_limit"),
                format!("{} is out of range 1..=10000000", self.context_limit),
            ));
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(InvalidSetting::new(
                key("temperature"),
                format!("{} is out of range 0.0..=2.0", self.temperature),
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(InvalidSetting::new(
                key("top_p"),
                format!("{} is out of range (0.0, 1.0]", self.top_p),
            ));
        }
        if self.engine == EngineKind::Openai {
            let raw = self.base_url.as_deref().ok_or_else(|| {
                InvalidSetting::new(key("base_url"), "required when engine is openai")
            })?;
            check_http_url(&key("base_url"), raw)?;
        }
        for (field, value, range) in [
            ("idle_unload_secs", self.idle_unload_secs, 1..=604_800),
            ("connect_timeout_secs", self.connect_timeout_secs, 1..=600),
            ("read_timeout_secs", self.read_timeout_secs, 1..=86_400),
        ] {
            if !range.contains(&value) {
                return Err(InvalidSetting::new(
                    key(field),
                    format!(
                        "{value} is out of range {}..={}",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        if self.max_new_tokens == 0 || self.max_new_tokens > self.context_limit {
            return Err(InvalidSetting::new(
                key("max_new_tokens"),
                format!(
                    "{} is out of range 1..={} (the context_limit)",
                    self.max_new_tokens, self.context_limit
                ),
            ));
        }
        Ok(())
    }
}

/// Refuses `raw` for `key` unless it is an http or https URL.
pub(crate) fn check_http_url(key: &str, raw: &str) -> Result<(), InvalidSetting> {
    let url = url::Url::parse(raw)
        .map_err(|e| InvalidSetting::new(key, format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InvalidSetting::new(
            key,
            format!("scheme {:?} is not http or https", url.scheme()),
        ));
    }
    Ok(())
}

/// All configured models by name. The defaults are the two tiers Harpoon ships
/// for: Gemma 3 270M (small) and Qwen3-30B-A3B (large).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelsSettings(pub BTreeMap<String, ModelSettings>);

impl Default for ModelsSettings {
    fn default() -> Self {
        let gemma = ModelSettings {
            repo: "mlx-community/gemma-3-270m-it-bf16".into(),
            context_limit: 32_768,
            temperature: 0.7,
            top_p: 0.95,
            max_new_tokens: 512,
            enable_thinking: false,
            tier: Some(Tier::Small),
            ..ModelSettings::default()
        };
        let qwen = ModelSettings {
            repo: "mlx-community/Qwen3-30B-A3B-4bit".into(),
            context_limit: 40_960,
            temperature: 0.6,
            top_p: 0.95,
            max_new_tokens: 4_096,
            enable_thinking: true,
            tier: Some(Tier::Large),
            ..ModelSettings::default()
        };
        Self(BTreeMap::from([
            ("gemma".into(), gemma),
            ("qwen".into(), qwen),
        ]))
    }
}

impl ModelsSettings {
    /// Checks every model and that at least one is configured.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.0.is_empty() {
            return Err(InvalidSetting::new(
                "models",
                "at least one model is required",
            ));
        }
        for (name, model) in &self.0 {
            model.validate(&format!("models.{name}"))?;
        }
        for tier in [Tier::Small, Tier::Large] {
            let serving: Vec<&str> = self
                .0
                .iter()
                .filter(|(_, m)| m.tier == Some(tier))
                .map(|(n, _)| n.as_str())
                .collect();
            if serving.len() > 1 {
                return Err(InvalidSetting::new(
                    format!("models.{}.tier", serving[1]),
                    format!(
                        "the {} tier already has model {:?}; each tier has one model",
                        tier.as_str(),
                        serving[0]
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Name of the model that serves `tier`, if one is configured.
    pub fn model_for_tier(&self, tier: Tier) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, m)| m.tier == Some(tier))
            .map(|(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        ModelsSettings::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let mut models = ModelsSettings::default();
        if let Some(m) = models.0.get_mut("qwen") {
            m.temperature = 3.5;
        }
        let err = models.validate().unwrap_err();
        assert_eq!(err.key, "models.qwen.temperature");

        let mut m = ModelSettings {
            repo: "x".into(),
            ..ModelSettings::default()
        };
        m.max_new_tokens = m.context_limit + 1;
        assert_eq!(
            m.validate("models.x").unwrap_err().key,
            "models.x.max_new_tokens"
        );

        assert!(ModelsSettings(BTreeMap::new()).validate().is_err());

        let mut two_small = ModelsSettings::default();
        if let Some(q) = two_small.0.get_mut("qwen") {
            q.tier = Some(Tier::Small);
        }
        assert_eq!(two_small.validate().unwrap_err().key, "models.qwen.tier");
        assert_eq!(
            ModelsSettings::default().model_for_tier(Tier::Large),
            Some("qwen")
        );
    }
}
