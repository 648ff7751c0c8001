//! Sync schedules: each connection's cron expression and time zone, and the tenant's default
//! for connections without one, with the next scheduled times.
//!
//! Expressions are validated and their times computed by the worker's `schedule` module, the
//! same code the schedule tick runs, so what ops see here is what will run.

use chrono::{DateTime, SecondsFormat, Utc};
use eam_model::cron::{CronSchedule, Occurrence};
use eam_store::ConnectionId;
use eam_store::schedules::{self, ConnectionSchedule, Fire, TenantDefault};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditContext;
use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::{ApiError, not_found};
use crate::state::ApiState;

pub struct SchedulesApi(pub ApiState);

/// Scheduled times shown ahead.
const NEXT_RUNS: usize = 5;
/// Handled scheduled times shown back.
const RECENT_FIRES: i64 = 5;

fn default_true() -> bool {
    true
}

/// A connection's schedule. Give `cron` and `timezone` together for a schedule of its own, or
/// neither to follow the tenant's default schedule.
///
/// `cron` is five-field Unix cron (`minute hour day-of-month month day-of-week`, e.g.
/// `0 2 * * *`; day of week 0 or 7 = Sunday; names, lists, ranges and steps; `@daily` and the
/// like); six or seven fields with seconds first (day of week 1 = Sunday) are accepted too.
/// Times are wall-clock times in `timezone`. Daylight saving: a time skipped when clocks spring
/// forward runs once when the skipped hour ends (02:30 on 2026-03-29 in Europe/Zurich runs at
/// 03:00 CEST); a time repeated when clocks fall back runs once, at its first occurrence (02:30
/// on 2026-10-25 runs at 02:30 CEST, not again at 02:30 CET).
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct ScheduleBody {
    #[oai(validator(max_length = 200))]
    cron: Option<String>,
    /// IANA time zone name, e.g. `Europe/Zurich`.
    #[oai(validator(max_length = 64))]
    timezone: Option<String>,
    /// False pauses the schedule (the connection can still be synced on demand).
    #[oai(default = "default_true")]
    enabled: bool,
}

/// The tenant's default schedule: the schedule of every connection without one of its own.
/// Same `cron` and `timezone` rules as a connection's schedule.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct DefaultBody {
    #[oai(validator(max_length = 200))]
    cron: String,
    #[oai(validator(max_length = 64))]
    timezone: String,
    /// False pauses the default for every connection that follows it.
    #[oai(default = "default_true")]
    enabled: bool,
}

/// One scheduled time.
#[derive(Object)]
struct ScheduledTime {
    /// RFC 3339 in UTC.
    utc: String,
    /// RFC 3339 on the schedule's wall clock, with the offset in force then.
    local: String,
}

impl From<Occurrence> for ScheduledTime {
    fn from(o: Occurrence) -> Self {
        ScheduledTime {
            utc: o.utc.to_rfc3339_opts(SecondsFormat::Secs, true),
            local: o.local.to_rfc3339_opts(SecondsFormat::Secs, false),
        }
    }
}

/// A scheduled time the scheduler handled.
#[derive(Object)]
struct HandledTime {
    scheduled_for: DateTime<Utc>,
    /// `enqueued` (a new run), `coalesced` (the connection's run already queued or running),
    /// `paused` (the connection was paused) or `missed` (too late to catch up).
    outcome: String,
    run_id: Option<Uuid>,
    fired_at: DateTime<Utc>,
}

impl From<Fire> for HandledTime {
    fn from(f: Fire) -> Self {
        HandledTime {
            scheduled_for: f.scheduled_for,
            outcome: f.outcome,
            run_id: f.run_id,
            fired_at: f.fired_at,
        }
    }
}

/// A connection's schedule and its next run times.
#[derive(Object)]
struct ScheduleView {
    connection_id: Uuid,
    /// `connection` (its own schedule), `tenant_default`, or `none`.
    source: String,
    /// The cron expression in force, as typed.
    cron: Option<String>,
    /// The same in the scheduler's form: seconds first, day of week 1 = Sunday.
    cron_normalized: Option<String>,
    timezone: Option<String>,
    /// The connection's schedule switch.
    enabled: bool,
    /// False while the connection is paused: then nothing is scheduled.
    connection_enabled: bool,
    /// True when syncs will run on this schedule.
    active: bool,
    /// The next five scheduled times (none when not active). Each sync may start up to the
    /// spread window later.
    next_runs: Vec<ScheduledTime>,
    /// The latest scheduled times handled, newest first.
    recent: Vec<HandledTime>,
}

/// The tenant's default schedule.
#[derive(Object)]
struct DefaultView {
    cron: String,
    cron_normalized: String,
    timezone: String,
    enabled: bool,
    updated_at: DateTime<Utc>,
    updated_by: Option<String>,
    /// The next five scheduled times (none when disabled).
    next_runs: Vec<ScheduledTime>,
}

fn parse(cron: &str, timezone: &str) -> Result<CronSchedule, ApiError> {
    CronSchedule::parse(cron, timezone).map_err(|e| ApiError::unprocessable(e.to_string()))
}

impl ScheduleBody {
    /// The connection's own schedule, or `None` to follow the tenant default.
    fn validate(&self) -> Result<Option<CronSchedule>, ApiError> {
        match (&self.cron, &self.timezone) {
            (Some(cron), Some(tz)) => parse(cron, tz).map(Some),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ApiError::unprocessable(
                "timezone: required with cron (an IANA name, e.g. Europe/Zurich)",
            )),
            (None, Some(_)) => Err(ApiError::unprocessable(
                "cron: required with timezone (leave both out to follow the tenant default)",
            )),
        }
    }
}

fn schedule_view(s: ConnectionSchedule, fires: Vec<Fire>, now: DateTime<Utc>) -> ScheduleView {
    let (source, cron, timezone, default_on) = match (&s.cron, &s.timezone) {
        (Some(c), Some(t)) => ("connection", Some(c.clone()), Some(t.clone()), true),
        _ => match (&s.default_cron, &s.default_timezone) {
            (Some(c), Some(t)) => (
                "tenant_default",
                Some(c.clone()),
                Some(t.clone()),
                s.default_enabled.unwrap_or(false),
            ),
            _ => ("none", None, None, false),
        },
    };
    let parsed = cron
        .as_deref()
        .zip(timezone.as_deref())
        .and_then(|(c, t)| CronSchedule::parse(c, t).ok());
    let active = parsed.is_some() && s.enabled && default_on && s.connection_enabled;
    let next_runs = match &parsed {
        Some(p) if active => p
            .upcoming(now.max(s.since), NEXT_RUNS)
            .into_iter()
            .map(ScheduledTime::from)
            .collect(),
        _ => Vec::new(),
    };
    ScheduleView {
        connection_id: s.connection_id,
        source: source.to_owned(),
        cron,
        cron_normalized: parsed.as_ref().map(|p| p.normalized().to_owned()),
        timezone,
        enabled: s.enabled,
        connection_enabled: s.connection_enabled,
        active,
        next_runs,
        recent: fires.into_iter().map(HandledTime::from).collect(),
    }
}

fn default_view(d: TenantDefault, now: DateTime<Utc>) -> Result<DefaultView, ApiError> {
    let parsed = parse(&d.cron, &d.timezone)?;
    let next_runs = if d.enabled {
        parsed
            .upcoming(now.max(d.updated_at), NEXT_RUNS)
            .into_iter()
            .map(ScheduledTime::from)
            .collect()
    } else {
        Vec::new()
    };
    Ok(DefaultView {
        cron: d.cron,
        cron_normalized: parsed.normalized().to_owned(),
        timezone: d.timezone,
        enabled: d.enabled,
        updated_at: d.updated_at,
        updated_by: d.updated_by,
        next_runs,
    })
}

#[OpenApi(tag = "crate::Tag::Schedules")]
impl SchedulesApi {
    /// The connection's sync schedule (its own or the tenant default it follows) and its next
    /// five run times.
    #[oai(
        path = "/connections/:id/schedule",
        method = "get",
        operation_id = "get_connection_schedule"
    )]
    async fn get_schedule(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Json<ScheduleView>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadSchedules).await?;
        let connection = ConnectionId(id.0);
        let mut tx = caller.tx(&self.0).await?;
        let schedule = schedules::get(&mut tx, connection)
            .await
            .map_err(not_found("connection", id.0))?;
        let fires = schedules::recent_fires(&mut tx, connection, RECENT_FIRES).await?;
        Ok(Json(schedule_view(schedule, fires, Utc::now())))
    }

    /// Sets the connection's sync schedule: `cron` and `timezone` for its own, neither to
    /// follow the tenant default; `enabled: false` pauses it. Five-field Unix cron (or six or
    /// seven fields, seconds first); a bad expression or zone is a 422 naming the field.
    /// Daylight saving: a time skipped when clocks spring forward runs once when the skipped
    /// hour ends; a time repeated when clocks fall back runs once, at its first occurrence.
    /// Scheduled times before this change are not caught up.
    #[oai(
        path = "/connections/:id/schedule",
        method = "put",
        operation_id = "put_connection_schedule"
    )]
    async fn put_schedule(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<ScheduleBody>,
    ) -> Result<Json<ScheduleView>, ApiError> {
        let caller = self.0.caller(&token, Action::ManageSchedules).await?;
        let own = body.0.validate()?;
        let connection = ConnectionId(id.0);
        let now = Utc::now();
        let mut tx = caller.tx(&self.0).await?;
        let schedule = schedules::set(
            &mut tx,
            connection,
            own.as_ref().map(|s| (s.expression(), s.timezone())),
            body.0.enabled,
            now,
        )
        .await
        .map_err(not_found("connection", id.0))?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "schedule.updated",
                format!("connection:{connection}"),
                json!({
                    "cron": own.as_ref().map(CronSchedule::expression),
                    "timezone": own.as_ref().map(CronSchedule::timezone),
                    "enabled": body.0.enabled,
                    "follows_tenant_default": own.is_none(),
                }),
            )
            .await?;
        let fires = schedules::recent_fires(&mut tx, connection, RECENT_FIRES).await?;
        tx.commit().await?;
        tracing::info!(connection_id = %connection, actor = %caller.subject, "schedule updated");
        Ok(Json(schedule_view(schedule, fires, now)))
    }

    /// The tenant's default schedule (for connections without their own) and its next five
    /// run times; 404 when the tenant has none.
    #[oai(
        path = "/schedules/default",
        method = "get",
        operation_id = "get_default_schedule"
    )]
    async fn get_default(&self, token: BearerToken) -> Result<Json<DefaultView>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadSchedules).await?;
        let default = schedules::get_default(&mut tx)
            .await?
            .ok_or_else(|| ApiError::not_found("the tenant has no default schedule"))?;
        Ok(Json(default_view(default, Utc::now())?))
    }

    /// Sets the tenant's default schedule, followed by every connection without its own. Same
    /// rules as a connection's schedule; `enabled: false` pauses it.
    #[oai(
        path = "/schedules/default",
        method = "put",
        operation_id = "put_default_schedule"
    )]
    async fn put_default(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<DefaultBody>,
    ) -> Result<Json<DefaultView>, ApiError> {
        let caller = self.0.caller(&token, Action::ManageSchedules).await?;
        let parsed = parse(&body.0.cron, &body.0.timezone)?;
        let now = Utc::now();
        let mut tx = caller.tx(&self.0).await?;
        let default = schedules::set_default(
            &mut tx,
            parsed.expression(),
            parsed.timezone(),
            body.0.enabled,
            &caller.subject,
            now,
        )
        .await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "schedule_default.updated",
                format!("tenant:{}", caller.tenant),
                json!({
                    "cron": parsed.expression(),
                    "timezone": parsed.timezone(),
                    "enabled": body.0.enabled,
                }),
            )
            .await?;
        tx.commit().await?;
        Ok(Json(default_view(default, now)?))
    }

    /// Removes the tenant's default schedule: connections without their own are then not
    /// scheduled. 404 when the tenant has none.
    #[oai(
        path = "/schedules/default",
        method = "delete",
        operation_id = "delete_default_schedule"
    )]
    async fn delete_default(
        &self,
        req: &poem::Request,
        token: BearerToken,
    ) -> Result<DefaultDeleted, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ManageSchedules).await?;
        if !schedules::clear_default(&mut tx).await? {
            return Err(ApiError::not_found("the tenant has no default schedule"));
        }
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "schedule_default.deleted",
                format!("tenant:{}", caller.tenant),
                json!({}),
            )
            .await?;
        tx.commit().await?;
        Ok(DefaultDeleted::Deleted)
    }
}

#[derive(ApiResponse)]
enum DefaultDeleted {
    /// The default schedule is gone.
    #[oai(status = 204)]
    Deleted,
}
