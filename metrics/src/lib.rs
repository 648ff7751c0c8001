//! The platform's Prometheus metrics, in the Prometheus text format (version 0.0.4).
//!
//! A [`Metrics`] value is the registry of one process: whoever builds the API state or a
//! worker's sync context creates one and passes it in (cheap to clone, shared inside). There
//! is no process-global registry, so several systems in one process (the end-to-end tests run
//! many at once) each count only their own requests and syncs, exactly.
//!
//! Two kinds of families:
//!
//! - **Counted in process**, as things happen: HTTP requests (by route *template*, never the
//!   raw path, so ids cannot blow up the label space), sync attempts and their duration by
//!   custodian and outcome, records loaded by kind and effect, rate-limit rejections; and, read
//!   when scraped, the state of this process's circuit breakers.
//! - **Read from PostgreSQL when scraped** ([`Platform`]): runs queued, waiting and running per
//!   custodian, client certificates at risk, and the breaker states every worker reported.
//!   These are the same for every process of a deployment, so only the API exposes them (a
//!   worker's listener does not), and a failed read skips its family and sets
//!   `eam_scrape_error{source}` rather than failing the scrape.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use eam_model::gauges::{ActiveRuns, CertificatesAtRisk, ReportedBreakers};
use eam_model::{BreakerSource, BreakerState};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of what [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The route label of a request that matched no route: one label for every unknown path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Latency buckets of API requests, in seconds (most answer within milliseconds).
const HTTP_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Duration buckets of sync attempts, in seconds (a small account in a second, a large
/// custodian's night in many minutes).
const SYNC_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

fn sync_histogram() -> Histogram {
    Histogram::new(SYNC_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    custodian: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    custodian: String,
    kind: &'static str,
    effect: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    endpoint: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    custodian: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    custodian: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

/// What the read cache did for a portfolio read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadCacheResult {
    Hit,
    Miss,
    Off,
}

impl ReadCacheResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadCacheResult::Hit => "hit",
            ReadCacheResult::Miss => "miss",
            ReadCacheResult::Off => "off",
        }
    }
}

/// The read cache's gauges (cheap clones of the same values).
#[derive(Clone, Debug, Default)]
pub struct ReadCacheGauges {
    pub live: Gauge,
    pub bytes: Gauge,
}

/// How a sync attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    Succeeded,
    SucceededWithBreaks,
    /// A transient failure; the run waits for its next attempt.
    Retrying,
    /// Auth, data or internal error: no further attempt.
    Failed,
    /// A transient failure on the last attempt.
    Dead,
    /// Cancelled while it ran.
    Cancelled,
    /// The run was cancelled or given to another worker meanwhile (lease lost).
    Abandoned,
    /// The outcome could not be recorded (PostgreSQL unreachable); the task is delivered again.
    Unrecorded,
}

impl SyncOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncOutcome::Succeeded => "succeeded",
            SyncOutcome::SucceededWithBreaks => "succeeded_with_breaks",
            SyncOutcome::Retrying => "retrying",
            SyncOutcome::Failed => "failed",
            SyncOutcome::Dead => "dead",
            SyncOutcome::Cancelled => "cancelled",
            SyncOutcome::Abandoned => "abandoned",
            SyncOutcome::Unrecorded => "unrecorded",
        }
    }
}

/// Which rate limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    Tenant,
    User,
    /// Refused tokens from one client address.
    Address,
}

impl LimitScope {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Tenant => "tenant",
            LimitScope::User => "user",
            LimitScope::Address => "address",
        }
    }
}

/// One read of a platform gauge source: its rows, or why they could not be read.
pub type Read<'a, T> = Pin<Box<dyn Future<Output = Result<Vec<T>, String>> + Send + 'a>>;

/// Where the scrape-time platform gauges come from (PostgreSQL, through the store: the API
/// wires it; this crate knows no database).
pub trait PlatformSource: Send + Sync {
    fn active_runs(&self) -> Read<'_, ActiveRuns>;
    fn certificates_at_risk(&self, warning_days: u32) -> Read<'_, CertificatesAtRisk>;
    fn reported_breakers(&self) -> Read<'_, ReportedBreakers>;
}

/// Where the scrape-time platform gauges are read from.
#[derive(Clone)]
pub struct Platform {
    pub source: Arc<dyn PlatformSource>,
    /// A client certificate expiring within this many days is at risk.
    pub certificate_warning_days: u32,
}

/// Records a load changed, of one kind: inserted, updated, unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effects {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// The metrics of one process; cheap to clone (every clone counts into the same families).
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Families>,
}

struct Families {
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<HttpLabels, Histogram>,
    sync_attempts: Family<SyncLabels, Counter>,
    sync_duration: Family<SyncLabels, Histogram>,
    records_loaded: Family<RecordLabels, Counter>,
    rate_limited: Family<ScopeLabels, Counter>,
    read_cache_lookups: Family<ResultLabels, Counter>,
    read_cache: ReadCacheGauges,
    /// The breakers of the sync contexts counting into these metrics, read when scraped.
    breakers: Mutex<Vec<Arc<dyn BreakerSource>>>,
}

impl Default for Families {
    fn default() -> Self {
        Families {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_histogram),
            sync_attempts: Family::default(),
            sync_duration: Family::new_with_constructor(sync_histogram),
            records_loaded: Family::default(),
            rate_limited: Family::default(),
            read_cache_lookups: Family::default(),
            read_cache: ReadCacheGauges::default(),
            breakers: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// A method as a label: the standard ones, every other one as `OTHER` (clients choose it).
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    KNOWN
        .into_iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .unwrap_or("OTHER")
}

impl Metrics {
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Counts an answered HTTP request. `route` must be a route template (or
    /// [`UNMATCHED_ROUTE`]), never a raw path.
    pub fn observe_http(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = HttpLabels {
            method: method_label(method),
            route: route.to_owned(),
            status,
        };
        self.inner.http_requests.get_or_create(&labels).inc();
        self.inner
            .http_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a finished sync attempt of a connection of `custodian`, and how long it took.
    pub fn observe_sync(&self, custodian: &str, outcome: SyncOutcome, elapsed: Duration) {
        let labels = SyncLabels {
            custodian: custodian.to_owned(),
            outcome: outcome.as_str(),
        };
        self.inner.sync_attempts.get_or_create(&labels).inc();
        self.inner
            .sync_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts what a committed load did, per record kind (`clients`, `accounts`, ...) and
    /// effect, and the positions a complete snapshot closed.
    pub fn count_loaded(
        &self,
        custodian: &str,
        kinds: &[(&'static str, Effects)],
        positions_closed: u64,
    ) {
        let add = |kind: &'static str, effect: &'static str, n: u64| {
            let labels = RecordLabels {
                custodian: custodian.to_owned(),
                kind,
                effect,
            };
            self.inner.records_loaded.get_or_create(&labels).inc_by(n);
        };
        for (kind, c) in kinds {
            add(kind, "inserted", c.inserted);
            add(kind, "updated", c.updated);
            add(kind, "unchanged", c.unchanged);
        }
        add("positions", "closed", positions_closed);
    }

    /// Counts a request refused with 429 by the `scope` limit.
    pub fn count_rate_limited(&self, scope: LimitScope) {
        self.inner
            .rate_limited
            .get_or_create(&ScopeLabels {
                scope: scope.as_str(),
            })
            .inc();
    }

    /// Counts a portfolio read by what the read cache did: `hit` (answered from memory), `miss`
    /// (read from PostgreSQL) or `off` (the cache was off or not following the change feed).
    pub fn count_read_cache(&self, result: ReadCacheResult) {
        self.inner
            .read_cache_lookups
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
    }

    /// The gauges the read cache keeps current.
    pub fn read_cache_gauges(&self) -> ReadCacheGauges {
        self.inner.read_cache.clone()
    }

    /// Shows the state of these breakers (a worker's, one per bank endpoint) when scraped.
    pub fn watch_breakers(&self, breakers: Arc<dyn BreakerSource>) {
        let mut watched = self
            .inner
            .breakers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !watched
            .iter()
            .any(|b| std::ptr::addr_eq(Arc::as_ptr(b), Arc::as_ptr(&breakers)))
        {
            watched.push(breakers);
        }
    }

    /// Everything, in the Prometheus text format; with `platform`, also the gauges read from
    /// PostgreSQL now.
    pub async fn render(&self, platform: Option<&Platform>) -> String {
        let f = &self.inner;
        let mut registry = Registry::with_prefix("eam");
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            f.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route template and status",
            f.http_duration.clone(),
        );
        registry.register(
            "sync_attempts",
            "Sync attempts that ended, by custodian and outcome",
            f.sync_attempts.clone(),
        );
        registry.register(
            "sync_duration_seconds",
            "Duration of sync attempts, by custodian and outcome",
            f.sync_duration.clone(),
        );
        registry.register(
            "records_loaded",
            "Records of committed loads, by custodian, kind and effect (inserted, updated, unchanged; closed positions)",
            f.records_loaded.clone(),
        );
        registry.register(
            "rate_limited_requests",
            "Requests refused with 429, by the limit that refused them (tenant or user)",
            f.rate_limited.clone(),
        );
        registry.register(
            "read_cache_lookups",
            "Portfolio reads by what the read cache did: hit, miss (read from PostgreSQL), off (not following the change feed)",
            f.read_cache_lookups.clone(),
        );
        registry.register(
            "read_cache_live",
            "1 while the read cache follows PostgreSQL's change feed (only then does it serve pages)",
            f.read_cache.live.clone(),
        );
        registry.register(
            "read_cache_bytes",
            "Bytes of portfolio pages held by the read cache",
            f.read_cache.bytes.clone(),
        );
        let watched = f.breakers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !watched.is_empty() {
            registry.register(
                "circuit_breaker_state",
                "This process's circuit breakers per bank endpoint: how many are in each state (closed, half_open, open)",
                breaker_states(&watched),
            );
        }
        if let Some(platform) = platform {
            register_platform(&mut registry, platform).await;
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
            // Writing into a String cannot fail; an encoder error would be a bug there.
            tracing::error!(error = %e, "could not encode the metrics");
        }
        text
    }
}

/// One gauge per endpoint and state: how many of the watched breakers are in it.
fn breaker_states(watched: &[Arc<dyn BreakerSource>]) -> Family<BreakerLabels, Gauge> {
    let family = Family::<BreakerLabels, Gauge>::default();
    for snapshot in watched.iter().flat_map(|b| b.snapshots()) {
        for state in [
            BreakerState::Closed,
            BreakerState::HalfOpen,
            BreakerState::Open,
        ] {
            family
                .get_or_create(&BreakerLabels {
                    endpoint: snapshot.endpoint.clone(),
                    state: state.as_str().to_owned(),
                })
                .inc_by(i64::from(snapshot.state == state));
        }
    }
    family
}

/// Reads the platform gauges and registers them; a failed read skips its family and sets its
/// `eam_scrape_error`.
async fn register_platform(registry: &mut Registry, platform: &Platform) {
    let errors = Family::<SourceLabels, Gauge>::default();
    let failed = |source: &'static str, e: &dyn std::fmt::Display| {
        tracing::warn!(source, error = %e, "a metrics source failed; its family is skipped");
        errors.get_or_create(&SourceLabels { source }).set(1);
    };
    for source in ["active_runs", "certificates", "reported_breakers"] {
        errors.get_or_create(&SourceLabels { source }).set(0);
    }

    match platform.source.active_runs().await {
        Ok(rows) => {
            let family = Family::<QueueLabels, Gauge>::default();
            for r in rows {
                family
                    .get_or_create(&QueueLabels {
                        custodian: r.custodian,
                        state: r.state,
                    })
                    .set(r.runs);
            }
            registry.register(
                "sync_runs_active",
                "Runs of every tenant by custodian and state: queued (due, waiting for a worker), waiting (not due yet: back-off, custodian limit, schedule spread), running",
                family,
            );
        }
        Err(e) => failed("active_runs", &e),
    }

    match platform
        .source
        .certificates_at_risk(platform.certificate_warning_days)
        .await
    {
        Ok(rows) => {
            let family = Family::<CertificateLabels, Gauge>::default();
            for r in rows {
                for (status, n) in [("expired", r.expired), ("expiring", r.expiring)] {
                    family
                        .get_or_create(&CertificateLabels {
                            custodian: r.custodian.clone(),
                            status,
                        })
                        .set(n);
                }
            }
            registry.register(
                "client_certificates_at_risk",
                "Connections whose client certificate (as their last sync read it) is expired, or expiring within certificates.warning_days, by custodian",
                family,
            );
        }
        Err(e) => failed("certificates", &e),
    }

    match platform.source.reported_breakers().await {
        Ok(rows) => {
            let family = Family::<BreakerLabels, Gauge>::default();
            for r in rows {
                family
                    .get_or_create(&BreakerLabels {
                        endpoint: r.endpoint,
                        state: r.state,
                    })
                    .set(r.workers);
            }
            registry.register(
                "circuit_breakers_reported",
                "Workers whose circuit breaker for a bank endpoint last reported each state",
                family,
            );
        }
        Err(e) => failed("reported_breakers", &e),
    }

    registry.register(
        "scrape_error",
        "1 when a metrics source could not be read in this scrape (its family is missing)",
        errors,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_as_prometheus_text_with_bounded_labels() {
        let metrics = Metrics::new();
        metrics.observe_http("get", "/api/v1/jobs/{id}", 200, Duration::from_millis(3));
        metrics.observe_http("BREW", UNMATCHED_ROUTE, 404, Duration::from_millis(1));
        metrics.observe_sync("bank_a", SyncOutcome::Succeeded, Duration::from_secs(2));
        metrics.count_rate_limited(LimitScope::User);
        let text = ready_now(metrics.render(None));
        for line in [
            "# TYPE eam_http_requests_total counter",
            r#"eam_http_requests_total{method="GET",route="/api/v1/jobs/{id}",status="200"} 1"#,
            r#"eam_http_requests_total{method="OTHER",route="unmatched",status="404"} 1"#,
            r#"eam_sync_attempts_total{custodian="bank_a",outcome="succeeded"} 1"#,
            r#"eam_sync_duration_seconds_count{custodian="bank_a",outcome="succeeded"} 1"#,
            r#"eam_sync_duration_seconds_bucket{custodian="bank_a",outcome="succeeded",le="2.5"} 1"#,
            r#"eam_sync_duration_seconds_bucket{custodian="bank_a",outcome="succeeded",le="1"} 0"#,
            r#"eam_rate_limited_requests_total{scope="user"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn clones_count_into_the_same_families_and_separate_values_do_not() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.clone().count_rate_limited(LimitScope::Tenant);
        let a_text = ready_now(a.render(None));
        let b_text = ready_now(b.render(None));
        assert!(a_text.contains(r#"eam_rate_limited_requests_total{scope="tenant"} 1"#));
        assert!(!b_text.contains(r#"scope="tenant""#));
    }

    /// Renders without platform reads never wait on anything: poll once.
    fn ready_now<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("render without a platform does not wait"),
        }
    }
}
