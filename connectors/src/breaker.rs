//! Circuit breakers per bank endpoint, shared by every job of a worker process.
//!
//! When a bank is down, hammering it helps nobody: after `failures_to_open` consecutive
//! failures, or a success rate below `min_success_rate` over `rate_window` (with at least
//! `min_requests` calls), the breaker opens and every request to that endpoint fails at once,
//! without touching the network, for `cooldown`. Then exactly one probe request is let
//! through (half-open): its success closes the breaker, its failure opens it again.
//!
//! Only failures that say something about the bank's health count: timeouts, refused
//! connections, 5xx and 429. An answer such as 401 or a parse problem proves the bank is up
//! and counts as a success. The state machine is failsafe's; this module adds the single
//! probe (failsafe lets every caller through while half-open) and the snapshots that workers
//! report for ops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use failsafe::failure_policy::{self, ConsecutiveFailures, OrElse, SuccessRateOverTimeWindow};
use failsafe::{FailurePolicy, StateMachine, backoff};

use crate::ConnectorError;

/// When a breaker opens and for how long.
#[derive(Debug, Clone)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker.
    pub failures_to_open: u32,
    /// Below this success rate over `rate_window` the breaker opens too (0 disables).
    pub min_success_rate: f64,
    pub rate_window: Duration,
    /// Calls within the window before the rate counts.
    pub min_requests: u32,
    /// How long an open breaker refuses calls before it lets one probe through.
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failures_to_open: 5,
            min_success_rate: 0.5,
            rate_window: Duration::from_secs(60),
            min_requests: 20,
            cooldown: Duration::from_secs(30),
        }
    }
}

pub use eam_model::breaker::{BreakerSnapshot, BreakerState};

type Policy =
    OrElse<ConsecutiveFailures<backoff::Constant>, SuccessRateOverTimeWindow<backoff::Constant>>;

/// What the state machine's callbacks and our own counters record.
#[derive(Debug)]
struct Status {
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Option<DateTime<Utc>>,
    rejected_calls: u64,
    version: u64,
}

#[derive(Clone)]
struct Observer(Arc<Mutex<Status>>);

impl Observer {
    fn set(&self, state: BreakerState) {
        let mut s = lock(&self.0);
        if state == BreakerState::Open {
            s.opened_at = Some(Utc::now());
        }
        s.state = state;
        s.version += 1;
    }
}

impl failsafe::Instrument for Observer {
    fn on_call_rejected(&self) {}
    fn on_open(&self) {
        self.set(BreakerState::Open);
    }
    fn on_half_open(&self) {
        self.set(BreakerState::HalfOpen);
    }
    fn on_closed(&self) {
        self.set(BreakerState::Closed);
    }
}

fn lock(status: &Mutex<Status>) -> MutexGuard<'_, Status> {
    // A poisoned lock only means another thread panicked mid-update of plain counters.
    status.lock().unwrap_or_else(|e| e.into_inner())
}

/// The breaker of one endpoint.
pub struct Breaker {
    endpoint: String,
    cooldown: Duration,
    machine: StateMachine<Policy, Observer>,
    status: Arc<Mutex<Status>>,
    probe_in_flight: AtomicBool,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("endpoint", &self.endpoint)
            .field("state", &self.snapshot().state)
            .finish()
    }
}

impl Breaker {
    /// A closed breaker for `endpoint`.
    pub fn new(endpoint: &str, settings: &BreakerSettings) -> Self {
        let cooldown = backoff::constant(settings.cooldown);
        let consecutive = failure_policy::consecutive_failures(
            settings.failures_to_open.max(1),
            cooldown.clone(),
        );
        let rate = failure_policy::success_rate_over_time_window(
            settings.min_success_rate.clamp(0.0, 1.0),
            settings.min_requests.max(1),
            settings.rate_window.max(Duration::from_secs(1)),
            cooldown,
        );
        let status = Arc::new(Mutex::new(Status {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            opened_at: None,
            rejected_calls: 0,
            version: 0,
        }));
        let machine = failsafe::Config::new()
            .failure_policy(consecutive.or_else(rate))
            .instrument(Observer(status.clone()))
            .build();
        Breaker {
            endpoint: endpoint.to_owned(),
            cooldown: settings.cooldown,
            machine,
            status,
            probe_in_flight: AtomicBool::new(false),
        }
    }

    /// Permission to send one request, or [`ConnectorError::BreakerOpen`] without sending.
    pub fn acquire(&self) -> Result<Permit<'_>, ConnectorError> {
        if self.machine.is_call_permitted() {
            let half_open = lock(&self.status).state == BreakerState::HalfOpen;
            if !half_open {
                return Ok(Permit {
                    breaker: self,
                    probe: false,
                    done: false,
                });
            }
            if self
                .probe_in_flight
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(Permit {
                    breaker: self,
                    probe: true,
                    done: false,
                });
            }
        }
        let open_until = {
            let mut s = lock(&self.status);
            s.rejected_calls += 1;
            s.version += 1;
            s.opened_at.map(|at| at + self.cooldown)
        };
        Err(ConnectorError::BreakerOpen {
            endpoint: self.endpoint.clone(),
            until: open_until,
        })
    }

    /// The breaker's state now.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let s = lock(&self.status);
        let open = s.state != BreakerState::Closed;
        BreakerSnapshot {
            endpoint: self.endpoint.clone(),
            state: s.state,
            consecutive_failures: s.consecutive_failures,
            opened_at: s.opened_at.filter(|_| open),
            open_until: s.opened_at.filter(|_| open).map(|at| at + self.cooldown),
            rejected_calls: s.rejected_calls,
            version: s.version,
        }
    }

    fn record(&self, success: bool) {
        {
            let mut s = lock(&self.status);
            s.consecutive_failures = if success {
                0
            } else {
                s.consecutive_failures + 1
            };
            s.version += 1;
        }
        if success {
            self.machine.on_success();
        } else {
            self.machine.on_error();
        }
    }
}

/// Permission for one request. Report its outcome with [`Permit::success`] or
/// [`Permit::failure`]; dropped unreported (the request was abandoned), it records nothing.
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    done: bool,
}

impl Permit<'_> {
    /// The bank answered (whatever it answered): it is up.
    pub fn success(mut self) {
        self.done = true;
        self.breaker.record(true);
    }

    /// The bank did not answer usefully: timeout, connection failure, 5xx, 429.
    pub fn failure(mut self) {
        self.done = true;
        self.breaker.record(false);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.probe_in_flight.store(false, Ordering::Release);
        }
        let _ = self.done;
    }
}

/// A worker's breakers, one per endpoint, created on first use.
#[derive(Debug, Default)]
pub struct Breakers {
    settings: BreakerSettings,
    by_endpoint: Mutex<HashMap<String, Arc<Breaker>>>,
}

impl Breakers {
    pub fn new(settings: BreakerSettings) -> Self {
        Breakers {
            settings,
            by_endpoint: Mutex::new(HashMap::new()),
        }
    }

    /// The breaker of the endpoint (scheme, host and port) of `base_url`.
    pub fn for_url(&self, base_url: &str) -> Arc<Breaker> {
        let endpoint = endpoint_of(base_url);
        let mut map = self.by_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(endpoint.clone())
            .or_insert_with(|| Arc::new(Breaker::new(&endpoint, &self.settings)))
            .clone()
    }

    /// Every breaker's state now.
    pub fn snapshots(&self) -> Vec<BreakerSnapshot> {
        let map = self.by_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = map.values().map(|b| b.snapshot()).collect();
        out.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        out
    }
}

pub use eam_model::breaker::endpoint_of;

impl eam_model::BreakerSource for Breakers {
    fn snapshots(&self) -> Vec<BreakerSnapshot> {
        Breakers::snapshots(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cooldown: Duration) -> BreakerSettings {
        BreakerSettings {
            failures_to_open: 3,
            min_success_rate: 0.0,
            rate_window: Duration::from_secs(60),
            min_requests: 100,
            cooldown,
        }
    }

    #[test]
    fn it_opens_after_consecutive_failures_and_then_refuses_without_a_call() {
        let b = Breaker::new("https://bank:443", &settings(Duration::from_secs(60)));
        for _ in 0..2 {
            b.acquire().unwrap().failure();
        }
        b.acquire().unwrap().success();
        for _ in 0..3 {
            b.acquire().unwrap().failure();
        }
        assert_eq!(b.snapshot().state, BreakerState::Open);
        let e = b.acquire().err().expect("open breakers refuse");
        assert_eq!(e.class(), crate::ErrorClass::Transient);
        assert_eq!(b.snapshot().rejected_calls, 1);
        assert!(b.snapshot().open_until.is_some());
    }

    #[test]
    fn after_the_cooldown_one_probe_passes_and_its_success_closes_the_breaker() {
        let b = Breaker::new("https://bank:443", &settings(Duration::ZERO));
        for _ in 0..3 {
            b.acquire().unwrap().failure();
        }
        let probe = b.acquire().expect("cool-down over: a probe");
        assert_eq!(b.snapshot().state, BreakerState::HalfOpen);
        assert!(b.acquire().is_err(), "only one probe at a time");
        probe.success();
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        b.acquire().unwrap().success();
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let b = Breaker::new("https://bank:443", &settings(Duration::ZERO));
        for _ in 0..3 {
            b.acquire().unwrap().failure();
        }
        b.acquire().unwrap().failure();
        assert_ne!(b.snapshot().state, BreakerState::Closed);
    }

    #[test]
    fn endpoints_are_scheme_host_and_port() {
        assert_eq!(
            endpoint_of("https://bank.example/api/v1"),
            "https://bank.example:443"
        );
        assert_eq!(
            endpoint_of("https://127.0.0.1:8443"),
            "https://127.0.0.1:8443"
        );
        let breakers = Breakers::new(BreakerSettings::default());
        assert!(Arc::ptr_eq(
            &breakers.for_url("https://a:1/x"),
            &breakers.for_url("https://a:1/y")
        ));
    }
}
