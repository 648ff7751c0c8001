//! Fault injection: rules that make the simulator fail the way real banks do, so the sync
//! engine's retries, circuit breaker and parsers can be tested against a bank that misbehaves
//! on cue.
//!
//! A [`FaultHandle`] is a table of [`FaultRule`]s behind one mutex, shared by whoever steers
//! the simulator (a test through [`RunningSim::faults`](crate::RunningSim::faults), the admin
//! API, the `--fault` flag) and the server. The server consults it at two points only, so the
//! bank_a handlers never know faults exist:
//!
//! - at TCP accept, before TLS: only [`Fault::ResetConnection`] rules, and only those whose
//!   `path_prefix` is `"/"` (no path is known yet; [`FaultRule::validate`] refuses any other
//!   prefix for this kind). `skip` and `times` then count connections, not requests.
//! - once per HTTP request, in the outer middleware of the app (`app`): every other kind.
//!   Requests to `/admin` are never offered to rules.
//!
//! Matching: rules are offered a request in insertion order. A rule matches when its prefix
//! matches the request path (see [`path_matches`]; the query string is ignored) and, for
//! [`Fault::DuplicatePage`], when the request carries a non-empty `cursor` (a first page has
//! no previous page to repeat). A matching rule that is still in its `skip` phase counts the
//! request as skipped and lets it go on to the next rule; the first matching rule past its
//! skips with `times` left applies, and later rules do not see the request. A rule whose
//! `times` are used up stays listed (with its count) until removed or cleared, but matches
//! nothing. Choosing a rule and charging its budget happen under one lock, so with any number
//! of requests in flight a rule skips exactly `skip` requests and applies at most `times`.
//! The one give-back: a body fault (malformed, duplicate page) that finds nothing to damage
//! returns its application to the rule, so `applied` counts damaged answers only; a request
//! arriving while that give-back is pending may pass unfaulted.
//!
//! Faults of content rather than of transport are not rules: a statement file that goes
//! missing ([`RunningSim::withhold_file`](crate::RunningSim::withhold_file)), a file served in
//! a dialect or damaged ([`RunningSim::replace_file`](crate::RunningSim::replace_file)), a
//! trade left out of bank_b's securities feed while the holdings still show it
//! ([`RunningSim::leave_out_trade`](crate::RunningSim::leave_out_trade)).

use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

/// One way of misbehaving; the JSON form is tagged by `kind` in snake case, e.g.
/// `{"kind": "status", "status": 503, "retry_after_secs": 5}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer normally, after a delay.
    Latency {
        /// The delay before the endpoint is called, in milliseconds.
        millis: u64,
    },
    /// Never answer (hold the request open until the client gives up or the server shuts down;
    /// at shutdown the held request gets a 503).
    Hang,
    /// Answer with this status and a small JSON error body; Retry-After (seconds) when given
    /// (429, 503). The endpoint itself is not called.
    Status {
        /// The HTTP status, 100 to 599.
        status: u16,
        /// The Retry-After header's value in seconds; no header when absent.
        retry_after_secs: Option<u64>,
    },
    /// The endpoint's own answer (a 200 for a good request) with its body cut in half: invalid
    /// JSON, with valid HTTP framing (Content-Length of the cut body).
    Truncate,
    /// A 200 whose JSON is well-formed and navigable (account_id, next_cursor intact) but the
    /// first record has an invalid value: its first decimal field (amount, quantity, price,
    /// market_value, cost, accrued_interest, fees, in that order) becomes "12,50", or, in a
    /// record without decimals (an account), its currency. A statement file (bank_b, bank_c
    /// downloads: any body that is not JSON) gets its middle byte replaced instead, keeping
    /// its length but not its SHA-256. A JSON document without records (an empty page, an
    /// error, a token) is served unchanged and does not use up the rule.
    Malformed,
    /// For a paged listing with a cursor: the answer repeats the previous page's items (the
    /// `limit` items before the cursor) before its own; nothing is lost and `next_cursor` is
    /// unchanged. Requests without a cursor do not match such a rule; an error answer is
    /// served unchanged and does not use up the rule.
    DuplicatePage,
    /// Close the TCP connection (with a reset) right after accepting it, before the TLS
    /// handshake completes. Applies at accept time, so only with path_prefix "/".
    ResetConnection,
}

/// When and how often a [`Fault`] applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Request path prefix it applies to, matched at segment boundaries, e.g. "/oauth/token",
    /// "/v1/accounts", "/v1/accounts/BA-000001-1/transactions"; "/" = all.
    pub path_prefix: String,
    /// What happens to a request the rule applies to.
    pub fault: Fault,
    /// Let this many matching requests through untouched first (default 0).
    #[serde(default)]
    pub skip: u32,
    /// Apply to this many matching requests, then expire; None = until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

/// Why a fault rule cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum InvalidFaultRule {
    /// The text is not JSON of the rule's shape.
    #[error(
        "not a fault rule ({0}); expected e.g. \
         {{\"path_prefix\": \"/v1\", \"fault\": {{\"kind\": \"status\", \"status\": 503}}, \"times\": 2}}"
    )]
    Json(#[from] serde_json::Error),
    /// The rule parses but could never work as written.
    #[error("invalid fault rule: {0}")]
    Rule(String),
}

impl FaultRule {
    /// A rule applying `fault` to every request under `path_prefix`, with no skip and no limit.
    pub fn new(path_prefix: impl Into<String>, fault: Fault) -> Self {
        FaultRule {
            path_prefix: path_prefix.into(),
            fault,
            skip: 0,
            times: None,
        }
    }

    /// The same rule, letting the first `skip` matching requests through untouched.
    pub fn skip(mut self, skip: u32) -> Self {
        self.skip = skip;
        self
    }

    /// The same rule, expiring after it applied `times` times.
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    /// Parses a rule from its JSON form and validates it.
    pub fn from_json(json: &[u8]) -> Result<Self, InvalidFaultRule> {
        let rule: FaultRule = serde_json::from_slice(json)?;
        rule.validate()?;
        Ok(rule)
    }

    /// Refuses rules that could never apply as written.
    pub fn validate(&self) -> Result<(), InvalidFaultRule> {
        let refuse = |why: String| Err(InvalidFaultRule::Rule(why));
        if !self.path_prefix.starts_with('/') {
            return refuse(format!(
                "path_prefix '{}' must start with '/'",
                self.path_prefix
            ));
        }
        match &self.fault {
            Fault::Status { status, .. } if !(100..=599).contains(status) => refuse(format!(
                "status {status} is not an HTTP status (100 to 599)"
            )),
            Fault::ResetConnection if self.path_prefix != "/" => refuse(format!(
                "reset_connection applies when a connection is accepted, before any path is \
                 known: use path_prefix \"/\" (not '{}')",
                self.path_prefix
            )),
            _ => Ok(()),
        }
    }
}

/// The JSON form, as the `--fault` flag takes it.
impl FromStr for FaultRule {
    type Err = InvalidFaultRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultRule::from_json(s.as_bytes())
    }
}

/// Whether `path` lies under `prefix`, at a segment boundary: "/v1/accounts" matches
/// "/v1/accounts" and "/v1/accounts/BA-000001-1/balances" but not "/v1/accountsx", and
/// "/v1/accounts/BA-000001-1" does not match "/v1/accounts/BA-000001-10"; "/" matches all.
pub fn path_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// The shared table of fault rules of one simulator: cheap to clone, every clone sees the
/// same rules.
#[derive(Clone, Default)]
pub struct FaultHandle {
    table: Arc<Mutex<FaultTable>>,
}

#[derive(Default)]
struct FaultTable {
    /// Last id handed out; ids are never reused, even after `clear`.
    last_id: u64,
    rules: Vec<ActiveRule>,
}

struct ActiveRule {
    id: u64,
    rule: FaultRule,
    skipped: u32,
    applied: u32,
}

impl ActiveRule {
    /// Offers one matching request (or connection): charges the skip or the budget and says
    /// whether the rule applies to it.
    fn offer(&mut self) -> bool {
        if self.rule.times.is_some_and(|times| self.applied >= times) {
            return false;
        }
        if self.skipped < self.rule.skip {
            self.skipped += 1;
            return false;
        }
        self.applied += 1;
        true
    }
}

impl std::fmt::Debug for FaultHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultHandle")
            .field("rules", &self.rules())
            .finish()
    }
}

impl FaultHandle {
    /// An empty table.
    pub fn new() -> Self {
        FaultHandle::default()
    }

    /// Adds a rule after the existing ones and returns its id.
    ///
    /// # Panics
    ///
    /// If the rule is invalid (see [`FaultRule::validate`]): a test that asks for an
    /// impossible fault should fail loudly, not pass against a bank that never misbehaved.
    pub fn inject(&self, rule: FaultRule) -> u64 {
        self.try_inject(rule).unwrap_or_else(|e| {
            panic!("FaultHandle::inject was given a rule that can never apply: {e}")
        })
    }

    /// Adds a rule after the existing ones and returns its id, or says why it is invalid.
    pub fn try_inject(&self, rule: FaultRule) -> Result<u64, InvalidFaultRule> {
        rule.validate()?;
        let mut table = self.lock();
        table.last_id += 1;
        let id = table.last_id;
        table.rules.push(ActiveRule {
            id,
            rule,
            skipped: 0,
            applied: 0,
        });
        tracing::info!(id, "fault rule installed");
        Ok(id)
    }

    /// Removes one rule; false when no rule has that id.
    pub fn remove(&self, id: u64) -> bool {
        let mut table = self.lock();
        let before = table.rules.len();
        table.rules.retain(|r| r.id != id);
        table.rules.len() != before
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// The rules in the order they are checked, each with its id and how often it applied.
    pub fn rules(&self) -> Vec<(u64, FaultRule, u32)> {
        self.lock()
            .rules
            .iter()
            .map(|r| (r.id, r.rule.clone(), r.applied))
            .collect()
    }

    /// The fault to apply to a request for `path` (with or without a cursor), charging the
    /// budgets as the module documentation describes.
    pub(crate) fn take_for_request(&self, path: &str, has_cursor: bool) -> Option<(u64, Fault)> {
        self.take(|rule| match rule.fault {
            Fault::ResetConnection => false,
            Fault::DuplicatePage => has_cursor && path_matches(&rule.path_prefix, path),
            _ => path_matches(&rule.path_prefix, path),
        })
    }

    /// Gives back one application to rule `id` (if it still exists): its fault found nothing
    /// to damage, so the request went through as if the rule had not applied.
    pub(crate) fn refund(&self, id: u64) {
        if let Some(rule) = self.lock().rules.iter_mut().find(|r| r.id == id) {
            rule.applied = rule.applied.saturating_sub(1);
        }
    }

    /// Whether a connection just accepted must be reset.
    pub(crate) fn take_for_connection(&self) -> Option<u64> {
        self.take(|rule| rule.fault == Fault::ResetConnection && rule.path_prefix == "/")
            .map(|(id, _)| id)
    }

    fn take(&self, matches: impl Fn(&FaultRule) -> bool) -> Option<(u64, Fault)> {
        let mut table = self.lock();
        table
            .rules
            .iter_mut()
            .filter(|r| matches(&r.rule))
            .find_map(|r| r.offer().then(|| (r.id, r.rule.fault.clone())))
    }

    fn lock(&self) -> MutexGuard<'_, FaultTable> {
        // A poisoned lock only means a panic elsewhere while holding it; every update leaves
        // the table consistent, so keep using it.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Fault {
        Fault::Status {
            status: code,
            retry_after_secs: None,
        }
    }

    #[test]
    fn prefixes_match_whole_path_segments_only() {
        assert!(path_matches("/", "/oauth/token"));
        assert!(path_matches("/v1/accounts", "/v1/accounts"));
        assert!(path_matches(
            "/v1/accounts",
            "/v1/accounts/BA-000001-1/balances"
        ));
        assert!(path_matches("/v1/", "/v1/accounts"));
        assert!(!path_matches("/v1/accounts", "/v1/accountsx"));
        assert!(!path_matches(
            "/v1/accounts/BA-000001-1",
            "/v1/accounts/BA-000001-10/transactions"
        ));
        assert!(!path_matches("/v1/accounts", "/v1"));
    }

    #[test]
    fn the_json_forms_of_every_kind_parse() {
        let rule: FaultRule = r#"{"path_prefix": "/v1", "fault": {"kind": "status", "status": 503, "retry_after_secs": 5}, "skip": 1, "times": 2}"#
            .parse()
            .expect("status rule");
        assert_eq!(
            rule,
            FaultRule::new(
                "/v1",
                Fault::Status {
                    status: 503,
                    retry_after_secs: Some(5)
                }
            )
            .skip(1)
            .times(2)
        );
        for (json, fault) in [
            (
                r#"{"kind": "latency", "millis": 250}"#,
                Fault::Latency { millis: 250 },
            ),
            (r#"{"kind": "hang"}"#, Fault::Hang),
            (r#"{"kind": "status", "status": 500}"#, status(500)),
            (r#"{"kind": "truncate"}"#, Fault::Truncate),
            (r#"{"kind": "malformed"}"#, Fault::Malformed),
            (r#"{"kind": "duplicate_page"}"#, Fault::DuplicatePage),
            (r#"{"kind": "reset_connection"}"#, Fault::ResetConnection),
        ] {
            let text = format!(r#"{{"path_prefix": "/", "fault": {json}}}"#);
            let rule: FaultRule = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(rule, FaultRule::new("/", fault), "{text}");
            let round_trip = serde_json::to_string(&rule).expect("serializes");
            assert_eq!(round_trip.parse::<FaultRule>().expect("parses back"), rule);
        }
    }

    #[test]
    fn rules_that_could_never_apply_are_refused_with_the_reason() {
        for (text, needle) in [
            ("not json", "not a fault rule"),
            (
                r#"{"path_prefix": "/", "fault": {"kind": "explode"}}"#,
                "explode",
            ),
            (
                r#"{"path_prefix": "v1", "fault": {"kind": "hang"}}"#,
                "must start with '/'",
            ),
            (
                r#"{"path_prefix": "/", "fault": {"kind": "status", "status": 42}}"#,
                "not an HTTP status",
            ),
            (
                r#"{"path_prefix": "/v1", "fault": {"kind": "reset_connection"}}"#,
                "path_prefix \"/\"",
            ),
        ] {
            let error = text.parse::<FaultRule>().expect_err(text).to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    #[should_panic(expected = "can never apply")]
    fn injecting_an_invalid_rule_panics() {
        FaultHandle::new().inject(FaultRule::new("/v1", Fault::ResetConnection));
    }

    #[test]
    fn a_rule_skips_then_applies_its_times_then_expires_but_stays_listed() {
        let faults = FaultHandle::new();
        let id = faults.inject(FaultRule::new("/v1", status(503)).skip(2).times(3));
        let applied: Vec<bool> = (0..7)
            .map(|_| faults.take_for_request("/v1/accounts", false).is_some())
            .collect();
        assert_eq!(applied, [false, false, true, true, true, false, false]);
        assert_eq!(
            faults.rules(),
            [(id, FaultRule::new("/v1", status(503)).skip(2).times(3), 3)]
        );
    }

    #[test]
    fn a_refunded_application_can_be_used_again() {
        let faults = FaultHandle::new();
        let id = faults.inject(FaultRule::new("/", Fault::Malformed).times(1));
        assert!(faults.take_for_request("/oauth/token", false).is_some());
        assert_eq!(faults.take_for_request("/v1", false), None);
        faults.refund(id);
        assert_eq!(faults.rules()[0].2, 0);
        assert!(faults.take_for_request("/v1", false).is_some());
        faults.refund(id + 1);
        assert_eq!(
            faults.rules()[0].2,
            1,
            "refunding an unknown id changes nothing"
        );
    }

    #[test]
    fn the_first_matching_rule_with_budget_applies_in_insertion_order() {
        let faults = FaultHandle::new();
        let broad = faults.inject(FaultRule::new("/", status(500)).times(1));
        let narrow = faults.inject(FaultRule::new("/v1/accounts", status(429)).times(1));
        let other = faults.inject(FaultRule::new("/oauth/token", status(503)));
        let take = || {
            faults
                .take_for_request("/v1/accounts", false)
                .map(|(id, _)| id)
        };
        assert_eq!(take(), Some(broad));
        assert_eq!(take(), Some(narrow));
        assert_eq!(take(), None);
        assert_eq!(
            faults
                .take_for_request("/oauth/token", false)
                .map(|(id, _)| id),
            Some(other)
        );
    }

    #[test]
    fn a_rule_in_its_skip_phase_passes_the_request_on_to_later_rules() {
        let faults = FaultHandle::new();
        faults.inject(FaultRule::new("/", status(500)).skip(1));
        let later = faults.inject(FaultRule::new("/", status(503)).times(1));
        assert_eq!(
            faults
                .take_for_request("/v1/accounts", false)
                .map(|(id, _)| id),
            Some(later)
        );
    }

    #[test]
    fn duplicate_page_rules_only_match_requests_with_a_cursor() {
        let faults = FaultHandle::new();
        faults.inject(FaultRule::new("/v1", Fault::DuplicatePage).times(1));
        assert_eq!(faults.take_for_request("/v1/accounts", false), None);
        assert_eq!(
            faults
                .take_for_request("/v1/accounts", true)
                .map(|(_, f)| f),
            Some(Fault::DuplicatePage)
        );
        assert_eq!(
            faults.rules()[0].2,
            1,
            "the cursorless request was not charged"
        );
    }

    #[test]
    fn reset_rules_apply_to_connections_and_other_rules_to_requests() {
        let faults = FaultHandle::new();
        let reset = faults.inject(FaultRule::new("/", Fault::ResetConnection).times(1));
        faults.inject(FaultRule::new("/", Fault::Hang).times(1));
        assert_eq!(
            faults.take_for_request("/v1", false).map(|(_, f)| f),
            Some(Fault::Hang)
        );
        assert_eq!(faults.take_for_connection(), Some(reset));
        assert_eq!(faults.take_for_connection(), None);
    }

    #[test]
    fn removed_and_cleared_rules_stop_applying_and_ids_are_not_reused() {
        let faults = FaultHandle::new();
        let first = faults.inject(FaultRule::new("/", Fault::Truncate));
        assert!(faults.remove(first));
        assert!(!faults.remove(first));
        assert_eq!(faults.take_for_request("/v1", false), None);
        let second = faults.inject(FaultRule::new("/", Fault::Truncate));
        assert!(second > first);
        faults.clear();
        assert!(faults.rules().is_empty());
        assert_eq!(faults.take_for_request("/v1", false), None);
    }

    #[test]
    fn concurrent_takers_share_a_budget_exactly() {
        let faults = FaultHandle::new();
        faults.inject(FaultRule::new("/", status(503)).skip(10).times(100));
        let applied: usize = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    let faults = faults.clone();
                    scope.spawn(move || {
                        (0..50)
                            .filter(|_| faults.take_for_request("/v1", false).is_some())
                            .count()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("worker thread does not panic"))
                .sum()
        });
        assert_eq!(applied, 100);
        assert_eq!(faults.rules()[0].2, 100);
    }
}
