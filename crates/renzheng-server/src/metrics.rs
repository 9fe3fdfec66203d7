//! Prometheus metrics, one registry per running application (so test apps in one process
//! do not share counters).

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use renzheng_app::EngineObserver;
use renzheng_vision::StageTimings;

/// Labels of a served request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route template (`/faceidcard/check`) or `unmatched`.
    pub route: String,
    /// HTTP method: one of the standard ones, or `other` (see [`method_label`]).
    pub method: String,
    /// HTTP status.
    pub status: u16,
    /// Verification result code 1–8, or `none`.
    pub result: String,
}

/// A method as a label value: the standard methods by name, anything else `other`.
/// Methods are caller-controlled; a label per invented method would let a client grow
/// the metrics without bound.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Labels of a route's latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template.
    pub route: String,
}

/// Labels of an engine stage.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// decode, detect, landmarks, align or embed.
    pub stage: &'static str,
}

/// The application's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    stages: Family<StageLabels, Histogram>,
    saturated: Counter,
    auth_failures: Counter,
    in_flight: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("renzheng");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, status and result",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Request latency by route",
            latency.clone(),
        );
        let stages = Family::<StageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "engine_stage_duration_seconds",
            "Face engine time per stage",
            stages.clone(),
        );
        let saturated = Counter::default();
        registry.register(
            "engine_saturated",
            "Requests refused because the engine and its queue were full",
            saturated.clone(),
        );
        let auth_failures = Counter::default();
        registry.register(
            "auth_failures",
            "Check requests refused for a missing, unknown or disabled AppCode (not audited)",
            auth_failures.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being served",
            in_flight.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            stages,
            saturated,
            auth_failures,
            in_flight,
        }
    }

    /// Counts a served request.
    pub fn observe_request(&self, labels: RequestLabels, elapsed: Duration) {
        self.latency
            .get_or_create(&RouteLabels {
                route: labels.route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Records one analysis' stage times.
    pub fn observe_stages(&self, t: &StageTimings) {
        for (stage, d) in [
            ("decode", t.decode),
            ("detect", t.detect),
            ("landmarks", t.landmarks),
            ("align", t.align),
            ("embed", t.embed),
        ] {
            self.stages
                .get_or_create(&StageLabels { stage })
                .observe(d.as_secs_f64());
        }
    }

    /// Counts a 503 for saturation.
    pub fn saturated(&self) {
        self.saturated.inc();
    }

    /// Counts a check refused for its credentials.
    pub fn auth_failed(&self) {
        self.auth_failures.inc();
    }

    /// The in-flight gauge.
    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl EngineObserver for Metrics {
    fn analysed(&self, timings: &StageTimings) {
        self.observe_stages(timings);
    }

    fn saturated(&self) {
        Metrics::saturated(self);
    }
}
