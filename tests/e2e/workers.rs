//! Worker processes: real `eam work` children, killed the hard way.

use std::process::Stdio;
use std::time::Duration;

use eam_banksim::dataset::SimParams;
use eam_banksim::{Fault, FaultRule};
use reqwest::Method;
use sqlx::Connection;

use crate::kit::{EnvOptions, Firm, TestEnv, end_date};
use crate::sync::{assert_api_matches_dataset, row_counts};

const DEADLINE: Duration = Duration::from_secs(90);

/// An `eam work` process on the test's database and queue, with short leases and ticks; its
/// worker id starts with `name` and its logs go to a file beside the test PKI.
pub(crate) fn spawn_worker(env: &TestEnv, name: &str) -> tokio::process::Child {
    worker_command(env, name).spawn().expect("eam work starts")
}

/// The log file of a worker process started by [`worker_command`].
pub(crate) fn worker_log(env: &TestEnv, name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("eam-test-{}-{name}.log", env.queue_name))
}

/// The command [`spawn_worker`] runs, for a test to add settings before spawning it.
pub(crate) fn worker_command(env: &TestEnv, name: &str) -> tokio::process::Command {
    let log = std::fs::File::create(worker_log(env, name)).expect("worker log file");
    let archive = env
        .archive_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("eam-test-archive-shared"));
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_eam"));
    command
        .arg("work")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOSTNAME", name)
        .env("DATABASE_URL", &env.db.owner_url)
        .env("REDIS_URL", &env.redis_url)
        .env("EAM_REDIS__QUEUE", &env.queue_name)
        .env("EAM_WORKER__CONCURRENCY", "2")
        .env("EAM_WORKER__POLL_INTERVAL_MS", "100")
        .env("EAM_WORKER__DISPATCH_INTERVAL_MS", "100")
        .env("EAM_WORKER__LEASE_SECS", "3")
        .env("EAM_WORKER__STALE_AFTER_SECS", "5")
        .env("EAM_WORKER__RETRY_BASE_MS", "200")
        .env("EAM_WORKER__RETRY_MAX_SECS", "1")
        .env("EAM_WORKER__BANK_TIMEOUT_SECS", "10")
        .env("EAM_WORKER__SHUTDOWN_GRACE_SECS", "5")
        // Tests decide when a connection pauses; a worker process never pauses one by itself.
        .env("EAM_WORKER__PAUSE_AFTER_FAILURES", "0")
        .env("EAM_WORKER__BREAKER_COOLDOWN_SECS", "2")
        // Many workers at once on one host: each serves its metrics on a free port.
        .env("EAM_WORKER__METRICS_BIND", "127.0.0.1:0")
        .env("EAM_LOG__LEVEL", "info")
        .env("EAM_ARCHIVE__DIR", archive)
        // Tenants' secret files where the kit puts them; the simulator is on loopback.
        .env("EAM_SECRETS__TENANT_FILE_ROOT", &env.secrets_root)
        .env("EAM_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_worker_is_killed_completes_on_another_worker_with_no_duplicate() {
    let params = SimParams {
        seed: 41,
        clients: 6,
        accounts_per_client: 2,
        positions_per_account: 8,
        transactions_per_account: 400,
        days: 60,
        end_date: end_date(),
    };
    let env = TestEnv::start_with(
        params,
        EnvOptions {
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let Firm {
        token, connection, ..
    } = env.firm("Firm A", &["ops", "advisor", "support"]).await;
    // Slow transaction pages keep the sync busy long enough to be killed in the middle.
    env.sim.faults().inject(FaultRule::new(
        "/v1/accounts",
        Fault::Latency { millis: 150 },
    ));

    let mut first = spawn_worker(&env, "worker-a");
    let (code, accepted, _) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/sync"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(code, 202, "{accepted}");
    let run = accepted["run_id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let job = env.get(&format!("/jobs/{run}"), &token).await;
        if job["status"] == "running"
            && job["worker_id"]
                .as_str()
                .is_some_and(|w| w.starts_with("worker-a-"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "worker-a never took the run: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut second = spawn_worker(&env, "worker-b");
    first.kill().await.expect("SIGKILL worker-a");

    let job = env.wait_for_job(&token, &run, DEADLINE).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    let errors = job["attempt_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{job}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("stopped responding"),
        "{job}"
    );

    // Exactly the bank's data, once.
    let data = env.sim.dataset();
    assert_api_matches_dataset(&env, &token, &data).await;
    let counts = row_counts(&env).await;
    let transactions: usize = data.accounts.iter().map(|a| a.transactions.len()).sum();
    assert_eq!(counts["transactions"], transactions as i64);
    assert_eq!(counts["accounts"], data.accounts.len() as i64);

    second.kill().await.ok();
    env.finish().await;
}

/// Sends SIGTERM to a child process.
fn terminate(child: &tokio::process::Child) {
    let pid = child.id().expect("the worker is running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "SIGTERM sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_a_worker_takes_nothing_new_and_hands_back_what_outlives_its_grace() {
    let env = TestEnv::start_with(
        crate::kit::small_params(42),
        EnvOptions {
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let Firm {
        token, connection, ..
    } = env.firm("Firm A", &["ops", "advisor", "support"]).await;
    // Every page takes 2 s: far longer than the worker's 5 s grace for the whole sync.
    let slow = env.sim.faults().inject(FaultRule::new(
        "/v1/accounts",
        Fault::Latency { millis: 2000 },
    ));
    let mut first = spawn_worker(&env, "worker-a");
    let (code, accepted, _) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/sync"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(code, 202, "{accepted}");
    let run = accepted["run_id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + DEADLINE;
    while env.get(&format!("/jobs/{run}"), &token).await["status"] != "running" {
        assert!(std::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The worker has reported its breaker for the bank's endpoint (a dispatcher tick after
    // its first bank call).
    let mut owner = sqlx::PgConnection::connect(&env.db.owner_url)
        .await
        .unwrap();
    let reported_by_a = "SELECT count(*) FROM circuit_breakers WHERE worker_id LIKE 'worker-a-%'";
    while sqlx::query_scalar::<_, i64>(reported_by_a)
        .fetch_one(&mut owner)
        .await
        .unwrap()
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "no breaker reported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    terminate(&first);
    let exited = tokio::time::timeout(Duration::from_secs(20), first.wait())
        .await
        .expect("the worker exits after its grace period")
        .expect("exit status");
    assert!(exited.success(), "a clean exit: {exited}");
    // Its breakers left with it: the platform's metrics count live workers only.
    let left: i64 = sqlx::query_scalar(reported_by_a)
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(left, 0, "worker-a's breakers are still reported");
    let job = env.get(&format!("/jobs/{run}"), &token).await;
    assert_eq!(
        job["status"], "queued",
        "handed back, not left running: {job}"
    );
    assert!(
        job["attempt_errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("handed back"),
        "{job}"
    );

    env.sim.faults().remove(slow);
    let mut second = spawn_worker(&env, "worker-b");
    let job = env.wait_for_job(&token, &run, DEADLINE).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_api_matches_dataset(&env, &token, &env.sim.dataset()).await;
    second.kill().await.ok();
    env.finish().await;
}

/// A soak: many syncs over many connections and three worker processes while a seeded random
/// stream of faults hits the bank. Sized by `EAM_SOAK_SYNCS` and `EAM_SOAK_CONNECTIONS`
/// (defaults 120 and 12 for the suite; the 500 over 50 is run by hand, see
/// BENCHMARKS.md). Every run must end terminal, and every connection whose last run succeeded
/// must hold exactly the bank's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_of_syncs_under_random_faults_ends_every_run_and_keeps_data_exact() {
    use rand::{Rng, SeedableRng};

    let var = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let syncs = var("EAM_SOAK_SYNCS", 120);
    let connections = var("EAM_SOAK_CONNECTIONS", 12).max(1);
    let per_connection = syncs.div_ceil(connections);
    let started = std::time::Instant::now();
    let env = std::sync::Arc::new(
        TestEnv::start_with(
            crate::kit::small_params(43),
            EnvOptions {
                in_process_worker: false,
                ..EnvOptions::default()
            },
        )
        .await,
    );
    let workers: Vec<_> = ["soak-a", "soak-b", "soak-c"]
        .iter()
        .map(|name| spawn_worker(&env, name))
        .collect();

    // One tenant per connection, so each tenant's API view is one bank's data.
    let mut tenants = Vec::new();
    for n in 0..connections {
        let tenant = env.tenant(&format!("Soak firm {n}")).await;
        let token = env.token(tenant, &["ops", "advisor", "support"]);
        let connection = env
            .create_connection(&token, &env.connection_body(tenant))
            .await;
        tenants.push((token, connection));
    }

    // Faults from a fixed seed: every 300 ms the previous one goes and a new one applies to
    // the next one to six matching requests (more than a request retries). Data faults (malformed, truncated) are rarer
    // than network ones, as at a real bank.
    let (stop_faults, mut faults_stopped) = tokio::sync::watch::channel(false);
    let injector = {
        let faults = env.sim.faults();
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(43);
            let mut injected = 0u32;
            let mut previous = None;
            loop {
                let path = ["/", "/oauth/token", "/v1/accounts"][rng.random_range(0..3)];
                let fault = match rng.random_range(0..20) {
                    0..=4 => Fault::Status {
                        status: 503,
                        retry_after_secs: None,
                    },
                    5..=7 => Fault::Status {
                        status: 500,
                        retry_after_secs: None,
                    },
                    8..=10 => Fault::Status {
                        status: 429,
                        retry_after_secs: Some(1),
                    },
                    11..=14 => Fault::Latency {
                        millis: rng.random_range(50..400),
                    },
                    15 => Fault::Malformed,
                    16 => Fault::Truncate,
                    _ => Fault::ResetConnection,
                };
                let path = if fault == Fault::ResetConnection {
                    "/"
                } else {
                    path
                };
                if let Some(id) = previous.take() {
                    faults.remove(id);
                }
                previous =
                    Some(faults.inject(FaultRule::new(path, fault).times(rng.random_range(1..7))));
                injected += 1;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                    _ = faults_stopped.wait_for(|s| *s) => return injected,
                }
            }
        })
    };

    // Each connection syncs `per_connection` times, one run after the other.
    let drivers: Vec<_> = tenants
        .iter()
        .cloned()
        .map(|(token, connection)| {
            let env = env.clone();
            tokio::spawn(async move {
                let mut last = serde_json::Value::Null;
                for _ in 0..per_connection {
                    let (code, accepted, _) = env
                        .call(
                            Method::POST,
                            &format!("/connections/{connection}/sync"),
                            Some(&token),
                            None,
                        )
                        .await;
                    assert_eq!(code, 202, "{accepted}");
                    let run = accepted["run_id"].as_str().unwrap().to_owned();
                    // Polled gently: many drivers must not drown the API they test.
                    let deadline = std::time::Instant::now() + Duration::from_secs(300);
                    last = loop {
                        let job = env.get(&format!("/jobs/{run}"), &token).await;
                        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
                            break job;
                        }
                        assert!(
                            std::time::Instant::now() < deadline,
                            "run {run} stuck: {job}"
                        );
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    };
                }
                last
            })
        })
        .collect();
    let mut last_runs = Vec::new();
    for driver in drivers {
        last_runs.push(driver.await.expect("driver"));
    }
    let _ = stop_faults.send(true);
    let injected = injector.await.expect("injector");
    env.sim.faults().clear();

    // Every run is terminal, and there are exactly as many as were triggered.
    let mut owner = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.owner_url)
        .await
        .unwrap();
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM sync_runs GROUP BY status ORDER BY status")
            .fetch_all(&mut owner)
            .await
            .unwrap();
    let total: i64 = by_status.iter().map(|(_, n)| n).sum();
    assert_eq!(
        total as usize,
        connections * per_connection,
        "{by_status:?}"
    );
    assert!(
        by_status
            .iter()
            .all(|(s, _)| !matches!(s.as_str(), "queued" | "running")),
        "{by_status:?}"
    );
    let failures: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT coalesce(error_class, '-'), left(coalesce(error_message, '-'), 90), count(*)
         FROM sync_runs WHERE status <> 'succeeded' GROUP BY 1, 2 ORDER BY 3 DESC",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    eprintln!("soak: runs that did not succeed, by error: {failures:#?}");
    let attempts: i64 = sqlx::query_scalar("SELECT sum(attempts) FROM sync_runs")
        .fetch_one(&mut owner)
        .await
        .unwrap();

    let data = env.sim.dataset();
    let mut checked = 0;
    for ((token, _), last) in tenants.iter().zip(&last_runs) {
        if last["status"] == "succeeded" {
            assert_api_matches_dataset(&env, token, &data).await;
            checked += 1;
        }
    }
    eprintln!(
        "soak: {} syncs over {connections} connections and 3 worker processes in {:.1} s; \
         {injected} faults injected; runs by status {by_status:?}; {attempts} attempts; \
         {checked} connections whose last run succeeded hold exactly the bank's data",
        connections * per_connection,
        started.elapsed().as_secs_f64()
    );
    assert!(checked > 0, "some connection ended on a success");
    drop(workers);
    match std::sync::Arc::try_unwrap(env) {
        Ok(env) => env.finish().await,
        Err(_) => panic!("drivers still hold the environment"),
    }
}
