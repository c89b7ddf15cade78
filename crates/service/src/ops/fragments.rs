//! Fusion: hygiene scores, duplicates and a verifiable envelope for a set of
//! code fragments (REST's `POST /v2/fragments` and `fragment_context` of
//! `POST /v2/process`, MCP's `process_fragments` and `fusion.hygiene`). The
//! work runs on the blocking pool (the engine has its own rayon threads);
//! before it, the limits are checked and, for the model refiner
//! (`crate::fusion_refiner`), the small tier and the caller's token budget;
//! what the model spent is metered.

use crate::{
    callers::Caller,
    error::{ApiError, ErrorCode},
    fusion_refiner::ModelRefiner,
    ops::Validate,
    ops::metering::Metered,
    state::AppState,
};
use harpoon_core::{Envelope, Fragment, Hygiene, RefinerKind, engine::MAX_ITERATIONS_CAP};
use http::StatusCode;
use orchestrator::Tier;
use serde::Deserialize;
use std::{sync::Arc, time::Duration};
use utoipa::ToSchema;

/// One fragment of a fusion request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FragmentInput {
    /// Path of the file; its extension picks the language (`.rs`, `.py`, `.ts`, …), else the content does.
    #[serde(default)]
    pub path: String,
    /// Position in the file or request; defaults to the fragment's index in the list.
    #[schema(minimum = 0)]
    pub idx: Option<u32>,
    /// Line range in the file, e.g. `10-42`; reported back unchanged.
    #[serde(default)]
    pub lines: String,
    /// The code.
    #[schema(min_length = 1, pattern = "\\S")]
    pub body: String,
}

/// Body of `POST /v2/fragments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FragmentsRequest {
    /// The fragments, at least one (at most `harpoon.max_fragments`).
    #[schema(min_items = 1)]
    pub fragments: Vec<FragmentInput>,
    /// Score a fragment needs to be absorbed, 0–1; defaults to `harpoon.hygiene_threshold`.
    #[schema(minimum = 0, maximum = 1)]
    pub hygiene_threshold: Option<f64>,
    /// Refinement rounds, 0–1000; defaults to `harpoon.max_iterations`.
    #[schema(minimum = 0, maximum = 1000)]
    pub max_iterations: Option<u32>,
    /// `mechanical` (safe fixes, free) or `model` (then the small tier rewrites each fragment at most once; its tokens count as usage); defaults to `harpoon.refiner`.
    pub refiner: Option<RefinerKind>,
}

/// How a request wants its fragments cycled; unset fields take the
/// `harpoon` configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct CycleOptions {
    /// Score a fragment needs to be absorbed.
    pub hygiene_threshold: Option<f64>,
    /// Refinement rounds.
    pub max_iterations: Option<u32>,
    /// Which refiner.
    pub refiner: Option<RefinerKind>,
}

/// Checks a threshold and a round limit from a request.
pub fn validate_cycle(threshold: Option<f64>, max_iterations: Option<u32>) -> Result<(), ApiError> {
    if let Some(t) = threshold
        && !(0.0..=1.0).contains(&t)
    {
        return Err(ApiError::validation(format!(
            "hygiene_threshold: {t} is out of range 0..=1"
        )));
    }
    if let Some(m) = max_iterations
        && m > MAX_ITERATIONS_CAP
    {
        return Err(ApiError::validation(format!(
            "max_iterations: {m} is out of range 0..={MAX_ITERATIONS_CAP}"
        )));
    }
    Ok(())
}

impl Validate for FragmentsRequest {
    fn validate(&self) -> Result<(), ApiError> {
        if self.fragments.is_empty() {
            return Err(ApiError::validation(
                "fragments: at least one fragment is required",
            ));
        }
        for (i, f) in self.fragments.iter().enumerate() {
            if f.body.trim().is_empty() {
                return Err(ApiError::validation(format!(
                    "fragments[{i}].body: must not be empty or whitespace"
                )));
            }
        }
        validate_cycle(self.hygiene_threshold, self.max_iterations)
    }
}

/// The engine's fragments; a fragment without `idx` gets its place in the list.
pub fn fragments_of(inputs: Vec<FragmentInput>) -> Vec<Fragment> {
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, f)| Fragment {
            path: f.path,
            idx: f.idx.unwrap_or(u32::try_from(i).unwrap_or(u32::MAX)),
            lines: f.lines,
            body: f.body,
        })
        .collect()
}

/// The configured limits: 413 when a request holds too many fragments or too
/// large a body.
fn check_limits(state: &AppState, fragments: &[Fragment]) -> Result<(), ApiError> {
    let limits = state.fusion.settings();
    if fragments.len() > limits.max_fragments {
        return Err(ApiError::new(
            ErrorCode::TooManyFragments,
            format!(
                "{} fragments; at most {} (harpoon.max_fragments) per request",
                fragments.len(),
                limits.max_fragments
            ),
        ));
    }
    if let Some((i, f)) = fragments
        .iter()
        .enumerate()
        .find(|(_, f)| f.body.len() > limits.max_fragment_bytes)
    {
        return Err(ApiError::new(
            ErrorCode::FragmentTooLarge,
            format!(
                "fragments[{i}].body has {} bytes; at most {} (harpoon.max_fragment_bytes)",
                f.body.len(),
                limits.max_fragment_bytes
            ),
        ));
    }
    Ok(())
}

fn fusion_failed(e: tokio::task::JoinError) -> ApiError {
    tracing::error!(error = %e, "fusion task failed");
    ApiError::new(
        ErrorCode::FusionFailed,
        "the fusion engine failed on this request",
    )
}

/// Runs an envelope cycle off the async threads, after checking the configured
/// limits. With the model refiner, the caller's token budget is checked first
/// and the tokens the model spent are written to its usage ledger under
/// `route`, even when the client leaves before the cycle ends.
pub async fn run_cycle(
    state: &AppState,
    caller: &Caller,
    route: &str,
    fragments: Vec<Fragment>,
    options: CycleOptions,
) -> Result<Envelope, ApiError> {
    check_limits(state, &fragments)?;
    let engine = state.fusion.clone();
    let CycleOptions {
        hygiene_threshold,
        max_iterations,
        refiner,
    } = options;
    if refiner.unwrap_or(engine.settings().refiner) == RefinerKind::Mechanical {
        return tokio::task::spawn_blocking(move || {
            engine.envelope_cycle(fragments, hygiene_threshold, max_iterations)
        })
        .await
        .map(counted)
        .map_err(fusion_failed);
    }
    let model = state
        .selector
        .registry
        .for_tier(Tier::Small)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::RefinerUnavailable,
                "refiner \"model\" needs a small-tier model and none is configured",
            )
        })?;
    if !model.is_available() {
        return Err(ApiError::new(
            ErrorCode::RefinerUnavailable,
            format!(
                "refiner \"model\" needs the small-tier model {}, whose engine cannot serve here",
                model.name()
            ),
        ));
    }
    let mut ledger = Metered::begin(state, caller, route, model.name());
    ledger.served_by(&model, Some(Tier::Small));
    // The refiner's calls are bounded by the cycle's rounds, not known here:
    // the budget is checked, nothing reserved.
    if let Err(refused) = ledger.reserve(0).await {
        ledger.finish(refused.status(), None);
        return Err(refused);
    }
    let settings = engine.settings();
    let refiner = Arc::new(ModelRefiner::new(
        model,
        tokio::runtime::Handle::current(),
        Duration::from_secs(settings.refiner_timeout_secs),
        settings.max_fragment_bytes,
    ));
    let cancel = refiner.cancel_on_drop();
    let envelope = tokio::task::spawn_blocking(move || {
        let envelope = engine.envelope_cycle_with(
            fragments,
            hygiene_threshold,
            max_iterations,
            refiner.as_ref(),
        );
        // 499 as for any request whose client left before its answer.
        let status = if refiner.cancelled() {
            StatusCode::from_u16(499).unwrap_or(StatusCode::OK)
        } else {
            StatusCode::OK
        };
        ledger.finish(status, Some(&refiner.usage()));
        envelope
    })
    .await
    .map_err(fusion_failed)?;
    cancel.disarm();
    Ok(counted(envelope))
}

/// Counts a cycle's absorbed and pending fragments in the fusion metrics.
fn counted(envelope: Envelope) -> Envelope {
    use crate::telemetry::{FUSION_ABSORBED, FUSION_PENDING};
    metrics::counter!(FUSION_ABSORBED).increment(envelope.absorbed.len() as u64);
    metrics::counter!(FUSION_PENDING).increment(envelope.pending.len() as u64);
    envelope
}

/// The envelope of a validated request: `POST /v2/fragments` and MCP's
/// `process_fragments`.
pub async fn fuse_request(
    state: &AppState,
    caller: &Caller,
    route: &str,
    request: FragmentsRequest,
) -> Result<Envelope, ApiError> {
    run_cycle(
        state,
        caller,
        route,
        fragments_of(request.fragments),
        CycleOptions {
            hygiene_threshold: request.hygiene_threshold,
            max_iterations: request.max_iterations,
            refiner: request.refiner,
        },
    )
    .await
}

/// The hygiene of one fragment under the same limits as a cycle, off the
/// async threads (MCP's `fusion.hygiene` prompt).
pub async fn score_fragment(state: &AppState, fragment: Fragment) -> Result<Hygiene, ApiError> {
    check_limits(state, std::slice::from_ref(&fragment))?;
    let engine = state.fusion.clone();
    tokio::task::spawn_blocking(move || engine.score(&fragment))
        .await
        .map_err(fusion_failed)
}
