//! Market data: the ECB's euro reference rates (`eurofxref-daily.xml`, `eurofxref-hist.xml`),
//! fetched like a bank's files: over HTTPS with the platform's client identity, through the
//! egress rule, the endpoint's breaker and the retry policy. Returns the bytes as received;
//! `normalizer::ecb` reads them.

use std::sync::Arc;
use std::time::Duration;

use crate::breaker::Breaker;
use crate::http::{BankHttp, RetryPolicy, TlsIdentity};
use crate::{ConnectorError, DocumentKind, FileInfo, RawDocument};

/// Which ECB file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcbFile {
    /// The latest business day's rates.
    Daily,
    /// Every business day since the series began (or the feed's window).
    History,
}

impl EcbFile {
    pub fn name(self) -> &'static str {
        match self {
            EcbFile::Daily => "eurofxref-daily.xml",
            EcbFile::History => "eurofxref-hist.xml",
        }
    }
}

/// How to reach the reference-rate feed.
#[derive(Clone)]
pub struct EcbConfig {
    /// e.g. `https://www.ecb.europa.eu/stats/eurofxref` (files directly under it).
    pub base_url: String,
    pub tls: TlsIdentity,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub breaker: Option<Arc<Breaker>>,
    pub egress: eam_config::egress::EgressPolicy,
}

/// A client of the reference-rate feed.
pub struct EcbClient {
    http: BankHttp,
    base_url: String,
}

impl EcbClient {
    pub fn new(config: EcbConfig) -> Result<Self, ConnectorError> {
        Ok(EcbClient {
            http: BankHttp::new(
                &config.tls,
                config.timeout,
                config.retry,
                config.breaker,
                config.egress,
            )?,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Downloads one file, exactly as served.
    pub async fn fetch(&self, file: EcbFile) -> Result<RawDocument, ConnectorError> {
        let url = format!("{}/{}", self.base_url, file.name());
        let body = self.http.send(|| self.http.client.get(&url), &url).await?;
        Ok(RawDocument {
            kind: DocumentKind::ReferenceRates,
            account_id: None,
            page: 1,
            body,
            file: Some(FileInfo {
                id: file.name().to_owned(),
                name: file.name().to_owned(),
                format: "ecb_eurofxref".to_owned(),
            }),
        })
    }
}
