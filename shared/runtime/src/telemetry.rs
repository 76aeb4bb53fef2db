//! Logs and metrics. Pretty logs in development, JSON in production (or as configured); one
//! Prometheus recorder per process, shared by every service that runs in it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, RunMode, Settings};

/// Installs the global tracing subscriber. `RUST_LOG` wins over `log.level`. Calling it twice
/// (several services in one process, tests) keeps the first.
pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},lapin=warn,sqlx=warn", settings.log.level)));
    let json = match settings.log.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => settings.env == RunMode::Production,
    };
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
            .try_init()
    } else {
        registry.with(tracing_subscriber::fmt::layer()).try_init()
    };
}

/// The process's Prometheus handle, installed on first use.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => handle,
                // A recorder is already installed (by the embedding program): render our own.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// W3C `traceparent` for a message of the journey `correlation_id`: the trace id is the
/// correlation id, so every hop of one order shares one trace.
pub fn traceparent(correlation_id: uuid::Uuid) -> String {
    let span: u64 = rand_span_id();
    format!("00-{}-{span:016x}-01", correlation_id.simple())
}

fn rand_span_id() -> u64 {
    let id = uuid::Uuid::new_v4();
    let bytes = id.as_bytes();
    u64::from_le_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ]) | 1
}

/// The trace id carried in a `traceparent` header, if it is well formed.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (_, trace, _, _) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit())).then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_carries_the_journey_as_trace_id() {
        let correlation = uuid::Uuid::now_v7();
        let header = traceparent(correlation);
        assert_eq!(
            trace_id(&header),
            Some(correlation.simple().to_string().as_str())
        );
        assert_ne!(
            header,
            traceparent(correlation),
            "span ids differ per message"
        );
    }
}
