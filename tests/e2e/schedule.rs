//! Nightly scheduling: the schedule tick on a controllable clock (a simulated night, an
//! outage, the daylight-saving days), several schedulers at once, the per-custodian limit under
//! load, the schedule API, `eam schedule`, and `eam work` processes ticking for real.
//!
//! Tick tests run no worker: the runs a tick creates stay queued, so what the tick did can be
//! read back exactly (and a connection's queued run coalesces its next scheduled time).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Timelike, Utc};
use eam_banksim::{Fault, FaultRule};
use eam_model::cron::spread_offset;
use eam_store::connections::{self, NewConnection};
use eam_store::runs::{self, RunStatus, Transition, Trigger};
use eam_store::schedules::{self, FireAction, FireOutcome};
use eam_store::{ConnectionId, RunId, Store, TenantId};
use eam_worker::tick::{self as scheduler, TickReport, TickSettings};
use eam_worker::{CustodianLimit, SyncPolicy};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection as _;
use uuid::Uuid;

use crate::kit::{CLIENT_ID, EnvOptions, Firm, TestEnv, small_params, test_policy};

const DEADLINE: Duration = Duration::from_secs(120);

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339 in the test")
        .with_timezone(&Utc)
}

fn minute() -> chrono::Duration {
    chrono::Duration::minutes(1)
}

/// A system without a worker: scheduled runs stay queued.
fn without_worker() -> EnvOptions {
    EnvOptions {
        in_process_worker: false,
        ..EnvOptions::default()
    }
}

fn tick_settings(spread_secs: u64, catch_up_hours: u64) -> TickSettings {
    TickSettings {
        interval: Duration::from_secs(60),
        catch_up: Duration::from_secs(catch_up_hours * 3600),
        spread: Duration::from_secs(spread_secs),
        // Small pages, so a tick of a few hundred connections reads several.
        page: 64,
        parallel: 4,
        market_data: None,
        late_after: None,
    }
}

/// Creates `n` bank_a connections to the test's simulator for `tenant`.
async fn add_connections(env: &TestEnv, tenant: TenantId, n: usize) -> Vec<ConnectionId> {
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let created = connections::create(
            &mut tx,
            &NewConnection {
                custodian: "bank_a".into(),
                name: format!("Bank A {i}"),
                base_url: None,
                client_id: Some(CLIENT_ID.into()),
                client_secret_ref: Some(env.tenant_ref(tenant, "secret")),
                client_cert_ref: Some(env.tenant_ref(tenant, "client.pem")),
                client_key_ref: Some(env.tenant_ref(tenant, "client.key")),
                position_history_days: 0,
            },
        )
        .await
        .unwrap();
        ids.push(ConnectionId(created.id));
    }
    tx.commit().await.unwrap();
    ids
}

/// Gives a connection its own schedule, in force from `since` (the simulated time it is set).
async fn set_schedule(
    env: &TestEnv,
    tenant: TenantId,
    connection: ConnectionId,
    cron: &str,
    timezone: &str,
    enabled: bool,
    since: DateTime<Utc>,
) {
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    schedules::set(&mut tx, connection, Some((cron, timezone)), enabled, since)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn add(total: &mut TickReport, r: &TickReport) {
    total.scheduled += r.scheduled;
    total.enqueued += r.enqueued;
    total.coalesced += r.coalesced;
    total.paused += r.paused;
    total.missed += r.missed;
    total.already_handled += r.already_handled;
    total.invalid += r.invalid;
    total.failed += r.failed;
}

/// Ticks once a minute from `from` to `to`, both included; the reports added up.
async fn tick_through(
    store: &Store,
    settings: &TickSettings,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> TickReport {
    let mut total = TickReport::default();
    let mut now = from;
    while now <= to {
        let report = scheduler::tick(store, settings, now).await.expect("tick");
        add(&mut total, &report);
        now += minute();
    }
    total
}

/// Nothing handled: no run, no record.
fn handled(r: &TickReport) -> usize {
    r.enqueued + r.coalesced + r.paused + r.missed
}

async fn owner(env: &TestEnv) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&env.db.owner_url)
        .await
        .expect("connect as owner")
}

/// A scheduled run: (run, connection, scheduled_for, next_attempt_at, status).
type ScheduledRun = (
    Uuid,
    Uuid,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    String,
);

/// Every tenant's runs triggered by a schedule.
async fn scheduled_runs(env: &TestEnv) -> Vec<ScheduledRun> {
    let mut db = owner(env).await;
    sqlx::query_as(
        "SELECT id, connection_id, scheduled_for, next_attempt_at, status FROM sync_runs
         WHERE trigger = 'schedule' ORDER BY connection_id, scheduled_for",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
}

/// A handled time: (connection, scheduled_for, outcome, run, fired_at).
type FireRow = (Uuid, DateTime<Utc>, String, Option<Uuid>, DateTime<Utc>);

/// Every tenant's handled scheduled times.
async fn fires(env: &TestEnv) -> Vec<FireRow> {
    let mut db = owner(env).await;
    sqlx::query_as(
        "SELECT connection_id, scheduled_for, outcome, run_id, fired_at FROM schedule_fires
         ORDER BY connection_id, scheduled_for",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
}

/// One connection's handled times as (scheduled_for, outcome, run).
async fn fires_of(env: &TestEnv, c: ConnectionId) -> Vec<(String, String, Option<Uuid>)> {
    fires(env)
        .await
        .into_iter()
        .filter(|f| f.0 == c.0)
        .map(|f| (f.1.to_rfc3339(), f.2, f.3))
        .collect()
}

fn offset(connection: Uuid, secs: u64) -> chrono::Duration {
    chrono::Duration::from_std(spread_offset(connection, Duration::from_secs(secs))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_ticking_through_a_night_of_200_connections_make_exactly_200_runs() {
    let env = TestEnv::start_with(small_params(61), without_worker()).await;
    // 02:00 on five wall clocks, all inside the simulated night (summer time where it applies).
    let zones = [
        ("UTC", "2026-06-10T02:00:00Z"),
        ("Europe/Zurich", "2026-06-10T00:00:00Z"),
        ("Europe/London", "2026-06-10T01:00:00Z"),
        ("America/New_York", "2026-06-10T06:00:00Z"),
        ("America/Los_Angeles", "2026-06-10T09:00:00Z"),
    ];
    let since = utc("2026-06-09T21:00:00Z");
    let mut expected = HashMap::new();
    for firm in ["Firm A", "Firm B"] {
        let tenant = env.tenant(firm).await;
        for (i, c) in add_connections(&env, tenant, 100)
            .await
            .into_iter()
            .enumerate()
        {
            let (zone, at) = zones[i % zones.len()];
            set_schedule(&env, tenant, c, "0 2 * * *", zone, true, since).await;
            expected.insert(c.0, utc(at));
        }
    }

    // Two schedulers, each with its own connections, tick every simulated minute at the same
    // moment (a barrier per minute), from 22:00 to 10:00 UTC.
    let settings = tick_settings(600, 12);
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut schedulers = Vec::new();
    for _ in 0..2 {
        let store = env.db.app_store().await;
        let barrier = barrier.clone();
        let settings = settings.clone();
        schedulers.push(tokio::spawn(async move {
            let mut total = TickReport::default();
            let mut now = utc("2026-06-09T22:00:00Z");
            while now <= utc("2026-06-10T10:00:00Z") {
                barrier.wait().await;
                let report = scheduler::tick(&store, &settings, now).await.expect("tick");
                add(&mut total, &report);
                now += minute();
            }
            total
        }));
    }
    let mut reports = Vec::new();
    for s in schedulers {
        reports.push(s.await.expect("scheduler"));
    }
    let (a, b) = (&reports[0], &reports[1]);
    assert_eq!(a.enqueued + b.enqueued, 200, "{a:?} {b:?}");
    assert_eq!(
        (
            a.coalesced + b.coalesced,
            a.paused + b.paused,
            a.missed + b.missed,
            a.failed + b.failed,
            a.invalid + b.invalid
        ),
        (0, 0, 0, 0, 0),
        "{a:?} {b:?}"
    );

    let runs = scheduled_runs(&env).await;
    assert_eq!(runs.len(), 200);
    let mut per_connection: HashMap<Uuid, RunId> = HashMap::new();
    for (id, connection, scheduled_for, next_attempt_at, status) in &runs {
        let at = expected[connection];
        assert_eq!(*scheduled_for, Some(at));
        // Fired on time: it starts at its scheduled time plus its place in the spread window.
        assert_eq!(*next_attempt_at, Some(at + offset(*connection, 600)));
        assert_eq!(status, "queued");
        assert!(
            per_connection.insert(*connection, RunId(*id)).is_none(),
            "two runs for {connection}"
        );
    }
    let recorded = fires(&env).await;
    assert_eq!(recorded.len(), 200);
    for (connection, scheduled_for, outcome, run, fired_at) in &recorded {
        assert_eq!(*scheduled_for, expected[connection]);
        assert_eq!(outcome, "enqueued");
        assert_eq!(*run, Some(per_connection[connection].0));
        assert_eq!(fired_at, scheduled_for, "handled at the tick of its minute");
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_lets_each_scheduled_time_be_handled_once_whoever_asks() {
    let env = TestEnv::start_with(small_params(62), without_worker()).await;
    let tenant = env.tenant("Firm A").await;
    let ids = add_connections(&env, tenant, 2).await;
    let at = utc("2026-06-10T02:00:00Z");
    let enqueue = FireAction::Enqueue { start_at: at };

    // Eight handlers of the same time at once, past any check a tick makes first.
    let mut attempts = Vec::new();
    for _ in 0..8 {
        let store = env.store.clone();
        let c = ids[0];
        attempts.push(tokio::spawn(async move {
            schedules::fire(&store, tenant, c, at, at, enqueue).await
        }));
    }
    let mut outcomes = Vec::new();
    for a in attempts {
        outcomes.push(a.await.unwrap().expect("fire"));
    }
    let enqueued: Vec<RunId> = outcomes
        .iter()
        .filter_map(|o| match o {
            FireOutcome::Enqueued(run) => Some(*run),
            _ => None,
        })
        .collect();
    assert_eq!(enqueued.len(), 1, "{outcomes:?}");
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == FireOutcome::AlreadyHandled)
            .count(),
        7,
        "{outcomes:?}"
    );
    let runs = scheduled_runs(&env).await;
    assert_eq!(runs.len(), 1, "the losers' runs were rolled back");
    assert_eq!(runs[0].0, enqueued[0].0);

    // The same again, one after the other, and for a connection whose run is busy: the time
    // is handled by that run (coalesced), once.
    assert_eq!(
        schedules::fire(&env.store, tenant, ids[0], at, at, enqueue)
            .await
            .unwrap(),
        FireOutcome::AlreadyHandled
    );
    let later = at + chrono::Duration::days(1);
    assert_eq!(
        schedules::fire(&env.store, tenant, ids[0], later, later, enqueue)
            .await
            .unwrap(),
        FireOutcome::Coalesced(enqueued[0])
    );
    assert_eq!(
        schedules::fire(&env.store, tenant, ids[0], later, later, FireAction::Missed)
            .await
            .unwrap(),
        FireOutcome::AlreadyHandled
    );

    // The key itself, as the app role: a second record of a time is refused.
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    let duplicate = sqlx::query(
        "INSERT INTO schedule_fires (tenant_id, connection_id, scheduled_for, outcome, fired_at)
         VALUES ($1, $2, $3, 'missed', $3)",
    )
    .bind(tenant.0)
    .bind(ids[0].0)
    .bind(at)
    .execute(tx.conn())
    .await
    .expect_err("a second record of the same time");
    let code = duplicate
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("23505"), "{duplicate}");
    drop(tx);
    assert_eq!(fires(&env).await.len(), 2);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_three_hour_outage_each_connection_catches_up_once() {
    let env = TestEnv::start_with(small_params(63), without_worker()).await;
    let tenant = env.tenant("Firm A").await;
    let ids = add_connections(&env, tenant, 30).await;
    let since = utc("2026-06-09T21:00:00Z");
    let mut expected = HashMap::new();
    for (i, c) in ids.iter().enumerate() {
        // 02:00 UTC, or 03:30 in Zurich (01:30 UTC): both inside the outage.
        let (cron, zone, at) = if i % 2 == 0 {
            ("0 2 * * *", "UTC", "2026-06-10T02:00:00Z")
        } else {
            ("30 3 * * *", "Europe/Zurich", "2026-06-10T01:30:00Z")
        };
        set_schedule(&env, tenant, *c, cron, zone, true, since).await;
        expected.insert(c.0, utc(at));
    }
    let settings = tick_settings(300, 12);

    let before = tick_through(
        &env.store,
        &settings,
        utc("2026-06-09T22:00:00Z"),
        utc("2026-06-10T00:59:00Z"),
    )
    .await;
    assert_eq!(handled(&before), 0, "{before:?}");
    // No scheduler ticks from 01:00 to 04:00 UTC. The first tick after the outage:
    let back = utc("2026-06-10T04:00:00Z");
    let first = scheduler::tick(&env.store, &settings, back).await.unwrap();
    assert_eq!(first.enqueued, 30, "{first:?}");
    assert_eq!(handled(&first), 30, "{first:?}");
    let after = tick_through(
        &env.store,
        &settings,
        back + minute(),
        utc("2026-06-10T07:00:00Z"),
    )
    .await;
    assert_eq!(handled(&after), 0, "not once per missed tick: {after:?}");

    let runs = scheduled_runs(&env).await;
    assert_eq!(runs.len(), 30);
    for (_, connection, scheduled_for, next_attempt_at, _) in &runs {
        assert_eq!(*scheduled_for, Some(expected[connection]));
        // A catch-up spreads from the moment it is caught up.
        assert_eq!(*next_attempt_at, Some(back + offset(*connection, 300)));
    }
    let recorded = fires(&env).await;
    assert_eq!(recorded.len(), 30);
    assert!(
        recorded
            .iter()
            .all(|f| f.2 == "enqueued" && f.4 == back && f.1 == expected[&f.0]),
        "{recorded:?}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_older_than_the_catch_up_horizon_is_recorded_missed_and_not_run() {
    let env = TestEnv::start_with(small_params(64), without_worker()).await;
    let tenant = env.tenant("Firm A").await;
    let ids = add_connections(&env, tenant, 5).await;
    for c in &ids {
        set_schedule(
            &env,
            tenant,
            *c,
            "0 2 * * *",
            "UTC",
            true,
            utc("2026-06-09T21:00:00Z"),
        )
        .await;
    }
    let settings = tick_settings(300, 1);
    let back = utc("2026-06-10T04:00:00Z");
    let report = tick_through(&env.store, &settings, back, back + minute() * 30).await;
    assert_eq!(report.missed, 5, "{report:?}");
    assert_eq!(handled(&report), 5, "{report:?}");
    assert!(scheduled_runs(&env).await.is_empty());
    let recorded = fires(&env).await;
    assert_eq!(recorded.len(), 5);
    assert!(
        recorded.iter().all(|f| f.1 == utc("2026-06-10T02:00:00Z")
            && f.2 == "missed"
            && f.3.is_none()
            && f.4 == back),
        "{recorded:?}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_connections_and_schedules_are_not_run_and_busy_connections_coalesce() {
    let env = TestEnv::start_with(small_params(65), without_worker()).await;
    let tenant = env.tenant("Firm A").await;
    let ids = add_connections(&env, tenant, 4).await;
    let (paused, busy, off, default) = (ids[0], ids[1], ids[2], ids[3]);
    let since = utc("2026-06-09T12:00:00Z");
    for c in [paused, busy] {
        set_schedule(&env, tenant, c, "0 2 * * *", "UTC", true, since).await;
    }
    set_schedule(&env, tenant, off, "0 2 * * *", "UTC", false, since).await;
    // `default` has no schedule of its own: it follows the tenant's (midnight in Zurich).
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    schedules::set_default(&mut tx, "0 2 * * *", "Europe/Zurich", true, "ops", since)
        .await
        .unwrap();
    schedules::set(&mut tx, default, None, true, since)
        .await
        .unwrap();
    connections::pause(&mut tx, paused, "bank maintenance")
        .await
        .unwrap();
    let manual = runs::create(
        &mut tx,
        busy,
        Trigger::Manual,
        runs::Origin::actor("ops"),
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let settings = tick_settings(0, 12);
    let night = tick_through(
        &env.store,
        &settings,
        utc("2026-06-09T22:00:00Z"),
        utc("2026-06-10T03:00:00Z"),
    )
    .await;
    assert_eq!(
        (night.enqueued, night.coalesced, night.paused, night.missed),
        (1, 1, 1, 0),
        "{night:?}"
    );
    let default_run = scheduled_runs(&env).await;
    assert_eq!(default_run.len(), 1);
    assert_eq!(default_run[0].1, default.0);

    // In the morning: the connection is resumed, the manual run ends, the schedule is switched
    // back on. None of them makes up for the night.
    let morning = utc("2026-06-10T03:00:00Z");
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    connections::resume(&mut tx, paused).await.unwrap();
    runs::transition(&mut tx, manual.id, Transition::to(RunStatus::Cancelled))
        .await
        .unwrap();
    runs::transition(
        &mut tx,
        RunId(default_run[0].0),
        Transition::to(RunStatus::Cancelled),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    set_schedule(&env, tenant, off, "0 2 * * *", "UTC", true, morning).await;
    let day = tick_through(&env.store, &settings, morning, utc("2026-06-10T06:00:00Z")).await;
    assert_eq!(handled(&day), 0, "{day:?}");

    // The next night everything runs.
    let next = tick_through(
        &env.store,
        &settings,
        utc("2026-06-10T23:50:00Z"),
        utc("2026-06-11T02:10:00Z"),
    )
    .await;
    assert_eq!(next.enqueued, 4, "{next:?}");
    assert_eq!(handled(&next), 4, "{next:?}");

    let runs_by_connection: HashMap<Uuid, Vec<Uuid>> =
        scheduled_runs(&env)
            .await
            .into_iter()
            .fold(HashMap::new(), |mut m, r| {
                m.entry(r.1).or_default().push(r.0);
                m
            });
    let run_of = |c: ConnectionId, night: usize| Some(runs_by_connection[&c.0][night]);
    assert_eq!(
        fires_of(&env, paused).await,
        [
            ("2026-06-10T02:00:00+00:00".into(), "paused".into(), None),
            (
                "2026-06-11T02:00:00+00:00".into(),
                "enqueued".into(),
                run_of(paused, 0)
            ),
        ]
    );
    assert_eq!(
        fires_of(&env, busy).await,
        [
            (
                "2026-06-10T02:00:00+00:00".into(),
                "coalesced".into(),
                Some(manual.id.0)
            ),
            (
                "2026-06-11T02:00:00+00:00".into(),
                "enqueued".into(),
                run_of(busy, 0)
            ),
        ]
    );
    assert_eq!(
        fires_of(&env, off).await,
        [(
            "2026-06-11T02:00:00+00:00".into(),
            "enqueued".into(),
            run_of(off, 0)
        )]
    );
    assert_eq!(
        fires_of(&env, default).await,
        [
            (
                "2026-06-10T00:00:00+00:00".into(),
                "enqueued".into(),
                run_of(default, 0)
            ),
            (
                "2026-06-11T00:00:00+00:00".into(),
                "enqueued".into(),
                run_of(default, 1)
            ),
        ]
    );
    env.finish().await;
}

/// Ticks every minute through two nights around a daylight-saving change in Zurich, with a
/// 02:30 and a 02:00 schedule; returns each one's handled times.
async fn zurich_nights(
    seed: u64,
    since: &str,
    from: &str,
    to: &str,
) -> [Vec<(String, String, Option<Uuid>)>; 2] {
    let env = TestEnv::start_with(small_params(seed), without_worker()).await;
    let tenant = env.tenant("Firm A").await;
    let ids = add_connections(&env, tenant, 2).await;
    set_schedule(
        &env,
        tenant,
        ids[0],
        "30 2 * * *",
        "Europe/Zurich",
        true,
        utc(since),
    )
    .await;
    set_schedule(
        &env,
        tenant,
        ids[1],
        "0 2 * * *",
        "Europe/Zurich",
        true,
        utc(since),
    )
    .await;
    let report = tick_through(&env.store, &tick_settings(0, 12), utc(from), utc(to)).await;
    assert_eq!((report.enqueued, report.coalesced), (2, 2), "{report:?}");
    let runs = scheduled_runs(&env).await;
    let outcome = [fires_of(&env, ids[0]).await, fires_of(&env, ids[1]).await];
    for (i, fires) in outcome.iter().enumerate() {
        let run = runs.iter().find(|r| r.1 == ids[i].0).expect("a run");
        assert_eq!(fires[0].2, Some(run.0));
        assert_eq!(fires[1].2, Some(run.0), "the next night coalesces into it");
        assert_eq!(run.2.map(|t| t.to_rfc3339()), Some(fires[0].0.clone()));
    }
    env.finish().await;
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_spring_forward_day_in_zurich_a_0230_schedule_runs_once_when_the_gap_ends() {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    let [half_past, two] = zurich_nights(
        66,
        "2026-03-28T12:00:00Z",
        "2026-03-28T22:00:00Z",
        "2026-03-30T06:00:00Z",
    )
    .await;
    let times = |f: &[(String, String, Option<Uuid>)]| -> Vec<(String, String)> {
        f.iter().map(|x| (x.0.clone(), x.1.clone())).collect()
    };
    assert_eq!(
        times(&half_past),
        [
            ("2026-03-29T01:00:00+00:00".into(), "enqueued".into()),
            ("2026-03-30T00:30:00+00:00".into(), "coalesced".into()),
        ]
    );
    assert_eq!(
        times(&two),
        [
            ("2026-03-29T01:00:00+00:00".into(), "enqueued".into()),
            ("2026-03-30T00:00:00+00:00".into(), "coalesced".into()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_fall_back_day_in_zurich_a_0230_schedule_runs_once_at_its_first_occurrence() {
    // 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00 UTC); 02:30 happens twice.
    let [half_past, two] = zurich_nights(
        67,
        "2026-10-24T12:00:00Z",
        "2026-10-24T22:00:00Z",
        "2026-10-26T06:00:00Z",
    )
    .await;
    let times = |f: &[(String, String, Option<Uuid>)]| -> Vec<(String, String)> {
        f.iter().map(|x| (x.0.clone(), x.1.clone())).collect()
    };
    assert_eq!(
        times(&half_past),
        [
            ("2026-10-25T00:30:00+00:00".into(), "enqueued".into()),
            ("2026-10-26T01:30:00+00:00".into(), "coalesced".into()),
        ]
    );
    assert_eq!(
        times(&two),
        [
            ("2026-10-25T00:00:00+00:00".into(), "enqueued".into()),
            ("2026-10-26T01:00:00+00:00".into(), "coalesced".into()),
        ]
    );
}

/// The `next_runs` of a schedule view as (utc, local) pairs.
fn next_runs(view: &Value) -> Vec<(String, String)> {
    view["next_runs"]
        .as_array()
        .expect("next_runs")
        .iter()
        .map(|r| {
            (
                r["utc"].as_str().unwrap().to_owned(),
                r["local"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The next `n` leap years whose 29 February at `hour:minute` UTC (on the 28th when `hour` is
/// negative: a zone east of UTC) is after `now`: what a `29 2` cron fires on, from any date.
fn leap_years_after(now: DateTime<Utc>, hour: i64, minute: i64, n: usize) -> Vec<i32> {
    (now.year()..)
        .filter(|y| chrono::NaiveDate::from_ymd_opt(*y, 2, 29).is_some())
        .filter(|y| {
            let day = chrono::NaiveDate::from_ymd_opt(*y, 2, 29).unwrap();
            let at = day.and_hms_opt(0, 0, 0).unwrap().and_utc()
                + chrono::TimeDelta::hours(hour)
                + chrono::TimeDelta::minutes(minute);
            at > now
        })
        .take(n)
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(u, l)| ((*u).to_owned(), (*l).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_api_shows_and_sets_schedules_with_their_next_five_times() {
    let env = TestEnv::start_with(small_params(68), without_worker()).await;
    let tenant = env.tenant("Firm A").await;
    let ops = env.token(tenant, &["ops"]);
    let support = env.token(tenant, &["support"]);
    let advisor = env.token(tenant, &["advisor"]);
    let connection = env
        .create_connection(&ops, &env.connection_body(tenant))
        .await;
    let path = format!("/connections/{connection}/schedule");

    let none = env.get(&path, &ops).await;
    assert_eq!(none["source"], "none");
    assert_eq!(none["active"], false);
    assert_eq!(next_runs(&none), Vec::<(String, String)>::new());

    // Five-field Unix cron, converted; the next five times exact (leap days, winter time).
    let leap = json!({"cron": "0 2 29 2 *", "timezone": "Europe/Zurich"});
    let (code, view, _) = env.call(Method::PUT, &path, Some(&ops), Some(&leap)).await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["source"], "connection");
    assert_eq!(view["cron"], "0 2 29 2 *");
    assert_eq!(view["cron_normalized"], "0 0 2 29 2 *");
    assert_eq!(view["timezone"], "Europe/Zurich");
    assert_eq!(view["enabled"], true);
    assert_eq!(view["active"], true);
    // The next five leap days from today (winter time in Zurich on every one of them).
    let leap_days: Vec<(String, String)> = leap_years_after(Utc::now(), 1, 0, 5)
        .into_iter()
        .map(|y| {
            (
                format!("{y}-02-29T01:00:00Z"),
                format!("{y}-02-29T02:00:00+01:00"),
            )
        })
        .collect();
    assert_eq!(leap_days.len(), 5);
    assert_eq!(next_runs(&view), leap_days);
    // Support reads it too.
    assert_eq!(next_runs(&env.get(&path, &support).await), leap_days);

    // The seven-field form: 29 March 2090 to 2094, on either side of the spring change (the
    // last Sunday of March: 26, 25, 30, 29 and 28 March). In 2093 the change is that very
    // night and 02:30 does not exist: the run is when the gap ends, 03:00 summer time.
    let seven = json!({"cron": "0 30 2 29 3 ? 2090-2094", "timezone": "Europe/Zurich"});
    let (code, view, _) = env.call(Method::PUT, &path, Some(&ops), Some(&seven)).await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["cron_normalized"], "0 30 2 29 3 * 2090-2094");
    assert_eq!(
        next_runs(&view),
        pairs(&[
            ("2090-03-29T00:30:00Z", "2090-03-29T02:30:00+02:00"),
            ("2091-03-29T00:30:00Z", "2091-03-29T02:30:00+02:00"),
            ("2092-03-29T01:30:00Z", "2092-03-29T02:30:00+01:00"),
            ("2093-03-29T01:00:00Z", "2093-03-29T03:00:00+02:00"),
            ("2094-03-29T00:30:00Z", "2094-03-29T02:30:00+02:00"),
        ])
    );

    // 422 naming the field, as problem+json; nothing changes.
    for (body, detail) in [
        (
            json!({"cron": "61 2 * * *", "timezone": "Europe/Zurich"}),
            "cron.minute: '61' is out of range 0-59",
        ),
        (
            json!({"cron": "0 2 * *", "timezone": "Europe/Zurich"}),
            "cron: expected five fields (minute hour day-of-month month day-of-week, e.g. '0 2 * * *'), or six or seven with seconds first; found 4",
        ),
        (
            json!({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}),
            "timezone: 'Mars/Olympus' is not an IANA time zone name (e.g. Europe/Zurich, UTC)",
        ),
        (
            json!({"cron": "0 2 * * *"}),
            "timezone: required with cron (an IANA name, e.g. Europe/Zurich)",
        ),
    ] {
        let (code, problem, headers) = env.call(Method::PUT, &path, Some(&ops), Some(&body)).await;
        assert_eq!(code, 422, "{body}: {problem}");
        assert_eq!(problem["detail"], detail);
        assert_eq!(
            headers["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
    }
    assert_eq!(
        env.get(&path, &ops).await["cron"],
        "0 30 2 29 3 ? 2090-2094"
    );

    // 403 without ManageSchedules (support, advisor) or ReadSchedules (advisor).
    let (code, problem, _) = env
        .call(Method::PUT, &path, Some(&support), Some(&leap))
        .await;
    assert_eq!(code, 403, "{problem}");
    let (code, _, _) = env.call(Method::GET, &path, Some(&advisor), None).await;
    assert_eq!(code, 403);

    // 404 for another tenant's connection, read or write.
    let other = env.tenant("Firm B").await;
    let other_ops = env.token(other, &["ops"]);
    for method in [Method::GET, Method::PUT] {
        let body = (method == Method::PUT).then_some(&leap);
        let (code, problem, _) = env.call(method, &path, Some(&other_ops), body).await;
        assert_eq!(code, 404, "{problem}");
        assert_eq!(
            problem["detail"],
            format!("connection {connection} not found")
        );
    }

    // The tenant default, followed by a connection without its own schedule; paused.
    let (code, _, _) = env
        .call(Method::GET, "/schedules/default", Some(&ops), None)
        .await;
    assert_eq!(code, 404);
    let default = json!({"cron": "@yearly", "timezone": "America/New_York"});
    let (code, view, _) = env
        .call(
            Method::PUT,
            "/schedules/default",
            Some(&ops),
            Some(&default),
        )
        .await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["cron_normalized"], "0 0 0 1 1 *");
    assert_eq!(view["updated_by"], "user-ops");
    let (code, view, _) = env
        .call(Method::PUT, &path, Some(&ops), Some(&json!({})))
        .await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["source"], "tenant_default");
    assert_eq!(view["cron"], "@yearly");
    let years: Vec<String> = next_runs(&view).into_iter().map(|r| r.1).collect();
    // The next 1 January in New York (UTC-5 around New Year).
    let first_year = (Utc::now() - chrono::Duration::hours(5)).year() + 1;
    assert_eq!(
        years,
        (first_year..first_year + 5)
            .map(|y| format!("{y}-01-01T00:00:00-05:00"))
            .collect::<Vec<_>>()
    );
    let (code, view, _) = env
        .call(
            Method::PUT,
            &path,
            Some(&ops),
            Some(&json!({"enabled": false})),
        )
        .await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(
        (view["enabled"].clone(), view["active"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(next_runs(&view), Vec::<(String, String)>::new());

    // Every change is in the audit log.
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    let entries = eam_store::audit::list(&mut tx, Some("schedule.updated"), 10)
        .await
        .unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0].actor, "user-ops");
    assert_eq!(
        entries[0].target.as_deref(),
        Some(&*format!("connection:{connection}"))
    );
    let defaults = eam_store::audit::list(&mut tx, Some("schedule_default.updated"), 10)
        .await
        .unwrap();
    assert_eq!(defaults.len(), 1);
    drop(tx);

    // The default removed: the connection following it has no schedule any more; support
    // may not remove it, and removing it twice is a 404.
    let (code, problem, _) = env
        .call(Method::DELETE, "/schedules/default", Some(&support), None)
        .await;
    assert_eq!(code, 403, "{problem}");
    let (code, body, _) = env
        .call(Method::DELETE, "/schedules/default", Some(&ops), None)
        .await;
    assert_eq!(code, 204, "{body}");
    let (code, problem, _) = env
        .call(Method::GET, "/schedules/default", Some(&ops), None)
        .await;
    assert_eq!(code, 404, "{problem}");
    assert_eq!(problem["detail"], "the tenant has no default schedule");
    let view = env.get(&path, &ops).await;
    assert_eq!(view["source"], "none", "{view}");
    assert_eq!(next_runs(&view), Vec::<(String, String)>::new());
    let (code, problem, _) = env
        .call(Method::DELETE, "/schedules/default", Some(&ops), None)
        .await;
    assert_eq!(code, 404, "{problem}");
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    let deleted = eam_store::audit::list(&mut tx, Some("schedule_default.deleted"), 10)
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].actor, "user-ops");
    drop(tx);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eam_schedule_lists_every_tenants_upcoming_runs_in_local_and_utc_time() {
    let env = TestEnv::start_with(small_params(69), without_worker()).await;
    let firm_a = env.tenant("Firm A").await;
    let firm_b = env.tenant("Firm B").await;
    let a = add_connections(&env, firm_a, 2).await;
    let b = add_connections(&env, firm_b, 1).await;
    let now = Utc::now();
    set_schedule(&env, firm_a, a[0], "0 2 29 2 *", "Europe/Zurich", true, now).await;
    // Paused connections and paused schedules are not listed.
    set_schedule(&env, firm_a, a[1], "0 2 29 2 *", "UTC", false, now).await;
    set_schedule(&env, firm_b, b[0], "30 1 29 2 *", "Asia/Tokyo", true, now).await;

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_eam"))
        .args(["schedule", "--count", "2", "--json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &env.db.owner_url)
        .env("EAM_SCHEDULER__SPREAD_SECS", "0")
        .output()
        .expect("eam schedule runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let rows: Vec<(String, String, String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["scheduled_for"].as_str().unwrap().to_owned(),
                l["local"].as_str().unwrap().to_owned(),
                l["connection_id"].as_str().unwrap().to_owned(),
                l["tenant_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |utc: &str, local: &str, c: ConnectionId, t: TenantId| {
        (
            utc.to_owned(),
            local.to_owned(),
            c.0.to_string(),
            t.0.to_string(),
        )
    };
    // Two leap days of each listed connection, in time order: Tokyo's 01:30 is 16:30 UTC
    // the day before, Zurich's 02:00 is 01:00 UTC.
    let mut expected = Vec::new();
    for y in leap_years_after(now, -24 + 16, 30, 2) {
        expected.push(row(
            &format!("{y}-02-28T16:30:00Z"),
            &format!("{y}-02-29T01:30:00+09:00"),
            b[0],
            firm_b,
        ));
    }
    for y in leap_years_after(now, 1, 0, 2) {
        expected.push(row(
            &format!("{y}-02-29T01:00:00Z"),
            &format!("{y}-02-29T02:00:00+01:00"),
            a[0],
            firm_a,
        ));
    }
    expected.sort();
    assert_eq!(rows, expected);
    assert!(
        lines
            .iter()
            .all(|l| l["starts_at"] == l["scheduled_for"] && l["custodian"] == "bank_a")
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_n_syncs_of_one_custodian_run_at_once_across_workers_and_tenants() {
    const LIMIT: i64 = 2;
    const SYNCS: usize = 9;
    let policy = SyncPolicy {
        custodian_limit: Some(CustodianLimit {
            max_running: 2,
            recheck: Duration::from_millis(200),
        }),
        ..test_policy()
    };
    let env = TestEnv::start_with(
        small_params(70),
        EnvOptions {
            policy: policy.clone(),
            ..EnvOptions::default()
        },
    )
    .await;
    // Two more workers, each with its own database pool: six slots for a limit of two.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..2 {
        let worker = env.another_worker(policy.clone()).await;
        workers.push(tokio::spawn(worker.run(stopped.clone())));
    }
    // Slow account pages keep each sync running for a while, so the syncs pile up.
    env.sim.faults().inject(FaultRule::new(
        "/v1/accounts",
        Fault::Latency { millis: 100 },
    ));

    // Three tenants, three connections each, all to the same custodian, all triggered at once.
    let mut triggered = Vec::new();
    for firm in ["Firm A", "Firm B", "Firm C"] {
        let tenant = env.tenant(firm).await;
        let token = env.token(tenant, &["ops"]);
        for _ in 0..3 {
            let connection = env
                .create_connection(&token, &env.connection_body(tenant))
                .await;
            triggered.push((token.clone(), connection));
        }
    }
    let mut runs = Vec::new();
    for (token, connection) in &triggered {
        let (code, accepted, _) = env
            .call(
                Method::POST,
                &format!("/connections/{connection}/sync"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(code, 202, "{accepted}");
        runs.push((
            token.clone(),
            accepted["run_id"].as_str().unwrap().to_owned(),
        ));
    }

    // Sample the custodian's running syncs, across tenants, until every run has ended.
    let mut db = owner(&env).await;
    let deadline = Instant::now() + DEADLINE;
    let mut max_running = 0;
    loop {
        let (running, active): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE r.status = 'running'),
                    count(*) FILTER (WHERE r.status IN ('queued', 'running'))
             FROM sync_runs r JOIN bank_connections c ON c.id = r.connection_id
             WHERE c.custodian = 'bank_a'",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        max_running = max_running.max(running);
        if active == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{active} syncs still active");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(max_running, LIMIT, "the limit held and was reached");
    for (token, run) in &runs {
        let job = env.get(&format!("/jobs/{run}"), token).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(
            job["attempts"], 1,
            "held-back starts are not attempts: {job}"
        );
    }
    // The bank saw one token request per sync: a run held back never reached it.
    assert_eq!(env.sim.requests_to("/oauth/token"), SYNCS as u64);

    let _ = stop.send(true);
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(15), w).await;
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_eam_work_processes_tick_and_run_a_due_schedule_once() {
    let env = TestEnv::start_with(small_params(71), without_worker()).await;
    let Firm {
        token, connection, ..
    } = env.firm("Firm A", &["ops"]).await;
    // Daily at the current minute, in force since ten minutes ago: due now, once.
    let now = Utc::now();
    let cron = format!("{} {} * * *", now.minute(), now.hour());
    let (code, view, _) = env
        .call(
            Method::PUT,
            &format!("/connections/{connection}/schedule"),
            Some(&token),
            Some(&json!({"cron": cron, "timezone": "UTC"})),
        )
        .await;
    assert_eq!(code, 200, "{view}");
    let mut db = owner(&env).await;
    sqlx::query(
        "UPDATE bank_connections SET schedule_since = now() - interval '10 minutes' WHERE id = $1",
    )
    .bind(Uuid::parse_str(&connection).unwrap())
    .execute(&mut db)
    .await
    .unwrap();

    let mut workers = Vec::new();
    for name in ["ticker-a", "ticker-b"] {
        workers.push(
            crate::workers::worker_command(&env, name)
                .env("EAM_SCHEDULER__TICK_INTERVAL_SECS", "1")
                .env("EAM_SCHEDULER__SPREAD_SECS", "0")
                .spawn()
                .expect("eam work starts"),
        );
    }
    let deadline = Instant::now() + DEADLINE;
    let job = loop {
        let page = env
            .get(&format!("/jobs?connection_id={connection}"), &token)
            .await;
        let jobs = page["jobs"].as_array().unwrap().clone();
        if let Some(done) = jobs
            .iter()
            .find(|j| j["status"] == "succeeded" && j["trigger"] == "schedule")
        {
            break done.clone();
        }
        assert!(Instant::now() < deadline, "no scheduled sync ran: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let view = env
        .get(&format!("/connections/{connection}/schedule"), &token)
        .await;
    let recent = view["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 1, "{view}");
    assert_eq!(recent[0]["outcome"], "enqueued");
    assert_eq!(recent[0]["run_id"], job["id"]);
    let scheduled_for = utc(recent[0]["scheduled_for"].as_str().unwrap());
    assert_eq!(
        (
            scheduled_for.hour(),
            scheduled_for.minute(),
            scheduled_for.second()
        ),
        (now.hour(), now.minute(), 0)
    );
    let page = env
        .get(&format!("/jobs?connection_id={connection}"), &token)
        .await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1, "{page}");
    // The job says which scheduled time it ran for, listed and alone.
    assert_eq!(page["jobs"][0]["scheduled_for"], recent[0]["scheduled_for"]);
    let alone = env
        .get(&format!("/jobs/{}", job["id"].as_str().unwrap()), &token)
        .await;
    assert_eq!(
        utc(alone["scheduled_for"].as_str().unwrap()),
        scheduled_for,
        "{alone}"
    );

    for mut w in workers {
        w.kill().await.ok();
    }
    env.finish().await;
}

/// A bank delivery that is late: a connection's scheduled sync hours ago with no successful
/// sync since is flagged once (`delivery.late`, a high-priority task naming why), a paused
/// connection is not, and the connection's next successful sync resolves the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_sync_without_data_hours_later_is_a_late_delivery_until_one_succeeds() {
    let env = TestEnv::start_with(small_params(102), without_worker()).await;
    let tenant = env.tenant("Firm L").await;
    let support = env.token(tenant, &["support"]);
    let ids = add_connections(&env, tenant, 2).await;
    let (late, paused) = (ids[0], ids[1]);
    // Scheduled daily at a minute five hours ago (in UTC); ticked then, so its run was queued
    // and is still queued (no worker): nothing arrived.
    let at = (Utc::now() - chrono::Duration::hours(5))
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    let cron = format!("{} {} * * *", at.minute(), at.hour());
    for c in [late, paused] {
        set_schedule(
            &env,
            tenant,
            c,
            &cron,
            "UTC",
            true,
            at - chrono::Duration::days(1),
        )
        .await;
    }
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    connections::pause(&mut tx, paused, "bank migration")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let report = scheduler::tick(&env.store, &tick_settings(0, 12), at)
        .await
        .unwrap();
    assert_eq!((report.enqueued, report.paused), (1, 1), "{report:?}");

    let grace = chrono::Duration::hours(3);
    assert_eq!(env.store.flag_late_deliveries(grace).await.unwrap(), 1);
    assert_eq!(
        env.store.flag_late_deliveries(grace).await.unwrap(),
        0,
        "once"
    );
    assert_eq!(
        env.store
            .flag_late_deliveries(chrono::Duration::hours(6))
            .await
            .unwrap(),
        0
    );
    let events = env.get("/events?type=delivery.late", &support).await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let data = &events[0]["data"];
    assert_eq!(data["connection_id"], late.0.to_string());
    assert_eq!(data["reason"], "its run is queued");
    assert_eq!(data["last_success_at"], Value::Null);
    let tasks = env.get("/tasks?kind=delivery_late", &support).await;
    let tasks = tasks["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["cause"], format!("delivery:{}", late.0));
    assert_eq!(tasks[0]["priority"], "high");
    assert!(
        tasks[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("No data from Bank A 0 (bank_a) since the sync scheduled for "),
        "{tasks:?}"
    );
    let task = tasks[0]["id"].as_str().unwrap().to_owned();

    // Its run succeeds at last: the task is resolved, and nothing is late any more.
    let run = RunId(Uuid::parse_str(data["run_id"].as_str().unwrap()).unwrap());
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    runs::transition(&mut tx, run, Transition::to(RunStatus::Running))
        .await
        .unwrap();
    runs::transition(&mut tx, run, Transition::to(RunStatus::Succeeded))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let detail = env.get(&format!("/tasks/{task}"), &support).await;
    assert_eq!(detail["task"]["status"], "resolved", "{detail}");
    assert_eq!(
        detail["task"]["resolution_note"],
        format!("the connection's next sync (run:{}) delivered", run.0)
    );
    assert_eq!(env.store.flag_late_deliveries(grace).await.unwrap(), 0);
    env.finish().await;
}
