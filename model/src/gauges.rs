//! The cross-tenant counts behind the platform's gauges: read by `store` (through narrow
//! SECURITY DEFINER functions), shown by `metrics`.

/// Runs of one custodian in one state of the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ActiveRuns {
    pub custodian: String,
    /// `queued` (due, waiting for a worker), `waiting` (not due before its next attempt
    /// time) or `running`.
    pub state: String,
    pub runs: i64,
}

/// Client certificates of one custodian's connections that are at risk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct CertificatesAtRisk {
    pub custodian: String,
    /// Already past their notAfter.
    pub expired: i64,
    /// Expiring within the warning period.
    pub expiring: i64,
}

/// How many workers last reported their breaker for an endpoint in a state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ReportedBreakers {
    pub endpoint: String,
    /// `closed`, `open` or `half_open`.
    pub state: String,
    pub workers: i64,
}
