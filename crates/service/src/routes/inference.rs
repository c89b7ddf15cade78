//! What the inference routes share: the routing decision, its headers, and
//! sampling validation.

use crate::callers::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::now_ms;
use crate::storage::usage::{UsageRecorder, UsageRow, day_start};
use axum::http::StatusCode;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use orchestrator::Tier;
use orchestrator::generation::Usage;
use orchestrator::registry::ModelHandle;
use orchestrator::router::Classification;
use orchestrator::selector::{AUTO, ModelSelector};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tier that served the request.
pub const TIER_HEADER: HeaderName = HeaderName::from_static("x-harpoon-tier");
/// Router complexity, when the router chose the model.
pub const COMPLEXITY_HEADER: HeaderName = HeaderName::from_static("x-harpoon-complexity");

/// The model a request goes to, and the classification behind it.
#[derive(Debug)]
pub struct Routing {
    /// The model that serves the request.
    pub model: Arc<ModelHandle>,
    /// The router's view of the prompt (always when `auto`; on request otherwise).
    pub classification: Option<Classification>,
    /// Whether the router chose the model.
    pub routed: bool,
}

impl Routing {
    /// Classifies at most once: when `requested` is `auto`, or when the caller
    /// reports the classification anyway (`always_classify`).
    pub fn decide(
        gateway: &ModelSelector,
        requested: &str,
        text: &str,
        always_classify: bool,
    ) -> Result<Self, ApiError> {
        let routed = requested.is_empty() || requested == AUTO;
        let classification = (routed || always_classify).then(|| gateway.classify(text));
        let model = gateway.resolve(requested, classification.as_ref())?;
        Ok(Self {
            model,
            classification,
            routed,
        })
    }

    /// The tier that serves the request.
    pub fn tier(&self) -> Option<Tier> {
        match (&self.classification, self.routed) {
            (Some(c), true) => Some(c.tier),
            _ => self.model.settings().tier,
        }
    }

    /// `x-harpoon-tier` and, when the router chose, `x-harpoon-complexity`.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(tier) = self.tier() {
            headers.insert(TIER_HEADER, HeaderValue::from_static(tier.as_str()));
        }
        if let (Some(c), true) = (&self.classification, self.routed)
            && let Ok(v) = HeaderValue::from_str(&format!("{:.4}", c.complexity))
        {
            headers.insert(COMPLEXITY_HEADER, v);
        }
        headers
    }
}

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

/// Longest `model` a request may name, in characters. Configured names and
/// upstream model ids are far shorter (a Hugging Face repository id is at
/// most 96 characters plus its owner); 256 leaves room for any of them while
/// keeping a caller from storing text of its own choosing in the usage
/// ledger's `model` column (and in `/v2/usage`'s group keys, which echo it).
pub const MODEL_NAME_MAX: usize = 256;

/// Why `model` cannot be a model name: longer than [`MODEL_NAME_MAX`]
/// characters, or holding a control, invisible or text-direction character
/// (a newline or escape in a ledger key would end up in reports and
/// exports; a right-to-left override or line separator would make a report
/// show another name than the one stored). Empty means `auto`.
pub fn model_name_problem(model: &str) -> Option<String> {
    let chars = model.chars().count();
    if chars > MODEL_NAME_MAX {
        return Some(format!(
            "{chars} characters; a model name has at most {MODEL_NAME_MAX}"
        ));
    }
    if model.chars().any(|c| c.is_control() || is_format_char(c)) {
        return Some("must not contain control, invisible or text-direction characters".into());
    }
    None
}

/// Unicode's format characters (category Cf: zero-width, bidirectional
/// controls, tags) and its line and paragraph separators.
fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{FEFF}'
        | '\u{0600}'..='\u{0605}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

/// Checks sampling parameters' ranges.
pub fn validate_sampling(temperature: Option<f32>, top_p: Option<f32>) -> Result<(), ApiError> {
    if let Some(t) = temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(ApiError::validation(format!(
            "temperature: {t} is out of range 0..=2"
        )));
    }
    if let Some(p) = top_p
        && !(p > 0.0 && p <= 1.0)
    {
        return Err(ApiError::validation(format!(
            "top_p: {p} is out of range (0, 1]"
        )));
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
