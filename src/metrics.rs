//! Prometheus metrics of every part, in one registry. Each part gets the handles it increments from
//! here; `/metrics` on the admin listener renders the registry in the text format. Every metric is
//! named `deskline_*`. Counters are lock-free atomics, so the REGISTER path pays a few nanoseconds.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum TransportLabel {
    udp,
    tcp,
    tls,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    pub transport: TransportLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    pub vendor: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// Which of the store's two writers: the bindings journal or the SQLite directory.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum StorePart {
    bindings,
    directory,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    pub store: StorePart,
}

/// Every metric deskline exports.
pub struct Metrics {
    pub registry: Registry,
    /// Current bindings, by the transport they came over.
    pub registrations: Family<TransportLabels, Gauge>,
    /// Final answers to REGISTER, by status code.
    pub register_responses: Family<StatusLabels, Counter>,
    /// Digest checks that failed (wrong password, unknown user, replay).
    pub auth_failures: Counter,
    /// Time from receiving a SIP request to sending its final answer, in seconds.
    pub request_latency: Histogram,
    /// Config fetches by vendor and outcome (`ok`, `unauthorized`, `not_found`, `error`).
    pub config_fetches: Family<FetchLabels, Counter>,
    /// NOTIFYs deskline sent to phones, by outcome (`ok`, `failed`, `timeout`).
    pub notify_outcomes: Family<OutcomeLabels, Counter>,
    /// Open TCP/TLS connections, by transport.
    pub open_connections: Family<TransportLabels, Gauge>,
    /// Time one group commit of the store takes, in seconds.
    pub store_commit_latency: Histogram,
    /// Operations written per group commit.
    pub store_batch_size: Histogram,
    /// Group commits the store could not write (a full or failing disk), by writer; every
    /// request in them was refused. Anything above zero wants an operator.
    pub store_write_failures: Family<StoreLabels, Counter>,
    /// SIP messages refused before processing (malformed, overload).
    pub sip_rejected: Family<StatusLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("deskline");
        let registrations = Family::<TransportLabels, Gauge>::default();
        registry.register("registrations", "Current bindings in the location table", registrations.clone());
        let register_responses = Family::<StatusLabels, Counter>::default();
        registry.register("register_responses", "Final answers to REGISTER by status code", register_responses.clone());
        let auth_failures = Counter::default();
        registry.register("auth_failures", "Failed digest authentications", auth_failures.clone());
        let request_latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "sip_request_latency_seconds",
            "Time from a SIP request to its final answer",
            request_latency.clone(),
        );
        let config_fetches = Family::<FetchLabels, Counter>::default();
        registry.register("config_fetches", "Provisioning fetches by vendor and outcome", config_fetches.clone());
        let notify_outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register("notify", "NOTIFY requests sent to phones by outcome", notify_outcomes.clone());
        let open_connections = Family::<TransportLabels, Gauge>::default();
        registry.register("open_connections", "Open SIP stream connections", open_connections.clone());
        let store_commit_latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register("store_commit_latency_seconds", "Duration of one group commit", store_commit_latency.clone());
        let store_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register("store_batch_size", "Operations per group commit", store_batch_size.clone());
        let store_write_failures = Family::<StoreLabels, Counter>::default();
        registry.register(
            "store_write_failures",
            "Group commits the store could not write; their requests were refused",
            store_write_failures.clone(),
        );
        let sip_rejected = Family::<StatusLabels, Counter>::default();
        registry.register("sip_rejected", "SIP requests refused before processing", sip_rejected.clone());
        Metrics {
            registry,
            registrations,
            register_responses,
            auth_failures,
            request_latency,
            config_fetches,
            notify_outcomes,
            open_connections,
            store_commit_latency,
            store_batch_size,
            store_write_failures,
            sip_rejected,
        }
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.register_responses.get_or_create(&StatusLabels { status: 200 }).inc();
        m.registrations.get_or_create(&TransportLabels { transport: TransportLabel::udp }).set(3);
        let text = m.render();
        assert!(text.contains("deskline_register_responses_total{status=\"200\"} 1"), "{text}");
        assert!(text.contains("deskline_registrations{transport=\"udp\"} 3"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
