//! What the simulated bank received: TCP connections and HTTP requests per path.
//!
//! Reliability tests assert on these ("while the breaker was open the bank received no
//! request"), so they must be exact under concurrency: the request total and the per-path
//! counts change together under one lock (a reader never sees one without the other), and
//! connections are a single atomic. A request counts when it reaches the HTTP layer, before
//! any fault decides its answer, so a request a fault answers (or never answers) still counts.
//! Requests to the admin API are not counted (see the `admin` module), so observing never
//! changes what is observed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::faults::path_matches;

/// Counters of one running simulator.
#[derive(Default)]
pub(crate) struct Traffic {
    connections: AtomicU64,
    requests: Mutex<RequestCounts>,
    /// Trace ids of the W3C `traceparent` headers received (the first 10,000).
    traces: Mutex<std::collections::BTreeSet<String>>,
}

/// Requests received, in total and by exact path (no query string).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct RequestCounts {
    pub(crate) requests: u64,
    pub(crate) by_path: BTreeMap<String, u64>,
}

impl Traffic {
    /// Counts one accepted TCP connection.
    pub(crate) fn record_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes the trace id of a request's `traceparent` header.
    pub(crate) fn record_traceparent(&self, traceparent: &str) {
        if let Some(trace) = traceparent.split('-').nth(1) {
            let mut traces = self.traces.lock().unwrap_or_else(|e| e.into_inner());
            if traces.len() < 10_000 {
                traces.insert(trace.to_owned());
            }
        }
    }

    /// The trace ids seen in `traceparent` headers, sorted.
    pub(crate) fn traces(&self) -> Vec<String> {
        let traces = self.traces.lock().unwrap_or_else(|e| e.into_inner());
        traces.iter().cloned().collect()
    }

    /// Counts one HTTP request for `path`.
    pub(crate) fn record_request(&self, path: &str) {
        let mut counts = self.lock();
        counts.requests += 1;
        // Look up before inserting so the common case (a path seen before) allocates nothing.
        match counts.by_path.get_mut(path) {
            Some(n) => *n += 1,
            None => {
                counts.by_path.insert(path.to_owned(), 1);
            }
        }
    }

    /// TCP connections accepted so far.
    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// HTTP requests received so far.
    pub(crate) fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// HTTP requests received so far whose path lies under `prefix` (see [`path_matches`]).
    pub(crate) fn requests_to(&self, prefix: &str) -> u64 {
        self.lock()
            .by_path
            .iter()
            .filter(|(path, _)| path_matches(prefix, path))
            .map(|(_, n)| n)
            .sum()
    }

    /// A consistent copy of the request counts.
    pub(crate) fn snapshot(&self) -> RequestCounts {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RequestCounts> {
        // Counting cannot leave the map half-updated, so a poisoned lock is still usable.
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_in_total_and_under_each_prefix() {
        let traffic = Traffic::default();
        for path in [
            "/oauth/token",
            "/v1/accounts",
            "/v1/accounts/BA-000001-1/transactions",
            "/v1/accounts/BA-000001-1/transactions",
            "/v1/accounts/BA-000001-10/balances",
        ] {
            traffic.record_request(path);
        }
        assert_eq!(traffic.requests(), 5);
        assert_eq!(traffic.requests_to("/"), 5);
        assert_eq!(traffic.requests_to("/v1/accounts"), 4);
        assert_eq!(traffic.requests_to("/v1/accounts/BA-000001-1"), 2);
        assert_eq!(traffic.requests_to("/oauth/token"), 1);
        assert_eq!(traffic.requests_to("/admin"), 0);
        assert_eq!(
            traffic.snapshot().by_path["/v1/accounts/BA-000001-1/transactions"],
            2
        );
    }
}
