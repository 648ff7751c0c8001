//! Redis or PostgreSQL restarting under a batch of syncs: every run still reaches a terminal
//! state, none is lost, none is run into duplicate rows. Each test restarts a private server.

use std::time::{Duration, Instant};

use eam_banksim::{Fault, FaultRule};
use eam_store::TenantId;
use reqwest::Method;
use serde_json::Value;

use crate::kit::{EnvOptions, Firm, TestEnv, small_params};
use crate::services::{PrivatePostgres, PrivateRedis};
use crate::sync::row_counts;

const DEADLINE: Duration = Duration::from_secs(90);
const CONNECTIONS: usize = 4;

/// Polls a job until it is terminal, riding out API errors while a server is down.
async fn wait_terminal(env: &TestEnv, token: &str, run: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (code, job, _) = env
            .call(Method::GET, &format!("/jobs/{run}"), Some(token), None)
            .await;
        if code == 200 && !matches!(job["status"].as_str(), Some("queued" | "running")) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} not terminal: {code} {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The bank's data loaded once per connection, every run succeeded once; returns each run's
/// (pushes, attempts, attempt errors) for the caller to check what the restart did.
async fn all_succeeded_once(env: &TestEnv, token: &str, runs: &[String]) -> Vec<(i32, i32, i64)> {
    for run in runs {
        let job = wait_terminal(env, token, run).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    // No run was created twice, and every connection holds the bank's data exactly once.
    let jobs = env.get("/jobs?limit=500", token).await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), runs.len(), "{jobs}");
    let data = env.sim.dataset();
    let transactions: usize = data.accounts.iter().map(|a| a.transactions.len()).sum();
    let counts = row_counts(env).await;
    assert_eq!(counts["transactions"], (runs.len() * transactions) as i64);
    assert_eq!(
        counts["accounts"],
        (runs.len() * data.accounts.len()) as i64
    );
    let mut owner = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.owner_url)
        .await
        .unwrap();
    sqlx::query_as(
        "SELECT enqueue_count, attempts, jsonb_array_length(attempt_errors)::bigint
         FROM sync_runs ORDER BY queued_at",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap()
}

/// New connections, one sync triggered on each; returns (connection, run) ids.
async fn trigger_batch(env: &TestEnv, tenant: TenantId, token: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for _ in 0..CONNECTIONS {
        let connection = env
            .create_connection(token, &env.connection_body(tenant))
            .await;
        let (code, accepted, _) = env
            .call(
                Method::POST,
                &format!("/connections/{connection}/sync"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(code, 202, "{accepted}");
        out.push((connection, accepted["run_id"].as_str().unwrap().to_owned()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_a_batch_of_syncs_loses_no_run_and_duplicates_none() {
    let mut redis = PrivateRedis::start().await;
    let env = TestEnv::start_with(
        small_params(51),
        EnvOptions {
            redis_url: Some(redis.url()),
            ..EnvOptions::default()
        },
    )
    .await;
    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    // A slow bank: two syncs run (the worker's concurrency), the others wait in the queue.
    env.sim.faults().inject(FaultRule::new(
        "/v1/accounts",
        Fault::Latency { millis: 150 },
    ));
    let batch = trigger_batch(&env, tenant, &token).await;
    let deadline = Instant::now() + DEADLINE;
    while env.get("/jobs?status=running", &token).await["jobs"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no sync started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Redis keeps nothing on disk: the restart loses every queued task.
    redis.restart().await;

    let runs: Vec<String> = batch.into_iter().map(|(_, r)| r).collect();
    let pushes = all_succeeded_once(&env, &token, &runs).await;
    assert!(
        pushes.iter().any(|(pushed, _, _)| *pushed >= 2),
        "the lost tasks were pushed again: {pushes:?}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_a_batch_of_syncs_loses_no_run_and_duplicates_none() {
    let mut pg = PrivatePostgres::start().await;
    let env = TestEnv::start_with(
        small_params(52),
        EnvOptions {
            database_url: Some(pg.url()),
            ..EnvOptions::default()
        },
    )
    .await;
    let Firm {
        tenant,
        token,
        connection: first,
    } = env.firm("Firm A", &["ops", "advisor", "support"]).await;
    // Hold the first connection's row, so its sync stops inside its load transaction: the
    // restart then cuts a load in the middle, for certain. (NO KEY UPDATE, so that inserting
    // runs that refer to the row still works.)
    let mut holder = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.owner_url)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM bank_connections WHERE id = $1::uuid FOR NO KEY UPDATE")
        .bind(&first)
        .execute(&mut holder)
        .await
        .unwrap();
    let (code, accepted, _) = env
        .call(
            Method::POST,
            &format!("/connections/{first}/sync"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(code, 202, "{accepted}");
    let held_run = accepted["run_id"].as_str().unwrap().to_owned();
    let mut runs: Vec<String> = trigger_batch(&env, tenant, &token)
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    // Watched from another session: inside the holder's transaction the statistics views
    // would show one snapshot for good.
    let mut observer = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.owner_url)
        .await
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'eam_app' AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut observer)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the held load never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // In-flight loads roll back; workers and API reconnect by themselves.
    pg.restart().await;
    drop(holder);
    drop(observer);

    runs.insert(0, held_run);
    let outcomes = all_succeeded_once(&env, &token, &runs).await;
    let (_, attempts, errors) = outcomes[0];
    assert!(
        attempts >= 2 && errors >= 1,
        "the cut load was attempted again: {outcomes:?}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_a_trigger_gets_503_never_a_false_202() {
    let mut redis = PrivateRedis::start().await;
    let env = TestEnv::start_with(
        small_params(53),
        EnvOptions {
            redis_url: Some(redis.url()),
            ..EnvOptions::default()
        },
    )
    .await;
    let Firm {
        token, connection, ..
    } = env.firm("Firm A", &["ops", "advisor", "support"]).await;

    redis.stop().await;
    let (code, problem, headers) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/sync"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(code, 503, "{problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    // The run that could not be queued says why, and blocks nothing.
    let jobs = env.get("/jobs", &token).await;
    let job = &jobs["jobs"][0];
    assert_eq!(job["status"], "cancelled", "{job}");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("job queue is unavailable"),
        "{job}"
    );

    assert_eq!(headers["retry-after"], "5");

    // Redis is back: the first trigger goes through (the API retries once on a new
    // connection instead of answering 503 from the dead one). Then Redis restarts while the
    // API is idle (its connection dead without its knowing): the same.
    for _ in 0..2 {
        redis.restart().await;
        let accepted = env.trigger_sync(&token, &connection).await;
        let job = wait_terminal(&env, &token, accepted["run_id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    env.finish().await;
}
