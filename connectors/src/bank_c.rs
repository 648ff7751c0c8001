//! bank_c: ISO 20022 statement files (camt.053, semt.002) listed and downloaded over mutual
//! TLS, authenticated by the client certificate and an API key sent as `X-API-Key`.
//!
//! The listing, downloads and their checks are the file banks' shared protocol (see
//! [`crate::files`]); this module holds the connection's configuration and its key, which
//! goes into every request header and nowhere else (not into errors, not into Debug output).
//! A refused key is HTTP 401, an auth error: ops must fix the connection's credentials.

use std::sync::Arc;
use std::time::Duration;

use crate::ConnectorError;
use crate::breaker::Breaker;
use crate::files::FileClient;
use crate::http::{BankHttp, RetryPolicy, TlsIdentity};

pub use crate::files::FetchedFiles;

/// How to reach one bank_c connection.
#[derive(Clone)]
pub struct BankCConfig {
    /// e.g. `https://files.bank-c.example/bank-c` (the listing is `{base_url}/files`).
    pub base_url: String,
    /// Sent as `X-API-Key` with every request.
    pub api_key: String,
    pub tls: TlsIdentity,
    /// Per request.
    pub timeout: Duration,
    /// Retries of transient failures inside the sync.
    pub retry: RetryPolicy,
    /// The endpoint's circuit breaker, shared with the worker's other jobs.
    pub breaker: Option<Arc<Breaker>>,
    /// Which addresses the client may connect to.
    pub egress: eam_config::egress::EgressPolicy,
}

impl std::fmt::Debug for BankCConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankCConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"[redacted]")
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// A client for one bank_c connection.
pub struct BankCClient {
    files: FileClient,
}

impl BankCClient {
    /// Builds the client; unusable certificates or keys are an auth-class error, and so is
    /// an empty API key.
    pub fn new(config: BankCConfig) -> Result<Self, ConnectorError> {
        if config.api_key.trim().is_empty() {
            return Err(ConnectorError::Credentials(
                "bank_c needs an API key and the connection has none".into(),
            ));
        }
        let http = BankHttp::new(
            &config.tls,
            config.timeout,
            config.retry,
            config.breaker,
            config.egress,
        )?;
        Ok(BankCClient {
            files: FileClient::new(http, &config.base_url, Some(config.api_key)),
        })
    }

    /// Lists every file whose id sorts after `after` (all files when `None`) and downloads
    /// each, checked against its listed size and SHA-256.
    pub async fn fetch(&self, after: Option<&str>) -> Result<FetchedFiles, ConnectorError> {
        self.files.fetch(after).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(api_key: &str) -> BankCConfig {
        BankCConfig {
            base_url: "https://bank/bank-c".into(),
            api_key: api_key.into(),
            tls: TlsIdentity::default(),
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            breaker: None,
            egress: eam_config::egress::EgressPolicy::default(),
        }
    }

    #[test]
    fn the_api_key_never_prints() {
        assert!(!format!("{:?}", config("hunter2")).contains("hunter2"));
    }

    #[test]
    fn an_empty_api_key_is_an_auth_error() {
        let error = BankCClient::new(config(" ")).err().expect("refused");
        assert_eq!(error.class(), crate::ErrorClass::Auth);
    }
}
