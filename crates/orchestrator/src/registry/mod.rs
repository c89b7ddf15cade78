//! The configured models: each with its deployments (the engines that serve
//! it, or the reason each has none), its own tokenizer for context checks,
//! its defaults, and its metering.

pub mod breaker;
pub mod deployment;
pub mod dispatch;
pub mod engine_time;
pub mod settings;

use deployment::{Deployment, DeploymentStatus};
use dispatch::{Decision, Demand, Deployments};

use crate::capability::{Capabilities, TemplateFacts};
use crate::engine::openai::{OpenAiConfig, OpenAiEngine};
use crate::engine::{ChunkStream, Engine, EngineError, LoadState};
use crate::generation::{Chunk, Generation, GenerationRequest, Message, Usage};
use crate::{EngineKind, ModelSettings, ModelsSettings, Tier};
use futures_util::StreamExt;
use serde::Serialize;
use settings::ResolvedDeployment;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenizers::Tokenizer;

/// Histogram of whole-request time per model, in seconds.
pub const REQUEST_SECONDS: &str = "harpoon_model_request_seconds";
/// Histogram of time to first token per model, in seconds.
pub const TTFT_SECONDS: &str = "harpoon_model_time_to_first_token_seconds";
/// Counter of generated tokens per model.
pub const GENERATED_TOKENS: &str = "harpoon_model_generated_tokens_total";
/// Histogram of generation speed per model, in tokens per second.
pub const TOKENS_PER_SECOND: &str = "harpoon_model_tokens_per_second";
/// Histogram of the time between streamed chunks per model, in seconds.
pub const INTER_TOKEN_SECONDS: &str = "harpoon_model_inter_token_latency_seconds";

/// Chat-template tokens added around each message (role markers and
/// separators); the tokenizer alone cannot see them, so they are estimated.
const TEMPLATE_TOKENS_PER_MESSAGE: usize = 4;

/// What a caller may set for one generation; unset values take the model's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    /// The conversation.
    pub messages: Vec<Message>,
    /// Most tokens to generate (clamped to the model's `max_new_tokens`).
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Nucleus-sampling mass.
    pub top_p: Option<f32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// Every other request field, as the caller sent it (see
    /// [`GenerationRequest::extra`]).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A model's state, for `/health` and `/v1/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    /// Configured name.
    pub name: String,
    /// Tier it serves, if any.
    pub tier: Option<Tier>,
    /// Configured engine.
    pub engine: &'static str,
    /// Whether requests can be served.
    pub available: bool,
    /// Load state, when an engine exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_state: Option<LoadState>,
    /// Why it is unavailable, or what serves it.
    pub detail: String,
    /// What it can take beyond plain chat.
    pub capabilities: Capabilities,
}

/// Every model's deployments and recent routing decisions, for `GET /v2/deployments`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelDeployments {
    /// The model.
    pub model: String,
    /// Its deployments, in configuration order.
    pub deployments: Vec<DeploymentStatus>,
    /// Where its latest requests went and why, newest last.
    pub decisions: Vec<Decision>,
}

/// Engines every caller allows.
fn any_engine(_: EngineKind) -> bool {
    true
}

/// One configured model.
pub struct ModelHandle {
    name: String,
    settings: ModelSettings,
    deployments: Deployments,
    tokenizer: Option<Tokenizer>,
    capabilities: Capabilities,
}

impl std::fmt::Debug for ModelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelHandle")
            .field("name", &self.name)
            .field("deployments", &self.deployments)
            .finish()
    }
}

impl ModelHandle {
    /// A handle over one engine (or the reason there is none): one primary deployment.
    pub fn new(
        name: &str,
        settings: ModelSettings,
        engine: Result<Arc<dyn Engine>, String>,
    ) -> Self {
        let only = Deployment::new(name, ResolvedDeployment::only(&settings), engine, None);
        Self::with_deployments(name, settings, vec![Arc::new(only)])
    }

    /// A handle over its deployments, the first primary's capabilities being the model's.
    pub fn with_deployments(
        name: &str,
        settings: ModelSettings,
        deployments: Vec<Arc<Deployment>>,
    ) -> Self {
        let files = model_dir(&settings.repo);
        let tokenizer = files
            .as_ref()
            .map(|dir| dir.join("tokenizer.json"))
            .filter(|p| p.is_file())
            .and_then(|p| Tokenizer::from_file(p).ok());
        let capabilities = deployments
            .iter()
            .find(|d| d.role() == settings::Role::Primary)
            .map(|d| *d.capabilities())
            .unwrap_or_else(|| {
                Capabilities::detect(
                    &settings.capabilities,
                    &TemplateFacts::read(files.as_deref()),
                    settings.engine != EngineKind::Mlx,
                )
            });
        let deployments = Deployments::new(deployments, settings.overflow.clone());
        Self {
            name: name.to_owned(),
            settings,
            deployments,
            tokenizer,
            capabilities,
        }
    }

    /// Its deployments' states and the latest decisions among them.
    pub fn deployments(&self) -> ModelDeployments {
        let window = self.deployments.window();
        ModelDeployments {
            model: self.name.clone(),
            deployments: self.deployments.iter().map(|d| d.status(window)).collect(),
            decisions: self.deployments.decisions(),
        }
    }

    /// Its deployments.
    pub fn deployment_list(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        self.deployments.iter()
    }

    /// The window over which its deployments' recent time to first token is taken.
    pub fn overflow_window(&self) -> Duration {
        self.deployments.window()
    }

    /// What the model can take beyond plain chat.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Configured settings.
    pub fn settings(&self) -> &ModelSettings {
        &self.settings
    }

    /// Whether some deployment has an engine to serve requests.
    pub fn is_available(&self) -> bool {
        self.deployments.iter().any(|d| d.engine().is_ok())
    }

    /// The engine kinds of its deployments that have an engine.
    pub fn engines(&self) -> impl Iterator<Item = EngineKind> + '_ {
        self.deployments
            .iter()
            .filter(|d| d.engine().is_ok())
            .map(|d| d.settings().engine)
    }

    /// State for reports: the first primary's engine, and every deployment's word.
    pub fn status(&self) -> ModelStatus {
        let window = self.deployments.window();
        let statuses: Vec<DeploymentStatus> =
            self.deployments.iter().map(|d| d.status(window)).collect();
        let primary = statuses
            .iter()
            .find(|d| d.role == settings::Role::Primary.as_str());
        let detail = match statuses.as_slice() {
            [only] => only.detail.clone(),
            all => all
                .iter()
                .map(|d| format!("{} ({}): {}", d.name, d.role, d.detail))
                .collect::<Vec<_>>()
                .join("; "),
        };
        ModelStatus {
            name: self.name.clone(),
            tier: self.settings.tier,
            engine: primary.map_or(self.settings.engine.as_str(), |p| p.engine),
            available: statuses.iter().any(|d| d.available),
            load_state: primary.and_then(|p| p.load_state),
            detail,
            capabilities: self.capabilities,
        }
    }

    /// Prompt tokens by the model's own tokenizer, when its `tokenizer.json` is at hand.
    pub fn count_prompt_tokens(&self, messages: &[Message]) -> Option<usize> {
        let tokenizer = self.tokenizer.as_ref()?;
        let mut total = 0;
        for m in messages {
            total += tokenizer.encode(m.content.as_str(), false).ok()?.len();
            total += TEMPLATE_TOKENS_PER_MESSAGE;
        }
        Some(total)
    }

    /// Applies the model's defaults, clamps `max_tokens` to `max_new_tokens`,
    /// and refuses a prompt that does not fit the context, as OpenAI does.
    pub fn prepare(&self, params: Params) -> Result<GenerationRequest, EngineError> {
        let s = &self.settings;
        let limit = s.context_limit as usize;
        let mut params = params;
        // A template Harpoon renders, or one known to be strict, gets the
        // conversation in the shape it takes; an upstream otherwise gets it as sent.
        if !self.capabilities.pass_through || self.capabilities.strict_turns {
            params.messages = crate::capability::normalise(
                std::mem::take(&mut params.messages),
                self.capabilities.strict_turns,
            );
        }
        let mut max_tokens = params
            .max_tokens
            .unwrap_or(s.max_new_tokens)
            .min(s.max_new_tokens);
        let prompt_tokens = self.count_prompt_tokens(&params.messages);
        if let Some(prompt) = prompt_tokens {
            let asked = prompt + max_tokens as usize;
            if params.max_tokens.is_some() && asked > limit || prompt >= limit {
                return Err(EngineError::ContextLength(format!(
                    "This model's maximum context length is {limit} tokens. However, you \
                     requested {asked} tokens ({prompt} in the messages, {max_tokens} in the \
                     completion). Please reduce the length of the messages or completion."
                )));
            }
            // Without an explicit max_tokens, generate into what the context leaves.
            max_tokens = max_tokens.min((limit - prompt) as u32);
        }
        Ok(GenerationRequest {
            messages: params.messages,
            max_tokens,
            temperature: params.temperature.unwrap_or(s.temperature),
            top_p: params.top_p.unwrap_or(s.top_p),
            stop: params.stop,
            seed: params.seed,
            enable_thinking: s.enable_thinking,
            prompt_tokens: prompt_tokens.map(|t| u32::try_from(t).unwrap_or(u32::MAX)),
            extra: params.extra,
        })
    }

    /// Generates a whole reply, recording the model metrics.
    pub async fn generate(&self, request: GenerationRequest) -> Result<Generation, EngineError> {
        self.generate_on(request, &any_engine).await
    }

    /// Generates a whole reply on a deployment whose engine `allow` accepts.
    pub async fn generate_on(
        &self,
        request: GenerationRequest,
        allow: &(dyn Fn(EngineKind) -> bool + Sync),
    ) -> Result<Generation, EngineError> {
        let started = Instant::now();
        let demand = Demand::of(&request, self.settings.context_limit, allow);
        let generation = self.deployments.generate(request, &demand).await;
        engine_time::add(started.elapsed());
        let generation = generation?;
        record(&self.name, started.elapsed(), &generation.usage);
        Ok(generation)
    }

    /// Passes an OpenAI request of `endpoint` to a deployment that serves it
    /// as it is (only upstream engines do).
    pub async fn forward(
        &self,
        endpoint: crate::engine::Endpoint,
        body: serde_json::Value,
    ) -> Result<crate::engine::Forwarded, EngineError> {
        let started = Instant::now();
        let demand = Demand {
            prompt_tokens: None,
            model_context: self.settings.context_limit,
            needs: Vec::new(),
            forward: Some(endpoint),
            allow: &any_engine,
        };
        let forwarded = self.deployments.forward(endpoint, body, &demand).await;
        engine_time::add(started.elapsed());
        forwarded
    }

    /// Streams a reply, recording the model metrics when it ends.
    pub async fn stream(&self, request: GenerationRequest) -> Result<ChunkStream, EngineError> {
        let started = Instant::now();
        let name = self.name.clone();
        let demand = Demand::of(&request, self.settings.context_limit, &any_engine);
        let stream = self.deployments.stream(request, &demand).await;
        // Held by the stream below, so it ends when the stream is dropped:
        // after its last chunk went out.
        let span =
            tracing::info_span!(target: crate::SPANS, "stream", gen_ai.request.model = %name);
        // Until the stream is open, and then until its first item (a caller
        // that awaits it before answering counts it too; later chunks flow
        // to the client on their own, outside any request's measure).
        engine_time::add(started.elapsed());
        let opened = Instant::now();
        let mut last_chunk: Option<Instant> = None;
        let mut first = true;
        let inter_token = metrics::histogram!(INTER_TOKEN_SECONDS, "model" => name.clone());
        Ok(stream?
            .inspect(move |_| {
                let _held = &span;
                if std::mem::take(&mut first) {
                    engine_time::add(opened.elapsed());
                }
            })
            .inspect(move |chunk| match chunk {
                Ok(Chunk::Done { usage, .. }) => record(&name, started.elapsed(), usage),
                Ok(Chunk::Delta(_) | Chunk::Upstream { .. }) => {
                    let now = Instant::now();
                    if let Some(previous) = last_chunk.replace(now) {
                        inter_token.record(now.duration_since(previous).as_secs_f64());
                    }
                }
                Err(_) => {}
            })
            .boxed())
    }
}

fn record(model: &str, elapsed: Duration, usage: &Usage) {
    let model = model.to_owned();
    metrics::histogram!(REQUEST_SECONDS, "model" => model.clone()).record(elapsed.as_secs_f64());
    metrics::histogram!(TTFT_SECONDS, "model" => model.clone())
        .record(usage.time_to_first_token.as_secs_f64());
    metrics::counter!(GENERATED_TOKENS, "model" => model.clone())
        .increment(u64::from(usage.completion_tokens));
    metrics::histogram!(TOKENS_PER_SECOND, "model" => model).record(usage.tokens_per_second);
}

/// A local model directory, or the snapshot of a Hugging Face id already in
/// the local cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, or
/// `~/.cache/huggingface/hub`) that holds `tokenizer.json`. Nothing is ever
/// downloaded.
pub(crate) fn model_dir(repo: &str) -> Option<PathBuf> {
    if repo.is_empty() {
        return None;
    }
    let local = Path::new(repo);
    if local.join("tokenizer.json").is_file() {
        return Some(local.to_owned());
    }
    let snapshots = hub_cache()?
        .join(format!("models--{}", repo.replace('/', "--")))
        .join("snapshots");
    std::fs::read_dir(snapshots)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("tokenizer.json").is_file())
}

/// The local Hugging Face cache, as the hub libraries find it:
/// `$HF_HUB_CACHE`, `$HF_HOME/hub`, or `~/.cache/huggingface/hub`.
pub fn hub_cache() -> Option<PathBuf> {
    std::env::var_os("HF_HUB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HF_HOME").map(|h| PathBuf::from(h).join("hub")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
        })
}

/// Why a name does not resolve to a model.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the model {0:?} does not exist; GET /v1/models lists the models")]
pub struct ModelNotFound(pub String);

/// All configured models.
#[derive(Debug, Default)]
pub struct Registry {
    models: BTreeMap<String, Arc<ModelHandle>>,
}

impl Registry {
    /// Builds every configured model's engine; a model whose engine cannot be
    /// built is kept, unavailable, with the reason.
    pub fn new(settings: &ModelsSettings) -> Self {
        Self::with_hosted_ai(settings, None)
    }

    /// As [`Registry::new`], with the pool manager that serves `hosted_ai` models.
    pub fn with_hosted_ai(
        settings: &ModelsSettings,
        hosted: Option<&Arc<crate::hosted_ai::PoolManager>>,
    ) -> Self {
        let models = settings
            .0
            .iter()
            .map(|(name, s)| {
                // Listed deployments fall back among themselves; the single
                // engine of a model without a list keeps hosted·ai's native fallback.
                let native_fallback = s.deployments.is_empty();
                let resolved = s.resolved_deployments();
                let health = (resolved.len() > 1).then_some(&s.health);
                let deployments = resolved
                    .into_iter()
                    .map(|d| {
                        let engine = build_engine(name, &d.settings, hosted, native_fallback);
                        Arc::new(Deployment::new(name, d, engine, health))
                    })
                    .collect();
                let handle = ModelHandle::with_deployments(name, s.clone(), deployments);
                (name.clone(), Arc::new(handle))
            })
            .collect();
        Self { models }
    }

    /// Every model's deployments and latest decisions.
    pub fn deployments(&self) -> Vec<ModelDeployments> {
        self.models.values().map(|m| m.deployments()).collect()
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<ModelHandle>, ModelNotFound> {
        self.models
            .get(name)
            .cloned()
            .ok_or_else(|| ModelNotFound(name.to_owned()))
    }

    /// The model that serves `tier`.
    pub fn for_tier(&self, tier: Tier) -> Option<Arc<ModelHandle>> {
        self.models
            .values()
            .find(|m| m.settings.tier == Some(tier))
            .cloned()
    }

    /// The models that serve a tier, `tier`'s own first, then the others
    /// from the nearest tier up (a harder task never goes to a smaller tier
    /// when a larger one can take it) and then down.
    pub fn by_tier_preference(&self, tier: Tier) -> Vec<Arc<ModelHandle>> {
        let mut tiered: Vec<&Arc<ModelHandle>> = self
            .models
            .values()
            .filter(|m| m.settings.tier.is_some())
            .collect();
        let rank = |t: Option<Tier>| {
            let (t, wanted) = (t.map_or(0, |t| t as i32), tier as i32);
            // 0 for the tier itself, then upward, then downward.
            if t >= wanted {
                2 * (t - wanted)
            } else {
                2 * (wanted - t) + 1
            }
        };
        tiered.sort_by_key(|m| rank(m.settings.tier));
        tiered.into_iter().cloned().collect()
    }

    /// Every model, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ModelHandle>> {
        self.models.values()
    }
}

fn build_engine(
    name: &str,
    s: &ModelSettings,
    hosted: Option<&Arc<crate::hosted_ai::PoolManager>>,
    native_fallback: bool,
) -> Result<Arc<dyn Engine>, String> {
    match s.engine {
        EngineKind::Openai => openai_engine(name, s),
        EngineKind::Mlx => mlx_engine(name, s),
        EngineKind::HostedAi => {
            let manager = hosted.ok_or_else(|| {
                "hosted·ai is not configured (set hosted_ai.base_url, api_key and team_id)"
                    .to_owned()
            })?;
            // The native fallback: the model's own OpenAI-compatible server when
            // it names one, else its weights through MLX.
            let fallback = (native_fallback
                && manager.settings().fallback == crate::Fallback::Native)
                .then(|| {
                    if s.base_url.is_some() {
                        openai_engine(name, s)
                    } else {
                        mlx_engine(name, s)
                    }
                })
                .transpose()?;
            manager.set_read_timeout(name, Duration::from_secs(s.read_timeout_secs));
            Ok(Arc::new(crate::hosted_ai::HostedAiEngine::new(
                manager.clone(),
                name,
                s.tier,
                fallback,
            )))
        }
    }
}

fn openai_engine(name: &str, s: &ModelSettings) -> Result<Arc<dyn Engine>, String> {
    let base_url = s
        .base_url
        .clone()
        .ok_or_else(|| format!("models.{name}.base_url is not set"))?;
    let engine = OpenAiEngine::new(OpenAiConfig {
        base_url,
        api_key: s.api_key.clone(),
        served_model: s.served_model.clone(),
        connect_timeout: Duration::from_secs(s.connect_timeout_secs),
        read_timeout: Duration::from_secs(s.read_timeout_secs),
        max_attempts: 3,
    })
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(engine))
}

#[cfg(not(feature = "pymlx"))]
fn mlx_engine(_name: &str, _s: &ModelSettings) -> Result<Arc<dyn Engine>, String> {
    Err(
        "the mlx engine is not compiled into this binary (build with `--features pymlx`), \
         and no other engine is configured for this model"
            .into(),
    )
}

#[cfg(feature = "pymlx")]
fn mlx_engine(name: &str, s: &ModelSettings) -> Result<Arc<dyn Engine>, String> {
    crate::engine::mlx::MlxEngine::new(name, s)
        .map(|e| Arc::new(e) as Arc<dyn Engine>)
        .map_err(|e| e.to_string())
}
