//! OpenTelemetry traces, off unless `telemetry.otlp_endpoint` (or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) is set: the tracing layer that turns spans
//! into OTLP/HTTP exports, the caller's W3C `traceparent`, and the GenAI
//! attributes the use cases put on a request's span.
//!
//! Off, no layer is installed: the spans made only for traces (target
//! [`orchestrator::SPANS`]) are disabled callsites and every function here
//! returns at its first check.

use crate::redact::redact;
use crate::settings::TelemetrySettings;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Status, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

/// Target of the request spans (this module's path before traces, kept so
/// log filters by target still match them); traces take them with the
/// spans of target [`orchestrator::SPANS`].
pub const REQUEST_SPAN_TARGET: &str = "service::middleware::trace";

static ENABLED: AtomicBool = AtomicBool::new(false);
static CAPTURE_CONTENT: AtomicBool = AtomicBool::new(false);

/// Whether traces are being exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporting pipeline, kept to flush it at shutdown.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// Sends the spans still batched and stops the exporter; call after the
    /// server has stopped, outside the async runtime (the exporter blocks).
    pub fn shutdown(self) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: flushing traces at shutdown failed: {e}");
        }
    }
}

/// The exporter and the layer feeding it, when `settings` turns traces on.
/// Call before the async runtime starts: the exporter's HTTP client is a
/// blocking one, on the batch processor's own thread.
pub fn pipeline<S>(
    settings: &TelemetrySettings,
) -> Result<Option<(impl Layer<S> + use<S>, Tracing)>, String>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(url) = settings.traces_url() else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .map_err(|e| format!("telemetry.otlp_endpoint: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("harpoon")
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build(),
        )
        .build();
    let tracer = provider.tracer("harpoon");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(filter_fn(|meta| {
            // Spans only (log events stay in the logs): each request's, and
            // those made for traces.
            meta.is_span()
                && (meta.target() == orchestrator::SPANS || meta.target() == REQUEST_SPAN_TARGET)
        }));
    ENABLED.store(true, Ordering::Relaxed);
    CAPTURE_CONTENT.store(settings.capture_content, Ordering::Relaxed);
    Ok(Some((layer, Tracing { provider })))
}

/// Makes `span` (a request's) a child of the caller's trace when the
/// request carries a W3C `traceparent`, and names its route.
pub fn continue_trace(span: &Span, headers: &http::HeaderMap, method: &str, route: &str) {
    if !enabled() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    // Fails only for a span already started, which a new one is not.
    let _ = span.set_parent(parent);
    span.set_attribute("http.request.method", method.to_owned());
    span.set_attribute("http.route", route.to_owned());
}

/// Notes a request's status on its span; a server error marks it failed.
pub fn responded(span: &Span, status: u16) {
    if !enabled() {
        return;
    }
    span.set_attribute("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.set_status(Status::error(format!("HTTP {status}")));
    }
}

/// The span of the request being served, to put GenAI attributes on; a
/// disabled span when traces are off.
pub fn request_span() -> Span {
    if enabled() {
        Span::current()
    } else {
        Span::none()
    }
}

/// Sets `key` on `span` (nothing when traces are off).
pub fn set(span: &Span, key: &'static str, value: impl Into<Value>) {
    if enabled() && !span.is_none() {
        span.set_attribute(key, value);
    }
}

/// Whether spans may carry conversation text (`telemetry.capture_content`).
pub fn capturing_content() -> bool {
    enabled() && CAPTURE_CONTENT.load(Ordering::Relaxed)
}

/// Sets `key` to `text` redacted as log lines are, only with
/// `telemetry.capture_content`.
pub fn set_content(span: &Span, key: &'static str, text: &str) {
    if capturing_content() && !span.is_none() {
        span.set_attribute(key, redact(text).into_owned());
    }
}

/// Request headers as the propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
