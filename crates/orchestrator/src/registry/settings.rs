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
    /// Engines that serve this model, each with a role; empty means one
    /// primary deployment on the model's own `engine` settings.
    pub deployments: Vec<DeploymentSettings>,
    /// When new requests leave the primary for an overflow deployment.
    pub overflow: OverflowSettings,
    /// Circuit breaking of each deployment.
    pub health: HealthSettings,
}

/// What a deployment is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes requests first; several primaries share the load.
    #[default]
    Primary,
    /// Takes new requests while the primaries are loaded past `overflow`'s triggers.
    Overflow,
    /// Takes a request only when the deployment chosen for it failed before answering.
    Fallback,
}

impl Role {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Overflow => "overflow",
            Role::Fallback => "fallback",
        }
    }
}

/// One engine serving a model (`models.NAME.deployments[i]`); unset fields
/// take the model's own value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentSettings {
    /// Name, unique within the model; defaults to the engine's name (with
    /// `-2`, `-3`… when several share it).
    pub name: Option<String>,
    /// What the deployment is for.
    pub role: Role,
    /// Engine that runs it.
    pub engine: Option<EngineKind>,
    /// Hugging Face repository id or local directory (`mlx`).
    pub repo: Option<String>,
    /// API root including `/v1` (`openai`).
    pub base_url: Option<String>,
    /// Bearer token (`openai`).
    pub api_key: Option<Secret>,
    /// `model` sent upstream (`openai`).
    pub served_model: Option<String>,
    /// Largest prompt plus completion this deployment takes.
    pub context_limit: Option<u32>,
    /// Seconds to open a connection (`openai`).
    pub connect_timeout_secs: Option<u64>,
    /// Seconds to wait between bytes of an answer (`openai`, `hosted_ai`).
    pub read_timeout_secs: Option<u64>,
    /// What this deployment can take; unset entries are detected.
    pub capabilities: Option<crate::capability::CapabilitySettings>,
}

/// When requests go to a model's overflow deployments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverflowSettings {
    /// New requests overflow while a primary has more than this many waiting
    /// (its engine's queue, or its outstanding requests where the engine has no queue).
    pub queue_depth: u32,
    /// A `hosted_ai` overflow subscribes once a primary has this many
    /// waiting, so that capacity is ready when the overflow starts.
    pub prewarm_queue_depth: u32,
    /// New requests overflow while a primary's mean time to first token over
    /// `window_secs` exceeds this; unset: time to first token is not a trigger.
    pub ttft_ms: Option<u64>,
    /// The window of `ttft_ms`, in seconds.
    pub window_secs: u64,
}

impl Default for OverflowSettings {
    fn default() -> Self {
        Self {
            queue_depth: 4,
            prewarm_queue_depth: 2,
            ttft_ms: None,
            window_secs: 30,
        }
    }
}

/// Circuit breaking of each of a model's deployments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// Consecutive failures that open a deployment's breaker (eject it).
    pub failure_threshold: u32,
    /// Seconds an open breaker keeps its deployment out; then one request
    /// tries it (half-open) and its outcome closes or reopens the breaker.
    pub cooldown_secs: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            cooldown_secs: 30,
        }
    }
}

/// A deployment as configured, with the model's settings it inherits filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedDeployment {
    /// Name, unique within the model.
    pub name: String,
    /// What it is for.
    pub role: Role,
    /// The model's settings with the deployment's own in place.
    pub settings: ModelSettings,
}

impl ResolvedDeployment {
    /// The one primary of a model configured with a single engine, named after it.
    pub fn only(model: &ModelSettings) -> Self {
        Self {
            name: model.engine.as_str().to_owned(),
            role: Role::Primary,
            settings: model.clone(),
        }
    }
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
            deployments: Vec::new(),
            overflow: OverflowSettings::default(),
            health: HealthSettings::default(),
        }
    }
}

impl ModelSettings {
    /// Whether the weights stay loaded (explicit, or by default for the small tier).
    pub fn is_resident(&self) -> bool {
        self.resident.unwrap_or(self.tier == Some(Tier::Small))
    }

    /// The deployments that serve the model: the configured ones with what
    /// they leave unset taken from the model, or one primary on the model's
    /// own engine.
    pub fn resolved_deployments(&self) -> Vec<ResolvedDeployment> {
        if self.deployments.is_empty() {
            return vec![ResolvedDeployment::only(self)];
        }
        let mut taken: Vec<String> = Vec::new();
        self.deployments
            .iter()
            .map(|d| {
                let engine = d.engine.unwrap_or(self.engine);
                let name = d.name.clone().unwrap_or_else(|| {
                    let base = engine.as_str();
                    (1..)
                        .map(|i| {
                            if i == 1 {
                                base.to_owned()
                            } else {
                                format!("{base}-{i}")
                            }
                        })
                        .find(|n| !taken.contains(n))
                        .unwrap_or_else(|| base.to_owned())
                });
                taken.push(name.clone());
                let mut settings = ModelSettings {
                    engine,
                    deployments: Vec::new(),
                    ..self.clone()
                };
                let inherit = |own: &Option<String>, model: &Option<String>| {
                    own.clone().or_else(|| model.clone())
                };
                settings.repo = d.repo.clone().unwrap_or_else(|| self.repo.clone());
                settings.base_url = inherit(&d.base_url, &self.base_url);
                settings.served_model = inherit(&d.served_model, &self.served_model);
                settings.api_key = d.api_key.clone().or_else(|| self.api_key.clone());
                settings.context_limit = d.context_limit.unwrap_or(self.context_limit);
                settings.max_new_tokens = self.max_new_tokens.min(settings.context_limit);
                settings.connect_timeout_secs =
                    d.connect_timeout_secs.unwrap_or(self.connect_timeout_secs);
                settings.read_timeout_secs = d.read_timeout_secs.unwrap_or(self.read_timeout_secs);
                settings.capabilities = d.capabilities.unwrap_or(self.capabilities);
                ResolvedDeployment {
                    name,
                    role: d.role,
                    settings,
                }
            })
            .collect()
    }

    /// Checks ranges; `prefix` is the key path of this model (`models.gemma`).
    pub fn validate(&self, prefix: &str) -> Result<(), InvalidSetting> {
        let key = |field: &str| format!("{prefix}.{field}");
        if self.deployments.is_empty() {
            self.validate_engine(prefix)?;
        } else {
            self.validate_deployments(prefix)?;
        }
        let o = &self.overflow;
        if o.prewarm_queue_depth == 0 {
            return Err(InvalidSetting::new(
                key("overflow.prewarm_queue_depth"),
                "0 would hold a subscription at every request; the least is 1",
            ));
        }
        if o.prewarm_queue_depth > o.queue_depth {
            return Err(InvalidSetting::new(
                key("overflow.prewarm_queue_depth"),
                format!(
                    "{} is above overflow.queue_depth ({}): capacity is pre-warmed before the \
                     overflow starts, not after",
                    o.prewarm_queue_depth, o.queue_depth
                ),
            ));
        }
        if !(1..=3_600).contains(&o.window_secs) {
            return Err(InvalidSetting::new(
                key("overflow.window_secs"),
                format!("{} is out of range 1..=3600", o.window_secs),
            ));
        }
        if o.ttft_ms == Some(0) {
            return Err(InvalidSetting::new(
                key("overflow.ttft_ms"),
                "0 would overflow every request; leave it unset to not use time to first token",
            ));
        }
        if !(1..=1_000).contains(&self.health.failure_threshold) {
            return Err(InvalidSetting::new(
                key("health.failure_threshold"),
                format!("{} is out of range 1..=1000", self.health.failure_threshold),
            ));
        }
        if !(1..=86_400).contains(&self.health.cooldown_secs) {
            return Err(InvalidSetting::new(
                key("health.cooldown_secs"),
                format!("{} is out of range 1..=86400", self.health.cooldown_secs),
            ));
        }
        Ok(())
    }

    fn validate_deployments(&self, prefix: &str) -> Result<(), InvalidSetting> {
        let resolved = self.resolved_deployments();
        if !resolved.iter().any(|d| d.role == Role::Primary) {
            return Err(InvalidSetting::new(
                format!("{prefix}.deployments"),
                "at least one deployment needs role primary",
            ));
        }
        for (i, d) in resolved.iter().enumerate() {
            let at = format!("{prefix}.deployments.{i}");
            if d.name.is_empty()
                || !d
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(InvalidSetting::new(
                    format!("{at}.name"),
                    format!("{:?} is not a name of letters, digits, -, _ and .", d.name),
                ));
            }
            if resolved[..i].iter().any(|o| o.name == d.name) {
                return Err(InvalidSetting::new(
                    format!("{at}.name"),
                    format!("{:?} names two deployments of this model", d.name),
                ));
            }
            d.settings.validate_engine(&at)?;
        }
        Ok(())
    }

    /// Checks the settings of the engine itself; `prefix` is the key path of
    /// the model or of one of its deployments.
    fn validate_engine(&self, prefix: &str) -> Result<(), InvalidSetting> {
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

    #[test]
    fn deployments_inherit_the_model_and_are_checked_by_their_own_keys() {
        let deployment = |name: Option<&str>, role, engine| DeploymentSettings {
            name: name.map(str::to_owned),
            role,
            engine: Some(engine),
            ..DeploymentSettings::default()
        };
        let mut m = ModelSettings {
            repo: "x".into(),
            base_url: Some("http://127.0.0.1:9/v1".into()),
            deployments: vec![
                deployment(None, Role::Primary, EngineKind::Mlx),
                deployment(None, Role::Overflow, EngineKind::Openai),
                DeploymentSettings {
                    context_limit: Some(100),
                    ..deployment(None, Role::Fallback, EngineKind::Openai)
                },
            ],
            ..ModelSettings::default()
        };
        m.validate("models.x").unwrap();
        let resolved = m.resolved_deployments();
        let names: Vec<&str> = resolved.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["mlx", "openai", "openai-2"]);
        assert_eq!(resolved[1].settings.base_url, m.base_url, "inherited");
        assert_eq!(resolved[2].settings.context_limit, 100);
        assert_eq!(
            resolved[2].settings.max_new_tokens, 100,
            "cut to its context"
        );

        m.deployments[0].role = Role::Fallback;
        assert_eq!(
            m.validate("models.x").unwrap_err().key,
            "models.x.deployments"
        );
        m.deployments[0] = deployment(Some("twin"), Role::Primary, EngineKind::Mlx);
        m.deployments[1].name = Some("twin".into());
        assert_eq!(
            m.validate("models.x").unwrap_err().key,
            "models.x.deployments.1.name"
        );
        m.deployments[1].name = None;
        m.deployments[1].base_url = Some("ftp://nope".into());
        m.base_url = None;
        assert_eq!(
            m.validate("models.x").unwrap_err().key,
            "models.x.deployments.1.base_url"
        );
        m.deployments.clear();
        m.overflow.prewarm_queue_depth = m.overflow.queue_depth + 1;
        assert_eq!(
            m.validate("models.x").unwrap_err().key,
            "models.x.overflow.prewarm_queue_depth"
        );
    }
}
