//! Market data: the ECB's euro reference rates fetched (platform identity, egress rule,
//! retries, breaker), archived as received under the platform's namespace of the archive (the
//! nil tenant), read, and loaded idempotently into `fx_rates`.

use std::time::Duration;

use eam_config::{MarketDataSettings, SecretProvider};
use eam_connectors::market_data::{EcbClient, EcbConfig, EcbFile};
use eam_connectors::{Breakers, RetryPolicy, TlsIdentity};
use eam_model::ErrorClass;
use eam_store::archive::Archive;
use eam_store::fx_rates::{self, Loaded};
use eam_store::{Store, TenantId};

use crate::error::SyncError;

/// The archive namespace of platform documents (no tenant owns them).
pub const PLATFORM: TenantId = TenantId(uuid::Uuid::nil());

/// What one market-data sync did.
#[derive(Debug, Clone, PartialEq)]
pub struct RatesSynced {
    pub document: String,
    pub sha256: String,
    pub rates: usize,
    pub loaded: Loaded,
    /// Rates of codes ISO 4217 does not know, left out.
    pub warnings: Vec<String>,
}

/// Where and how to fetch.
pub struct MarketData<'a> {
    pub settings: &'a MarketDataSettings,
    pub secrets: &'a SecretProvider,
    pub breakers: &'a Breakers,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub egress: eam_config::egress::EgressPolicy,
}

impl MarketData<'_> {
    /// A platform secret, or nothing for an empty reference.
    async fn platform(&self, reference: &str) -> Result<Vec<u8>, SyncError> {
        if reference.trim().is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.secrets.resolve_platform(reference).await?)
    }

    /// Fetches `file`, archives it, and loads its rates.
    pub async fn sync(
        &self,
        store: &Store,
        archive: &Archive,
        file: EcbFile,
    ) -> Result<RatesSynced, SyncError> {
        let s = self.settings;
        let tls = TlsIdentity {
            client_cert_pem: self.platform(&s.client_cert_ref).await?,
            client_key_pem: self.platform(&s.client_key_ref).await?,
            ca_pem: self.platform(&s.ca_cert_ref).await?,
        };
        let client = EcbClient::new(EcbConfig {
            base_url: s.ecb_url.clone(),
            tls,
            timeout: self.timeout,
            retry: self.retry.clone(),
            breaker: Some(self.breakers.for_url(&s.ecb_url)),
            egress: self.egress,
        })?;
        let document = client.fetch(file).await?;
        let name = document.name();
        let stored = archive.put(PLATFORM, document.body.clone()).await?;
        let parsed = eam_normalizer::ecb::parse(&name, &document.body)
            .map_err(|e| SyncError::new(ErrorClass::Data, e.to_string()))?;
        let loaded = fx_rates::load(store, &parsed.rates, &stored.sha256).await?;
        tracing::info!(document = %name, sha256 = %stored.sha256, rates = parsed.rates.len(),
            inserted = loaded.inserted, updated = loaded.updated, "reference rates loaded");
        Ok(RatesSynced {
            document: name,
            sha256: stored.sha256,
            rates: parsed.rates.len(),
            loaded,
            warnings: parsed.warnings,
        })
    }
}
