//! Which of a model's deployments takes a request, and the one retry on
//! another when the first fails before answering.
//!
//! A request goes to a primary, picked by the power of two choices (two at
//! random, the one with fewer requests outstanding), so no deployment takes
//! a pile-up. While that primary has more than `overflow.queue_depth`
//! waiting (or its recent time to first token is over `overflow.ttft_ms`),
//! new requests go to an overflow deployment instead; from
//! `overflow.prewarm_queue_depth` on, overflow deployments are asked to get
//! capacity ready. A deployment that fails before anything was sent
//! (unreachable, 5xx, 429, timeout, no capacity, breaker open) hands the
//! request to one other: the fallbacks first, then other primaries, then
//! overflow. Never after the first streamed chunk, and never to a deployment
//! that lacks what the request needs (context for its prompt, tools, a
//! response format, the engine a caller asked for).

use super::breaker::Ticket;
use super::deployment::{self, Deployment, InFlight};
use super::settings::{OverflowSettings, Role};
use crate::EngineKind;
use crate::capability::Need;
use crate::engine::{ChunkStream, Endpoint, EngineError, Forwarded};
use crate::generation::{Chunk, Generation, GenerationRequest, Message};
use futures_util::StreamExt;
use rand::Rng;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::Instrument;

/// Routing decisions kept per model for `GET /v2/deployments`.
const DECISIONS_KEPT: usize = 32;

/// Bytes per token assumed where the model's tokenizer is not at hand: few
/// enough that a prompt is over-counted, so a smaller deployment is never
/// given one it cannot hold.
const BYTES_PER_TOKEN: usize = 3;

/// Why a request went to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    Primary,
    Overflow,
    Fallback,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Why::Primary => "primary",
            Why::Overflow => "overflow",
            Why::Fallback => "fallback",
        }
    }
}

/// Where one request went, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The deployment's `model/name`.
    pub deployment: String,
    /// `primary`, `overflow` or `fallback`.
    pub kind: &'static str,
    /// Why, in words (the queue that overflowed, the failure fallen back from).
    pub reason: String,
}

/// What a request needs of the deployment that serves it.
pub struct Demand<'a> {
    /// Prompt tokens (counted, or estimated); `None` checks no context.
    pub prompt_tokens: Option<u32>,
    /// The model's own context: the request was checked against it when
    /// prepared (or, without a tokenizer, is left to the engine to judge),
    /// so only deployments with less are checked here.
    pub model_context: u32,
    /// What it asks beyond plain chat.
    pub needs: Vec<Need>,
    /// It is passed through to an upstream's endpoint.
    pub forward: Option<Endpoint>,
    /// The engines the caller allows (`/v2/process`'s `deployment`).
    pub allow: &'a (dyn Fn(EngineKind) -> bool + Sync),
}

impl<'a> Demand<'a> {
    /// What a chat generation needs: its prompt (counted, or estimated from
    /// its bytes) and the capabilities it asks.
    pub fn of(
        request: &GenerationRequest,
        model_context: u32,
        allow: &'a (dyn Fn(EngineKind) -> bool + Sync),
    ) -> Self {
        Self {
            model_context,
            prompt_tokens: Some(
                request
                    .prompt_tokens
                    .unwrap_or_else(|| estimate_tokens(&request.messages)),
            ),
            needs: crate::capability::needs(&request.extra, &request.messages),
            forward: None,
            allow,
        }
    }
}

fn estimate_tokens(messages: &[Message]) -> u32 {
    let bytes: usize = messages.iter().map(|m| m.content.len() + 16).sum();
    u32::try_from(bytes.div_ceil(BYTES_PER_TOKEN)).unwrap_or(u32::MAX)
}

/// Whether an error means the deployment failed (not the request), before
/// anything was answered: another deployment may serve the request.
fn deployment_failed(e: &EngineError) -> bool {
    !matches!(
        e.kind(),
        EngineError::ContextLength(_) | EngineError::InvalidRequest(_)
    )
}

/// A model's deployments and the recent decisions among them.
pub struct Deployments {
    list: Vec<Arc<Deployment>>,
    overflow: OverflowSettings,
    decisions: Mutex<VecDeque<Decision>>,
}

impl std::fmt::Debug for Deployments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.list).finish()
    }
}

impl Deployments {
    /// The deployments of one model, with its overflow settings.
    pub fn new(list: Vec<Arc<Deployment>>, overflow: OverflowSettings) -> Self {
        Self {
            list,
            overflow,
            decisions: Mutex::new(VecDeque::new()),
        }
    }

    /// Every deployment, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        self.list.iter()
    }

    /// The window of the time-to-first-token trigger.
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.overflow.window_secs)
    }

    /// The most recent decisions, newest last.
    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn note(&self, d: &Deployment, why: Why, reason: String) {
        metrics::counter!(deployment::REQUESTS_TOTAL, "model" => d.model().to_owned(), "deployment" => d.name().to_owned(), "reason" => why.as_str())
            .increment(1);
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        let mut decisions = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
        if decisions.len() == DECISIONS_KEPT {
            decisions.pop_front();
        }
        decisions.push_back(Decision {
            at_ms,
            deployment: d.id().to_owned(),
            kind: why.as_str(),
            reason,
        });
    }

    /// Why `d` cannot take the request at all, if it cannot.
    fn unfit(d: &Deployment, demand: &Demand<'_>) -> Option<String> {
        let engine = match d.engine() {
            Ok(engine) => engine,
            Err(why) => return Some(why.to_owned()),
        };
        if !(demand.allow)(d.settings().engine) {
            return Some(format!(
                "runs on the {} engine, which the request excludes",
                d.settings().engine.as_str()
            ));
        }
        if let Some(endpoint) = demand.forward
            && !engine.forwards()
        {
            return Some(format!(
                "the {} engine does not serve /v1/{}",
                engine.kind(),
                endpoint.path()
            ));
        }
        if let Some(prompt) = demand.prompt_tokens
            && d.settings().context_limit < demand.model_context
            && prompt >= d.settings().context_limit
        {
            return Some(format!(
                "its context of {} tokens cannot hold the prompt's {prompt}",
                d.settings().context_limit
            ));
        }
        if let Some(need) = d.capabilities().unmet(&demand.needs) {
            return Some(format!("it lacks {} ({})", need.kind.as_str(), need.param));
        }
        None
    }

    /// Picks the deployment for an attempt; `tried` are those that failed
    /// this request already.
    fn choose(&self, demand: &Demand<'_>, tried: &[String]) -> Result<Chosen, EngineError> {
        let now = Instant::now();
        let mut skipped = Vec::new();
        let mut open_for: Option<Duration> = None;
        let mut usable: Vec<&Arc<Deployment>> = Vec::new();
        for d in &self.list {
            if tried.iter().any(|t| t == d.id()) {
                continue;
            }
            if let Some(why) = Self::unfit(d, demand) {
                skipped.push((d.id(), why));
            } else if !d.would_admit(now) {
                let left = d.open_for(now);
                open_for = Some(open_for.map_or(left, |o| o.min(left)));
                skipped.push((
                    d.id(),
                    format!(
                        "its circuit breaker is open ({:.0} s left)",
                        left.as_secs_f64().ceil()
                    ),
                ));
            } else {
                usable.push(d);
            }
        }
        let of_role = |role: Role| -> Vec<&Arc<Deployment>> {
            usable
                .iter()
                .copied()
                .filter(|d| d.role() == role)
                .collect()
        };
        let mut wanted_overflow = String::new();
        if tried.is_empty() {
            let primaries = of_role(Role::Primary);
            if let Some(primary) = pick(&primaries) {
                if let Some(hot) = self.pressure(primary, now) {
                    if let Some(o) = pick(&of_role(Role::Overflow))
                        && let Some(ticket) = o.admit(now)
                    {
                        return Ok(Chosen::new(o, ticket, Why::Overflow, hot));
                    }
                    wanted_overflow = format!(" ({hot}; no overflow deployment can take it)");
                }
                if let Some(ticket) = primary.admit(now) {
                    let reason = format!("primary{wanted_overflow}");
                    return Ok(Chosen::new(primary, ticket, Why::Primary, reason));
                }
            }
        }
        let because = match tried.last() {
            Some(failed) => format!("fallback: {failed} failed before answering"),
            None => "fallback: no primary can take the request".to_owned(),
        };
        for role in [Role::Fallback, Role::Primary, Role::Overflow] {
            let mut group = of_role(role);
            group.sort_by_key(|d| d.in_flight());
            if let Some((d, ticket)) = group.into_iter().find_map(|d| Some((d, d.admit(now)?))) {
                return Ok(Chosen::new(d, ticket, Why::Fallback, because));
            }
        }
        let model = self.list.first().map_or("?", |d| d.model());
        let message = match skipped.as_slice() {
            // A model of one engine speaks of the model, as it always has.
            [(_, why)] if self.list.len() == 1 => format!("model {model:?} cannot serve: {why}"),
            [] => format!("no deployment of model {model:?} can take the request: each was tried"),
            _ => format!(
                "no deployment of model {model:?} can take the request: {}",
                skipped
                    .iter()
                    .map(|(id, why)| format!("{id}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        Err(match open_for {
            Some(left) => EngineError::Busy {
                message,
                retry_after: left.max(Duration::from_secs(1)),
            },
            None => EngineError::Unavailable(message),
        })
    }

    /// Why `primary` is too loaded for new requests, if it is; asks the
    /// overflow deployments to get ready when it nears that.
    fn pressure(&self, primary: &Deployment, now: Instant) -> Option<String> {
        let waiting = primary.queued();
        if waiting >= self.overflow.prewarm_queue_depth as usize {
            // Not one whose breaker keeps it out: capacity it cannot use.
            for o in self.list.iter().filter(|d| d.role() == Role::Overflow) {
                if let Ok(engine) = o.engine()
                    && !o.is_ejected(now)
                {
                    engine.prewarm();
                }
            }
        }
        if waiting > self.overflow.queue_depth as usize {
            return Some(format!(
                "overflow: {} has {waiting} waiting, over overflow.queue_depth {}",
                primary.id(),
                self.overflow.queue_depth
            ));
        }
        let limit = Duration::from_millis(self.overflow.ttft_ms?);
        let ttft = primary.recent_ttft(self.window(), now)?;
        (ttft > limit).then(|| {
            format!(
                "overflow: {}'s time to first token over the last {} s is {} ms, over overflow.ttft_ms {}",
                primary.id(),
                self.overflow.window_secs,
                ttft.as_millis(),
                limit.as_millis()
            )
        })
    }

    /// Runs `attempt` on the chosen deployment, and once more on another when
    /// it fails before answering. An attempt settles its ticket's breaker
    /// itself once it has an answer going; failures before that are settled here.
    async fn run<T, F, Fut>(&self, demand: &Demand<'_>, mut attempt: F) -> Result<T, EngineError>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, EngineError>>,
    {
        let mut tried: Vec<String> = Vec::new();
        let mut failure: Option<EngineError> = None;
        loop {
            let Chosen {
                deployment: d,
                ticket,
                why,
                reason,
            } = match self.choose(demand, &tried) {
                Ok(chosen) => chosen,
                // The first failure says more than "nothing else can take it".
                Err(none) => return Err(failure.unwrap_or(none)),
            };
            if let Some(e) = &failure {
                tracing::warn!(from = %tried.join(","), to = d.id(), error = %e, "falling back to another deployment");
            }
            self.note(&d, why, reason);
            let guard = d.begin();
            // A trace's `engine` span: one per attempt, naming the deployment.
            let span = tracing::info_span!(target: crate::SPANS, "engine",
                gen_ai.request.model = %d.model(),
                harpoon.engine = d.settings().engine.as_str(),
                harpoon.deployment = %d.id(),
                harpoon.fallback = !tried.is_empty());
            let outcome = attempt(Attempt {
                deployment: d.clone(),
                ticket,
                guard,
                started: Instant::now(),
            })
            .instrument(span)
            .await;
            match outcome {
                Ok(out) => {
                    super::engine_time::served_by(d.id());
                    return Ok(out);
                }
                Err(e) if deployment_failed(&e) => {
                    d.failed(ticket, Instant::now());
                    tried.push(d.id().to_owned());
                    if tried.len() > 1 {
                        return Err(e);
                    }
                    failure = Some(e);
                }
                Err(e) => {
                    d.works(ticket);
                    return Err(e);
                }
            }
        }
    }

    /// Generates a whole reply on a deployment that can take `request`.
    pub async fn generate(
        &self,
        request: GenerationRequest,
        demand: &Demand<'_>,
    ) -> Result<Generation, EngineError> {
        self.run(demand, |a| {
            let request = fit(&request, &a.deployment, demand);
            async move {
                let d = &a.deployment;
                let generation = a.engine()?.generate(request).await?;
                drop(a.guard);
                d.works(a.ticket);
                // Only the in-process engine times a whole reply's first
                // token; an upstream's whole answer comes at once.
                let ttft = (d.settings().engine == EngineKind::Mlx)
                    .then_some(generation.usage.time_to_first_token)
                    .filter(|t| !t.is_zero());
                d.served(ttft);
                Ok(generation)
            }
        })
        .await
    }

    /// Streams a reply from a deployment that can take `request`; the choice
    /// is final once its first chunk has come.
    pub async fn stream(
        &self,
        request: GenerationRequest,
        demand: &Demand<'_>,
    ) -> Result<ChunkStream, EngineError> {
        self.run(demand, |a| {
            let request = fit(&request, &a.deployment, demand);
            async move {
                let mut stream = a.engine()?.stream(request).await?;
                let first = first_item(stream.next().await)?;
                let ttft = a.started.elapsed();
                let Attempt {
                    deployment: d,
                    ticket,
                    guard,
                    ..
                } = a;
                // Answering: the breaker hears it now (a trial whose client
                // leaves mid-stream still proved the deployment).
                d.works(ticket);
                let mut guard = Some(guard);
                Ok(futures_util::stream::once(async move { Ok(first) })
                    .chain(stream)
                    .inspect(move |chunk| match chunk {
                        Ok(Chunk::Done { .. }) => {
                            guard.take();
                            d.served(Some(ttft));
                        }
                        // Past the first chunk: counted against the
                        // deployment, never retried elsewhere.
                        Err(e) if deployment_failed(e) => {
                            guard.take();
                            d.failed(ticket, Instant::now());
                        }
                        _ => {}
                    })
                    .boxed())
            }
        })
        .await
    }

    /// Passes an OpenAI request of `endpoint` to a deployment that serves it.
    pub async fn forward(
        &self,
        endpoint: Endpoint,
        body: serde_json::Value,
        demand: &Demand<'_>,
    ) -> Result<Forwarded, EngineError> {
        self.run(demand, |a| {
            let body = body.clone();
            async move {
                let answer = a.engine()?.forward(endpoint, body).await?;
                let Attempt {
                    deployment: d,
                    ticket,
                    guard,
                    started,
                } = a;
                match answer {
                    Forwarded::Whole(answer) => {
                        drop(guard);
                        d.works(ticket);
                        d.served(None);
                        Ok(Forwarded::Whole(answer))
                    }
                    Forwarded::Stream(mut stream) => {
                        let first = first_item(stream.next().await)?;
                        d.works(ticket);
                        let ttft = started.elapsed();
                        let mut guard = Some(guard);
                        let mut served = false;
                        Ok(Forwarded::Stream(
                            futures_util::stream::once(async move { Ok(first) })
                                .chain(stream)
                                .inspect(move |item| match item {
                                    Err(e) if deployment_failed(e) => {
                                        guard.take();
                                        d.failed(ticket, Instant::now());
                                    }
                                    Ok(_) if !std::mem::replace(&mut served, true) => {
                                        d.served(Some(ttft));
                                    }
                                    _ => {}
                                })
                                .boxed(),
                        ))
                    }
                }
            }
        })
        .await
    }
}

/// The deployment chosen for an attempt, with its breaker's ticket and why.
struct Chosen {
    deployment: Arc<Deployment>,
    ticket: Ticket,
    why: Why,
    reason: String,
}

impl Chosen {
    fn new(deployment: &Arc<Deployment>, ticket: Ticket, why: Why, reason: String) -> Self {
        Self {
            deployment: deployment.clone(),
            ticket,
            why,
            reason,
        }
    }
}

/// One attempt on a deployment: its ticket, the in-flight count it holds
/// until the answer ends, and when it started.
struct Attempt {
    deployment: Arc<Deployment>,
    ticket: Ticket,
    guard: InFlight,
    started: Instant,
}

impl Attempt {
    fn engine(&self) -> Result<&Arc<dyn crate::engine::Engine>, EngineError> {
        self.deployment
            .engine()
            .map_err(|e| EngineError::Unavailable(e.into()))
    }
}

fn first_item<T>(item: Option<Result<T, EngineError>>) -> Result<T, EngineError> {
    item.unwrap_or_else(|| {
        Err(EngineError::Upstream(
            "the stream ended before its first chunk".into(),
        ))
    })
}

/// The request as `d` takes it: the completion shortened to what its context
/// leaves after the prompt (counted, or, on a deployment with less context
/// than its model, estimated).
fn fit(request: &GenerationRequest, d: &Deployment, demand: &Demand<'_>) -> GenerationRequest {
    let mut request = request.clone();
    let smaller = d.settings().context_limit < demand.model_context;
    let prompt = request
        .prompt_tokens
        .or(demand.prompt_tokens.filter(|_| smaller));
    if let Some(prompt) = prompt {
        let room = d.settings().context_limit.saturating_sub(prompt).max(1);
        request.max_tokens = request.max_tokens.min(room);
    }
    request
}

/// Two at random, the one with fewer requests outstanding (ties to the
/// first drawn): the least loaded of a few without everyone piling onto
/// the same one between two updates of the counts.
fn pick<'a>(candidates: &[&'a Arc<Deployment>]) -> Option<&'a Arc<Deployment>> {
    match candidates {
        [] => None,
        [only] => Some(only),
        _ => {
            let mut rng = rand::rng();
            let a = rng.random_range(0..candidates.len());
            let mut b = rng.random_range(0..candidates.len() - 1);
            if b >= a {
                b += 1;
            }
            let (a, b) = (candidates[a], candidates[b]);
            Some(if b.in_flight() < a.in_flight() { b } else { a })
        }
    }
}

#[cfg(test)]
mod tests {
    //! The choice among deployments, over scripted engines: what each one
    //! answers is fixed by the test, so that which one was asked, how often
    //! and in what order is what is checked.
    use super::*;
    use crate::ModelSettings;
    use crate::engine::{Engine, EngineLoad, LoadState};
    use crate::generation::{FinishReason, Role as Speaker, Usage};
    use crate::registry::settings::{HealthSettings, ResolvedDeployment};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Clone, Copy)]
    enum Script {
        Answer,
        Refuse,
        /// One chunk, then an error.
        BreakMidStream,
    }

    struct Scripted {
        script: Script,
        calls: AtomicUsize,
        queued: AtomicUsize,
    }

    impl Scripted {
        fn new(script: Script) -> Arc<Self> {
            Arc::new(Self {
                script,
                calls: AtomicUsize::new(0),
                queued: AtomicUsize::new(0),
            })
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    fn done() -> Chunk {
        Chunk::Done {
            finish_reason: FinishReason::Stop,
            usage: Usage::default(),
        }
    }

    #[async_trait::async_trait]
    impl Engine for Scripted {
        fn kind(&self) -> &'static str {
            "openai"
        }
        fn load_state(&self) -> LoadState {
            LoadState::Remote
        }
        fn load(&self) -> Option<EngineLoad> {
            Some(EngineLoad {
                queued: self.queued.load(Ordering::SeqCst),
                running: 0,
            })
        }
        async fn stream(&self, _: GenerationRequest) -> Result<ChunkStream, EngineError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let items = match self.script {
                Script::Answer => vec![Ok(Chunk::Delta("hi".into())), Ok(done())],
                Script::Refuse => return Err(EngineError::Connect("refused".into())),
                Script::BreakMidStream => vec![
                    Ok(Chunk::Delta("hi".into())),
                    Err(EngineError::Upstream("broke".into())),
                ],
            };
            Ok(futures_util::stream::iter(items).boxed())
        }
    }

    fn deployment(
        name: &str,
        role: Role,
        context_limit: u32,
        engine: &Arc<Scripted>,
    ) -> Arc<Deployment> {
        let settings = ModelSettings {
            repo: "unused".into(),
            engine: EngineKind::Openai,
            context_limit,
            max_new_tokens: 16,
            ..ModelSettings::default()
        };
        let resolved = ResolvedDeployment {
            name: name.into(),
            role,
            settings,
        };
        let health = HealthSettings {
            failure_threshold: 2,
            cooldown_secs: 60,
        };
        Arc::new(Deployment::new(
            "m",
            resolved,
            Ok(engine.clone() as Arc<dyn Engine>),
            Some(&health),
        ))
    }

    fn request(prompt_tokens: u32) -> GenerationRequest {
        GenerationRequest {
            messages: vec![Message::new(Speaker::User, "hello")],
            max_tokens: 16,
            temperature: 0.0,
            top_p: 1.0,
            stop: Vec::new(),
            seed: None,
            enable_thinking: false,
            prompt_tokens: Some(prompt_tokens),
            extra: serde_json::Map::new(),
        }
    }

    fn all(_: EngineKind) -> bool {
        true
    }

    fn overflow(queue_depth: u32) -> OverflowSettings {
        OverflowSettings {
            queue_depth,
            prewarm_queue_depth: 0,
            ttft_ms: None,
            window_secs: 30,
        }
    }

    async fn served_by(set: &Deployments, req: GenerationRequest) -> Result<String, EngineError> {
        let demand = Demand::of(&req, 4096, &all);
        let ((), report) = crate::registry::engine_time::measured(async {
            let _ = set.generate(req, &demand).await;
        })
        .await;
        let decision = set.decisions().pop();
        report
            .deployment
            .ok_or_else(|| EngineError::Unavailable(format!("nothing served: {decision:?}")))
    }

    #[tokio::test]
    async fn a_failure_before_answering_goes_to_the_fallback_once() {
        let (bad, good) = (Scripted::new(Script::Refuse), Scripted::new(Script::Answer));
        let set = Deployments::new(
            vec![
                deployment("a", Role::Primary, 1000, &bad),
                deployment("b", Role::Fallback, 1000, &good),
            ],
            overflow(4),
        );
        assert_eq!(served_by(&set, request(10)).await.unwrap(), "m/b");
        assert_eq!((bad.calls(), good.calls()), (1, 1));
        let last = set.decisions().pop().unwrap();
        assert_eq!(last.kind, "fallback");
        assert!(last.reason.contains("m/a failed"), "{}", last.reason);

        // Two failures in a row open a's breaker: the next request goes
        // straight to b, and a is not asked until its cool-down ends.
        assert_eq!(served_by(&set, request(10)).await.unwrap(), "m/b");
        assert_eq!(bad.calls(), 2);
        assert_eq!(served_by(&set, request(10)).await.unwrap(), "m/b");
        assert_eq!(bad.calls(), 2, "an open breaker keeps its deployment out");
        let statuses: Vec<_> = set.iter().map(|d| d.status(set.window())).collect();
        assert_eq!(statuses[0].breaker, "open");
        assert_eq!(statuses[0].failures, 2);
    }

    #[tokio::test]
    async fn a_deployment_whose_context_cannot_hold_the_prompt_is_never_tried() {
        let (bad, small) = (Scripted::new(Script::Refuse), Scripted::new(Script::Answer));
        let set = Deployments::new(
            vec![
                deployment("a", Role::Primary, 4096, &bad),
                deployment("small", Role::Fallback, 512, &small),
            ],
            overflow(4),
        );
        let req = request(600);
        let demand = Demand::of(&req, 4096, &all);
        let e = set.generate(req, &demand).await.unwrap_err();
        assert!(
            matches!(e.kind(), EngineError::Connect(_)),
            "the primary's own failure: {e}"
        );
        assert_eq!(small.calls(), 0);
        // A prompt it holds does go there, its completion cut to fit.
        assert_eq!(served_by(&set, request(500)).await.unwrap(), "m/small");
        let req = request(500);
        assert_eq!(
            fit(&req, &set.list[1], &Demand::of(&req, 4096, &all)).max_tokens,
            12
        );
        // Without the tokenizer's count, the estimate (3 bytes a token) cuts it.
        let mut estimated = request(0);
        estimated.prompt_tokens = None;
        estimated.messages = vec![Message::new(Speaker::User, "x".repeat(1484))];
        let demand = Demand::of(&estimated, 4096, &all);
        assert_eq!(demand.prompt_tokens, Some(500));
        assert_eq!(fit(&estimated, &set.list[1], &demand).max_tokens, 12);
        assert_eq!(
            fit(&estimated, &set.list[0], &demand).max_tokens,
            16,
            "the model's own context is the engine's to judge"
        );
    }

    #[tokio::test]
    async fn a_stream_that_broke_after_its_first_chunk_is_not_retried() {
        let (broken, good) = (
            Scripted::new(Script::BreakMidStream),
            Scripted::new(Script::Answer),
        );
        let set = Deployments::new(
            vec![
                deployment("a", Role::Primary, 1000, &broken),
                deployment("b", Role::Fallback, 1000, &good),
            ],
            overflow(4),
        );
        let req = request(10);
        let demand = Demand::of(&req, 4096, &all);
        let items: Vec<_> = set.stream(req, &demand).await.unwrap().collect().await;
        assert!(matches!(items[0], Ok(Chunk::Delta(_))));
        assert!(items[1].is_err(), "the break reaches the caller");
        assert_eq!(good.calls(), 0, "nothing is retried after the first chunk");
        assert_eq!(set.list[0].status(set.window()).failures, 1);
    }

    #[tokio::test]
    async fn a_primary_with_a_deep_queue_sends_new_requests_to_the_overflow() {
        let (primary, burst) = (Scripted::new(Script::Answer), Scripted::new(Script::Answer));
        let set = Deployments::new(
            vec![
                deployment("local", Role::Primary, 1000, &primary),
                deployment("burst", Role::Overflow, 1000, &burst),
            ],
            overflow(2),
        );
        primary.queued.store(2, Ordering::SeqCst);
        assert_eq!(served_by(&set, request(10)).await.unwrap(), "m/local");
        primary.queued.store(3, Ordering::SeqCst);
        assert_eq!(served_by(&set, request(10)).await.unwrap(), "m/burst");
        let last = set.decisions().pop().unwrap();
        assert_eq!(last.kind, "overflow");
        assert!(last.reason.contains("3 waiting"), "{}", last.reason);
    }

    #[tokio::test]
    async fn a_slow_first_token_on_the_primary_sends_new_requests_to_the_overflow() {
        let (primary, burst) = (Scripted::new(Script::Answer), Scripted::new(Script::Answer));
        let list = vec![
            deployment("local", Role::Primary, 1000, &primary),
            deployment("burst", Role::Overflow, 1000, &burst),
        ];
        let set = Deployments::new(
            list.clone(),
            OverflowSettings {
                ttft_ms: Some(500),
                ..overflow(100)
            },
        );
        list[0].served(Some(Duration::from_millis(400)));
        assert_eq!(served_by(&set, request(10)).await.unwrap(), "m/local");
        // The mean over the window is now over 500 ms.
        list[0].served(Some(Duration::from_millis(2000)));
        assert_eq!(served_by(&set, request(10)).await.unwrap(), "m/burst");
        assert!(
            set.decisions()
                .pop()
                .unwrap()
                .reason
                .contains("time to first token")
        );
    }

    #[tokio::test]
    async fn a_fallback_without_a_capability_the_request_needs_is_not_eligible() {
        let (bad, plain) = (Scripted::new(Script::Refuse), Scripted::new(Script::Answer));
        let no_tools = {
            let d = deployment("plain", Role::Fallback, 1000, &plain);
            let mut resolved = ResolvedDeployment {
                name: "plain".into(),
                role: Role::Fallback,
                settings: d.settings().clone(),
            };
            resolved.settings.capabilities.tools = Some(false);
            Arc::new(Deployment::new(
                "m",
                resolved,
                Ok(plain.clone() as Arc<dyn Engine>),
                Some(&HealthSettings::default()),
            ))
        };
        let set = Deployments::new(
            vec![deployment("a", Role::Primary, 1000, &bad), no_tools],
            overflow(4),
        );
        let mut req = request(10);
        req.extra.insert(
            "tools".into(),
            serde_json::json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        );
        let demand = Demand::of(&req, 4096, &all);
        assert!(set.generate(req, &demand).await.is_err());
        assert_eq!(plain.calls(), 0, "a fallback that lacks tools is not tried");
        // Without tools it takes the request.
        assert_eq!(served_by(&set, request(10)).await.unwrap(), "m/plain");
    }

    #[test]
    fn two_random_choices_keep_the_load_level() {
        let engines: Vec<_> = (0..4).map(|_| Scripted::new(Script::Answer)).collect();
        let list: Vec<_> = engines
            .iter()
            .enumerate()
            .map(|(i, e)| deployment(&format!("d{i}"), Role::Primary, 1000, e))
            .collect();
        // 400 requests arrive and stay outstanding: each goes where `pick` says.
        let mut held = Vec::new();
        for _ in 0..400 {
            let refs: Vec<&Arc<Deployment>> = list.iter().collect();
            let d = pick(&refs).unwrap();
            held.push(d.begin());
        }
        let loads: Vec<usize> = list.iter().map(|d| d.in_flight()).collect();
        let (min, max) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
        // Random choice alone spreads 400 over 4 with a gap of ~40; two
        // choices keep it within a few.
        assert!(max - min <= 6, "{loads:?}");
        drop(held);
        assert!(list.iter().all(|d| d.in_flight() == 0));
    }
}
