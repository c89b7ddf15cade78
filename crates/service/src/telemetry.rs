//! Logs (tracing) and metrics (Prometheus): their set-up and the metric names;
//! the per-request layers that feed them are in [`crate::middleware`].

use crate::redact::RedactingWriter;
use crate::settings::{LogFormat, ServiceSettings};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use orchestrator::registry;
use orchestrator::router::classifier::{CLASSIFICATION_SECONDS, CLASSIFICATIONS_TOTAL};
use orchestrator::router::sticky::STICKY_HOLDS_TOTAL;
use std::{io::IsTerminal, sync::OnceLock};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

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

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

/// Classification takes microseconds; these buckets resolve that range.
const CLASSIFICATION_BUCKETS: &[f64] = &[
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 1e-2,
];

const TOKENS_PER_SECOND_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0,
];

/// Installs the global log subscriber from `service.log_level` and `log_format`.
pub fn init_logging(settings: &ServiceSettings) -> Result<(), String> {
    init_logging_to(settings, std::io::stdout, std::io::stdout().is_terminal())
}

/// The same on stderr, for `service mcp --stdio`, whose stdout carries the protocol.
pub fn init_logging_stderr(settings: &ServiceSettings) -> Result<(), String> {
    init_logging_to(settings, std::io::stderr, std::io::stderr().is_terminal())
}

fn init_logging_to<W>(settings: &ServiceSettings, out: W, terminal: bool) -> Result<(), String>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Clone + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.log_level).map_err(|e| e.to_string())?;
    let registry = tracing_subscriber::registry().with(filter);
    // Every line passes the redactor: whatever a field carries, user text
    // such as emails or keys never reaches the log.
    let writer = || RedactingWriter::new(out.clone());
    let result = match settings.log_format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(terminal)
                    .with_writer(writer()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(writer()),
            )
            .try_init(),
    };
    result.map_err(|e| e.to_string())
}

/// The process-wide Prometheus recorder, installed on first use.
///
/// A process has one global recorder; a `OnceLock` lets several routers (as in
/// tests) share it instead of failing on a second install.
pub fn prometheus() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), LATENCY_BUCKETS)
                .map_err(|e| e.to_string())?
                .set_buckets_for_metric(
                    Matcher::Full(CLASSIFICATION_SECONDS.into()),
                    CLASSIFICATION_BUCKETS,
                )
                .map_err(|e| e.to_string())?
                .set_buckets_for_metric(
                    Matcher::Full(registry::REQUEST_SECONDS.into()),
                    LATENCY_BUCKETS,
                )
                .map_err(|e| e.to_string())?
                .set_buckets_for_metric(
                    Matcher::Full(registry::TTFT_SECONDS.into()),
                    LATENCY_BUCKETS,
                )
                .map_err(|e| e.to_string())?
                .set_buckets_for_metric(
                    Matcher::Full(registry::TOKENS_PER_SECOND.into()),
                    TOKENS_PER_SECOND_BUCKETS,
                )
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| e.to_string())?;
            metrics::describe_counter!(REQUESTS_TOTAL, "HTTP requests by method, route and status");
            metrics::describe_histogram!(
                REQUEST_DURATION,
                metrics::Unit::Seconds,
                "Time to response headers by method, route and status"
            );
            metrics::describe_counter!(
                REQUEST_ERRORS_TOTAL,
                "Error answers by route and error code"
            );
            metrics::describe_counter!(CLASSIFICATIONS_TOTAL, "Router decisions by category");
            metrics::describe_counter!(
                STICKY_HOLDS_TOTAL,
                "Routed requests held on the large tier by a sticky conversation"
            );
            metrics::describe_histogram!(
                CLASSIFICATION_SECONDS,
                metrics::Unit::Seconds,
                "Time the router takes to classify one prompt"
            );
            metrics::describe_histogram!(
                registry::REQUEST_SECONDS,
                metrics::Unit::Seconds,
                "Whole generation time per model"
            );
            metrics::describe_histogram!(
                registry::TTFT_SECONDS,
                metrics::Unit::Seconds,
                "Time to the first generated token per model"
            );
            metrics::describe_counter!(registry::GENERATED_TOKENS, "Tokens generated per model");
            metrics::describe_histogram!(
                registry::TOKENS_PER_SECOND,
                "Generation speed per model, tokens per second"
            );
            metrics::gauge!("harpoon_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Ok(handle)
        })
        .clone()
}
