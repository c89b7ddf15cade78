//! The daily token budget and the usage ledger of inference requests: the
//! budget check before a request ([`admit`]) and the one ledger row after it
//! ([`Ledger`]).

use crate::callers::Caller;
use crate::error::ApiError;
use crate::ops::inference::{Routing, model_name_problem};
use crate::state::AppState;
use crate::storage::now_ms;
use crate::storage::usage::{UsageRecorder, UsageRow, day_start};
use http::StatusCode;
use orchestrator::Tier;
use orchestrator::generation::Usage;
use orchestrator::registry::ModelHandle;
use orchestrator::selector::AUTO;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Refuses a request when the caller's tenant has spent its tokens for the
/// UTC day (429, `Retry-After` until midnight UTC).
pub async fn admit(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let Some(budget) = caller.limits.tokens_per_day else {
        return Ok(());
    };
    let now = now_ms();
    let used = state
        .usage
        .tokens_today(&state.storage, &caller.tenant.id, now)
        .await?;
    if u64::try_from(used).unwrap_or(0) >= budget {
        let until_midnight = day_start(now) + 86_400_000 - now;
        return Err(ApiError::too_many_requests(
            format!(
                "tenant {:?} has used its {budget} tokens for today (UTC)",
                caller.tenant.name
            ),
            Duration::from_millis(u64::try_from(until_midnight).unwrap_or(1_000)),
        ));
    }
    Ok(())
}
/// One usage-ledger row per inference request: finished with the outcome,
/// or, if dropped unfinished (the client left mid-stream), with status 499.
pub struct Ledger {
    usage: UsageRecorder,
    tenant_id: String,
    route: &'static str,
    started: Instant,
    model: String,
    tier: Option<&'static str>,
    done: bool,
    /// Counted while streaming, so a client that leaves is still charged.
    partial: Usage,
    /// The hosted·ai meter, when the request went to a hosted_ai model.
    hosted: Option<Arc<orchestrator::hosted_ai::PoolManager>>,
    on_hosted: bool,
}

impl Ledger {
    /// Starts timing a request to `route` that asked for `model`.
    pub fn start(state: &AppState, caller: &Caller, route: &'static str, model: &str) -> Self {
        Self {
            usage: state.usage.clone(),
            tenant_id: caller.tenant.id.clone(),
            route,
            started: Instant::now(),
            // Requests are validated before they get here; a name that still
            // breaks the rules is not stored as given.
            model: if model.is_empty() {
                AUTO.to_owned()
            } else if model_name_problem(model).is_some() {
                "invalid".to_owned()
            } else {
                model.to_owned()
            },
            tier: None,
            done: false,
            partial: Usage::default(),
            hosted: state.hosted_ai.clone(),
            on_hosted: false,
        }
    }

    /// Notes the model the request was routed to.
    pub fn routed(&mut self, routing: &Routing) {
        self.served_by(&routing.model, routing.tier());
    }

    /// Notes the model (and tier) that serves the request.
    pub fn served_by(&mut self, model: &ModelHandle, tier: Option<Tier>) {
        self.model = model.name().to_owned();
        self.tier = tier.map(Tier::as_str);
        self.on_hosted = model.settings().engine == orchestrator::EngineKind::HostedAi;
    }

    /// Notes the prompt's size by the model's tokenizer, when known.
    pub fn prompt_tokens(&mut self, tokens: Option<usize>) {
        self.partial.prompt_tokens = tokens.map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX));
    }

    /// Counts one streamed delta (about one token) towards the partial usage.
    pub fn streamed_delta(&mut self) {
        self.partial.completion_tokens = self.partial.completion_tokens.saturating_add(1);
    }

    /// Writes the row for a finished request and passes its outcome on.
    pub fn settle<T>(self, outcome: Result<(T, Usage), ApiError>) -> Result<T, ApiError> {
        match outcome {
            Ok((body, usage)) => {
                self.finish(StatusCode::OK, Some(&usage));
                Ok(body)
            }
            Err(e) => {
                self.finish(e.status(), None);
                Err(e)
            }
        }
    }

    /// Writes the row.
    pub fn finish(mut self, status: StatusCode, usage: Option<&Usage>) {
        self.write(status.as_u16(), usage);
    }

    fn write(&mut self, status: u16, usage: Option<&Usage>) {
        self.done = true;
        if let (Some(manager), Some(u), true) = (&self.hosted, usage, self.on_hosted) {
            manager.meter().record(
                &self.tenant_id,
                &self.model,
                u.prompt_tokens,
                u.completion_tokens,
            );
        }
        self.usage.record(UsageRow {
            tenant_id: self.tenant_id.clone(),
            route: self.route.to_owned(),
            model: self.model.clone(),
            tier: self.tier.map(str::to_owned),
            prompt_tokens: usage.map_or(0, |u| i64::from(u.prompt_tokens)),
            completion_tokens: usage.map_or(0, |u| i64::from(u.completion_tokens)),
            latency_ms: self.started.elapsed().as_secs_f64() * 1_000.0,
            status: i64::from(status),
            created_at: now_ms(),
        });
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if !self.done {
            // 499: the client closed the request before it finished; it is
            // charged for what was streamed to it.
            let partial = self.partial;
            self.write(499, Some(&partial));
        }
    }
}
