//! Prometheus metrics, one registry per running application (so test apps in one process
//! do not share counters).
//!
//! A scrape is the registry's live counters plus what is read at scrape time
//! ([`Scrape`]): the process (from `/proc/self`), the build and its model pack, and each
//! app's remaining quota. It is answered in the format the scraper asks for
//! ([`Format::negotiate`]): OpenMetrics, as `prometheus-client` encodes it, or the classic
//! Prometheus text format 0.0.4, converted from it ([`openmetrics_to_classic`]).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use renzheng_app::{App, EngineObserver};
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
            "HTTP requests answered, by route template (or unmatched), method, status and verification result (none outside checks)",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Seconds from a request's arrival to its response head, by route template",
            latency.clone(),
        );
        let stages = Family::<StageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "engine_stage_duration_seconds",
            "Seconds of face engine work per photo analysed for a check or a comparison (not enrolments), by stage",
            stages.clone(),
        );
        let saturated = Counter::default();
        registry.register(
            "engine_saturated",
            "Engine jobs refused as busy (checks, comparisons, enrolments): every slot taken and the queue full, or the wait for a slot over limits.queue_timeout_ms",
            saturated.clone(),
        );
        let auth_failures = Counter::default();
        registry.register(
            "auth_failures",
            "Check requests refused for their credentials, not audited: a missing, unknown or disabled AppCode or AppKey, or a signed request that does not verify (signature, signed headers, timestamp, Content-MD5, a nonce used before)",
            auth_failures.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served now (this scrape included)",
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

    /// The metrics and `scrape`, in `format`.
    pub fn render(&self, scrape: &Scrape, format: Format) -> String {
        let mut out = String::new();
        {
            let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
            encode_registry(&mut out, &registry).expect("writing to a String cannot fail");
        }
        encode_registry(&mut out, &scrape.registry()).expect("writing to a String cannot fail");
        match format {
            Format::OpenMetrics => {
                encode_eof(&mut out).expect("writing to a String cannot fail");
                out
            }
            Format::Classic => openmetrics_to_classic(&out),
        }
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

/// The formats `/metrics` answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0.0 text, what Prometheus asks for first.
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4, for everything else: parsers that know
    /// only it read OpenMetrics counters (`# TYPE x counter` over `x_total` samples) as
    /// untyped.
    Classic,
}

impl Format {
    /// The format for an `Accept` header (its values joined with commas; empty when
    /// absent): OpenMetrics when `application/openmetrics-text` is accepted with a
    /// quality at least that of the classic format's `text/plain`, `text/*` or `*/*`;
    /// the classic format otherwise. A wildcard alone never selects OpenMetrics: a
    /// client that did not name it may not parse it.
    pub fn negotiate(accept: &str) -> Format {
        let mut openmetrics = 0.0_f32;
        let mut classic = 0.0_f32;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let mut quality = 1.0_f32;
            for parameter in parts {
                if let Some((key, value)) = parameter.split_once('=') {
                    if key.trim().eq_ignore_ascii_case("q") {
                        // An unreadable quality is no preference for this range.
                        quality = value
                            .trim()
                            .parse::<f32>()
                            .ok()
                            .filter(|q| q.is_finite())
                            .map_or(0.0, |q| q.clamp(0.0, 1.0));
                    }
                }
            }
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                openmetrics = openmetrics.max(quality);
            } else if ["text/plain", "text/*", "*/*"]
                .iter()
                .any(|m| media.eq_ignore_ascii_case(m))
            {
                classic = classic.max(quality);
            }
        }
        if openmetrics > 0.0 && openmetrics >= classic {
            Format::OpenMetrics
        } else {
            Format::Classic
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The most apps whose quota a scrape reports. Each is one balance query, so a scrape
/// of a deployment with tens of thousands of apps would take seconds and grow the
/// output without bound; past this, the oldest apps are reported and a warning says so.
pub const MAX_QUOTA_APPS: usize = 1000;

/// The version of this server, as `renzheng_build_info` reports it.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Labels of `renzheng_build_info`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    pack: String,
}

/// Labels of `renzheng_app_quota_remaining`: the app's id only (never its name, which
/// an operator chose and which may say who the customer is).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    app_id: String,
}

/// What a scrape reads when it happens, rather than counts as it goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// The model pack the engine was built from: the manifest's `pack_id`; the engine's
    /// model id for an engine built without a pack (the tests' colour engine); `none`
    /// before the engine is loaded.
    pub pack: String,
    /// Calls left per enabled app, `(app id, calls)`; `None` when metering is off (no
    /// app needs quota, so the number would mean nothing) or the store did not answer.
    pub quotas: Option<Vec<(String, i64)>>,
    /// The process.
    pub process: ProcessStats,
    /// Checks this node refused at admission since it started, per reason
    /// (`quota_exhausted`, `quota_expired`, `throttled`): counted here, not audited.
    pub refused_checks: Vec<(&'static str, u64)>,
    /// The registry against the filing line; `None` when the store did not answer.
    pub compliance: Option<renzheng_app::ComplianceStatus>,
}

impl Scrape {
    /// Reads everything a scrape reports now. Never fails: what cannot be read is left
    /// out of the answer (and a store that does not answer is logged), so that the
    /// metrics that could be read still arrive.
    pub async fn collect(app: &App) -> Scrape {
        let pack = app.loaded_engine().map_or_else(
            || "none".to_owned(),
            |engine| match engine.manifest() {
                Some(manifest) => manifest.pack_id.clone(),
                None => engine.model_id().to_owned(),
            },
        );
        let quotas = if app.settings().metering.enabled {
            match app.remaining_quotas(MAX_QUOTA_APPS).await {
                Ok((quotas, enabled)) => {
                    if enabled > quotas.len() {
                        warn_quotas_capped(enabled);
                    }
                    Some(
                        quotas
                            .into_iter()
                            .map(|(id, remaining)| (id.to_string(), remaining))
                            .collect(),
                    )
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: reading the apps' quotas failed");
                    None
                }
            }
        } else {
            None
        };
        let compliance = match app.recent_compliance_status().await {
            Ok(status) => Some(status),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: reading the compliance status failed");
                None
            }
        };
        Scrape {
            pack,
            quotas,
            compliance,
            process: ProcessStats::read(),
            refused_checks: app
                .refused_checks()
                .into_iter()
                .map(|(reason, count)| (reason.label(), count))
                .collect(),
        }
    }

    /// A registry holding this scrape's values, to encode after the live one.
    fn registry(&self) -> Registry {
        let mut registry = Registry::default();
        let p = &self.process;
        // The standard names of Prometheus' process collector, so dashboards made for
        // any exporter work (its HELP texts too; prometheus-client adds the period).
        if let Some(v) = p.cpu_seconds {
            registry.register(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                ConstCounter::new(v),
            );
        }
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                p.resident_memory_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                p.virtual_memory_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                p.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                p.max_fds,
            ),
        ] {
            if let Some(v) = value {
                registry.register(name, help, ConstGauge::new(v));
            }
        }
        if let Some(v) = p.start_time_seconds {
            registry.register(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                ConstGauge::new(v),
            );
        }
        let renzheng = registry.sub_registry_with_prefix("renzheng");
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: VERSION.to_owned(),
                pack: self.pack.clone(),
            })
            .set(1);
        renzheng.register(
            "build_info",
            "Always 1: the server's version and the model pack its engine was loaded from",
            build,
        );
        if let Some(quotas) = &self.quotas {
            let family = Family::<QuotaLabels, Gauge>::default();
            for (app_id, remaining) in quotas {
                family
                    .get_or_create(&QuotaLabels {
                        app_id: app_id.clone(),
                    })
                    .set(*remaining);
            }
            renzheng.register(
                "app_quota_remaining",
                "Calls left now in each enabled app's unexpired grants (units held by checks in flight count as used)",
                family,
            );
        }
        register_refused_checks(renzheng, &self.refused_checks);
        if let Some(c) = &self.compliance {
            let as_gauge = |n: u64| ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
            renzheng.register(
                "compliance_persons_with_face_data",
                "Persons with face information stored (at least one portrait), counted against the filing line",
                as_gauge(c.persons_with_face_data),
            );
            renzheng.register(
                "compliance_filing_threshold",
                "The filing line (compliance.filing_threshold; order No. 19 sets 100,000 persons)",
                as_gauge(c.filing_threshold),
            );
            renzheng.register(
                "compliance_filing_line_reached",
                "1 while the registry holds face data of at least the filing line's persons (a filing with the provincial CAC is due within 30 working days of reaching it)",
                as_gauge(u64::from(c.reached_at.is_some())),
            );
            renzheng.register(
                "compliance_persons_without_basis",
                "Persons with face data but no recorded legal basis (renzheng registry basis records one)",
                as_gauge(c.persons_without_basis),
            );
            renzheng.register(
                "compliance_persons_past_retention",
                "Persons the registry's retention has come to and not purged yet (registry.retention_days, registry.inactive_days; the server purges hourly)",
                as_gauge(c.persons_past_retention),
            );
        }
        registry
    }
}

/// Labels of `renzheng_checks_refused_total`: one of the three admission refusals.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    reason: &'static str,
}

/// `renzheng_checks_refused_total{reason}`: checks of a proven caller refused at admission
/// (a counter read from the app at scrape time: the refusals write no audit row).
fn register_refused_checks(registry: &mut Registry, refused: &[(&'static str, u64)]) {
    if refused.is_empty() {
        return;
    }
    let family = Family::<RefusedLabels, Counter>::default();
    for (reason, count) in refused {
        family
            .get_or_create(&RefusedLabels { reason })
            .inc_by(*count);
    }
    registry.register(
        "checks_refused",
        "Checks of a proven caller refused at admission since the process started, not audited: no quota left (quota_exhausted), only expired quota (quota_expired), or the app's rate limit (throttled)",
        family,
    );
}

/// Says once per process that the quota gauge was capped: every scrape would say it
/// again, and the number of apps changes slowly.
fn warn_quotas_capped(enabled: usize) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            enabled_apps = enabled,
            reported = MAX_QUOTA_APPS,
            "metrics: renzheng_app_quota_remaining reports only the oldest apps"
        );
    }
}

/// The process, as Prometheus' process collector reports it. Each figure is `None`
/// where it cannot be read (no `/proc`: not Linux, or a sandbox without it); those
/// metrics are then left out of the scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident set size, bytes.
    pub resident_memory_bytes: Option<u64>,
    /// Virtual memory size, bytes.
    pub virtual_memory_bytes: Option<u64>,
    /// User and system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors (`None` too when unlimited).
    pub max_fds: Option<u64>,
    /// When the process started, unix seconds.
    pub start_time_seconds: Option<f64>,
}

/// Clock ticks per second of `/proc/<pid>/stat`: the kernel's `USER_HZ`, 100 on every
/// architecture Renzheng builds for (reading `sysconf(_SC_CLK_TCK)` would need `libc`
/// for a constant).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

impl ProcessStats {
    /// Reads this process' figures from `/proc/self` (a few small files; cheap enough
    /// for a scrape's async task). Everywhere but Linux: nothing.
    pub fn read() -> ProcessStats {
        if !cfg!(target_os = "linux") {
            return ProcessStats::default();
        }
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64);
        ProcessStats::parse(
            read("/proc/self/status").as_deref(),
            read("/proc/self/stat").as_deref(),
            read("/proc/stat").as_deref(),
            read("/proc/self/limits").as_deref(),
            open_fds,
        )
    }

    /// The figures in the texts of `/proc/self/status`, `/proc/self/stat`, `/proc/stat`
    /// and `/proc/self/limits`, each optional.
    fn parse(
        status: Option<&str>,
        stat: Option<&str>,
        system_stat: Option<&str>,
        limits: Option<&str>,
        open_fds: Option<u64>,
    ) -> ProcessStats {
        // `VmRSS:     1234 kB`: kibibytes, whatever the page size.
        let kib = |key: &str| {
            status?
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .map(|n| n * 1024)
        };
        // The command name (field 2) is in parentheses and may hold spaces or
        // parentheses itself: count fields from the last `)`. Field 3 is then index 0.
        let fields: Vec<&str> = stat
            .and_then(|s| s.rfind(')').map(|i| &s[i + 1..]))
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |field: usize| {
            fields
                .get(field - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .map(|t| t as f64 / CLOCK_TICKS_PER_SECOND)
        };
        let cpu_seconds = ticks(14).zip(ticks(15)).map(|(user, system)| user + system);
        let boot_time = system_stat
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")))
            .and_then(|v| v.trim().parse::<u64>().ok());
        let start_time_seconds = boot_time
            .zip(ticks(22))
            .map(|(boot, since_boot)| boot as f64 + since_boot);
        let max_fds = limits
            .and_then(|l| l.lines().find_map(|l| l.strip_prefix("Max open files")))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|soft| soft.parse::<u64>().ok());
        ProcessStats {
            resident_memory_bytes: kib("VmRSS:"),
            virtual_memory_bytes: kib("VmSize:"),
            cpu_seconds,
            open_fds,
            max_fds,
            start_time_seconds,
        }
    }
}

/// The classic Prometheus text format 0.0.4 of an OpenMetrics text as `prometheus-client`
/// writes it (which encodes nothing else). Per family:
///
/// * a counter `x` becomes the family `x_total` (its samples' name, which 0.0.4 parsers
///   require of the `# TYPE` line); its `x_created` samples are dropped;
/// * a histogram or summary keeps its `_bucket`/`_sum`/`_count` samples, not `_created`;
/// * an info `x` becomes the gauge `x_info`, a stateset a gauge;
/// * a gauge stays a gauge; anything else (`unknown`, a gauge histogram) is untyped, with
///   a `# TYPE` line per sample name;
/// * `# HELP` is kept (its OpenMetrics `\"` unescaped: 0.0.4 escapes only `\\` and
///   `\n`), `# UNIT` and `# EOF` are dropped, exemplars dropped, timestamps turned from
///   seconds into milliseconds.
///
/// Label values are escaped the same way in both formats and copied as they are.
pub fn openmetrics_to_classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut family: Option<OpenFamily<'_>> = None;
    for line in openmetrics.lines() {
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            let (keyword, rest) = comment.split_once(' ').unwrap_or((comment, ""));
            match keyword {
                "EOF" => break,
                "HELP" | "TYPE" => {
                    let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
                    if family.as_ref().is_none_or(|f| f.name != name) {
                        if let Some(done) = family.take() {
                            done.write_classic(&mut out);
                        }
                        family = Some(OpenFamily::new(name));
                    }
                    let f = family.as_mut().expect("a family was just opened");
                    if keyword == "HELP" {
                        f.help = Some(text);
                    } else {
                        f.kind = text.trim();
                    }
                }
                // `# UNIT`: 0.0.4 has none (the unit is in the name). Other comments
                // carry nothing.
                _ => {}
            }
            continue;
        }
        let Some(sample) = OpenSample::parse(line) else {
            continue;
        };
        family
            .get_or_insert_with(|| OpenFamily::new(sample.name))
            .samples
            .push(sample);
    }
    if let Some(done) = family {
        done.write_classic(&mut out);
    }
    out
}

/// One metric family of an OpenMetrics text.
struct OpenFamily<'a> {
    name: &'a str,
    help: Option<&'a str>,
    kind: &'a str,
    samples: Vec<OpenSample<'a>>,
}

impl<'a> OpenFamily<'a> {
    fn new(name: &'a str) -> Self {
        OpenFamily {
            name,
            help: None,
            kind: "unknown",
            samples: Vec::new(),
        }
    }

    /// Writes this family in the classic format (see [`openmetrics_to_classic`]).
    fn write_classic(&self, out: &mut String) {
        let name = self.name;
        let suffixed = |suffixes: &[&str]| -> Vec<String> {
            suffixes.iter().map(|s| format!("{name}{s}")).collect()
        };
        let (family, kind, allowed) = match self.kind {
            "counter" => (format!("{name}_total"), "counter", suffixed(&["_total"])),
            "gauge" | "stateset" => (name.to_owned(), "gauge", suffixed(&[""])),
            "info" => (format!("{name}_info"), "gauge", suffixed(&["_info"])),
            "histogram" => (
                name.to_owned(),
                "histogram",
                suffixed(&["_bucket", "_sum", "_count"]),
            ),
            "summary" => (
                name.to_owned(),
                "summary",
                suffixed(&["", "_sum", "_count"]),
            ),
            _ => {
                // Untyped: 0.0.4 ties a TYPE line to one sample name, so each name
                // gets its own, in the order they first appear.
                let mut names: Vec<&str> = Vec::new();
                for s in &self.samples {
                    if !names.contains(&s.name) {
                        names.push(s.name);
                    }
                }
                if names.is_empty() {
                    names.push(name);
                }
                for n in names {
                    self.write_head(out, n, "untyped");
                    for s in self.samples.iter().filter(|s| s.name == n) {
                        s.write_classic(out);
                    }
                }
                return;
            }
        };
        self.write_head(out, &family, kind);
        for s in self
            .samples
            .iter()
            .filter(|s| allowed.iter().any(|a| a == s.name))
        {
            s.write_classic(out);
        }
    }

    fn write_head(&self, out: &mut String, name: &str, kind: &str) {
        if let Some(help) = self.help {
            let _ = writeln!(out, "# HELP {name} {}", classic_help(help));
        }
        let _ = writeln!(out, "# TYPE {name} {kind}");
    }
}

/// An OpenMetrics HELP text as 0.0.4 escapes it: `\"` is a plain quote there.
fn classic_help(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push_str("\\\\"),
        }
    }
    out
}

/// One sample line of an OpenMetrics text, split into its parts.
struct OpenSample<'a> {
    name: &'a str,
    /// The label set with its braces, as written; empty when there is none.
    labels: &'a str,
    value: &'a str,
    /// Unix seconds, as OpenMetrics writes it.
    timestamp: Option<&'a str>,
}

impl<'a> OpenSample<'a> {
    /// `name{labels} value [timestamp] [# exemplar]`; `None` for a line that is not one.
    fn parse(line: &'a str) -> Option<Self> {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        if name.is_empty() {
            return None;
        }
        let mut rest = &line[name_end..];
        let mut labels = "";
        if rest.starts_with('{') {
            // Label values may hold `}` and ` # `: find the closing brace outside quotes.
            let end = label_set_end(rest)?;
            labels = &rest[..end];
            rest = &rest[end..];
        }
        // After the labels, ` # ` can only start an exemplar.
        let rest = rest.split(" # ").next().unwrap_or_default();
        let mut fields = rest.split_whitespace();
        let value = fields.next()?;
        Some(OpenSample {
            name,
            labels,
            value,
            timestamp: fields.next(),
        })
    }

    fn write_classic(&self, out: &mut String) {
        let _ = write!(out, "{}{} {}", self.name, self.labels, self.value);
        // 0.0.4 timestamps are integer milliseconds; one that cannot be read is dropped
        // (the scrape's time stands in, as for every sample without one).
        let millis = self
            .timestamp
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|t| t.is_finite())
            .map(|t| (t * 1000.0).round() as i64);
        if let Some(ms) = millis {
            let _ = write!(out, " {ms}");
        }
        out.push('\n');
    }
}

/// The length of the label set `{…}` that `s` starts with, braces included.
fn label_set_end(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if quoted {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
        } else if c == '"' {
            quoted = true;
        } else if c == '}' {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_asked_for_at_least_as_strongly() {
        let prometheus2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let prometheus3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        for accept in [
            prometheus2,
            prometheus3,
            "application/openmetrics-text",
            "Application/OpenMetrics-Text; version=1.0.0",
            "text/plain;q=0.5, application/openmetrics-text;q=0.5",
        ] {
            assert_eq!(Format::negotiate(accept), Format::OpenMetrics, "{accept}");
        }
        for accept in [
            "",
            "*/*",
            "text/plain; version=0.0.4",
            "text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.5",
            "application/openmetrics-text;q=0",
            "application/openmetrics-text;q=nonsense",
            "application/json",
        ] {
            assert_eq!(Format::negotiate(accept), Format::Classic, "{accept}");
        }
        assert!(Format::Classic
            .content_type()
            .starts_with("text/plain; version=0.0.4"));
    }

    #[test]
    fn converts_every_openmetrics_family_to_its_classic_form() {
        let open = concat!(
            "# HELP c Calls \\\"made\\\" \\\\ here.\n",
            "# TYPE c counter\n",
            "c_total{a=\"x } # y\",b=\"q\\\"\"} 3 # {trace=\"1\"} 1.0 1.5\n",
            "c_created{a=\"x } # y\",b=\"q\\\"\"} 1700000000.0\n",
            "# HELP g A gauge.\n",
            "# TYPE g gauge\n",
            "# UNIT g seconds\n",
            "g 1.5 1700000000.25\n",
            "# HELP h A histogram.\n",
            "# TYPE h histogram\n",
            "h_sum 0.5\n",
            "h_count 1\n",
            "h_bucket{le=\"0.1\"} 0\n",
            "h_bucket{le=\"+Inf\"} 1\n",
            "h_created 1700000000.0\n",
            "# HELP i Build.\n",
            "# TYPE i info\n",
            "i_info{v=\"1\"} 1\n",
            "# HELP u Who knows.\n",
            "# TYPE u unknown\n",
            "u 7\n",
            "# HELP empty Nothing yet.\n",
            "# TYPE empty counter\n",
            "# EOF\n",
        );
        let expected = concat!(
            "# HELP c_total Calls \"made\" \\\\ here.\n",
            "# TYPE c_total counter\n",
            "c_total{a=\"x } # y\",b=\"q\\\"\"} 3\n",
            "# HELP g A gauge.\n",
            "# TYPE g gauge\n",
            "g 1.5 1700000000250\n",
            "# HELP h A histogram.\n",
            "# TYPE h histogram\n",
            "h_sum 0.5\n",
            "h_count 1\n",
            "h_bucket{le=\"0.1\"} 0\n",
            "h_bucket{le=\"+Inf\"} 1\n",
            "# HELP i_info Build.\n",
            "# TYPE i_info gauge\n",
            "i_info{v=\"1\"} 1\n",
            "# HELP u Who knows.\n",
            "# TYPE u untyped\n",
            "u 7\n",
            "# HELP empty_total Nothing yet.\n",
            "# TYPE empty_total counter\n",
        );
        assert_eq!(openmetrics_to_classic(open), expected);
    }

    #[test]
    fn every_family_keeps_its_type_and_help_in_both_formats() {
        let metrics = Metrics::new();
        metrics.observe_request(
            RequestLabels {
                route: "/faceidcard/check".into(),
                method: "POST".into(),
                status: 200,
                result: "1".into(),
            },
            Duration::from_millis(12),
        );
        metrics.auth_failed();
        let scrape = Scrape {
            pack: "dlib-test".into(),
            quotas: Some(vec![("a1".into(), 41)]),
            process: ProcessStats {
                cpu_seconds: Some(1.25),
                resident_memory_bytes: Some(4096),
                ..ProcessStats::default()
            },
            refused_checks: vec![
                ("quota_exhausted", 7),
                ("quota_expired", 0),
                ("throttled", 2),
            ],
            compliance: Some(renzheng_app::ComplianceStatus {
                persons_with_face_data: 120_000,
                filing_threshold: 100_000,
                reached_at: Some("2027-03-02".into()),
                persons_without_basis: 3,
                oldest_face_data_on: Some("2026-12-07".into()),
                basis_required: true,
                retention_days: 1095,
                inactive_days: 0,
                persons_past_retention: 4,
                oldest_past_retention_on: Some("2023-12-01".into()),
                records_retention_days: 1095,
            }),
        };
        let open = metrics.render(&scrape, Format::OpenMetrics);
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert!(open.contains("# TYPE renzheng_http_requests counter\n"));
        let classic = metrics.render(&scrape, Format::Classic);
        for family in [
            "renzheng_http_requests_total counter",
            "renzheng_http_request_duration_seconds histogram",
            "renzheng_engine_stage_duration_seconds histogram",
            "renzheng_engine_saturated_total counter",
            "renzheng_auth_failures_total counter",
            "renzheng_http_requests_in_flight gauge",
            "process_cpu_seconds_total counter",
            "process_resident_memory_bytes gauge",
            "renzheng_build_info gauge",
            "renzheng_app_quota_remaining gauge",
            "renzheng_checks_refused_total counter",
            "renzheng_compliance_persons_with_face_data gauge",
            "renzheng_compliance_filing_line_reached gauge",
        ] {
            let name = family.split(' ').next().unwrap();
            assert!(
                classic.contains(&format!("\n# TYPE {family}\n")),
                "{family}: {classic}"
            );
            assert!(
                classic.contains(&format!("# HELP {name} ")),
                "{name}: {classic}"
            );
        }
        for line in [
            "renzheng_auth_failures_total 1",
            "process_cpu_seconds_total 1.25",
            "process_resident_memory_bytes 4096",
            "renzheng_build_info{version=\"",
            "renzheng_app_quota_remaining{app_id=\"a1\"} 41",
            "renzheng_checks_refused_total{reason=\"quota_exhausted\"} 7",
            "renzheng_checks_refused_total{reason=\"quota_expired\"} 0",
            "renzheng_checks_refused_total{reason=\"throttled\"} 2",
            "renzheng_compliance_persons_with_face_data 120000",
            "renzheng_compliance_filing_threshold 100000",
            "renzheng_compliance_filing_line_reached 1",
            "renzheng_compliance_persons_without_basis 3",
            "renzheng_compliance_persons_past_retention 4",
        ] {
            assert!(classic.contains(line), "{line}: {classic}");
        }
        assert!(!classic.contains("# EOF") && !classic.contains("_created"));
        // Absent figures are absent, not zero.
        assert!(!classic.contains("process_open_fds"));
    }

    #[test]
    fn help_texts_need_no_escaping() {
        // prometheus-client writes HELP as given; a backslash, newline or quote would
        // need escaping it does not do.
        let text = Metrics::new().render(&Scrape::default(), Format::OpenMetrics);
        for line in text.lines().filter(|l| l.starts_with("# HELP ")) {
            assert!(!line.contains(['\\', '"']), "{line}");
            assert!(!line.ends_with(".."), "{line}");
        }
    }

    #[test]
    fn reads_the_process_from_proc_texts() {
        let status = "Name:\trenzheng\nVmSize:\t  204800 kB\nVmRSS:\t   10240 kB\n";
        // Field 2 may hold spaces and parentheses.
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 12345 209715200 2560 18446744073709551615";
        let system = "cpu  1 2 3\nbtime 1700000000\nprocesses 10\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        let p = ProcessStats::parse(
            Some(status),
            Some(stat),
            Some(system),
            Some(limits),
            Some(9),
        );
        assert_eq!(
            p,
            ProcessStats {
                resident_memory_bytes: Some(10_485_760),
                virtual_memory_bytes: Some(209_715_200),
                cpu_seconds: Some(3.0),
                open_fds: Some(9),
                max_fds: Some(1024),
                start_time_seconds: Some(1_700_000_123.45),
            }
        );
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        let p = ProcessStats::parse(None, None, None, Some(unlimited), None);
        assert_eq!(p, ProcessStats::default());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let p = ProcessStats::read();
        assert!(p.resident_memory_bytes.unwrap() > 0);
        assert!(p.virtual_memory_bytes.unwrap() >= p.resident_memory_bytes.unwrap());
        assert!(p.open_fds.unwrap() > 0);
        assert!(p.cpu_seconds.is_some());
        assert!(p.start_time_seconds.unwrap() > 1_500_000_000.0);
    }
}
