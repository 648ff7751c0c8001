//! Worker processes: real `eam work` children, killed the hard way.

use std::process::Stdio;
use std::time::Duration;

use eam_banksim::dataset::SimParams;
use eam_banksim::{Fault, FaultRule};
use reqwest::Method;

use crate::kit::{EnvOptions, TestEnv, end_date};
use crate::sync::{assert_api_matches_dataset, row_counts};

const DEADLINE: Duration = Duration::from_secs(90);

/// An `eam work` process on the test's database and queue, with short leases and ticks; its
/// worker id starts with `name` and its logs go to a file beside the test PKI.
pub(crate) fn spawn_worker(env: &TestEnv, name: &str) -> tokio::process::Child {
    let log = std::env::temp_dir().join(format!("eam-test-{}-{name}.log", env.queue_name));
    let log = std::fs::File::create(&log).expect("worker log file");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_eam"))
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
        .env("EAM_LOG__LEVEL", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("eam work starts")
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
    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let connection = env.create_connection(&token, &env.connection_body()).await;
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
