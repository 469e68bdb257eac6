//! Logs and traces: the `tracing` subscriber every command runs under, and
//! the optional OpenTelemetry export.
//!
//! Logs: human text by default (colour on a terminal), one JSON object per
//! line with `VBRIDGE_LOG_FORMAT=json`; `VBRIDGE_LOG` filters.
//!
//! Traces (off unless `VBRIDGE_OTLP_ENDPOINT` is set): the bridge's
//! `tracing` spans become OpenTelemetry spans (`tracing-opentelemetry`),
//! exported over OTLP/HTTP (JSON) to `{endpoint}/v1/traces`; the Temporal
//! SDK's OpenTelemetry plugin (installed on the client, so on the worker
//! too) carries the context through signal-with-start into the workflow and
//! its activities. A delivery's trace id is the OpenTelemetry trace id
//! ([`otel_trace_id`]), so the webhook's span, the relay's and the
//! workflow's all belong to the trace the logs and the timeline name.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider};
use sha2::{Digest, Sha256};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

const DEFAULT_FILTER: &str = "info,temporalio_sdk_core=warn,temporalio_sdk=warn,temporalio_client=warn,sqlx=warn,h2=warn,tower=warn,hyper=warn,opentelemetry_sdk=warn,reqwest=warn";

/// Keeps the trace exporter alive; flushes what is buffered when dropped.
pub struct Guard(Option<opentelemetry_sdk::trace::SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("vbridge: flushing traces failed: {e}");
        }
    }
}

/// Whether traces are exported (the Temporal client then gets the plugin).
/// Read once: every webhook asks.
pub fn tracing_enabled() -> bool {
    static ENABLED: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::env::var("VBRIDGE_OTLP_ENDPOINT").is_ok_and(|v| !v.trim().is_empty()));
    *ENABLED
}

/// Install the subscriber (and the exporter, when configured).
pub fn init() -> Guard {
    let filter = EnvFilter::try_from_env("VBRIDGE_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    use std::io::IsTerminal;
    let json = std::env::var("VBRIDGE_LOG_FORMAT").as_deref() == Ok("json");
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt: Box<dyn Layer<_> + Send + Sync> =
        if json { Box::new(fmt.json()) } else { Box::new(fmt.with_ansi(std::io::stderr().is_terminal())) };
    let (otel, provider) = match otlp_provider() {
        Ok(Some(p)) => {
            let layer = tracing_opentelemetry::layer().with_tracer(p.tracer("vbridge"));
            (Some(layer), Some(p))
        }
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("vbridge: OpenTelemetry export not started: {e}");
            (None, None)
        }
    };
    tracing_subscriber::registry().with(filter).with(fmt).with(otel).init();
    Guard(provider)
}

fn otlp_provider() -> Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>, String> {
    if !tracing_enabled() {
        return Ok(None);
    }
    let endpoint = std::env::var("VBRIDGE_OTLP_ENDPOINT").unwrap_or_default();
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpJson)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_headers(Default::default())
        .build()
        .map_err(|e| e.to_string())?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        // Replay-safe ids for workflow spans (the SDK plugin's requirement).
        .with_id_generator(temporalio_sdk::opentelemetry::WorkflowIdGenerator::default())
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name("vbridge").build())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    Ok(Some(provider))
}

/// The OpenTelemetry trace id of a bridge trace id: itself when it is 32 hex
/// characters (ours are; W3C's are), else the first 16 bytes of its SHA-256.
pub fn otel_trace_id(trace_id: &str) -> TraceId {
    if trace_id.len() == 32
        && let Ok(id) = TraceId::from_hex(trace_id)
        && id != TraceId::INVALID
    {
        return id;
    }
    let h = Sha256::digest(trace_id.as_bytes());
    TraceId::from_bytes(h[..16].try_into().expect("16 bytes"))
}

/// Make `span` part of the delivery's trace, before it is entered: its
/// parent is a remote span of that trace (`what` names which, so two places
/// of one trace get different parent ids). A no-op without the exporter.
pub fn join_trace(span: &tracing::Span, trace_id: &str, what: &str) {
    if !tracing_enabled() {
        return;
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let h = Sha256::digest(format!("{trace_id}\n{what}").as_bytes());
    let span_id = SpanId::from_bytes(h[..8].try_into().expect("8 bytes"));
    let parent = SpanContext::new(otel_trace_id(trace_id), span_id, TraceFlags::SAMPLED, true, TraceState::default());
    let cx = opentelemetry::Context::new().with_remote_span_context(parent);
    let _ = span.set_parent(cx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridge_trace_id_is_its_otel_trace_id() {
        let ours = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(otel_trace_id(ours).to_string(), ours);
        let other = otel_trace_id("req-7");
        assert_ne!(other, TraceId::INVALID);
        assert_eq!(other, otel_trace_id("req-7"), "stable");
    }
}
