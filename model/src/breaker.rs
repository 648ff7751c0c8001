//! Circuit breakers as ops see them: the state of one endpoint's breaker in one worker, and
//! which endpoint a URL belongs to. The breakers themselves live in `connectors`.

use chrono::{DateTime, Utc};

/// The state of a breaker, as ops see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A breaker's state at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSnapshot {
    pub endpoint: String,
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub opened_at: Option<DateTime<Utc>>,
    pub open_until: Option<DateTime<Utc>>,
    pub rejected_calls: u64,
    /// Bumped on every change, so a reporter sends only what changed.
    pub version: u64,
}

/// Something that holds breakers and can show their states (a worker's breakers, for its
/// metrics).
pub trait BreakerSource: Send + Sync {
    fn snapshots(&self) -> Vec<BreakerSnapshot>;
}

impl BreakerState {
    /// The state named by [`BreakerState::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
}

/// The endpoint a breaker guards: `scheme://host:port` of a URL (the URL itself when it does
/// not parse, so a bad URL still gets a breaker of its own).
pub fn endpoint_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_scheme_host_and_port() {
        assert_eq!(
            endpoint_of("https://bank.example/v1/x"),
            "https://bank.example:443"
        );
        assert_eq!(
            endpoint_of("https://127.0.0.1:8443"),
            "https://127.0.0.1:8443"
        );
        assert_eq!(endpoint_of("not a url"), "not a url");
        assert_eq!(
            BreakerState::parse("half_open"),
            Some(BreakerState::HalfOpen)
        );
    }
}
