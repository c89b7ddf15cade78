//! One admitted, metered unit of work per inference request: [`Metered`]
//! owns the request's usage-ledger row from its start, and is the only way
//! its model is prepared, so no route can run a model without the daily
//! token budget being reserved first ([`Metered::prepare`]) and settled at
//! the end.
//!
//! The reservation is the prompt's tokens plus the most the model may
//! generate for it; a request is admitted while any of the day's budget is
//! neither spent nor reserved, so N concurrent requests overshoot the budget
//! by at most one reservation, where a check of the spent total alone let
//! each of them through (`max_concurrent × max_tokens` over).

use crate::callers::Caller;
use crate::error::ApiError;
use crate::ops::inference::{Routing, model_name_problem};
use crate::state::AppState;
use crate::storage::now_ms;
use crate::storage::usage::{Reservation, UsageRow, day_start};
use http::StatusCode;
use orchestrator::Tier;
use orchestrator::generation::{GenerationRequest, Message, Usage};
use orchestrator::registry::{ModelHandle, Params};
use orchestrator::selector::AUTO;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prompts up to this many bytes are tokenized on the serving thread; longer
/// ones on the blocking pool. `cargo bench -p orchestrator --bench prepare`
/// (docs/performance.md): about 0.7 ms per KiB with the Qwen3 tokenizer, so
/// 4 KiB is a few milliseconds, where the hop to the pool costs tens of µs.
const PREPARE_INLINE_MAX: usize = 4 * 1024;

/// A request's usage row and budget reservation: finished with the outcome,
/// or, if dropped unfinished (the client left mid-stream), with status 499.
pub struct Metered {
    state: AppState,
    tenant: TenantBudget,
    route: String,
    started: Instant,
    model: String,
    tier: Option<&'static str>,
    done: bool,
    /// Counted while streaming, so a client that leaves is still charged.
    partial: Usage,
    on_hosted: bool,
    /// Released after the row is recorded, never before.
    reservation: Option<Reservation>,
    /// The model counted in flight for this request, if one was chosen.
    in_flight: Option<metrics::Gauge>,
    /// Why generation ended, when it did (a label of the request counter).
    finish_reason: Option<&'static str>,
    /// The request's trace span, for its GenAI attributes (disabled when
    /// traces are off).
    span: tracing::Span,
    /// The streamed completion, gathered only with `telemetry.capture_content`.
    streamed_text: Option<String>,
}

impl Metered {
    /// Begins metering a request to `route` (the matched route, or the MCP
    /// tool's label) that asked for `model`.
    pub fn begin(state: &AppState, caller: &Caller, route: &str, model: &str) -> Self {
        let span = crate::otel::request_span();
        if let Some(operation) = gen_ai_operation(route) {
            crate::otel::set(&span, "gen_ai.operation.name", operation);
        }
        let metered = Self {
            state: state.clone(),
            tenant: TenantBudget::of(caller),
            route: route.to_owned(),
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
            on_hosted: false,
            reservation: None,
            in_flight: None,
            finish_reason: None,
            streamed_text: None,
            span,
        };
        if crate::otel::enabled() {
            crate::otel::set(&metered.span, "gen_ai.request.model", metered.model.clone());
        }
        metered
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
        if crate::otel::enabled() {
            crate::otel::set(&self.span, "gen_ai.response.model", self.model.clone());
            if let Some(tier) = self.tier {
                crate::otel::set(&self.span, "harpoon.tier", tier);
            }
        }
        let gauge =
            metrics::gauge!(crate::telemetry::REQUESTS_IN_FLIGHT, "model" => self.model.clone());
        gauge.increment(1.0);
        if let Some(previous) = self.in_flight.replace(gauge) {
            previous.decrement(1.0);
        }
    }

    /// Notes why generation ended (`stop`, `length`, …), for the request counter.
    pub fn finished_because(&mut self, reason: orchestrator::generation::FinishReason) {
        self.finish_reason = Some(reason.as_str());
        if crate::otel::enabled() {
            crate::otel::set(
                &self.span,
                "gen_ai.response.finish_reasons",
                opentelemetry::Value::Array(
                    vec![opentelemetry::StringValue::from(reason.as_str())].into(),
                ),
            );
        }
    }

    /// Puts the completion's text on the trace (only with
    /// `telemetry.capture_content`, redacted).
    pub fn completed_text(&self, text: &str) {
        if crate::otel::capturing_content() {
            let messages = serde_json::json!([{"role": "assistant",
                "parts": [{"type": "text", "content": text}],
                "finish_reason": self.finish_reason}]);
            crate::otel::set_content(&self.span, "gen_ai.output.messages", &messages.to_string());
        }
    }

    /// Prepares the generation (the prompt tokenized once) and admits it:
    /// reserves its prompt and largest completion from the tenant's daily
    /// budget, or refuses with 429 when the budget is committed.
    pub async fn prepare(
        &mut self,
        model: &Arc<ModelHandle>,
        params: Params,
    ) -> Result<GenerationRequest, ApiError> {
        self.trace_request(&params);
        let text: usize = params.messages.iter().map(|m| m.content.len()).sum();
        // `n` choices generate up to n times the completion.
        let choices = params
            .extra
            .get("n")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1)
            .max(1);
        let generation = if text <= PREPARE_INLINE_MAX {
            model.prepare(params)?
        } else {
            // A serving thread answers every connection dealt to it: a long
            // prompt's tokenizing (about a millisecond per KiB) must not stall them.
            let model = model.clone();
            tokio::task::spawn_blocking(move || model.prepare(params))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "preparing a generation failed");
                    ApiError::new(
                        crate::error::ErrorCode::Internal,
                        "preparing the generation failed",
                    )
                })??
        };
        let prompt = generation
            .prompt_tokens
            .unwrap_or_else(|| prompt_bound(&generation.messages));
        self.partial.prompt_tokens = generation.prompt_tokens.unwrap_or(0);
        self.reserve(u64::from(prompt) + choices.saturating_mul(u64::from(generation.max_tokens)))
            .await?;
        Ok(generation)
    }

    /// Admits work whose spending the caller bounds itself (the fusion
    /// refiner): reserves `tokens`, or 429 when the tenant's budget for the
    /// day is committed.
    pub async fn reserve(&mut self, tokens: u64) -> Result<(), ApiError> {
        self.reservation = self.tenant.reserve(&self.state, tokens).await?;
        Ok(())
    }

    /// Counts one streamed delta (about one token) towards the partial usage.
    pub fn streamed_delta(&mut self, text: &str) {
        self.partial.completion_tokens = self.partial.completion_tokens.saturating_add(1);
        if crate::otel::capturing_content() {
            self.streamed_text
                .get_or_insert_with(String::new)
                .push_str(text);
        }
    }

    /// The request's GenAI attributes: what it asks of the model and, with
    /// `telemetry.capture_content`, its messages (redacted).
    fn trace_request(&self, params: &Params) {
        if !crate::otel::enabled() {
            return;
        }
        if let Some(max) = params.max_tokens {
            crate::otel::set(&self.span, "gen_ai.request.max_tokens", i64::from(max));
        }
        if let Some(t) = params.temperature {
            crate::otel::set(&self.span, "gen_ai.request.temperature", f64::from(t));
        }
        if let Some(p) = params.top_p {
            crate::otel::set(&self.span, "gen_ai.request.top_p", f64::from(p));
        }
        if let Some(seed) = params.seed {
            crate::otel::set(&self.span, "gen_ai.request.seed", seed.cast_signed());
        }
        if crate::otel::capturing_content() {
            let messages: Vec<serde_json::Value> = params
                .messages
                .iter()
                .map(|m| {
                    serde_json::json!({"role": m.role,
                    "parts": [{"type": "text", "content": m.content}]})
                })
                .collect();
            crate::otel::set_content(
                &self.span,
                "gen_ai.input.messages",
                &serde_json::Value::Array(messages).to_string(),
            );
        }
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

    /// Writes the row, then lets the reservation go.
    pub fn finish(mut self, status: StatusCode, usage: Option<&Usage>) {
        self.write(status.as_u16(), usage);
    }

    fn write(&mut self, status: u16, usage: Option<&Usage>) {
        self.done = true;
        if let Some(text) = self.streamed_text.take()
            && status == 200
        {
            self.completed_text(&text);
        }
        if let Some(u) = usage {
            crate::otel::set(
                &self.span,
                "gen_ai.usage.input_tokens",
                i64::from(u.prompt_tokens),
            );
            crate::otel::set(
                &self.span,
                "gen_ai.usage.output_tokens",
                i64::from(u.completion_tokens),
            );
        }
        self.count(status, usage);
        if let (Some(manager), Some(u), true) = (&self.state.hosted_ai, usage, self.on_hosted) {
            manager.meter().record(
                &self.tenant.id,
                &self.model,
                u.prompt_tokens,
                u.completion_tokens,
            );
        }
        // A cut-short request's usage is counted, not timed (499's partial usage has no timings).
        let (ttft_ms, tokens_per_second) = match usage {
            Some(u) if status < 400 => crate::storage::usage::timings(u),
            _ => (None, None),
        };
        // Recorded first: the tokens are never free in between.
        let reservation = self.reservation.take();
        self.state.usage.record_settling(
            UsageRow {
                tenant_id: self.tenant.id.clone(),
                route: self.route.clone(),
                model: self.model.clone(),
                tier: self.tier.map(str::to_owned),
                prompt_tokens: usage.map_or(0, |u| i64::from(u.prompt_tokens)),
                completion_tokens: usage.map_or(0, |u| i64::from(u.completion_tokens)),
                latency_ms: self.started.elapsed().as_secs_f64() * 1_000.0,
                status: i64::from(status),
                created_at: now_ms(),
                ttft_ms,
                tokens_per_second,
            },
            reservation,
        );
    }
}

impl Metered {
    /// The request's Prometheus series: tokens, outcome, duration, in flight.
    fn count(&mut self, status: u16, usage: Option<&Usage>) {
        use crate::telemetry::{
            COMPLETION_TOKENS, INFERENCE_DURATION, MODEL_REQUESTS, PROMPT_TOKENS,
        };
        // A model label only for a configured model that took the request: a
        // refused request names whatever the caller sent.
        let model = match self.in_flight.take() {
            Some(gauge) => {
                gauge.decrement(1.0);
                self.model.clone()
            }
            None => "none".to_owned(),
        };
        let outcome = match status {
            200..=299 => "ok",
            499 => "cancelled",
            400..=498 => "client_error",
            _ => "server_error",
        };
        metrics::counter!(MODEL_REQUESTS, "model" => model.clone(), "route" => self.route.clone(),
            "outcome" => outcome, "finish_reason" => self.finish_reason.unwrap_or("none"))
        .increment(1);
        metrics::histogram!(INFERENCE_DURATION, "route" => self.route.clone(), "model" => model.clone())
            .record(self.started.elapsed().as_secs_f64());
        let Some(u) = usage else {
            return;
        };
        if self.state.settings.metrics.per_tenant {
            let tenant = self.tenant.id.clone();
            metrics::counter!(PROMPT_TOKENS, "model" => model.clone(), "tenant" => tenant.clone())
                .increment(u64::from(u.prompt_tokens));
            metrics::counter!(COMPLETION_TOKENS, "model" => model, "tenant" => tenant)
                .increment(u64::from(u.completion_tokens));
        } else {
            metrics::counter!(PROMPT_TOKENS, "model" => model.clone())
                .increment(u64::from(u.prompt_tokens));
            metrics::counter!(COMPLETION_TOKENS, "model" => model)
                .increment(u64::from(u.completion_tokens));
        }
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        if !self.done {
            // 499: the client closed the request before it finished; it is
            // charged for what was streamed to it.
            let partial = self.partial;
            self.write(499, Some(&partial));
        }
    }
}

/// The GenAI operation (`gen_ai.operation.name`) a route performs.
fn gen_ai_operation(route: &str) -> Option<&'static str> {
    match route {
        "/v1/chat/completions" | "/v1/responses" | "/run" | "/v2/process" => Some("chat"),
        "/v1/completions" => Some("text_completion"),
        "/v1/embeddings" => Some("embeddings"),
        _ => None,
    }
}

/// Refuses work when the caller's tenant has committed its tokens for the
/// UTC day (429, `Retry-After` until midnight UTC), for work metered
/// elsewhere (a strike's generation is written to the ledger by the bridge).
pub async fn check_budget(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    TenantBudget::of(caller).reserve(state, 0).await.map(drop)
}

/// What metering needs of the caller: its tenant, and its daily budget.
struct TenantBudget {
    id: String,
    /// The tenant's name and budget, when it has one (for the refusal).
    budget: Option<(String, u64)>,
}

impl TenantBudget {
    fn of(caller: &Caller) -> Self {
        Self {
            id: caller.tenant.id.clone(),
            budget: caller
                .limits
                .tokens_per_day
                .map(|budget| (caller.tenant.name.clone(), budget)),
        }
    }

    /// `tokens` of the day's budget, or 429 when it is committed; nothing
    /// when the tenant has no budget.
    async fn reserve(
        &self,
        state: &AppState,
        tokens: u64,
    ) -> Result<Option<Reservation>, ApiError> {
        let Some((name, budget)) = &self.budget else {
            return Ok(None);
        };
        let now = now_ms();
        match state
            .usage
            .reserve(&state.storage, &self.id, *budget, tokens, now)
            .await?
        {
            Ok(reservation) => Ok(Some(reservation)),
            Err(spent) => {
                metrics::counter!(crate::telemetry::QUOTA_REFUSALS, "kind" => "tokens_per_day")
                    .increment(1);
                let until_midnight = day_start(now) + 86_400_000 - now;
                Err(ApiError::too_many_requests(
                    format!(
                        "tenant {name:?} has used or reserved {} of its {budget} tokens for today (UTC)",
                        spent.committed.min(*budget)
                    ),
                    Duration::from_millis(u64::try_from(until_midnight).unwrap_or(1_000)),
                ))
            }
        }
    }
}

/// At most one token per byte of text (byte-level tokenizers never do
/// worse), plus the chat template's few per message: the reservation when
/// the model's tokenizer is not at hand, as for an upstream.
fn prompt_bound(messages: &[Message]) -> u32 {
    let bytes: usize = messages.iter().map(|m| m.content.len() + 8).sum();
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Limits;
    use crate::settings::Settings;
    use crate::storage::keys::Scope;
    use orchestrator::generation::Role;
    use orchestrator::registry::ModelHandle;

    const BUDGET: u64 = 1_000;
    const MAX_NEW_TOKENS: u32 = 300;

    /// N requests at once, each of which will spend all it may: the day's
    /// total stays within one reservation of the budget. Before
    /// reservations, each was admitted on the spent total alone (0 while
    /// all were in flight) and the tenant spent N × 320 tokens.
    #[tokio::test]
    async fn concurrent_requests_overshoot_the_daily_budget_by_at_most_one_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        settings.storage.data_dir = dir.path().to_owned();
        let (state, _writer) = crate::bootstrap::open_state(settings, false).await.unwrap();
        let tenant = state
            .storage
            .create_tenant("acme", Default::default())
            .await
            .unwrap();
        let caller = Caller {
            tenant,
            scope: Scope::Tenant,
            limits: Limits {
                requests_per_minute: 1_000,
                max_concurrent: 100,
                tokens_per_day: Some(BUDGET),
            },
            key_id: None,
        };
        // No engine is needed to prepare: admission happens before any runs.
        let model = std::sync::Arc::new(ModelHandle::new(
            "budgeted",
            orchestrator::ModelSettings {
                max_new_tokens: MAX_NEW_TOKENS,
                ..Default::default()
            },
            Err("not run in this test".into()),
        ));
        let requests = 16;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(requests));
        let tasks: Vec<_> = (0..requests)
            .map(|_| {
                let (state, caller, model, barrier) = (
                    state.clone(),
                    caller.clone(),
                    model.clone(),
                    barrier.clone(),
                );
                tokio::spawn(async move {
                    let mut metered = Metered::begin(&state, &caller, "/test", "budgeted");
                    barrier.wait().await;
                    let params = Params {
                        messages: vec![Message::new(Role::User, "twelve bytes")],
                        ..Params::default()
                    };
                    let prepared = metered.prepare(&model, params).await;
                    let generation = match prepared {
                        Ok(generation) => generation,
                        Err(refused) => {
                            assert_eq!(refused.code(), crate::error::ErrorCode::RateLimited);
                            metered.finish(refused.status(), None);
                            return None;
                        }
                    };
                    // Every admitted request spends the most it may.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let spent = Usage {
                        prompt_tokens: 12 + 8,
                        completion_tokens: generation.max_tokens,
                        ..Usage::default()
                    };
                    metered.finish(StatusCode::OK, Some(&spent));
                    Some(u64::from(spent.prompt_tokens + spent.completion_tokens))
                })
            })
            .collect();
        let mut spent = Vec::new();
        for task in tasks {
            spent.extend(task.await.unwrap());
        }
        let reservation = 12 + 8 + u64::from(MAX_NEW_TOKENS);
        let total: u64 = spent.iter().sum();
        assert!(
            total <= BUDGET + reservation,
            "{} admitted spent {total} of a budget of {BUDGET}",
            spent.len()
        );
        assert!(
            total >= BUDGET,
            "the budget is used up, not refused early: {total}"
        );
        // Settled: the next request sees the spent budget.
        assert!(check_budget(&state, &caller).await.is_err());
        state.storage.close().await;
    }

    /// A prompt over the inline limit is prepared on the blocking pool with
    /// the same outcome, context check included.
    #[tokio::test]
    async fn long_prompts_are_prepared_off_the_serving_thread_alike() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        settings.storage.data_dir = dir.path().to_owned();
        let (state, _writer) = crate::bootstrap::open_state(settings, false).await.unwrap();
        let caller = Caller {
            tenant: state.local_tenant.clone(),
            scope: Scope::Tenant,
            limits: Limits {
                requests_per_minute: 1,
                max_concurrent: 1,
                tokens_per_day: None,
            },
            key_id: None,
        };
        let model = std::sync::Arc::new(ModelHandle::new(
            "plain",
            orchestrator::ModelSettings::default(),
            Err("not run".into()),
        ));
        let long = "x".repeat(PREPARE_INLINE_MAX + 1);
        let mut metered = Metered::begin(&state, &caller, "/test", "plain");
        let params = Params {
            messages: vec![Message::new(Role::User, long.as_str())],
            max_tokens: Some(7),
            ..Params::default()
        };
        let generation = metered.prepare(&model, params).await.unwrap();
        assert_eq!(generation.messages[0].content, long);
        assert_eq!(generation.max_tokens, 7);
        metered.finish(StatusCode::OK, None);
        state.storage.close().await;
    }
}
