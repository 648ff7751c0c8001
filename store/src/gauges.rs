//! Cross-tenant counts behind the platform's Prometheus gauges, read at scrape time.
//!
//! Each read is one cheap query: active runs through the partial index on queued and running
//! runs (never the job history), certificates and breakers from small platform-sized tables.
//! Tenant data stays behind RLS: the counts come from narrow functions (see
//! `migrations/0008_metrics.sql`) that return numbers per custodian, never ids or names.

use crate::{Result, Store};

pub use eam_model::gauges::{ActiveRuns, CertificatesAtRisk, ReportedBreakers};

impl Store {
    /// Queued, waiting and running runs per custodian, across tenants (zeros included).
    pub async fn active_runs(&self) -> Result<Vec<ActiveRuns>> {
        Ok(sqlx::query_as!(
            ActiveRuns,
            r#"SELECT custodian AS "custodian!", state AS "state!", runs AS "runs!" FROM metrics_active_runs()"#,
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Client certificates, as the last syncs read them, expired or expiring within
    /// `warning_days`, per custodian, across tenants (zeros included).
    pub async fn certificates_at_risk(&self, warning_days: u32) -> Result<Vec<CertificatesAtRisk>> {
        Ok(sqlx::query_as!(
            CertificatesAtRisk,
            r#"SELECT custodian AS "custodian!", expired AS "expired!", expiring AS "expiring!" FROM metrics_client_certificates($1)"#,
            i32::try_from(warning_days).unwrap_or(i32::MAX),
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The circuit breaker states workers reported, per endpoint (platform data).
    pub async fn reported_breakers(&self) -> Result<Vec<ReportedBreakers>> {
        Ok(sqlx::query_as!(
            ReportedBreakers,
            r#"SELECT endpoint, state, count(*) AS "workers!" FROM circuit_breakers
             GROUP BY endpoint, state ORDER BY endpoint, state"#
        )
        .fetch_all(self.pool())
        .await?)
    }
}
