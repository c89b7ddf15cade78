//! Logs (tracing) and metrics (Prometheus): their set-up and the metric names;
//! the per-request layers that feed them are in [`crate::middleware`].

use crate::redact::RedactingWriter;
use crate::settings::{LogFormat, ServiceSettings, TelemetrySettings};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use orchestrator::registry;
use orchestrator::registry::deployment;
use orchestrator::router::classifier::{CLASSIFICATION_SECONDS, CLASSIFICATIONS_TOTAL};
use orchestrator::router::sticky::STICKY_HOLDS_TOTAL;
use std::{io::IsTerminal, sync::OnceLock};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// Counter of finished requests by method, route template and status.
pub const REQUESTS_TOTAL: &str = "http_requests_total";
/// Histogram of time to response headers, in seconds, with the same labels.
pub const REQUEST_DURATION: &str = "http_request_duration_seconds";
/// Counter of error answers by route and error code (a closed set, so the
/// label stays bounded).
pub const REQUEST_ERRORS_TOTAL: &str = "harpoon_request_errors_total";
/// Route label of requests that matched no route: raw paths would let clients
/// grow the label set without bound.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// Counter of prompt tokens per model (and tenant, with `metrics.per_tenant`).
pub const PROMPT_TOKENS: &str = "harpoon_prompt_tokens_total";
/// Counter of completion tokens per model (and tenant, with `metrics.per_tenant`).
pub const COMPLETION_TOKENS: &str = "harpoon_completion_tokens_total";
/// Counter of inference requests per model, route, outcome and finish reason.
pub const MODEL_REQUESTS: &str = "harpoon_model_requests_total";
/// Gauge of inference requests being served per model.
pub const REQUESTS_IN_FLIGHT: &str = "harpoon_requests_in_flight";
/// Histogram of whole inference requests (a stream's last byte included) per route and model.
pub const INFERENCE_DURATION: &str = "harpoon_inference_duration_seconds";
/// Histogram of the gateway's own time per inference request (to the
/// response headers, less the time spent waiting on engines).
pub const GATEWAY_OVERHEAD: &str = "harpoon_gateway_overhead_seconds";
/// Counter of requests refused by a quota, by kind (`requests_per_minute`,
/// `max_concurrent`, `tokens_per_day`).
pub const QUOTA_REFUSALS: &str = "harpoon_quota_refusals_total";
/// Gauge: 1 when a model's weights are in memory or its remote engine is set
/// up, 0 otherwise, per model and engine.
pub const MODEL_LOADED: &str = "harpoon_model_loaded";
/// Gauge of the process's resident memory, in bytes (Linux).
pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// Gauge, always 1, labelled with the build's version.
pub const BUILD_INFO: &str = "harpoon_build_info";
/// Gauge of open client connections.
pub const OPEN_CONNECTIONS: &str = "harpoon_open_connections";
/// Counter of connections refused at `service.max_connections`.
pub const CONNECTIONS_REFUSED: &str = "harpoon_connections_refused_total";
/// Counter of fragment hygiene scores given (cycles, refinements' re-scores
/// and single scorings; from the cache or computed).
pub const FUSION_SCORED: &str = "harpoon_fusion_fragments_scored_total";
/// Counter of those scores answered from the score cache.
pub const FUSION_CACHE_HITS: &str = "harpoon_fusion_score_cache_hits_total";
/// Gauge of hygiene reports held in the score cache.
pub const FUSION_CACHE_ENTRIES: &str = "harpoon_fusion_score_cache_entries";
/// Counter of fragments envelope cycles absorbed.
pub const FUSION_ABSORBED: &str = "harpoon_fusion_fragments_absorbed_total";
/// Counter of fragments envelope cycles left pending (below the threshold
/// after their rounds, or unrefinable).
pub const FUSION_PENDING: &str = "harpoon_fusion_fragments_pending_total";
/// Counter of connections the service closed, by reason.
pub const CONNECTIONS_CLOSED: &str = "harpoon_connections_closed_total";

/// Counter of sign-in events (sign-ins, sign-outs, refusals), by provider and outcome.
pub const SIGNIN_EVENTS: &str = "harpoon_signin_events_total";

/// Every exported metric's name and help text (docs/observability.md lists them all).
pub fn catalogue() -> impl Iterator<Item = (&'static str, &'static str)> {
    CATALOGUE.iter().map(|(name, _, _, help)| (*name, *help))
}

/// How a metric is exported.
enum Kind {
    Counter,
    Gauge,
    Histogram(&'static [f64]),
}

/// Every metric the service exports: name, kind (with a histogram's
/// buckets), unit and help text. Each is described once at start-up, so
/// every series carries `# HELP` and `# TYPE` (promtool checks both).
const CATALOGUE: &[(&str, Kind, Option<metrics::Unit>, &str)] = {
    use Kind::{Counter, Gauge, Histogram};
    use metrics::Unit::{Bytes, Seconds};
    use orchestrator::hosted_ai::{client, manager, meter};
    &[
        (
            SIGNIN_EVENTS,
            Counter,
            None,
            "Sign-in events of people by provider and outcome (signed_in, signed_out, or the refusal)",
        ),
        (
            REQUESTS_TOTAL,
            Counter,
            None,
            "HTTP requests by method, route template and status",
        ),
        (
            REQUEST_DURATION,
            Histogram(LATENCY_BUCKETS),
            Some(Seconds),
            "Time to the response headers by method, route template and status",
        ),
        (
            REQUEST_ERRORS_TOTAL,
            Counter,
            None,
            "Error answers by route template and error code",
        ),
        (
            PROMPT_TOKENS,
            Counter,
            None,
            "Prompt tokens by model (and tenant with metrics.per_tenant)",
        ),
        (
            COMPLETION_TOKENS,
            Counter,
            None,
            "Completion tokens by model (and tenant with metrics.per_tenant)",
        ),
        (
            MODEL_REQUESTS,
            Counter,
            None,
            "Inference requests by model, route, outcome (ok, client_error, server_error, cancelled) and finish reason",
        ),
        (
            REQUESTS_IN_FLIGHT,
            Gauge,
            None,
            "Inference requests being served, by model",
        ),
        (
            INFERENCE_DURATION,
            Histogram(LATENCY_BUCKETS),
            Some(Seconds),
            "Whole inference requests, a stream's last byte included, by route and model",
        ),
        (
            GATEWAY_OVERHEAD,
            Histogram(OVERHEAD_BUCKETS),
            Some(Seconds),
            "The gateway's own time per inference request: to the response headers, less the time waiting on engines",
        ),
        (
            QUOTA_REFUSALS,
            Counter,
            None,
            "Requests refused by a tenant quota, by kind",
        ),
        (
            crate::quota_store::STORE_ERRORS,
            Counter,
            None,
            "Calls to the shared quota store (Redis/Valkey) that failed, by step and what admission did then",
        ),
        (
            MODEL_LOADED,
            Gauge,
            None,
            "1 when the model can answer at once (weights in memory, or a remote engine), else 0",
        ),
        (
            deployment::REQUESTS_TOTAL,
            Counter,
            None,
            "Requests sent to each deployment of a model, by why (primary, overflow, fallback)",
        ),
        (
            deployment::FAILURES_TOTAL,
            Counter,
            None,
            "Failures of each deployment that its circuit breaker counts (unreachable, 5xx, 429, timeout, no capacity)",
        ),
        (
            deployment::IN_FLIGHT,
            Gauge,
            None,
            "Requests each deployment is serving, queued in it included",
        ),
        (
            deployment::QUEUED,
            Gauge,
            None,
            "Requests waiting in each deployment's queue (for an upstream, those outstanding on it)",
        ),
        (
            deployment::RECENT_TTFT,
            Gauge,
            Some(Seconds),
            "Each deployment's mean time to first token over its model's overflow window (the overflow trigger's measure)",
        ),
        (
            deployment::BREAKER_OPEN,
            Gauge,
            None,
            "1 while a deployment's circuit breaker keeps it out of rotation, else 0",
        ),
        (
            RESIDENT_MEMORY,
            Gauge,
            Some(Bytes),
            "Resident memory of the service process (models loaded in process included)",
        ),
        (
            BUILD_INFO,
            Gauge,
            None,
            "Always 1; the version label names the build",
        ),
        (OPEN_CONNECTIONS, Gauge, None, "Open client connections"),
        (
            CONNECTIONS_REFUSED,
            Counter,
            None,
            "Connections refused at service.max_connections",
        ),
        (
            CONNECTIONS_CLOSED,
            Counter,
            None,
            "Connections the service closed, by reason",
        ),
        (
            CLASSIFICATIONS_TOTAL,
            Counter,
            None,
            "Router decisions by category and tier",
        ),
        (
            CLASSIFICATION_SECONDS,
            Histogram(CLASSIFICATION_BUCKETS),
            Some(Seconds),
            "Time the router takes to classify one prompt",
        ),
        (
            STICKY_HOLDS_TOTAL,
            Counter,
            None,
            "Routed requests held on the large tier by a sticky conversation",
        ),
        (
            registry::REQUEST_SECONDS,
            Histogram(LATENCY_BUCKETS),
            Some(Seconds),
            "Whole generation time per model, at the engine",
        ),
        (
            registry::TTFT_SECONDS,
            Histogram(LATENCY_BUCKETS),
            Some(Seconds),
            "Time to the first generated token per model",
        ),
        (
            registry::INTER_TOKEN_SECONDS,
            Histogram(INTER_TOKEN_BUCKETS),
            Some(Seconds),
            "Time between streamed chunks per model",
        ),
        (
            registry::GENERATED_TOKENS,
            Counter,
            None,
            "Tokens generated per model, as the engine counted them",
        ),
        (
            registry::TOKENS_PER_SECOND,
            Histogram(TOKENS_PER_SECOND_BUCKETS),
            None,
            "Generation speed per model, tokens per second",
        ),
        (
            manager::ALLOCATIONS,
            Counter,
            None,
            "hosted·ai subscriptions attempted, by pool and outcome",
        ),
        (
            manager::ALLOCATION_SECONDS,
            Histogram(LATENCY_BUCKETS),
            Some(Seconds),
            "Time from subscribing to a pool to a serving pod, by pool",
        ),
        (
            manager::ACTIVE_SUBSCRIPTIONS,
            Gauge,
            None,
            "hosted·ai subscriptions this process holds",
        ),
        (
            client::CIRCUIT_OPEN,
            Gauge,
            None,
            "1 while the circuit breaker towards a hosted·ai pool (or the panel) is open",
        ),
        (
            meter::VGPU_SECONDS,
            Gauge,
            Some(Seconds),
            "vGPU-seconds metered on hosted·ai, by model",
        ),
        (
            meter::ESTIMATED_COST,
            Gauge,
            None,
            "Estimated hosted·ai cost in the pool's currency, by model",
        ),
        (
            FUSION_SCORED,
            Counter,
            None,
            "Fragment hygiene scores given, from the cache or computed",
        ),
        (
            FUSION_CACHE_HITS,
            Counter,
            None,
            "Fragment hygiene scores answered from the score cache",
        ),
        (
            FUSION_CACHE_ENTRIES,
            Gauge,
            None,
            "Hygiene reports held in the score cache",
        ),
        (
            FUSION_ABSORBED,
            Counter,
            None,
            "Fragments absorbed by envelope cycles",
        ),
        (
            FUSION_PENDING,
            Counter,
            None,
            "Fragments envelope cycles left pending",
        ),
        (
            meter::POOL_VGPU_SECONDS,
            Gauge,
            Some(Seconds),
            "vGPU-seconds metered on hosted·ai, by pool (every model's)",
        ),
        (
            meter::POOL_ESTIMATED_COST,
            Gauge,
            None,
            "Estimated hosted·ai cost in the pool's currency, by pool (every model's)",
        ),
    ]
};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

/// Classification takes microseconds; these buckets resolve that range.
const CLASSIFICATION_BUCKETS: &[f64] = &[
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 1e-2,
];

/// The gateway's own time is sub-millisecond when all is well.
const OVERHEAD_BUCKETS: &[f64] = &[
    5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.5,
];

/// Between two streamed tokens: milliseconds on a GPU, tens on a CPU.
const INTER_TOKEN_BUCKETS: &[f64] = &[
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5,
];

const TOKENS_PER_SECOND_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0,
];

/// Installs the global log subscriber from `service.log_level` and
/// `log_format`, with the OpenTelemetry layer when `telemetry` turns traces
/// on; the returned pipeline is to be shut down after serving (it flushes).
pub fn init_logging(
    settings: &ServiceSettings,
    telemetry: &TelemetrySettings,
) -> Result<Option<crate::otel::Tracing>, String> {
    init_logging_to(
        settings,
        std::io::stdout,
        std::io::stdout().is_terminal(),
        telemetry,
    )
}

/// The same on stderr, for `service mcp --stdio`, whose stdout carries the
/// protocol (no traces there).
pub fn init_logging_stderr(settings: &ServiceSettings) -> Result<(), String> {
    init_logging_to(
        settings,
        std::io::stderr,
        std::io::stderr().is_terminal(),
        &TelemetrySettings::default(),
    )
    .map(drop)
}

fn init_logging_to<W>(
    settings: &ServiceSettings,
    out: W,
    terminal: bool,
    telemetry: &TelemetrySettings,
) -> Result<Option<crate::otel::Tracing>, String>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Clone + Send + Sync + 'static,
{
    // Spans made only for traces never reach the log; with traces off no
    // layer wants them, so their callsites stay disabled.
    let filter = EnvFilter::try_new(&settings.log_level)
        .map_err(|e| e.to_string())?
        .add_directive(
            format!("{}=off", orchestrator::SPANS)
                .parse()
                .map_err(|e| format!("{e}"))?,
        );
    // Every line passes the redactor: whatever a field carries, user text
    // such as emails or keys never reaches the log.
    let writer = || RedactingWriter::new(out.clone());
    // The log filter is the log layer's own, so a quiet log level does not
    // silence the spans traces are made of.
    let logs = match settings.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(terminal)
            .with_writer(writer())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer())
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(logs.with_filter(filter));
    let (result, tracing) = match crate::otel::pipeline(telemetry)? {
        Some((layer, tracing)) => (registry.with(layer).try_init(), Some(tracing)),
        None => (registry.try_init(), None),
    };
    result.map_err(|e| e.to_string())?;
    Ok(tracing)
}

/// The process-wide Prometheus recorder, installed on first use.
///
/// A process has one global recorder; a `OnceLock` lets several routers (as in
/// tests) share it instead of failing on a second install.
pub fn prometheus() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new();
            for (name, kind, _, _) in CATALOGUE {
                if let Kind::Histogram(buckets) = kind {
                    builder = builder
                        .set_buckets_for_metric(Matcher::Full((*name).into()), buckets)
                        .map_err(|e| e.to_string())?;
                }
            }
            let handle = builder.install_recorder().map_err(|e| e.to_string())?;
            for (name, kind, unit, help) in CATALOGUE {
                match (kind, unit) {
                    (Kind::Counter, Some(u)) => metrics::describe_counter!(*name, *u, *help),
                    (Kind::Counter, None) => metrics::describe_counter!(*name, *help),
                    (Kind::Gauge, Some(u)) => metrics::describe_gauge!(*name, *u, *help),
                    (Kind::Gauge, None) => metrics::describe_gauge!(*name, *help),
                    (Kind::Histogram(_), Some(u)) => metrics::describe_histogram!(*name, *u, *help),
                    (Kind::Histogram(_), None) => metrics::describe_histogram!(*name, *help),
                }
            }
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Ok(handle)
        })
        .clone()
}

/// Sets the gauges read from live state rather than counted as things
/// happen: whether each model can answer at once, and the process's resident
/// memory. Called before each scrape.
pub fn sample(registry: &registry::Registry, fusion: &harpoon_core::HarpoonEngine) {
    let scores = fusion.score_stats();
    metrics::counter!(FUSION_SCORED).absolute(scores.scored);
    metrics::counter!(FUSION_CACHE_HITS).absolute(scores.cache_hits);
    metrics::gauge!(FUSION_CACHE_ENTRIES).set(fusion.cached() as f64);
    for model in registry.iter() {
        let status = model.status();
        let ready = status.available
            && matches!(
                status.load_state,
                Some(
                    orchestrator::engine::LoadState::Loaded
                        | orchestrator::engine::LoadState::Remote
                )
            );
        metrics::gauge!(MODEL_LOADED, "model" => status.name, "engine" => status.engine)
            .set(if ready { 1.0 } else { 0.0 });
        let now = std::time::Instant::now();
        for d in model.deployment_list() {
            let labels = [
                ("model", d.model().to_owned()),
                ("deployment", d.name().to_owned()),
            ];
            metrics::gauge!(deployment::IN_FLIGHT, &labels).set(d.in_flight() as f64);
            metrics::gauge!(deployment::QUEUED, &labels).set(d.queued() as f64);
            metrics::gauge!(deployment::BREAKER_OPEN, &labels).set(if d.is_ejected(now) {
                1.0
            } else {
                0.0
            });
            // 0 once the window holds no request: a stale mean would keep alerts firing.
            let ttft = d.recent_ttft(model.overflow_window(), now);
            metrics::gauge!(deployment::RECENT_TTFT, &labels)
                .set(ttft.map_or(0.0, |t| t.as_secs_f64()));
        }
    }
    if let Some(bytes) = resident_bytes() {
        metrics::gauge!(RESIDENT_MEMORY).set(bytes as f64);
    }
}

/// `VmRSS` of /proc/self/status (Linux; a procfs read, served from memory).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_observability_page_lists_every_metric_once_in_its_table() {
        let page = include_str!("../../../docs/observability.md");
        for (name, help) in catalogue() {
            assert!(!help.is_empty(), "{name} has help text");
            let rows = page
                .lines()
                .filter(|l| l.starts_with(&format!("| `{name}` |")))
                .count();
            assert_eq!(rows, 1, "docs/observability.md: one table row for {name}");
        }
        let names: std::collections::BTreeSet<_> = catalogue().map(|(n, _)| n).collect();
        assert_eq!(
            names.len(),
            CATALOGUE.len(),
            "each metric once in the catalogue"
        );
    }
}
