//! Report schedules: a tenant's monthly statements for every client, and the record of every
//! scheduled time handled (`report_schedule_fires`).
//!
//! Exactly once is the database's job, as for sync schedules: [`fire`] records the scheduled
//! time and queues one report per client in one transaction of the tenant; the record's key
//! (tenant, scheduled time) lets one transaction commit it, and each report's key (tenant,
//! client, scheduled time) keeps a client from getting two. The store keeps the schedule as
//! given; computing its times is `eam_model::monthly`.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use crate::{Result, RunId, Store, TenantId, TenantTx};

/// A tenant's report schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSchedule {
    pub business_day: i16,
    pub at_time: NaiveTime,
    pub timezone: String,
    pub holidays: Vec<NaiveDate>,
    /// `None`: each client's reporting currency.
    pub currency: Option<String>,
    pub formats: Vec<String>,
    pub enabled: bool,
    /// Scheduled times at or before this are never run.
    pub since: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
}

/// A schedule to store (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReportSchedule {
    pub business_day: i16,
    pub at_time: NaiveTime,
    pub timezone: String,
    pub holidays: Vec<NaiveDate>,
    pub currency: Option<String>,
    pub formats: Vec<String>,
    pub enabled: bool,
}

/// One scheduled time handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFire {
    pub scheduled_for: DateTime<Utc>,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    /// Statements queued.
    pub reports: i32,
    pub fired_at: DateTime<Utc>,
}

/// One tenant's enabled schedule, as the scheduler sees it across tenants.
#[derive(Debug, Clone)]
pub struct ScheduledReports {
    pub tenant_id: Uuid,
    pub business_day: i16,
    pub at_time: NaiveTime,
    pub timezone: String,
    pub holidays: Vec<NaiveDate>,
    pub since: DateTime<Utc>,
    /// The latest scheduled time already handled.
    pub last_scheduled_for: Option<DateTime<Utc>>,
}

/// The tenant's report schedule, if it has one.
pub async fn get(tx: &mut TenantTx) -> Result<Option<ReportSchedule>> {
    Ok(sqlx::query_as!(
        ReportSchedule,
        r#"SELECT business_day, at_time, timezone, holidays AS "holidays!", currency, formats,
            enabled, since, updated_at, updated_by
         FROM report_schedules WHERE tenant_id = $1"#,
        tx.tenant().0
    )
    .fetch_optional(tx.conn())
    .await?)
}

/// Sets the tenant's report schedule. Times at or before `now` are not run under it.
pub async fn set(
    tx: &mut TenantTx,
    s: &NewReportSchedule,
    updated_by: &str,
    now: DateTime<Utc>,
) -> Result<ReportSchedule> {
    Ok(sqlx::query_as!(
        ReportSchedule,
        r#"INSERT INTO report_schedules (tenant_id, business_day, at_time, timezone, holidays,
            currency, formats, enabled, since, updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)
         ON CONFLICT (tenant_id) DO UPDATE SET business_day = EXCLUDED.business_day,
            at_time = EXCLUDED.at_time, timezone = EXCLUDED.timezone,
            holidays = EXCLUDED.holidays, currency = EXCLUDED.currency,
            formats = EXCLUDED.formats, enabled = EXCLUDED.enabled, since = EXCLUDED.since,
            updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
         RETURNING business_day, at_time, timezone, holidays AS "holidays!", currency, formats,
            enabled, since, updated_at, updated_by"#,
        tx.tenant().0,
        s.business_day,
        s.at_time,
        s.timezone,
        &s.holidays,
        s.currency,
        &s.formats,
        s.enabled,
        now,
        updated_by
    )
    .fetch_one(tx.conn())
    .await?)
}

/// Removes the tenant's report schedule; false when it had none. Its history stays.
pub async fn clear(tx: &mut TenantTx) -> Result<bool> {
    Ok(sqlx::query!(
        "DELETE FROM report_schedules WHERE tenant_id = $1",
        tx.tenant().0
    )
    .execute(tx.conn())
    .await?
    .rows_affected()
        > 0)
}

/// The tenant's latest handled scheduled times, newest first.
pub async fn recent_fires(tx: &mut TenantTx, limit: i64) -> Result<Vec<ReportFire>> {
    Ok(sqlx::query_as!(
        ReportFire,
        "SELECT scheduled_for, period_from, period_to, reports, fired_at
         FROM report_schedule_fires WHERE tenant_id = $1
         ORDER BY scheduled_for DESC LIMIT $2",
        tx.tenant().0,
        limit
    )
    .fetch_all(tx.conn())
    .await?)
}

/// What became of a scheduled time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFireOutcome {
    /// This many statements queued, one per client.
    Queued(usize),
    /// Another scheduler handled this time first; nothing was changed.
    AlreadyHandled,
}

/// Handles one scheduled time of one tenant, exactly once: records it and queues a statement
/// for `period` for every client of the tenant, in the schedule's currency and formats, in one
/// transaction. The reports are queued unpushed (`enqueued_at` NULL): the dispatcher pushes
/// them, so a tick needs PostgreSQL only and a crash between commit and push loses nothing.
/// A schedule removed since the tick read it queues nothing (and records nothing).
pub async fn fire(
    store: &Store,
    tenant: TenantId,
    scheduled_for: DateTime<Utc>,
    period: (NaiveDate, NaiveDate),
    now: DateTime<Utc>,
) -> Result<ReportFireOutcome> {
    let mut tx = store.tenant_tx(tenant).await?;
    let Some(schedule) = get(&mut tx).await? else {
        return Ok(ReportFireOutcome::AlreadyHandled);
    };
    let clients: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM clients WHERE tenant_id = $1 ORDER BY reference",
        tenant.0
    )
    .fetch_all(tx.conn())
    .await?;
    let recorded = sqlx::query_scalar!(
        "INSERT INTO report_schedule_fires (tenant_id, scheduled_for, period_from, period_to,
            reports, fired_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id, scheduled_for) DO NOTHING
         RETURNING scheduled_for",
        tenant.0,
        scheduled_for,
        period.0,
        period.1,
        i32::try_from(clients.len()).unwrap_or(i32::MAX),
        now,
    )
    .fetch_optional(tx.conn())
    .await?;
    if recorded.is_none() {
        return Ok(ReportFireOutcome::AlreadyHandled);
    }
    // No report of this scheduled time exists yet (its record was just written): one per
    // client, the per-client key a second guard.
    let ids: Vec<Uuid> = clients.iter().map(|_| RunId::new().0).collect();
    let queued = sqlx::query!(
        "INSERT INTO reports (id, tenant_id, client_id, kind, period_from, period_to, currency,
            formats, trigger, scheduled_for, status, requested_by)
         SELECT r.id, $1, r.client, 'portfolio_statement', $4, $5, $6, $7, 'schedule', $8,
            'queued', 'schedule'
         FROM UNNEST($2::uuid[], $3::uuid[]) AS r(id, client)
         ON CONFLICT (tenant_id, client_id, scheduled_for) WHERE scheduled_for IS NOT NULL
            DO NOTHING",
        tenant.0,
        &ids,
        &clients,
        period.0,
        period.1,
        schedule.currency,
        &schedule.formats,
        scheduled_for,
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(ReportFireOutcome::Queued(
        usize::try_from(queued).unwrap_or(usize::MAX),
    ))
}

impl Store {
    /// The enabled report schedules of every tenant with the reports module on (the
    /// `scheduled_report_tenants` database function: the scheduler's one cross-tenant read of
    /// them; schedules and ids, no data).
    pub async fn scheduled_report_tenants(&self) -> Result<Vec<ScheduledReports>> {
        Ok(sqlx::query_as!(
            ScheduledReports,
            r#"SELECT tenant_id AS "tenant_id!", business_day AS "business_day!",
                at_time AS "at_time!", timezone AS "timezone!", holidays AS "holidays!",
                since AS "since!", last_scheduled_for
             FROM scheduled_report_tenants()"#,
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
