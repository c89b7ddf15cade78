//! The `mlx` engine: mlx-lm in an embedded CPython (feature `pymlx`).
//!
//! Each model has one worker thread that owns its Python objects and takes
//! requests first come, first served, so requests to one model never
//! interleave; different models run on their own threads. Tokens leave the
//! worker through a channel, and the GIL is released while the worker waits
//! for a slow reader, so no `.await` ever holds it. A non-resident model loads
//! on its first request and unloads after `idle_unload_secs` without one.

use super::{ChunkStream, Engine, EngineError, LoadState};
use crate::ModelSettings;
use crate::generation::{Chunk, FinishReason, Generation, GenerationRequest, Role, Usage};
use futures_util::StreamExt;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule};
use serde::Deserialize;
use serde_json::Value;
use std::ffi::CString;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc as tmpsc;

const RUNNER_SOURCE: &str = include_str!("mlx_runner.py");

const UNLOADED: u8 = 0;
const LOADING: u8 = 1;
const LOADED: u8 = 2;
const FAILED: u8 = 3;

struct Job {
    request: GenerationRequest,
    out: tmpsc::Sender<Result<Chunk, EngineError>>,
    received: Instant,
    /// Send each piece as it comes (streams); otherwise generate the whole
    /// reply inside Python and send it once, sparing a Rust/Python crossing
    /// and a cross-thread wake-up per token.
    incremental: bool,
    /// The request asks more than plain chat (tools, a response format,
    /// logprobs, penalties, `n`): the runner answers in OpenAI's choices.
    rich: bool,
}

/// A model run by mlx-lm in this process.
pub struct MlxEngine {
    jobs: mpsc::Sender<Job>,
    state: Arc<AtomicU8>,
    load: Arc<Load>,
}

/// Jobs sent to the worker and not yet finished, and of those the one it runs.
#[derive(Default)]
struct Load {
    accepted: AtomicUsize,
    running: AtomicUsize,
}

/// Puts the project venv's site-packages on `sys.path`, once per process:
/// `$HARPOON_PYTHON_PATH` (colon-separated) when set, else the venv the
/// binary was built against.
fn init_python() -> Result<(), String> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        let paths: Vec<String> = match std::env::var("HARPOON_PYTHON_PATH") {
            Ok(v) => v
                .split(':')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            Err(_) => option_env!("HARPOON_VENV_SITE_PACKAGES")
                .map(|p| vec![p.to_owned()])
                .unwrap_or_default(),
        };
        Python::attach(|py| -> PyResult<()> {
            let sys_path = py.import("sys")?.getattr("path")?;
            for p in paths.iter().rev() {
                sys_path.call_method1("insert", (0, p))?;
            }
            Ok(())
        })
        .map_err(|e| format!("embedded Python: {e}"))
    })
    .clone()
}

fn load(py: Python<'_>, repo: &str) -> PyResult<Py<PyAny>> {
    let code = CString::new(RUNNER_SOURCE)?;
    let module = PyModule::from_code(py, &code, c"mlx_runner.py", c"harpoon_mlx_runner")?;
    Ok(module.getattr("Runner")?.call1((repo,))?.unbind())
}

fn role(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// Cuts `text` where the first stop sequence begins; true if one was found.
fn cut_at_stop(text: &mut String, stop: &[String]) -> bool {
    let cut = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min();
    if let Some(at) = cut {
        text.truncate(at);
    }
    cut.is_some()
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn messages<'py>(py: Python<'py>, request: &GenerationRequest) -> PyResult<Bound<'py, PyList>> {
    let messages = PyList::empty(py);
    for m in &request.messages {
        let d = PyDict::new(py);
        d.set_item("role", role(m.role))?;
        d.set_item("content", &m.content)?;
        messages.append(d)?;
    }
    Ok(messages)
}

fn usage(
    prompt_tokens: u32,
    completion_tokens: u32,
    received: Instant,
    first: Instant,
    end: Instant,
) -> Usage {
    let generating = end.duration_since(first).as_secs_f64();
    Usage {
        prompt_tokens,
        completion_tokens,
        time_to_first_token: first.saturating_duration_since(received),
        tokens_per_second: if generating > 0.0 {
            f64::from(completion_tokens.saturating_sub(1)) / generating
        } else {
            0.0
        },
    }
}

/// Runs one request whole inside Python and sends the reply once.
fn run_whole(py: Python<'_>, runner: &Py<PyAny>, job: Job) -> PyResult<()> {
    let request = &job.request;
    let called = Instant::now();
    let clock = py.import("time")?.getattr("perf_counter")?;
    let called_py: f64 = clock.call0()?.extract()?;
    let (text, prompt, generated, reason, first_py): (
        String,
        u32,
        u32,
        Option<String>,
        Option<f64>,
    ) = runner
        .bind(py)
        .call_method1(
            "generate",
            (
                messages(py, request)?,
                request.max_tokens,
                request.temperature,
                request.top_p,
                request.seed,
                request.enable_thinking,
                request.stop.clone(),
            ),
        )?
        .extract()?;
    let end = Instant::now();
    // Python's clock marks the first token; place it on ours.
    let first = first_py.map_or(end, |f| {
        called + Duration::from_secs_f64((f - called_py).max(0.0))
    });
    let finish_reason = if reason.as_deref() == Some("length") {
        FinishReason::Length
    } else {
        FinishReason::Stop
    };
    let out = job.out;
    let usage = usage(prompt, generated, job.received, first, end);
    py.detach(|| {
        let _ = out.blocking_send(Ok(Chunk::Delta(text)));
        let _ = out.blocking_send(Ok(Chunk::Done {
            finish_reason,
            usage,
        }));
    });
    Ok(())
}

/// Runs one request, sending each piece as it comes, until the end or until
/// the reader leaves.
fn run_incremental(py: Python<'_>, runner: &Py<PyAny>, job: Job) -> PyResult<()> {
    let Job {
        request,
        out,
        received,
        ..
    } = job;
    let messages = messages(py, &request)?;
    let tokens = runner.bind(py).call_method1(
        "stream",
        (
            messages,
            request.max_tokens,
            request.temperature,
            request.top_p,
            request.seed,
            request.enable_thinking,
        ),
    )?;
    // Hold back enough text that a stop sequence split across tokens is
    // caught before any of it is sent.
    let hold = request
        .stop
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(1)
        .saturating_sub(1);
    let send = |chunk: Result<Chunk, EngineError>| py.detach(|| out.blocking_send(chunk).is_ok());
    let mut text = String::new();
    let mut sent = 0usize;
    let mut first: Option<Instant> = None;
    let (mut prompt_tokens, mut completion_tokens) = (0u32, 0u32);
    let mut finish = FinishReason::Stop;
    for item in tokens.try_iter()? {
        let (piece, prompt, generated, reason): (String, u32, u32, Option<String>) =
            item?.extract()?;
        first.get_or_insert_with(Instant::now);
        prompt_tokens = prompt;
        completion_tokens = generated;
        text.push_str(&piece);
        if cut_at_stop(&mut text, &request.stop) {
            finish = FinishReason::Stop;
            break;
        }
        if let Some(reason) = reason {
            finish = if reason == "length" {
                FinishReason::Length
            } else {
                FinishReason::Stop
            };
            break;
        }
        let safe = floor_char_boundary(&text, text.len().saturating_sub(hold));
        if safe > sent {
            if !send(Ok(Chunk::Delta(text[sent..safe].to_owned()))) {
                return Ok(()); // the reader left; stop generating
            }
            sent = safe;
        }
    }
    if text.len() > sent && !send(Ok(Chunk::Delta(text[sent..].to_owned()))) {
        return Ok(());
    }
    let end = Instant::now();
    send(Ok(Chunk::Done {
        finish_reason: finish,
        usage: usage(
            prompt_tokens,
            completion_tokens,
            received,
            first.unwrap_or(end),
            end,
        ),
    }));
    Ok(())
}

/// The conversation as the chat template takes it: each message's text, and
/// from the caller's own message the fields of tool use.
fn template_messages(request: &GenerationRequest) -> String {
    let list: Vec<Value> = request
        .messages
        .iter()
        .map(|m| {
            let mut out = serde_json::Map::new();
            out.insert("role".into(), role(m.role).into());
            out.insert("content".into(), m.content.clone().into());
            if let Some(wire) = m.wire.as_ref().and_then(Value::as_object) {
                for key in ["tool_calls", "tool_call_id"] {
                    if let Some(v) = wire.get(key).filter(|v| !v.is_null()) {
                        out.insert(key.into(), v.clone());
                    }
                }
            }
            Value::Object(out)
        })
        .collect();
    Value::Array(list).to_string()
}

/// One event of the runner's `rich` generator.
#[derive(Deserialize)]
struct RichEvent {
    #[serde(default)]
    done: bool,
    #[serde(default)]
    choices: Value,
    #[serde(default)]
    text: String,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
    /// Python's clock at the first token.
    #[serde(default)]
    first: Option<f64>,
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("length") => FinishReason::Length,
        Some("tool_calls") => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// Runs a request that asks more than plain chat: the runner samples with
/// mlx-lm's processors (and a grammar's mask) and answers OpenAI-shaped
/// choices, sent on as an upstream's are (`Chunk::Upstream`, `Generation::choices`).
fn run_rich(py: Python<'_>, runner: &Py<PyAny>, job: Job) -> PyResult<()> {
    let Job {
        request,
        out,
        received,
        incremental,
        ..
    } = job;
    let called = Instant::now();
    let clock = py.import("time")?.getattr("perf_counter")?;
    let called_py: f64 = clock.call0()?.extract()?;
    // Only the fields the runner honours: the others were refused already
    // or ask nothing (`store: false`, `service_tier: "auto"`).
    let extra: serde_json::Map<String, Value> = request
        .extra
        .iter()
        .filter(|(k, _)| {
            crate::capability::LOCAL_FIELDS.contains(&k.as_str())
                || matches!(
                    k.as_str(),
                    "tools" | "tool_choice" | "parallel_tool_calls" | "response_format"
                )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let extra = Value::Object(extra).to_string();
    let events = runner.bind(py).call_method1(
        "rich",
        (
            template_messages(&request),
            request.max_tokens,
            request.temperature,
            request.top_p,
            request.seed,
            request.enable_thinking,
            request.stop.clone(),
            extra,
            incremental,
        ),
    )?;
    let send = |chunk: Result<Chunk, EngineError>| py.detach(|| out.blocking_send(chunk).is_ok());
    let mut first: Option<Instant> = None;
    for item in events.try_iter()? {
        let line: String = item?.extract()?;
        let event: RichEvent = serde_json::from_str(&line).map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("the mlx runner's event: {e}"))
        })?;
        if !event.done {
            first.get_or_insert_with(Instant::now);
            if !send(Ok(Chunk::Upstream {
                text: event.text,
                choices: event.choices,
            })) {
                return Ok(()); // the reader left; stop generating
            }
            continue;
        }
        let end = Instant::now();
        // Python's clock marks the first token; place it on ours.
        let first = first.or_else(|| {
            event
                .first
                .map(|f| called + Duration::from_secs_f64((f - called_py).max(0.0)))
        });
        let usage = usage(
            event.prompt_tokens,
            event.completion_tokens,
            received,
            first.unwrap_or(end),
            end,
        );
        // A whole reply's message choices travel as one upstream chunk
        // before the end (see `collect_rich`).
        if !incremental
            && !send(Ok(Chunk::Upstream {
                text: event.text,
                choices: event.choices,
            }))
        {
            return Ok(());
        }
        send(Ok(Chunk::Done {
            finish_reason: finish_reason(event.finish_reason.as_deref()),
            usage,
        }));
        return Ok(());
    }
    send(Err(EngineError::Failed(
        "the mlx runner ended without an answer".into(),
    )));
    Ok(())
}

/// Why `repo`'s weights did not load, said so that the reader can fix it:
/// where they were looked for, and the command that fetches them.
fn load_failure(name: &str, repo: &str, error: &str) -> String {
    let local = std::path::Path::new(repo);
    if local.is_absolute() || repo.starts_with('.') || local.is_dir() {
        return format!(
            "model {name:?}: no weights could be loaded from the local directory {repo} ({error}); \
             point models.{name}.repo at a directory holding an MLX model"
        );
    }
    let cache = crate::registry::hub_cache().map_or_else(
        || "the Hugging Face cache".to_owned(),
        |c| c.display().to_string(),
    );
    format!(
        "model {name:?}: the weights of {repo} are not in {cache} and could not be fetched \
         ({error}); run `service models pull {name}` where the hub is reachable (it downloads \
         them into that cache), or set models.{name}.repo to a local directory"
    )
}

/// Downloads `repo` from the Hugging Face hub into the local cache (or
/// finds it there) with the venv's `huggingface_hub`; returns its snapshot
/// directory.
pub fn pull(repo: &str) -> Result<std::path::PathBuf, EngineError> {
    init_python().map_err(EngineError::Unavailable)?;
    Python::attach(|py| -> PyResult<String> {
        let hub = py.import("huggingface_hub")?;
        hub.getattr("snapshot_download")?.call1((repo,))?.extract()
    })
    .map(std::path::PathBuf::from)
    .map_err(|e| EngineError::Unavailable(format!("downloading {repo}: {e}")))
}

fn worker(
    name: String,
    repo: String,
    resident: bool,
    idle: Duration,
    jobs: mpsc::Receiver<Job>,
    state: Arc<AtomicU8>,
    counts: Arc<Load>,
) {
    // However the worker ends, nothing it was sent will run: no phantom queue
    // may go on overflowing the model.
    let _gone = Gone(counts.clone());
    let mut runner: Option<Py<PyAny>> = None;
    let try_load = |state: &AtomicU8| -> Result<Py<PyAny>, String> {
        state.store(LOADING, Ordering::SeqCst);
        let loaded = init_python().and_then(|()| {
            Python::attach(|py| load(py, &repo))
                .map_err(|e| load_failure(&name, &repo, &e.to_string()))
        });
        state.store(
            if loaded.is_ok() { LOADED } else { FAILED },
            Ordering::SeqCst,
        );
        if let Err(e) = &loaded {
            tracing::error!(error = %e, "mlx engine: model load failed");
        }
        loaded
    };
    if resident {
        runner = try_load(&state).ok();
    }
    loop {
        let job = if runner.is_some() && !resident {
            match jobs.recv_timeout(idle) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(r) = runner.take() {
                        Python::attach(|py| {
                            let _ = r.bind(py).call_method0("close");
                        });
                        state.store(UNLOADED, Ordering::SeqCst);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        // Counted from here to the job's end, whatever way it ends.
        counts.running.store(1, Ordering::SeqCst);
        let _finished = Finished(&counts);
        if runner.is_none() {
            match try_load(&state) {
                Ok(r) => runner = Some(r),
                Err(e) => {
                    let _ = job.out.blocking_send(Err(EngineError::Unavailable(e)));
                    continue;
                }
            }
        }
        if let Some(r) = &runner {
            let out = job.out.clone();
            let incremental = job.incremental;
            let rich = job.rich;
            let result = Python::attach(|py| {
                let ran = if rich {
                    run_rich(py, r, job)
                } else if incremental {
                    run_incremental(py, r, job)
                } else {
                    run_whole(py, r, job)
                };
                ran.map_err(|e| {
                    // The runner raises ValueError for requests the model
                    // cannot take (its template's rules): the caller's error.
                    if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) {
                        EngineError::InvalidRequest(e.value(py).to_string())
                    } else {
                        EngineError::Failed(e.to_string())
                    }
                })
            });
            if let Err(e) = result {
                let _ = out.blocking_send(Err(e));
            }
        }
    }
}

/// Clears the counts when the worker ends.
struct Gone(Arc<Load>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.running.store(0, Ordering::SeqCst);
        self.0.accepted.store(0, Ordering::SeqCst);
    }
}

/// Marks the worker's current job done when dropped.
struct Finished<'a>(&'a Load);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.running.store(0, Ordering::SeqCst);
        self.0.accepted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A rich reply sent whole: its one upstream chunk holds the message choices.
async fn collect_rich(mut stream: ChunkStream) -> Result<Generation, EngineError> {
    let (mut text, mut choices) = (String::new(), None);
    while let Some(chunk) = stream.next().await {
        match chunk? {
            Chunk::Delta(delta) => text.push_str(&delta),
            Chunk::Upstream {
                text: all,
                choices: list,
            } => {
                text = all;
                choices = Some(list);
            }
            Chunk::Done {
                finish_reason,
                usage,
            } => {
                return Ok(Generation {
                    text,
                    finish_reason,
                    usage,
                    choices,
                });
            }
        }
    }
    Err(EngineError::Failed(
        "the mlx worker ended without a finish reason".into(),
    ))
}

impl MlxEngine {
    fn submit(
        &self,
        request: GenerationRequest,
        incremental: bool,
        rich: bool,
    ) -> Result<ChunkStream, EngineError> {
        let (out, rx) = tmpsc::channel(64);
        self.load.accepted.fetch_add(1, Ordering::SeqCst);
        self.jobs
            .send(Job {
                request,
                out,
                received: Instant::now(),
                incremental,
                rich,
            })
            .map_err(|_| {
                self.load.accepted.fetch_sub(1, Ordering::SeqCst);
                EngineError::Unavailable("the mlx worker has stopped".into())
            })?;
        Ok(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        })
        .boxed())
    }

    /// Starts the model's worker; a resident model begins loading at once.
    pub fn new(name: &str, settings: &ModelSettings) -> Result<Self, EngineError> {
        let (jobs, rx) = mpsc::channel();
        let state = Arc::new(AtomicU8::new(UNLOADED));
        let worker_state = state.clone();
        let load = Arc::new(Load::default());
        let worker_load = load.clone();
        let repo = settings.repo.clone();
        let resident = settings.is_resident();
        let idle = Duration::from_secs(settings.idle_unload_secs);
        let model = name.to_owned();
        std::thread::Builder::new()
            .name(format!("mlx-{name}"))
            .spawn(move || worker(model, repo, resident, idle, rx, worker_state, worker_load))
            .map_err(|e| EngineError::Unavailable(format!("cannot start the mlx worker: {e}")))?;
        Ok(Self { jobs, state, load })
    }
}

#[async_trait::async_trait]
impl Engine for MlxEngine {
    fn kind(&self) -> &'static str {
        "mlx"
    }

    fn load_state(&self) -> LoadState {
        match self.state.load(Ordering::SeqCst) {
            LOADED => LoadState::Loaded,
            LOADING => LoadState::Loading,
            FAILED => LoadState::Failed,
            _ => LoadState::Unloaded,
        }
    }

    fn load(&self) -> Option<super::EngineLoad> {
        let accepted = self.load.accepted.load(Ordering::SeqCst);
        let running = self.load.running.load(Ordering::SeqCst).min(accepted);
        Some(super::EngineLoad {
            queued: accepted - running,
            running,
        })
    }

    async fn stream(&self, request: GenerationRequest) -> Result<ChunkStream, EngineError> {
        let rich = refuse_what_is_not_honoured(&request)?;
        self.submit(request, true, rich)
    }

    async fn generate(&self, request: GenerationRequest) -> Result<Generation, EngineError> {
        if refuse_what_is_not_honoured(&request)? {
            collect_rich(self.submit(request, false, true)?).await
        } else {
            super::collect(self.submit(request, false, false)?).await
        }
    }
}

/// Refuses what the engine does not honour; routing keeps such requests
/// away, and this holds the line for any other way in (a hosted·ai model
/// falling back to it). True when the request asks more than plain chat,
/// which the runner's `rich` path answers. Whether the model's template
/// renders tools is the runner's to say.
fn refuse_what_is_not_honoured(request: &GenerationRequest) -> Result<bool, EngineError> {
    use crate::capability::NeedKind;
    let needs = crate::capability::needs(&request.extra, &request.messages);
    let refused = needs.iter().find(|need| match need.kind {
        NeedKind::Tools => matches!(need.param.as_str(), "functions" | "function_call"),
        NeedKind::JsonSchema => false,
        NeedKind::Vision => true,
        NeedKind::Field => !crate::capability::LOCAL_FIELDS.contains(&need.param.as_str()),
    });
    match refused {
        Some(need) => Err(EngineError::InvalidRequest(format!(
            "{}: the mlx engine does not honour {}",
            need.param,
            match need.kind {
                NeedKind::Tools => "the legacy functions API; use tools",
                kind => kind.as_str(),
            }
        ))),
        None => Ok(!needs.is_empty()),
    }
}
