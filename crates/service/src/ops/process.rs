//! The seed's combined call — classify, choose where to run, generate — with
//! the deployment made explicit (REST's `POST /v2/process`).

use crate::{
    callers::Caller,
    error::{ApiError, ErrorCode},
    ops::{
        Validate,
        fragments::{CycleOptions, run_cycle, validate_cycle},
        inference::Routing,
        metering::Metered,
        non_blank,
        run::RunUsage,
    },
    state::AppState,
};
use orchestrator::EngineKind;
use orchestrator::generation::{Message, Role};
use orchestrator::registry::Params;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where inference should run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Deployment {
    /// On this deployment's own engines (MLX, or an OpenAI-compatible server it is configured with).
    #[default]
    #[serde(alias = "Native")]
    Native,
    /// On a hosted·ai GPU pool.
    #[serde(alias = "HostedAI", alias = "hostedai", alias = "HostedAi")]
    HostedAi,
}

impl Deployment {
    fn as_str(self) -> &'static str {
        match self {
            Deployment::Native => "native",
            Deployment::HostedAi => "hosted_ai",
        }
    }

    fn allows(self, engine: EngineKind) -> bool {
        match self {
            Deployment::Native => matches!(engine, EngineKind::Mlx | EngineKind::Openai),
            Deployment::HostedAi => engine == EngineKind::HostedAi,
        }
    }
}

/// The engines that can serve `model` now, in words.
fn engines_of(model: &orchestrator::registry::ModelHandle) -> String {
    let engines: Vec<&str> = model.engines().map(EngineKind::as_str).collect();
    match engines.as_slice() {
        [] => "no engine that can serve".to_owned(),
        [one] => format!("the {one} engine"),
        many => format!("the engines {}", many.join(", ")),
    }
}

/// A code fragment given as context; without a `body`, the request's text is its body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextFragment {
    /// Path of the file; its extension picks the language.
    #[serde(default)]
    pub path: String,
    /// Position in the file or request; defaults to the index in the list.
    #[schema(minimum = 0)]
    pub idx: Option<u32>,
    /// Line range in the file, e.g. `10-42`.
    #[serde(default)]
    pub lines: String,
    /// The code; the request's `text` when absent.
    pub body: Option<String>,
}

/// Body of `POST /v2/process`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessRequest {
    /// The prompt; must contain more than whitespace.
    #[schema(min_length = 1, pattern = "\\S")]
    pub text: String,
    /// `native` (default) or `hosted_ai`; the seed's `Native`, `HostedAI` and `hostedai` are accepted.
    #[serde(default)]
    pub deployment: Deployment,
    /// Code fragments for fusion; the answer carries their envelope in `fusion`.
    pub fragment_context: Option<Vec<ContextFragment>>,
    /// Hygiene threshold for the fusion of `fragment_context`, 0–1.
    #[schema(minimum = 0, maximum = 1)]
    pub hygiene_threshold: Option<f64>,
    /// Refinement rounds for the fusion of `fragment_context`, 0–1000.
    #[schema(minimum = 0, maximum = 1000)]
    pub max_iterations: Option<u32>,
    /// Refiner for the fusion of `fragment_context`: `mechanical` or `model` (as on `/v2/fragments`).
    pub refiner: Option<harpoon_core::RefinerKind>,
    /// Covenant this request belongs to; echoed.
    pub covenant_id: Option<String>,
}

impl Validate for ProcessRequest {
    fn validate(&self) -> Result<(), ApiError> {
        non_blank("text", &self.text)?;
        validate_cycle(self.hygiene_threshold, self.max_iterations)
    }
}

/// The router's decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessClassification {
    /// `simple` or `complex`.
    pub category: &'static str,
    /// Calibrated probability of needing the large tier.
    pub complexity: f32,
    /// `small` or `large`.
    pub tier: &'static str,
    /// Model that serves the tier.
    pub model: String,
}

/// The generation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessInference {
    /// Generated text.
    pub output: String,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
    /// Token counts and timings.
    pub usage: RunUsage,
}

/// Body of a `/v2/process` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessResponse {
    /// How the prompt was classified.
    pub classification: ProcessClassification,
    /// What the model generated.
    pub inference: ProcessInference,
    /// Where it ran.
    pub deployment_used: Deployment,
    /// The fusion envelope of `fragment_context` (as `POST /v2/fragments` returns it); absent without one.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusion: Option<harpoon_core::Envelope>,
    /// The request's covenant id.
    pub covenant_id: Option<String>,
}

/// Classifies once, runs on the requested deployment and reports both, with
/// its usage row (and that of a model-refined `fragment_context`) under `route`.
pub async fn process_prompt(
    state: &AppState,
    caller: &Caller,
    request: ProcessRequest,
    route: &str,
) -> Result<ProcessResponse, ApiError> {
    let mut ledger = Metered::begin(state, caller, route, "");
    let outcome = answer(state, caller, request, route, &mut ledger).await;
    ledger.settle(outcome)
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    request: ProcessRequest,
    route: &str,
    ledger: &mut Metered,
) -> Result<(ProcessResponse, orchestrator::generation::Usage), ApiError> {
    // Before the fragment cycle: a spent budget is refused first.
    ledger.reserve(0).await?;
    let fusion = match request.fragment_context {
        Some(context) => {
            let fragments = context
                .into_iter()
                .enumerate()
                .map(|(i, f)| harpoon_core::Fragment {
                    path: f.path,
                    idx: f.idx.unwrap_or(u32::try_from(i).unwrap_or(u32::MAX)),
                    lines: f.lines,
                    body: f.body.unwrap_or_else(|| request.text.clone()),
                })
                .collect();
            Some(
                run_cycle(
                    state,
                    caller,
                    route,
                    fragments,
                    CycleOptions {
                        hygiene_threshold: request.hygiene_threshold,
                        max_iterations: request.max_iterations,
                        refiner: request.refiner,
                    },
                )
                .await?,
            )
        }
        None => None,
    };
    let routing = Routing::decide(&state.selector, "", &request.text, false)?;
    ledger.routed(&routing);
    let deployment = request.deployment;
    if !routing.model.engines().any(|e| deployment.allows(e)) {
        return Err(ApiError::new(
            ErrorCode::EngineUnavailable,
            format!(
                "deployment {} cannot serve this prompt: the {} tier's model {:?} runs on {}",
                deployment.as_str(),
                routing.tier().map_or("routed", orchestrator::Tier::as_str),
                routing.model.name(),
                engines_of(&routing.model)
            ),
        ));
    }
    let generation = ledger
        .prepare(
            &routing.model,
            Params {
                messages: vec![Message::new(Role::User, request.text.as_str())],
                ..Params::default()
            },
        )
        .await?;
    let done = routing
        .model
        .generate_on(generation, &move |e| deployment.allows(e))
        .await?;
    ledger.finished_because(done.finish_reason);
    ledger.completed_text(&done.text);
    let c = routing
        .classification
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorCode::RouterUnavailable, "no classification was made"))?;
    let usage = done.usage;
    Ok((
        ProcessResponse {
            classification: ProcessClassification {
                category: c.category.as_str(),
                complexity: c.complexity,
                tier: c.tier.as_str(),
                model: routing.model.name().to_owned(),
            },
            inference: ProcessInference {
                output: done.text,
                finish_reason: done.finish_reason.as_str(),
                usage: RunUsage::from(&done.usage),
            },
            deployment_used: request.deployment,
            fusion,
            covenant_id: request.covenant_id,
        },
        usage,
    ))
}
