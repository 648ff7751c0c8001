//! The transport to banks: an HTTPS client with mutual TLS, and one module per bank protocol.
//!
//! A connector fetches raw documents and returns them exactly as the bank sent them
//! ([`RawDocument`]): parsing into the canonical model is the normalizer's job, so that an
//! archived document can be parsed again later without asking the bank. A connector reads
//! only what it needs to navigate (account ids, pagination cursors, the OAuth token).
//!
//! Every failure is a [`ConnectorError`] with an [`ErrorClass`], which decides what happens to
//! the run: transient errors are retried, auth errors wait for ops to fix credentials or
//! certificates, data errors wait for a parser fix or the bank, internal errors go to
//! engineering.

pub mod bank_a;
pub mod bank_b;
pub mod bank_c;
pub mod breaker;
pub mod certificate;
pub mod files;
mod http;
pub mod market_data;
pub mod open;

use std::time::Duration;

pub use bank_a::PositionHistory;
pub use breaker::{Breaker, BreakerSettings, BreakerSnapshot, BreakerState, Breakers};
pub use eam_model::{DocumentKind, ErrorClass};
pub use http::GuardedResolver;
pub use http::{RetryPolicy, TlsIdentity, traced};
pub use open::{ConnectSettings, Resume, Transport, open};

/// A failed exchange with a bank. Messages name the URL and the cause, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The connection's credentials or certificates cannot be used (bad PEM, missing key).
    #[error("bank credentials are unusable: {0}")]
    Credentials(String),
    /// The TLS handshake failed: certificate refused by the bank, or the bank's not trusted.
    #[error("TLS handshake with {url} failed: {detail}")]
    Tls { url: String, detail: String },
    /// The bank answered 401 or 403.
    #[error("{url} refused our credentials: HTTP {status}")]
    Unauthorized { url: String, status: u16 },
    /// The network failed: timeout, refused or reset connection, body cut off.
    #[error("{url}: {detail}")]
    Transport { url: String, detail: String },
    /// The bank answered with an error status other than 401/403.
    #[error("{url} answered HTTP {status}{}", retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    Status {
        url: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The bank's answer cannot be navigated (not the expected JSON, a cursor loop).
    #[error("unexpected answer from {url}: {detail}")]
    Payload { url: String, detail: String },
    /// The platform does not connect there (a private address, a host the custodian registry
    /// does not name): nothing was sent.
    #[error("refused destination: {0}; nothing was sent")]
    Destination(String),
    /// The endpoint's circuit breaker is open: nothing was sent.
    #[error("circuit breaker open for {endpoint}{}: the bank failed repeatedly, nothing was sent", until.map(|u| format!(" until {}", u.format("%H:%M:%S UTC"))).unwrap_or_default())]
    BreakerOpen {
        endpoint: String,
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
}

impl ConnectorError {
    /// The class that decides retry and the suggested action.
    pub fn class(&self) -> ErrorClass {
        match self {
            ConnectorError::Credentials(_)
            | ConnectorError::Destination(_)
            | ConnectorError::Tls { .. }
            | ConnectorError::Unauthorized { .. } => ErrorClass::Auth,
            ConnectorError::Transport { .. } | ConnectorError::BreakerOpen { .. } => {
                ErrorClass::Transient
            }
            ConnectorError::Status { status, .. } => match status {
                408 | 425 | 429 | 500..=599 => ErrorClass::Transient,
                // Any other 4xx means we asked for something the bank does not serve.
                _ => ErrorClass::Internal,
            },
            ConnectorError::Payload { .. } => ErrorClass::Data,
        }
    }

    /// How long to wait before trying again, when known: the bank's Retry-After (429 / 503),
    /// or the time until an open breaker lets a probe through.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectorError::Status { retry_after, .. } => *retry_after,
            ConnectorError::BreakerOpen { until, .. } => {
                until.and_then(|u| (u - chrono::Utc::now()).to_std().ok())
            }
            _ => None,
        }
    }

    /// True when the bank failed to answer usefully (what a circuit breaker counts), as
    /// opposed to answering with a refusal or unreadable data, which proves it is up.
    fn is_bank_failure(&self) -> bool {
        match self {
            ConnectorError::Transport { .. } => true,
            ConnectorError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }
}

/// A statement file as the bank lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The bank's id of the file; ids grow in listing order (the sync cursor).
    pub id: String,
    /// The bank's file name, e.g. `BB-000001-1_2026-11-20.mt940`.
    pub name: String,
    /// The format the bank lists it as, in `SourceFormat` names: `mt940`, `mt535`, `mt536`,
    /// `camt053`, `semt002`, …
    pub format: String,
}

/// One document exactly as the bank sent it.
#[derive(Debug, Clone)]
pub struct RawDocument {
    pub kind: DocumentKind,
    /// The bank account the document is about, when it is about one.
    pub account_id: Option<String>,
    /// One-based page number within (kind, account).
    pub page: u32,
    pub body: bytes::Bytes,
    /// For statement files: which file.
    pub file: Option<FileInfo>,
}

impl RawDocument {
    /// A stable name within a sync, used in provenance and error locations, e.g.
    /// `transactions/BA-0001-1/page-2`, or a statement file's own name.
    pub fn name(&self) -> String {
        if let Some(file) = &self.file {
            return file.name.clone();
        }
        match &self.account_id {
            Some(account) => format!("{}/{account}/page-{}", self.kind.as_str(), self.page),
            None => format!("{}/page-{}", self.kind.as_str(), self.page),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_retryable_statuses_are_transient() {
        let status = |s| ConnectorError::Status {
            url: "u".into(),
            status: s,
            retry_after: None,
        };
        assert_eq!(status(503).class(), ErrorClass::Transient);
        assert_eq!(status(429).class(), ErrorClass::Transient);
        assert_eq!(status(404).class(), ErrorClass::Internal);
        let refused = ConnectorError::Unauthorized {
            url: "u".into(),
            status: 401,
        };
        assert_eq!(refused.class(), ErrorClass::Auth);
    }

    #[test]
    fn class_names_round_trip() {
        for c in [
            ErrorClass::Transient,
            ErrorClass::Auth,
            ErrorClass::Data,
            ErrorClass::Internal,
        ] {
            assert_eq!(ErrorClass::parse(c.as_str()), Some(c));
        }
        assert_eq!(ErrorClass::parse("other"), None);
    }
}
