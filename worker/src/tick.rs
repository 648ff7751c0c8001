//! The schedule tick: turns connections' schedules into sync runs, each scheduled time exactly
//! once, however many `eam work` processes tick at the same moment.
//!
//! Every worker process runs a ticker ([`run_ticker`]: an apalis-cron worker, once a minute by
//! default, aligned to the clock) that calls [`tick`] with the current time. Tests call [`tick`]
//! with a simulated clock. A tick reads every connection with an active schedule through one
//! narrow cross-tenant database function (`scheduled_connections`: the schedule, the moment it
//! took effect, the latest scheduled time already handled), and for each finds the latest
//! scheduled time at or before `now` (see `schedule` for the cron and daylight-saving rules).
//! If that time took place after the schedule took effect and is not handled yet, the tick
//! handles it in one transaction of the connection's tenant (`eam_store::schedules::fire`):
//!
//! - a new run (trigger `schedule`, with `scheduled_for`), not pushed: its `next_attempt_at`
//!   is the scheduled time plus the connection's deterministic offset in the spread window, and
//!   the dispatcher pushes it when that comes (a catch-up spreads from now instead);
//! - or, if the connection already has a queued or running run, that run (the one-active-run
//!   rule coalesces them) and the time counts as handled;
//! - or, if the connection is paused, nothing but the record that the time passed;
//! - or, if the time is older than the catch-up horizon, nothing but the record that it was
//!   missed.
//!
//! Exactly once: the record of a handled time is keyed by (connection, scheduled time) and
//! written in the same transaction as the run, so of two schedulers handling the same time one
//! commits and the other rolls its run back. Nothing depends on the schedulers' timing.
//!
//! Catch-up: only the *latest* scheduled time is ever considered, so after an outage each
//! connection runs once for all the times it missed, not once per missed tick or time; the
//! earlier missed times are never recorded. A schedule that is set, or changed, does not run
//! times before it took effect (`schedule_since`), and a paused schedule records nothing, so
//! resuming it does not catch up either.
//!
//! Market data ([`tick_market_data`]): the platform's one schedule (`market_data.schedule`)
//! fires the same way, by the database's key: its latest time at or before `now`, if newer
//! than the latest one handled and not older than the catch-up horizon, becomes a
//! `market_data_runs` row whose `scheduled_for` is unique, so one tick inserts it and every
//! other finds it there. The run is not pushed here: the dispatcher pushes it, and a worker
//! runs it as a job. A time too old to catch up is skipped, not recorded.
//!
//! Report schedules ([`tick_reports`]): each tenant's monthly statements (the Nth business
//! day at a wall-clock time, `eam_model::monthly`) fire by the database's key too: every
//! scheduled time after the schedule took effect and after the latest one handled, up to a
//! year back, is handled in one transaction of the tenant that records it and queues one
//! statement per client (`eam_store::report_schedules::fire`). Unlike syncs, a statement is
//! never stale: after an outage each month missed gets its statements, not only the latest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use chrono::{DateTime, Utc};
use eam_store::report_schedules::{self, ReportFireOutcome, ScheduledReports};
use eam_store::schedules::{self, FireAction, FireOutcome, ScheduledConnection};
use eam_store::{ConnectionId, RunId, Store, StoreError, TenantId, market_data_runs};
use futures::{Stream, StreamExt};

use eam_model::cron::{self as schedule, CronSchedule, Occurrence, ScheduleError};
use eam_model::monthly::MonthlySchedule;

/// How the tick works.
#[derive(Debug, Clone)]
pub struct TickSettings {
    /// How often [`run_ticker`] ticks (aligned to multiples of it since the epoch).
    pub interval: Duration,
    /// A scheduled time older than this when a tick first sees it is recorded as missed.
    pub catch_up: Duration,
    /// Scheduled syncs start at a per-connection offset within this window (zero: at once).
    pub spread: Duration,
    /// Connections read per page of the scan.
    pub page: u32,
    /// Scheduled times handled at once.
    pub parallel: usize,
    /// The platform's market-data schedule (`None`: market data is not scheduled).
    pub market_data: Option<CronSchedule>,
    /// A scheduled sync with no successful sync this long after its time is a late delivery
    /// (`None`: not checked).
    pub late_after: Option<Duration>,
}

impl Default for TickSettings {
    fn default() -> Self {
        TickSettings {
            interval: Duration::from_secs(60),
            catch_up: Duration::from_secs(12 * 3600),
            spread: Duration::from_secs(300),
            page: 500,
            parallel: 4,
            market_data: None,
            late_after: Some(Duration::from_secs(3 * 3600)),
        }
    }
}

/// What one tick did, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Connections with an active schedule.
    pub scheduled: usize,
    pub enqueued: usize,
    pub coalesced: usize,
    pub paused: usize,
    pub missed: usize,
    /// Due times another scheduler handled first.
    pub already_handled: usize,
    /// Stored schedules that no longer parse (logged; skipped).
    pub invalid: usize,
    /// Due times that could not be handled (logged; the next tick tries again).
    pub failed: usize,
}

impl TickReport {
    fn count(&mut self, outcome: &Result<FireOutcome, StoreError>) {
        match outcome {
            Ok(FireOutcome::Enqueued(_)) => self.enqueued += 1,
            Ok(FireOutcome::Coalesced(_)) => self.coalesced += 1,
            Ok(FireOutcome::Paused) => self.paused += 1,
            Ok(FireOutcome::Missed) => self.missed += 1,
            Ok(FireOutcome::AlreadyHandled) => self.already_handled += 1,
            Err(_) => self.failed += 1,
        }
    }

    /// True when the tick handled any scheduled time.
    pub fn handled_any(&self) -> bool {
        self.enqueued + self.coalesced + self.paused + self.missed > 0
    }
}

/// A schedule's latest time at or before the tick, or why the schedule does not parse.
type LatestTime = Result<Option<DateTime<Utc>>, ScheduleError>;

/// One due scheduled time and what to do with it.
struct Due {
    tenant: TenantId,
    connection: ConnectionId,
    scheduled_for: DateTime<Utc>,
    action: FireAction,
}

/// Enqueues the scheduled syncs due at `now` (see the module docs). Fails only when the
/// schedules cannot be read; a time that cannot be handled is counted and left for the next
/// tick.
pub async fn tick(
    store: &Store,
    settings: &TickSettings,
    now: DateTime<Utc>,
) -> Result<TickReport, StoreError> {
    let mut report = TickReport::default();
    // Many connections share a schedule (the tenant default): parse and search it once.
    let mut latest: HashMap<(String, String), LatestTime> = HashMap::new();
    let mut after = None;
    loop {
        let page = store.scheduled_connections(after, settings.page).await?;
        let Some(last) = page.last() else { break };
        after = Some(ConnectionId(last.connection_id));
        report.scheduled += page.len();
        let due: Vec<Due> = page
            .iter()
            .filter_map(|row| {
                let key = (row.cron.clone(), row.timezone.clone());
                let found = latest.entry(key).or_insert_with(|| {
                    CronSchedule::parse(&row.cron, &row.timezone)
                        .map(|s| s.latest_at_or_before(now))
                });
                match found {
                    Ok(scheduled_for) => decide(row, (*scheduled_for)?, settings, now),
                    Err(e) => {
                        report.invalid += 1;
                        tracing::warn!(connection_id = %row.connection_id, error = %e,
                            "a stored schedule does not parse; skipped");
                        None
                    }
                }
            })
            .collect();
        let outcomes: Vec<Result<FireOutcome, StoreError>> = futures::stream::iter(due)
            .map(|d| async move {
                let outcome = schedules::fire(
                    store,
                    d.tenant,
                    d.connection,
                    d.scheduled_for,
                    now,
                    d.action,
                )
                .await;
                match &outcome {
                    Ok(o) => tracing::debug!(connection_id = %d.connection,
                        scheduled_for = %d.scheduled_for, outcome = o.as_str(), "scheduled time handled"),
                    Err(e) => tracing::warn!(connection_id = %d.connection,
                        scheduled_for = %d.scheduled_for, error = %e,
                        "could not handle a scheduled time; the next tick tries again"),
                }
                outcome
            })
            .buffer_unordered(settings.parallel.max(1))
            .collect()
            .await;
        for outcome in &outcomes {
            report.count(outcome);
        }
        if page.len() < usize::try_from(settings.page).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok(report)
}

/// Whether the connection's latest scheduled time is due, and what to do with it.
fn decide(
    row: &ScheduledConnection,
    scheduled_for: DateTime<Utc>,
    settings: &TickSettings,
    now: DateTime<Utc>,
) -> Option<Due> {
    if scheduled_for <= row.since
        || row
            .last_scheduled_for
            .is_some_and(|last| scheduled_for <= last)
    {
        return None;
    }
    let catch_up = chrono::Duration::from_std(settings.catch_up).unwrap_or(chrono::Duration::MAX);
    let action = if now - scheduled_for > catch_up {
        FireAction::Missed
    } else if !row.connection_enabled {
        FireAction::Paused
    } else {
        FireAction::Enqueue {
            start_at: schedule::start_time(row.connection_id, scheduled_for, now, settings.spread),
        }
    };
    Some(Due {
        tenant: TenantId(row.tenant_id),
        connection: ConnectionId(row.connection_id),
        scheduled_for,
        action,
    })
}

/// What a tick did with the market-data schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketDataFire {
    /// No scheduled time is due (none yet, already handled, or too old to catch up).
    NotDue,
    /// A new run for this scheduled time.
    Enqueued(RunId, DateTime<Utc>),
    /// Another tick handled the time first.
    AlreadyHandled(DateTime<Utc>),
}

/// The market-data schedule's time due at `now`: its latest time at or before `now`, if
/// newer than `last_handled` and at most `catch_up` old.
pub fn market_data_due(
    schedule: &CronSchedule,
    last_handled: Option<DateTime<Utc>>,
    catch_up: Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let latest = schedule.latest_at_or_before(now)?;
    let catch_up = chrono::Duration::from_std(catch_up).unwrap_or(chrono::Duration::MAX);
    let handled = last_handled.is_some_and(|last| latest <= last);
    (!handled && now - latest <= catch_up).then_some(latest)
}

/// Queues the market-data run due at `now`, exactly once per scheduled time however many
/// workers tick (see the module docs).
pub async fn tick_market_data(
    store: &Store,
    schedule: &CronSchedule,
    catch_up: Duration,
    now: DateTime<Utc>,
) -> Result<MarketDataFire, StoreError> {
    let last = market_data_runs::latest_scheduled(store).await?;
    let Some(due) = market_data_due(schedule, last, catch_up, now) else {
        return Ok(MarketDataFire::NotDue);
    };
    Ok(match market_data_runs::fire(store, due).await? {
        Some(run) => {
            tracing::info!(run_id = %run, scheduled_for = %due, "market-data run queued");
            MarketDataFire::Enqueued(run, due)
        }
        None => MarketDataFire::AlreadyHandled(due),
    })
}

/// What a tick did with the report schedules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportTickReport {
    /// Tenants with an enabled report schedule (and the reports module on).
    pub schedules: usize,
    /// Scheduled times this tick handled.
    pub fired: usize,
    /// Statements those times queued.
    pub reports: usize,
    /// Due times another scheduler handled first.
    pub already_handled: usize,
    /// Stored schedules that no longer parse (logged; skipped).
    pub invalid: usize,
    /// Due times that could not be handled (logged; the next tick tries again).
    pub failed: usize,
}

/// A stored report schedule, parsed.
pub fn monthly_schedule(row: &ScheduledReports) -> Result<MonthlySchedule, ScheduleError> {
    MonthlySchedule::new(
        i64::from(row.business_day),
        row.at_time,
        &row.timezone,
        &row.holidays,
    )
}

/// Queues the scheduled statements due at `now`, each scheduled time of each tenant exactly
/// once however many workers tick (see the module docs). Fails only when the schedules cannot
/// be read; a time that cannot be handled is counted and left for the next tick (the times of
/// one tenant are handled in order, so a failed one stops the later ones until then).
pub async fn tick_reports(
    store: &Store,
    settings: &TickSettings,
    now: DateTime<Utc>,
) -> Result<ReportTickReport, StoreError> {
    let rows = store.scheduled_report_tenants().await?;
    let mut report = ReportTickReport {
        schedules: rows.len(),
        ..ReportTickReport::default()
    };
    let mut due = Vec::new();
    for row in &rows {
        match monthly_schedule(row) {
            Ok(s) => {
                let after = row
                    .last_scheduled_for
                    .map_or(row.since, |l| l.max(row.since));
                let times = s.due_after(after, now);
                if !times.is_empty() {
                    due.push((TenantId(row.tenant_id), times));
                }
            }
            Err(e) => {
                report.invalid += 1;
                tracing::warn!(tenant_id = %row.tenant_id, error = %e,
                    "a stored report schedule does not parse; skipped");
            }
        }
    }
    let outcomes: Vec<Vec<Result<ReportFireOutcome, StoreError>>> = futures::stream::iter(due)
        .map(|(tenant, times)| async move {
            let mut outcomes = Vec::new();
            for t in times {
                let outcome = report_schedules::fire(
                    store,
                    tenant,
                    t.at.utc,
                    (t.period_from, t.period_to),
                    now,
                )
                .await;
                match &outcome {
                    Ok(o) => tracing::info!(tenant_id = %tenant, scheduled_for = %t.at.utc,
                        period_from = %t.period_from, outcome = ?o, "scheduled statements"),
                    Err(e) => tracing::warn!(tenant_id = %tenant, scheduled_for = %t.at.utc,
                        error = %e, "could not queue scheduled statements; the next tick tries again"),
                }
                let failed = outcome.is_err();
                outcomes.push(outcome);
                if failed {
                    break;
                }
            }
            outcomes
        })
        .buffer_unordered(settings.parallel.max(1))
        .collect()
        .await;
    for outcome in outcomes.iter().flatten() {
        match outcome {
            Ok(ReportFireOutcome::Queued(n)) => {
                report.fired += 1;
                report.reports += n;
            }
            Ok(ReportFireOutcome::AlreadyHandled) => report.already_handled += 1,
            Err(_) => report.failed += 1,
        }
    }
    Ok(report)
}

/// A connection's next scheduled runs, for `eam schedule`.
#[derive(Debug, Clone)]
pub struct Upcoming {
    pub tenant_id: uuid::Uuid,
    pub connection_id: uuid::Uuid,
    pub connection_name: String,
    pub custodian: String,
    pub cron: String,
    pub timezone: String,
    /// The scheduled times, and when each sync starts (the time plus the spread offset).
    pub runs: Vec<(Occurrence, DateTime<Utc>)>,
}

/// The next `n` runs of every enabled schedule of enabled connections, of every tenant.
/// Schedules that do not parse are listed with no runs.
pub async fn upcoming(
    store: &Store,
    settings: &TickSettings,
    now: DateTime<Utc>,
    n: usize,
) -> Result<Vec<Upcoming>, StoreError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.scheduled_connections(after, settings.page).await?;
        let Some(last) = page.last() else { break };
        after = Some(ConnectionId(last.connection_id));
        for row in page.iter().filter(|r| r.connection_enabled) {
            let runs = CronSchedule::parse(&row.cron, &row.timezone)
                .map(|s| {
                    s.upcoming(now.max(row.since), n)
                        .into_iter()
                        .map(|o| {
                            let start = schedule::start_time(
                                row.connection_id,
                                o.utc,
                                o.utc,
                                settings.spread,
                            );
                            (o, start)
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Upcoming {
                tenant_id: row.tenant_id,
                connection_id: row.connection_id,
                connection_name: row.connection_name.clone(),
                custodian: row.custodian.clone(),
                cron: row.cron.clone(),
                timezone: row.timezone.clone(),
                runs,
            });
        }
        if page.len() < usize::try_from(settings.page).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok(out)
}

/// An apalis-cron schedule that ticks every `interval`, at multiples of it since the epoch (a
/// minute ticks at second 0 of every minute). A plain interval rather than a cron expression:
/// the `cron` crate's six-field, Sunday-is-1 dialect is not what a reader of a setting expects.
#[derive(Debug, Clone, Copy)]
pub struct Every(pub Duration);

impl apalis_cron::Schedule<Utc> for Every {
    fn next_tick(&mut self, _: &Utc) -> Option<Tick<Utc>> {
        let step = self.0.as_secs().max(1);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        Some(Tick::new((now / step + 1) * step))
    }
}

/// What the tick handler shares.
#[derive(Clone)]
struct Ticker {
    store: Store,
    settings: TickSettings,
    /// Held while a tick runs: a tick that finds it taken is skipped, so slow ticks never
    /// pile up (a skipped tick loses nothing: the next one sees the same due times).
    running: Arc<tokio::sync::Mutex<()>>,
}

/// The apalis handler: one tick at the real time.
async fn on_tick(_tick: Tick<Utc>, ticker: Data<Ticker>) -> Result<(), BoxDynError> {
    let Ok(_running) = ticker.running.try_lock() else {
        tracing::warn!("the previous schedule tick is still running; this one is skipped");
        return Ok(());
    };
    let now = Utc::now();
    match tick(&ticker.store, &ticker.settings, now).await {
        Ok(report) if report.handled_any() || report.failed > 0 => {
            tracing::info!(?report, "schedule tick")
        }
        Ok(report) => tracing::debug!(?report, "schedule tick"),
        Err(e) => tracing::warn!(error = %e, "the schedule tick could not read the schedules"),
    }
    if let Some(schedule) = &ticker.settings.market_data
        && let Err(e) =
            tick_market_data(&ticker.store, schedule, ticker.settings.catch_up, now).await
    {
        tracing::warn!(error = %e, "the schedule tick could not queue the market-data run");
    }
    match tick_reports(&ticker.store, &ticker.settings, now).await {
        Ok(report) if report.fired > 0 || report.failed > 0 => {
            tracing::info!(?report, "report schedule tick")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "the schedule tick could not read the report schedules")
        }
    }
    if let Some(grace) = ticker.settings.late_after {
        match ticker
            .store
            .flag_late_deliveries(
                chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX),
            )
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(flagged = n, "late bank deliveries flagged"),
            Err(e) => tracing::warn!(error = %e, "the schedule tick could not check deliveries"),
        }
    }
    // A failed tick is not retried: the next one sees the same due times.
    Ok(())
}

/// Ticks until `stop` turns true. Restarts the apalis worker if it ends (apalis-cron ends it
/// when it is polled after a tick's time has passed).
pub async fn run_ticker(
    store: Store,
    settings: TickSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let ticker = Ticker {
        store,
        settings: settings.clone(),
        running: Arc::default(),
    };
    loop {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let ctx = WorkerContext::new(&format!("eam-schedule-tick-{}", &suffix[..8]));
        let worker = WorkerBuilder::new(ctx)
            .backend(CronScheduler::new(Every(settings.interval)))
            .data(ticker.clone())
            .build(on_tick);
        let mut events = std::pin::pin!(worker.stream());
        tracing::info!(interval = ?settings.interval, "schedule ticker started");
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            failure = next_failure(&mut events) => {
                tracing::warn!(error = %failure, "the schedule ticker stopped; restarting it");
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Drives a worker until it fails or ends.
async fn next_failure<S>(events: &mut S) -> String
where
    S: Stream<Item = Result<Event, WorkerError>> + Unpin,
{
    while let Some(event) = events.next().await {
        if let Err(e) = event {
            return e.to_string();
        }
    }
    "the worker ended".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use apalis_cron::Schedule as _;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn market_data_is_due_once_per_scheduled_time_and_not_when_too_old() {
        // Weekdays 16:30 in Frankfurt: 15:30 UTC in winter.
        let ecb = CronSchedule::parse("30 16 * * 1-5", "Europe/Berlin").unwrap();
        let twelve_hours = Duration::from_secs(12 * 3600);
        let friday = utc("2026-11-20T15:30:00Z");
        // Before the time on Friday: Thursday's, if not handled and recent enough.
        assert_eq!(
            market_data_due(&ecb, None, twelve_hours, utc("2026-11-20T03:00:00Z")),
            Some(utc("2026-11-19T15:30:00Z"))
        );
        assert_eq!(
            market_data_due(&ecb, None, twelve_hours, utc("2026-11-20T10:00:00Z")),
            None,
            "18.5 hours late is past the catch-up horizon"
        );
        // At the time and a minute later: due, until handled.
        assert_eq!(
            market_data_due(&ecb, None, twelve_hours, friday),
            Some(friday)
        );
        let later = friday + chrono::Duration::minutes(1);
        assert_eq!(
            market_data_due(&ecb, None, twelve_hours, later),
            Some(friday)
        );
        assert_eq!(
            market_data_due(&ecb, Some(friday), twelve_hours, later),
            None
        );
        // The weekend has no time: Saturday still sees Friday's, handled.
        let saturday = utc("2026-11-21T15:30:00Z");
        assert_eq!(
            market_data_due(&ecb, Some(friday), twelve_hours, saturday),
            None
        );
    }

    #[test]
    fn the_tick_schedule_fires_at_the_next_multiple_of_its_interval() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let next = Every(Duration::from_secs(60))
            .next_tick(&Utc)
            .unwrap()
            .get_timestamp();
        assert_eq!(next % 60, 0);
        assert!(next > now && next <= now + 60, "{next} vs {now}");
    }
}
