//! The tenant's statement schedule: every client's portfolio statement for the month before,
//! on the Nth business day of each month at a wall-clock time in a zone, skipping the firm's
//! holidays. The times shown are computed by `eam_model::monthly`, the code the worker's tick
//! runs, so what the admin sees is what will run.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use eam_model::cron::ScheduleError;
use eam_model::monthly::{MonthlyOccurrence, MonthlySchedule};
use eam_store::report_schedules::{self, NewReportSchedule, ReportFire, ReportSchedule};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::json;

use crate::audit::AuditContext;
use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::routes::reports::Format;
use crate::routes::valuation::parse_currency;
use crate::state::ApiState;

pub struct ReportSchedulesApi(pub ApiState);

/// Scheduled times shown ahead.
const NEXT: usize = 4;
/// Handled scheduled times shown back.
const RECENT: i64 = 6;

fn default_true() -> bool {
    true
}

/// When the firm's monthly statements go out.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct StatementScheduleBody {
    /// The business day of the month, 1 to 20 (a business day is a Monday to Friday that is
    /// not one of `holidays`). A month whose holidays leave fewer is skipped.
    business_day: i64,
    /// Wall-clock time, `HH:MM` (24-hour), in `timezone`.
    #[oai(validator(max_length = 5))]
    time: String,
    /// IANA time zone name, e.g. `Europe/Zurich`. Daylight saving as for sync schedules: a
    /// time skipped when clocks spring forward runs when the skipped hour ends.
    #[oai(validator(max_length = 64))]
    timezone: String,
    /// The firm's public holidays (not business days), at most 200.
    #[oai(default)]
    holidays: Vec<NaiveDate>,
    /// The figures' currency; default: each client's reporting currency.
    currency: Option<String>,
    /// Default: both.
    formats: Option<Vec<Format>>,
    /// False pauses the schedule; times that pass while paused are not made up.
    #[oai(default = "default_true")]
    enabled: bool,
}

/// One scheduled time and the period its statements cover.
#[derive(Object)]
struct ScheduledStatements {
    /// RFC 3339 in UTC.
    utc: String,
    /// RFC 3339 on the schedule's wall clock, with the offset in force then.
    local: String,
    period_from: NaiveDate,
    period_to: NaiveDate,
}

impl From<MonthlyOccurrence> for ScheduledStatements {
    fn from(o: MonthlyOccurrence) -> Self {
        ScheduledStatements {
            utc: o.at.utc.to_rfc3339_opts(SecondsFormat::Secs, true),
            local: o.at.local.to_rfc3339_opts(SecondsFormat::Secs, false),
            period_from: o.period_from,
            period_to: o.period_to,
        }
    }
}

/// A scheduled time the scheduler handled.
#[derive(Object)]
struct HandledStatements {
    scheduled_for: DateTime<Utc>,
    period_from: NaiveDate,
    period_to: NaiveDate,
    /// Statements queued, one per client (see `GET /reports`).
    reports: i32,
    fired_at: DateTime<Utc>,
}

impl From<ReportFire> for HandledStatements {
    fn from(f: ReportFire) -> Self {
        HandledStatements {
            scheduled_for: f.scheduled_for,
            period_from: f.period_from,
            period_to: f.period_to,
            reports: f.reports,
            fired_at: f.fired_at,
        }
    }
}

/// The tenant's statement schedule.
#[derive(Object)]
struct StatementScheduleView {
    business_day: i16,
    time: String,
    timezone: String,
    holidays: Vec<NaiveDate>,
    /// Null: each client's reporting currency.
    currency: Option<String>,
    formats: Vec<String>,
    enabled: bool,
    updated_at: DateTime<Utc>,
    updated_by: Option<String>,
    /// The next four scheduled times with their periods (none while paused).
    next: Vec<ScheduledStatements>,
    /// The latest scheduled times handled, newest first.
    recent: Vec<HandledStatements>,
}

fn invalid(e: ScheduleError) -> ApiError {
    ApiError::unprocessable(e.to_string())
}

fn view(
    s: ReportSchedule,
    fires: Vec<ReportFire>,
    now: DateTime<Utc>,
) -> Result<StatementScheduleView, ApiError> {
    let parsed = MonthlySchedule::new(
        i64::from(s.business_day),
        s.at_time,
        &s.timezone,
        &s.holidays,
    )
    .map_err(invalid)?;
    let next = if s.enabled {
        parsed
            .upcoming(now.max(s.since), NEXT)
            .into_iter()
            .map(ScheduledStatements::from)
            .collect()
    } else {
        Vec::new()
    };
    Ok(StatementScheduleView {
        business_day: s.business_day,
        time: parsed.time(),
        timezone: s.timezone,
        holidays: parsed.holidays(),
        currency: s.currency.map(|c| c.trim().to_owned()),
        formats: s.formats,
        enabled: s.enabled,
        updated_at: s.updated_at,
        updated_by: s.updated_by,
        next,
        recent: fires.into_iter().map(HandledStatements::from).collect(),
    })
}

fn no_schedule() -> ApiError {
    ApiError::not_found("the tenant has no statement schedule")
}

#[OpenApi(tag = "crate::Tag::Reports")]
impl ReportSchedulesApi {
    /// The tenant's monthly statement schedule, its next four times with the periods they
    /// cover, and the latest times handled; 404 when the tenant has none.
    #[oai(
        path = "/reports/schedule",
        method = "get",
        operation_id = "get_report_schedule"
    )]
    async fn get_schedule(
        &self,
        token: BearerToken,
    ) -> Result<Json<StatementScheduleView>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadReportSchedule).await?;
        let schedule = report_schedules::get(&mut tx)
            .await?
            .ok_or_else(no_schedule)?;
        let fires = report_schedules::recent_fires(&mut tx, RECENT).await?;
        Ok(Json(view(schedule, fires, Utc::now())?))
    }

    /// Sets the tenant's monthly statement schedule: on each scheduled time every client of
    /// the tenant gets a portfolio statement for the calendar month before, generated by the
    /// workers (see `GET /reports`), exactly once however many workers run. A bad part is a
    /// 422 naming it. Times before this change are not made up. Audited.
    #[oai(
        path = "/reports/schedule",
        method = "put",
        operation_id = "put_report_schedule"
    )]
    async fn put_schedule(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<StatementScheduleBody>,
    ) -> Result<Json<StatementScheduleView>, ApiError> {
        let caller = self.0.caller(&token, Action::ManageReportSchedule).await?;
        let body = body.0;
        let at = MonthlySchedule::parse_time(&body.time).map_err(invalid)?;
        let parsed = MonthlySchedule::new(body.business_day, at, &body.timezone, &body.holidays)
            .map_err(invalid)?;
        let currency = body
            .currency
            .as_deref()
            .map(parse_currency)
            .transpose()?
            .map(|c| c.as_str().to_owned());
        let formats = Format::chosen(body.formats);
        if formats.is_empty() {
            return Err(ApiError::unprocessable("formats: name at least one format"));
        }
        let new = NewReportSchedule {
            business_day: i16::from(parsed.business_day()),
            at_time: parsed.naive_time(),
            timezone: parsed.timezone().to_owned(),
            holidays: parsed.holidays(),
            currency,
            formats: formats.iter().map(|f| f.as_str().to_owned()).collect(),
            enabled: body.enabled,
        };
        let now = Utc::now();
        let mut tx = caller.tx(&self.0).await?;
        let schedule = report_schedules::set(&mut tx, &new, &caller.subject, now).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "report_schedule.updated",
                format!("tenant:{}", caller.tenant),
                json!({
                    "business_day": new.business_day, "time": parsed.time(),
                    "timezone": new.timezone, "holidays": new.holidays,
                    "currency": new.currency, "formats": new.formats, "enabled": new.enabled,
                }),
            )
            .await?;
        let fires = report_schedules::recent_fires(&mut tx, RECENT).await?;
        tx.commit().await?;
        Ok(Json(view(schedule, fires, now)?))
    }

    /// Removes the tenant's statement schedule (its history stays). 404 when there is none.
    /// Audited.
    #[oai(
        path = "/reports/schedule",
        method = "delete",
        operation_id = "delete_report_schedule"
    )]
    async fn delete_schedule(
        &self,
        req: &poem::Request,
        token: BearerToken,
    ) -> Result<StatementScheduleDeleted, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ManageReportSchedule).await?;
        if !report_schedules::clear(&mut tx).await? {
            return Err(no_schedule());
        }
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "report_schedule.deleted",
                format!("tenant:{}", caller.tenant),
                json!({}),
            )
            .await?;
        tx.commit().await?;
        Ok(StatementScheduleDeleted::StatementScheduleDeleted)
    }
}

#[derive(ApiResponse)]
enum StatementScheduleDeleted {
    /// The schedule is gone.
    #[oai(status = 204)]
    StatementScheduleDeleted,
}
