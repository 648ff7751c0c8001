//! Circuit breaker snapshots: what each worker's breaker for a bank endpoint last reported.
//!
//! Breakers live in worker memory (one per endpoint per worker, shared by its jobs); workers
//! report state changes here so that ops see them through the API without asking a worker.
//! Endpoints are custodians' hosts, platform data without a tenant: the API looks up only the
//! endpoint of a connection the caller can see.

use chrono::{DateTime, Utc};

use crate::{Result, Store, TenantTx};

/// One worker's breaker for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerRow {
    pub endpoint: String,
    pub worker_id: String,
    /// `closed`, `open` or `half_open`.
    pub state: String,
    pub consecutive_failures: i32,
    pub opened_at: Option<DateTime<Utc>>,
    pub open_until: Option<DateTime<Utc>>,
    pub rejected_calls: i64,
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// Records a worker's breaker snapshots (upsert per endpoint and worker).
    pub async fn report_breakers(&self, rows: &[BreakerRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "INSERT INTO circuit_breakers (endpoint, worker_id, state, consecutive_failures,
                opened_at, open_until, rejected_calls, updated_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[],
                $6::timestamptz[], $7::bigint[], $8::timestamptz[])
             ON CONFLICT (endpoint, worker_id) DO UPDATE SET state = EXCLUDED.state,
                consecutive_failures = EXCLUDED.consecutive_failures, opened_at = EXCLUDED.opened_at,
                open_until = EXCLUDED.open_until, rejected_calls = EXCLUDED.rejected_calls,
                updated_at = EXCLUDED.updated_at",
            &(rows.iter().map(|r| r.endpoint.as_str()).collect::<Vec<_>>()) as &[&str],
            &(rows.iter().map(|r| r.worker_id.as_str()).collect::<Vec<_>>()) as &[&str],
            &(rows.iter().map(|r| r.state.as_str()).collect::<Vec<_>>()) as &[&str],
            &rows.iter().map(|r| r.consecutive_failures).collect::<Vec<_>>(),
            &(rows.iter().map(|r| r.opened_at).collect::<Vec<_>>()) as &[Option<DateTime<Utc>>],
            &(rows.iter().map(|r| r.open_until).collect::<Vec<_>>()) as &[Option<DateTime<Utc>>],
            &rows.iter().map(|r| r.rejected_calls).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.updated_at).collect::<Vec<_>>(),
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Removes a worker's reported breakers (it is shutting down: its breakers go with it).
    pub async fn forget_breakers(&self, worker_id: &str) -> Result<u64> {
        Ok(sqlx::query!(
            "DELETE FROM circuit_breakers WHERE worker_id = $1",
            worker_id
        )
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

/// Every worker's breaker for an endpoint, most recently updated first.
pub async fn for_endpoint(tx: &mut TenantTx, endpoint: &str) -> Result<Vec<BreakerRow>> {
    Ok(sqlx::query_as!(
        BreakerRow,
        "SELECT endpoint, worker_id, state, consecutive_failures, opened_at, open_until,
            rejected_calls, updated_at
         FROM circuit_breakers WHERE endpoint = $1 ORDER BY updated_at DESC, worker_id",
        endpoint
    )
    .fetch_all(tx.conn())
    .await?)
}
