//! Sync schedules: each connection's own schedule or the tenant's default, and the record of
//! every scheduled time handled (`schedule_fires`).
//!
//! Exactly once is the database's job, not the scheduler's: [`fire`] creates the scheduled run
//! and records the scheduled time in one transaction, and the record's key (connection,
//! scheduled time) lets only one transaction ever commit it. A scheduler that loses the race
//! rolls its run back. This module stores expressions as text; parsing them and computing
//! times is the worker's `schedule` module (the store does not know cron).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{ConnectionId, Result, RunId, Store, StoreError, TenantId, TenantTx};

/// A connection's schedule settings and the tenant default they fall back to.
#[derive(Debug, Clone)]
pub struct ConnectionSchedule {
    pub connection_id: Uuid,
    /// False while the connection is paused (then nothing is scheduled).
    pub connection_enabled: bool,
    /// The connection's own schedule; both `None` when it follows the tenant default.
    pub cron: Option<String>,
    pub timezone: Option<String>,
    /// False while the schedule is paused.
    pub enabled: bool,
    /// Scheduled times at or before this are never run.
    pub since: DateTime<Utc>,
    pub default_cron: Option<String>,
    pub default_timezone: Option<String>,
    pub default_enabled: Option<bool>,
}

/// The tenant's default schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantDefault {
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
}

/// One scheduled time handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    pub connection_id: Uuid,
    pub scheduled_for: DateTime<Utc>,
    /// `enqueued`, `coalesced`, `paused` or `missed`.
    pub outcome: String,
    pub run_id: Option<Uuid>,
    pub fired_at: DateTime<Utc>,
}

/// One connection with an active schedule, as the scheduler sees it across tenants.
#[derive(Debug, Clone)]
pub struct ScheduledConnection {
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    pub connection_name: String,
    pub custodian: String,
    pub connection_enabled: bool,
    pub cron: String,
    pub timezone: String,
    /// Scheduled times at or before this are never run.
    pub since: DateTime<Utc>,
    /// The latest scheduled time already handled.
    pub last_scheduled_for: Option<DateTime<Utc>>,
}

/// The connection's schedule settings.
pub async fn get(tx: &mut TenantTx, connection: ConnectionId) -> Result<ConnectionSchedule> {
    sqlx::query_as!(
        ConnectionSchedule,
        "SELECT c.id AS connection_id, c.enabled AS connection_enabled, c.schedule_cron AS cron,
            c.schedule_tz AS timezone, c.schedule_enabled AS enabled, c.schedule_since AS since,
            d.cron AS default_cron, d.timezone AS default_timezone, d.enabled AS default_enabled
         FROM bank_connections c LEFT JOIN schedule_defaults d ON d.tenant_id = c.tenant_id
         WHERE c.id = $1",
        connection.0
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(StoreError::NotFound)
}

/// Sets the connection's own schedule (`Some((cron, timezone))`, already validated) or makes
/// it follow the tenant default (`None`), pausing or resuming it. Times at or before `now` are
/// not run under the new schedule.
pub async fn set(
    tx: &mut TenantTx,
    connection: ConnectionId,
    own: Option<(&str, &str)>,
    enabled: bool,
    now: DateTime<Utc>,
) -> Result<ConnectionSchedule> {
    let (cron, timezone) = own.unzip();
    let updated = sqlx::query!(
        "UPDATE bank_connections SET schedule_cron = $2, schedule_tz = $3, schedule_enabled = $4,
            schedule_since = $5, updated_at = now()
         WHERE id = $1",
        connection.0,
        cron,
        timezone,
        enabled,
        now
    )
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    get(tx, connection).await
}

/// The tenant's default schedule, if it has one.
pub async fn get_default(tx: &mut TenantTx) -> Result<Option<TenantDefault>> {
    Ok(sqlx::query_as!(
        TenantDefault,
        "SELECT cron, timezone, enabled, updated_at, updated_by FROM schedule_defaults
         WHERE tenant_id = $1",
        tx.tenant().0
    )
    .fetch_optional(tx.conn())
    .await?)
}

/// Sets the tenant's default schedule (already validated). Connections that follow it do not
/// run times at or before `now` under the new default.
pub async fn set_default(
    tx: &mut TenantTx,
    cron: &str,
    timezone: &str,
    enabled: bool,
    updated_by: &str,
    now: DateTime<Utc>,
) -> Result<TenantDefault> {
    Ok(sqlx::query_as!(
        TenantDefault,
        "INSERT INTO schedule_defaults (tenant_id, cron, timezone, enabled, updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id) DO UPDATE SET cron = EXCLUDED.cron, timezone = EXCLUDED.timezone,
            enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at,
            updated_by = EXCLUDED.updated_by
         RETURNING cron, timezone, enabled, updated_at, updated_by",
        tx.tenant().0,
        cron,
        timezone,
        enabled,
        now,
        updated_by
    )
    .fetch_one(tx.conn())
    .await?)
}

/// Removes the tenant's default schedule; false when it had none. Connections without a
/// schedule of their own then have none.
pub async fn clear_default(tx: &mut TenantTx) -> Result<bool> {
    Ok(sqlx::query!(
        "DELETE FROM schedule_defaults WHERE tenant_id = $1",
        tx.tenant().0
    )
    .execute(tx.conn())
    .await?
    .rows_affected()
        > 0)
}

/// The connection's latest handled scheduled times, newest first.
pub async fn recent_fires(
    tx: &mut TenantTx,
    connection: ConnectionId,
    limit: i64,
) -> Result<Vec<Fire>> {
    Ok(sqlx::query_as!(
        Fire,
        "SELECT connection_id, scheduled_for, outcome, run_id, fired_at FROM schedule_fires
         WHERE connection_id = $1 ORDER BY scheduled_for DESC LIMIT $2",
        connection.0,
        limit
    )
    .fetch_all(tx.conn())
    .await?)
}

/// What to do with a scheduled time that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireAction {
    /// Queue a sync that starts at `start_at` (the dispatcher pushes it then).
    Enqueue { start_at: DateTime<Utc> },
    /// The connection is paused: record the time, run nothing.
    Paused,
    /// Too late to catch up: record the time, run nothing.
    Missed,
}

/// What became of a scheduled time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireOutcome {
    /// A new scheduled run.
    Enqueued(RunId),
    /// The connection already had a queued or running run; the time counts as handled by it.
    Coalesced(RunId),
    Paused,
    Missed,
    /// Another scheduler handled this time first; nothing was changed.
    AlreadyHandled,
}

impl FireOutcome {
    /// The outcome as `schedule_fires` records it.
    pub fn as_str(self) -> &'static str {
        match self {
            FireOutcome::Enqueued(_) => "enqueued",
            FireOutcome::Coalesced(_) => "coalesced",
            FireOutcome::Paused => "paused",
            FireOutcome::Missed => "missed",
            FireOutcome::AlreadyHandled => "already_handled",
        }
    }
}

/// Handles one scheduled time of one connection, exactly once: creates the run (or finds the
/// connection's active run) and records the time, in one transaction of the tenant. The
/// run is created unpushed (`enqueued_at` NULL) with `next_attempt_at = start_at`: the
/// dispatcher pushes it when it is due, so a tick needs PostgreSQL only and a crash between
/// commit and push cannot lose it.
pub async fn fire(
    store: &Store,
    tenant: TenantId,
    connection: ConnectionId,
    scheduled_for: DateTime<Utc>,
    now: DateTime<Utc>,
    action: FireAction,
) -> Result<FireOutcome> {
    let mut tx = store.tenant_tx(tenant).await?;
    let (outcome, run) = match action {
        FireAction::Enqueue { start_at } => {
            match create_run(&mut tx, connection, scheduled_for, start_at).await? {
                (run, false) => (FireOutcome::Enqueued(run), Some(run)),
                (run, true) => (FireOutcome::Coalesced(run), Some(run)),
            }
        }
        FireAction::Paused => (FireOutcome::Paused, None),
        FireAction::Missed => (FireOutcome::Missed, None),
    };
    let recorded: Option<Uuid> = sqlx::query_scalar!(
        "INSERT INTO schedule_fires (tenant_id, connection_id, scheduled_for, outcome, run_id, fired_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (connection_id, scheduled_for) DO NOTHING
         RETURNING connection_id",
        tenant.0,
        connection.0,
        scheduled_for,
        outcome.as_str(),
        run.map(|r| r.0),
        now,
    )
    .fetch_optional(tx.conn())
    .await?;
    if recorded.is_none() {
        // Dropping the transaction rolls back the run this attempt created.
        return Ok(FireOutcome::AlreadyHandled);
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Creates the scheduled run, or returns the connection's active run (true: coalesced). The
/// one-active-run index decides between concurrent creators, as for manual triggers.
async fn create_run(
    tx: &mut TenantTx,
    connection: ConnectionId,
    scheduled_for: DateTime<Utc>,
    start_at: DateTime<Utc>,
) -> Result<(RunId, bool)> {
    let tenant = tx.tenant();
    // The active run may finish between the insert and the select: then try again.
    for _ in 0..3 {
        let id = RunId::new();
        let inserted: Option<Uuid> = sqlx::query_scalar!(
            "INSERT INTO sync_runs (id, tenant_id, connection_id, trigger, status, next_attempt_at,
                scheduled_for)
             VALUES ($1, $2, $3, 'schedule', 'queued', $4, $5)
             ON CONFLICT (connection_id) WHERE status IN ('queued', 'running') DO NOTHING
             RETURNING id",
            id.0,
            tenant.0,
            connection.0,
            start_at,
            scheduled_for
        )
        .fetch_optional(tx.conn())
        .await?;
        if inserted.is_some() {
            return Ok((id, false));
        }
        let active: Option<Uuid> = sqlx::query_scalar!(
            "SELECT id FROM sync_runs WHERE connection_id = $1 AND status IN ('queued', 'running')",
            connection.0
        )
        .fetch_optional(tx.conn())
        .await?;
        if let Some(active) = active {
            return Ok((RunId(active), true));
        }
    }
    Err(StoreError::Conflict(
        "the connection's active run kept changing; the next tick tries again".into(),
    ))
}

impl Store {
    /// Up to `max` connections with an active schedule, of every tenant, after `after` in id
    /// order (the `scheduled_connections` database function: the scheduler's one cross-tenant
    /// read; it yields schedules and ids, no data).
    pub async fn scheduled_connections(
        &self,
        after: Option<ConnectionId>,
        max: u32,
    ) -> Result<Vec<ScheduledConnection>> {
        Ok(sqlx::query_as!(
            ScheduledConnection,
            r#"SELECT tenant_id AS "tenant_id!", connection_id AS "connection_id!",
                connection_name AS "connection_name!", custodian AS "custodian!",
                connection_enabled AS "connection_enabled!", cron AS "cron!", timezone AS "timezone!",
                since AS "since!", last_scheduled_for
             FROM scheduled_connections($1, $2)"#,
            after.map(|c| c.0),
            i32::try_from(max).unwrap_or(i32::MAX),
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
