//! bank_b: SWIFT FIN statement files (MT940, MT535, MT536) listed and downloaded over mutual
//! TLS, authenticated by the client certificate alone.
//!
//! The listing, downloads and their checks are the file banks' shared protocol (see
//! [`crate::files`]); this module only holds the connection's configuration. A sync passes
//! the greatest file id of the previous sync as `after` and receives only newer files.

use std::sync::Arc;
use std::time::Duration;

use crate::ConnectorError;
use crate::breaker::Breaker;
use crate::files::FileClient;
use crate::http::{BankHttp, RetryPolicy, TlsIdentity};

pub use crate::files::FetchedFiles;

/// How to reach one bank_b connection.
#[derive(Clone)]
pub struct BankBConfig {
    /// e.g. `https://files.bank-b.example/bank-b` (the listing is `{base_url}/files`).
    pub base_url: String,
    /// The client certificate is the only credential bank_b asks for.
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

impl std::fmt::Debug for BankBConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankBConfig")
            .field("base_url", &self.base_url)
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// A client for one bank_b connection.
pub struct BankBClient {
    files: FileClient,
}

impl BankBClient {
    /// Builds the client; unusable certificates or keys are an auth-class error.
    pub fn new(config: BankBConfig) -> Result<Self, ConnectorError> {
        let http = BankHttp::new(
            &config.tls,
            config.timeout,
            config.retry,
            config.breaker,
            config.egress,
        )?;
        Ok(BankBClient {
            files: FileClient::new(http, &config.base_url, None),
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

    #[test]
    fn the_key_never_prints() {
        let config = BankBConfig {
            base_url: "https://bank/bank-b".into(),
            tls: TlsIdentity {
                client_key_pem: b"-----BEGIN PRIVATE KEY-----hunter2".to_vec(),
                ..TlsIdentity::default()
            },
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            breaker: None,
            egress: eam_config::egress::EgressPolicy::default(),
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
