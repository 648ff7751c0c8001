//! The per-custodian concurrency limit: at most N syncs of one custodian (bank) running at
//! once, across every tenant, worker and process.
//!
//! Checked where a run starts, in the transaction that moves it to `running`:
//! [`has_free_slot`] takes a transaction-level advisory lock for the custodian and counts its
//! running syncs (the `custodian_has_free_slot` database function, which sees every tenant), so
//! starts of the same custodian's runs are serialised until each commits and the count cannot
//! go stale between check and start. A run over the limit stays queued and [`postpone`] sets it
//! a short wait; the dispatcher pushes it again when that is over.

use std::time::Duration;

use crate::{ConnectionId, Result, RunId, TenantTx};

/// Whether the connection's custodian has fewer than `max_running` syncs running. Holds the
/// custodian's lock until `tx` ends: start the run in the same transaction.
pub async fn has_free_slot(
    tx: &mut TenantTx,
    connection: ConnectionId,
    max_running: u32,
) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT custodian_has_free_slot($1, $2) AS "free!""#,
        connection.0,
        i32::try_from(max_running).unwrap_or(i32::MAX)
    )
    .fetch_one(tx.conn())
    .await?)
}

/// Makes a queued run that is due wait `wait` more (its status does not change). False when
/// the run is not queued and due (then nothing changes: a later retry time is never brought
/// forward).
pub async fn postpone(tx: &mut TenantTx, run: RunId, wait: Duration) -> Result<bool> {
    let updated = sqlx::query!(
        "UPDATE sync_runs SET next_attempt_at = now() + make_interval(secs => $2)
         WHERE id = $1 AND status = 'queued' AND coalesce(next_attempt_at, '-infinity') <= now()",
        run.0,
        wait.as_secs_f64()
    )
    .execute(tx.conn())
    .await?;
    Ok(updated.rows_affected() == 1)
}
