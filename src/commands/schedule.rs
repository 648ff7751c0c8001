//! `eam schedule`: the upcoming scheduled syncs of every tenant, for ops.
//!
//! Lists the next runs of every enabled schedule of every connection that is not paused (its
//! own schedule or its tenant's default), earliest first: the scheduled time in UTC and on the
//! schedule's own wall clock, and when the sync starts once the spread offset is added. Reads
//! through the same narrow cross-tenant function as the schedule tick, as the app role.

use std::io::Write;

use chrono::Utc;
use eam_config::Settings;
use serde_json::json;

#[derive(clap::Args)]
pub struct ScheduleArgs {
    /// Upcoming runs listed per connection.
    #[arg(long, short = 'n', default_value_t = 5)]
    pub count: usize,
    /// Only this tenant's connections.
    #[arg(long)]
    pub tenant: Option<uuid::Uuid>,
    /// One JSON object per run instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: ScheduleArgs) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::telemetry::init_plain("warn");
    let store = super::connect_store(&settings).await?;
    let tick = eam_worker::application::tick_settings(&settings)?;
    let now = Utc::now();
    let schedules = eam_worker::tick::upcoming(&store, &tick, now, args.count).await?;
    let mut rows: Vec<_> = schedules
        .iter()
        .filter(|s| args.tenant.is_none_or(|t| t == s.tenant_id))
        .flat_map(|s| s.runs.iter().map(move |(at, start)| (s, at, start)))
        .collect();
    rows.sort_by_key(|(s, at, _)| (at.utc, s.connection_id));

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        for (s, at, start) in &rows {
            let line = json!({
                "scheduled_for": at.utc,
                "local": at.local.to_rfc3339(),
                "timezone": s.timezone,
                "starts_at": start,
                "tenant_id": s.tenant_id,
                "connection_id": s.connection_id,
                "connection": s.connection_name,
                "custodian": s.custodian,
                "cron": s.cron,
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no enabled schedules")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20}  {:<25}  {:<20}  {:<20}  {:<36}  {:<36}  {:<24}  {:<10}  SCHEDULE",
        "SCHEDULED (UTC)",
        "LOCAL",
        "ZONE",
        "STARTS (UTC)",
        "TENANT",
        "CONNECTION",
        "NAME",
        "CUSTODIAN"
    )?;
    for (s, at, start) in &rows {
        writeln!(
            out,
            "{:<20}  {:<25}  {:<20}  {:<20}  {:<36}  {:<36}  {:<24}  {:<10}  {}",
            at.utc.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            at.local.format("%Y-%m-%d %H:%M:%S%:z").to_string(),
            s.timezone,
            start.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            s.tenant_id,
            s.connection_id,
            s.connection_name.chars().take(24).collect::<String>(),
            s.custodian,
            s.cron
        )?;
    }
    Ok(())
}
