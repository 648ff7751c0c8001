//! The certificate check: every connection's client certificate read through its tenant's
//! secret reference (as a sync reads it), and `certificate.expiring` emitted once when one
//! enters the warning window (`certificates.warning_days`) and once more if it expires. Each
//! worker runs it at start and every `interval` ([`run_certificate_check`]); the database's
//! key keeps the event single however many workers check.

use std::time::Duration;

use chrono::{DateTime, Utc};
use eam_config::secrets::SecretProvider;
use eam_model::CertificateStatus;
use eam_store::certificate_warnings::{self, CertificateRef};
use eam_store::{Store, StoreError};

/// What one check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateReport {
    pub checked: usize,
    /// Events emitted now (a certificate newly expiring or expired).
    pub warned: usize,
    /// References that could not be read as a certificate (logged; a sync would fail on them).
    pub unreadable: usize,
}

async fn status_of(
    secrets: &SecretProvider,
    c: &CertificateRef,
    warning_days: u32,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, CertificateStatus), String> {
    let pem = secrets
        .resolve_tenant(c.tenant_id, &c.client_cert_ref)
        .await
        .map_err(|e| e.to_string())?;
    let not_after = eam_model::certificate::not_after(&pem).map_err(|e| e.to_string())?;
    Ok((
        not_after,
        CertificateStatus::of(not_after, now, warning_days),
    ))
}

/// Checks every connection's client certificate at `now`.
pub async fn check_certificates(
    store: &Store,
    secrets: &SecretProvider,
    warning_days: u32,
    now: DateTime<Utc>,
) -> Result<CertificateReport, StoreError> {
    let refs = store.client_certificate_refs().await?;
    let mut report = CertificateReport {
        checked: refs.len(),
        ..CertificateReport::default()
    };
    for c in &refs {
        match status_of(secrets, c, warning_days, now).await {
            Ok((
                not_after,
                status @ (CertificateStatus::Expiring | CertificateStatus::Expired),
            )) => {
                let days_left = (not_after - now).num_days();
                if certificate_warnings::warn_certificate(
                    store,
                    c,
                    not_after,
                    status.as_str(),
                    days_left,
                )
                .await?
                {
                    report.warned += 1;
                    tracing::warn!(connection_id = %c.connection_id, %not_after,
                        status = status.as_str(), "client certificate at risk");
                }
            }
            Ok(_) => {}
            Err(e) => {
                report.unreadable += 1;
                tracing::warn!(connection_id = %c.connection_id, error = %e,
                    "a client certificate could not be read");
            }
        }
    }
    Ok(report)
}

/// Checks at start and every `interval` until `stop` turns true.
pub async fn run_certificate_check(
    store: Store,
    secrets: SecretProvider,
    warning_days: u32,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = check_certificates(&store, &secrets, warning_days, Utc::now()).await {
            tracing::warn!(error = %e, "the certificate check could not read the connections");
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
