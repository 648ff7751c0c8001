//! Banks fail: each way is injected into the simulator, and each run must end in a clear
//! state without losing or duplicating a record.

use std::time::{Duration, Instant};

use eam_banksim::{Fault, FaultRule};
use eam_connectors::BreakerSettings;
use reqwest::Method;
use serde_json::{Value, json};

use crate::kit::{EnvOptions, Firm, TestEnv, small_params, test_policy};
use crate::sync::{assert_api_matches_dataset, row_counts, total};

const DEADLINE: Duration = Duration::from_secs(60);

fn status(code: u16) -> Fault {
    Fault::Status {
        status: code,
        retry_after_secs: None,
    }
}

/// Polls `GET path` until `done` holds, failing after the deadline.
async fn poll(env: &TestEnv, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let value = env.get(path, token).await;
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn errors(job: &Value) -> &Vec<Value> {
    job["attempt_errors"].as_array().expect("attempt errors")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_burst_shorter_than_the_retry_budget_ends_in_success_with_its_attempts_recorded() {
    let env = TestEnv::start(small_params(31)).await;
    let Firm {
        token, connection, ..
    } = env.firm("Firm A", &["ops", "advisor", "support"]).await;
    // The first try and its one in-attempt retry both get 503; the second attempt's first try
    // gets the third 503, its retry goes through.
    env.sim
        .faults()
        .inject(FaultRule::new("/v1/accounts", status(503)).times(3));

    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2);
    let errors = errors(&job);
    assert_eq!(errors.len(), 1, "{job}");
    assert_eq!(errors[0]["attempt"], 1);
    assert_eq!(errors[0]["class"], "transient");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("503"),
        "{job}"
    );
    assert!(
        job["error"].is_null(),
        "a success carries no final error: {job}"
    );
    assert_api_matches_dataset(&env, &token, &env.sim.dataset()).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_longer_than_the_budget_ends_dead_leaves_loaded_data_alone_and_support_retries_it()
{
    let env = TestEnv::start(small_params(32)).await;
    let Firm {
        tenant,
        token,
        connection,
    } = env.firm("Firm A", &["ops", "advisor", "support"]).await;
    let first = env.sync_and_wait(&token, &connection).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let before = row_counts(&env).await;

    let rule = env.sim.faults().inject(FaultRule::new("/", status(500)));
    let dead = env.sync_and_wait(&token, &connection).await;
    assert_eq!(dead["status"], "dead", "{dead}");
    assert_eq!(dead["attempts"], 3);
    assert_eq!(errors(&dead).len(), 3, "{dead}");
    assert_eq!(dead["error"]["class"], "transient");
    assert!(
        dead["error"]["suggested_action"]
            .as_str()
            .unwrap()
            .contains("retry"),
        "{dead}"
    );
    assert_eq!(row_counts(&env).await, before, "earlier data untouched");
    assert_api_matches_dataset(&env, &token, &env.sim.dataset()).await;

    // The bank is back: support retries the dead run.
    env.sim.faults().remove(rule);
    let dead_id = dead["id"].as_str().unwrap();
    let (code, retried, _) = env
        .call(
            Method::POST,
            &format!("/jobs/{dead_id}/retry"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(code, 200, "{retried}");
    assert_eq!(retried["retry_of"], dead_id);
    assert_eq!(retried["coalesced"], false);
    let run = retried["run_id"].as_str().unwrap();
    let job = env.wait_for_job(&token, run, DEADLINE).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["trigger"], "retry");
    assert_eq!(job["retry_of"], dead_id);
    assert_eq!(
        row_counts(&env).await,
        before,
        "no duplicate after the retry"
    );

    // A run is retried once; a succeeded run not at all.
    let (code, again, _) = env
        .call(
            Method::POST,
            &format!("/jobs/{dead_id}/retry"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(code, 409, "{again}");
    assert!(
        again["detail"]
            .as_str()
            .unwrap()
            .starts_with("already retried by run"),
        "{again}"
    );
    let (code, _, _) = env
        .call(
            Method::POST,
            &format!("/jobs/{run}/retry"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(code, 409);

    // The retry is in the audit log with who asked.
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    let entries = eam_store::audit::list(&mut tx, Some("job.retried"), 10)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, "user-ops-advisor-support");
    assert_eq!(
        entries[0].target.as_deref(),
        Some(&*format!("job:{dead_id}"))
    );
    assert_eq!(entries[0].details["run_id"], run);
    let verified = eam_store::audit::verify(&mut tx, &[]).await.unwrap();
    assert_eq!(verified.first_break, None);
    drop(tx);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_sends_nothing_until_its_cooldown_then_one_probe_closes_it() {
    let cooldown = Duration::from_secs(3);
    let env = TestEnv::start_with(
        small_params(33),
        EnvOptions {
            policy: eam_worker::SyncPolicy {
                max_attempts: 20,
                request_retry: eam_connectors::RetryPolicy {
                    max_retries: 0,
                    ..test_policy().request_retry
                },
                retry_base: Duration::from_millis(50),
                retry_max: Duration::from_millis(100),
                ..test_policy()
            },
            breakers: BreakerSettings {
                failures_to_open: 3,
                cooldown,
                ..crate::kit::breaker_settings()
            },
            ..EnvOptions::default()
        },
    )
    .await;
    let Firm {
        token, connection, ..
    } = env.firm("Firm A", &["ops", "advisor", "support"]).await;
    let rule = env.sim.faults().inject(FaultRule::new("/", status(503)));

    let accepted = env.trigger_sync(&token, &connection).await;
    let run = accepted["run_id"].as_str().unwrap().to_owned();
    let breaker = format!("/connections/{connection}/breaker");
    let open = poll(&env, &token, &breaker, |b| b["state"] == "open").await;
    assert_eq!(open["workers"][0]["consecutive_failures"], 3, "{open}");
    assert_eq!(env.sim.requests(), 3, "three failures opened it");

    // Attempts keep failing fast on the open breaker, without a request to the bank.
    let job = poll(&env, &token, &format!("/jobs/{run}"), |j| {
        errors(j).iter().any(|e| {
            e["message"]
                .as_str()
                .unwrap_or("")
                .contains("circuit breaker open")
        })
    })
    .await;
    assert_eq!(job["status"], "queued", "waiting for the cool-down: {job}");
    assert!(job["next_attempt_at"].is_string(), "{job}");
    assert_eq!(env.sim.requests(), 3, "nothing reached the bank while open");

    // The bank recovers; after the cool-down one probe goes through and closes the breaker.
    env.sim.faults().remove(rule);
    let job = env.wait_for_job(&token, &run, DEADLINE).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let closed = poll(&env, &token, &breaker, |b| b["state"] == "closed").await;
    assert_eq!(closed["workers"][0]["consecutive_failures"], 0);
    assert!(
        closed["workers"][0]["rejected_calls"].as_i64().unwrap() >= 1,
        "{closed}"
    );
    assert_api_matches_dataset(&env, &token, &env.sim.dataset()).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_or_truncated_page_fails_as_data_at_once_with_its_location_and_loads_nothing() {
    let env = TestEnv::start(small_params(34)).await;
    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let account = env.sim.dataset().accounts[0].account_id.clone();
    let page = format!("/v1/accounts/{account}/transactions");

    env.sim
        .faults()
        .inject(FaultRule::new(page.clone(), Fault::Malformed).times(1));
    let connection = env
        .create_connection(&token, &env.connection_body(tenant))
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["attempts"], 1, "data errors are not retried");
    assert_eq!(job["error"]["class"], "data");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("transactions/{account}/page-1"))
            && message.contains("transactions[0].amount"),
        "the document and field are named: {message}"
    );

    env.sim
        .faults()
        .inject(FaultRule::new(page, Fault::Truncate).times(1));
    let second = env
        .create_connection(&token, &env.connection_body(tenant))
        .await;
    let job = env.sync_and_wait(&token, &second).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["class"], "data", "{job}");

    let counts = row_counts(&env).await;
    assert!(
        counts.values().all(|n| *n == 0),
        "nothing loaded: {counts:?}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_trigger_is_coalesced_and_a_cancelled_sync_loads_nothing() {
    let env = TestEnv::start(small_params(35)).await;
    let Firm {
        token, connection, ..
    } = env.firm("Firm A", &["ops", "advisor", "support"]).await;
    let last = env
        .sim
        .dataset()
        .accounts
        .last()
        .unwrap()
        .account_id
        .clone();
    // The last page is slow, so the sync is still running when it is cancelled.
    let slow = env.sim.faults().inject(FaultRule::new(
        format!("/v1/accounts/{last}/transactions"),
        Fault::Latency { millis: 4000 },
    ));

    let first = env.trigger_sync(&token, &connection).await;
    let run = first["run_id"].as_str().unwrap().to_owned();
    let second = env.trigger_sync(&token, &connection).await;
    assert_eq!(
        second["run_id"],
        run.as_str(),
        "coalesced into the active run"
    );
    assert_eq!(second["coalesced"], true);

    poll(&env, &token, &format!("/jobs/{run}"), |j| {
        j["status"] == "running"
    })
    .await;
    // A trigger coalesced into a running run says it is running.
    let third = env.trigger_sync(&token, &connection).await;
    assert_eq!(
        (third["run_id"].as_str(), third["coalesced"].as_bool()),
        (Some(run.as_str()), Some(true))
    );
    assert_eq!(third["status"], "running", "{third}");
    let (code, cancelled, _) = env
        .call(
            Method::POST,
            &format!("/jobs/{run}/cancel"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(code, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        cancelled["note"], "cancelled by user-ops-advisor-support",
        "{cancelled}"
    );
    let (code, _, _) = env
        .call(
            Method::POST,
            &format!("/jobs/{run}/cancel"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(code, 409, "a finished run cannot be cancelled");

    // Proof that the cancelled sync committed nothing: the next sync inserts everything.
    env.sim.faults().remove(slow);
    let next = env.sync_and_wait(&token, &connection).await;
    assert_eq!(next["status"], "succeeded", "{next}");
    assert_ne!(next["id"], run.as_str());
    let data = env.sim.dataset();
    let transactions: usize = data.accounts.iter().map(|a| a.transactions.len()).sum();
    assert_eq!(
        next["counts"]["transactions"]["inserted"], transactions as u64,
        "{}",
        next["counts"]
    );
    assert_eq!(total(&next["counts"], "updated"), 0);
    assert_eq!(
        env.get(&format!("/jobs/{run}"), &token).await["status"],
        "cancelled"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_failing_again_and_again_is_paused_until_ops_resume_it() {
    let env = TestEnv::start_with(
        small_params(36),
        EnvOptions {
            policy: eam_worker::SyncPolicy {
                pause_after_failures: 2,
                ..test_policy()
            },
            ..EnvOptions::default()
        },
    )
    .await;
    let Firm {
        tenant,
        token,
        connection,
    } = env.firm("Firm A", &["ops", "advisor", "support"]).await;
    // The bank refuses our credentials: each run fails as auth at once.
    let refused = env.sim.faults().inject(FaultRule::new(
        "/oauth/token",
        Fault::Status {
            status: 401,
            retry_after_secs: None,
        },
    ));
    for n in 1..=2 {
        let job = env.sync_and_wait(&token, &connection).await;
        assert_eq!(job["status"], "failed", "run {n}: {job}");
        assert_eq!(job["error"]["class"], "auth");
    }
    let paused = env.get(&format!("/connections/{connection}"), &token).await;
    assert_eq!(paused["status"], "paused", "{paused}");
    assert_eq!(paused["consecutive_failures"], 2);
    assert!(
        paused["paused_reason"]
            .as_str()
            .unwrap()
            .starts_with("paused after 2 consecutive failed runs"),
        "{paused}"
    );
    let (code, body, _) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/sync"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(code, 409, "a paused connection is not synced: {body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("the connection is paused (paused after 2 consecutive failed runs"),
        "{body}"
    );

    env.sim.faults().remove(refused);
    let (code, resumed, _) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/resume"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(code, 200, "{resumed}");
    assert_eq!(resumed["status"], "active");
    assert_eq!(resumed["consecutive_failures"], 0);
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    // Ops can pause by hand, with a reason; both actions are audited.
    let (code, manual, _) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/pause"),
            Some(&token),
            Some(&json!({ "reason": "bank maintenance tonight" })),
        )
        .await;
    assert_eq!(code, 200, "{manual}");
    assert_eq!(
        manual["paused_reason"],
        "paused by user-ops-advisor-support: bank maintenance tonight"
    );
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    let actions: Vec<String> = eam_store::audit::list(&mut tx, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"connection.resumed".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"connection.paused".to_owned()),
        "{actions:?}"
    );
    drop(tx);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_retries_every_dead_run_of_a_night_in_one_call() {
    let env = TestEnv::start(small_params(37)).await;
    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let outage = env.sim.faults().inject(FaultRule::new("/", status(503)));
    let mut dead = Vec::new();
    for _ in 0..3 {
        let connection = env
            .create_connection(&token, &env.connection_body(tenant))
            .await;
        let job = env.sync_and_wait(&token, &connection).await;
        assert_eq!(job["status"], "dead", "{job}");
        dead.push(job["id"].as_str().unwrap().to_owned());
    }
    let listed = env
        .get("/jobs?status=dead&error_class=transient", &token)
        .await;
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 3);
    let none = env.get("/jobs?status=dead&error_class=auth", &token).await;
    assert_eq!(none["jobs"].as_array().unwrap().len(), 0);

    env.sim.faults().remove(outage);
    let (code, bulk, _) = env
        .call(
            Method::POST,
            "/jobs/retry",
            Some(&token),
            Some(&json!({ "status": "dead", "error_class": "transient" })),
        )
        .await;
    assert_eq!(code, 200, "{bulk}");
    let retried = bulk["retried"].as_array().unwrap();
    assert_eq!(retried.len(), 3, "{bulk}");
    for r in retried {
        assert!(dead.iter().any(|d| r["retry_of"] == d.as_str()), "{r}");
        let job = env
            .wait_for_job(&token, r["run_id"].as_str().unwrap(), DEADLINE)
            .await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    // Nothing left to retry.
    let (code, again, _) = env
        .call(Method::POST, "/jobs/retry", Some(&token), Some(&json!({})))
        .await;
    assert_eq!(code, 200);
    assert_eq!(again["retried"].as_array().unwrap().len(), 0, "{again}");
    env.finish().await;
}

/// Writes `n` audit entries for the tenant, as an action would.
async fn audit_entries(env: &TestEnv, tenant: eam_store::TenantId, n: usize) {
    let mut tx = env.store.tenant_tx(tenant).await.expect("tenant tx");
    for i in 0..n {
        eam_store::audit::record(
            &mut tx,
            &eam_store::audit::AuditEntry {
                actor: "user-ops".into(),
                action: "job.retried".into(),
                target: Some(format!("job:{i}")),
                request_id: None,
                source_addr: Some("198.51.100.7".into()),
                details: json!({"n": i}),
            },
        )
        .await
        .expect("audited");
    }
    tx.commit().await.expect("commit");
}

/// `eam audit <args>` as ops run it: whether it succeeded, and its output.
async fn eam_audit(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let out = env
        .eam("ops")
        .arg("audit")
        .args(args)
        .output()
        .await
        .expect("eam audit runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.success(),
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim()
            .to_owned(),
    )
}

/// The newest seq of a tenant's log, and the time each of its published heads was published
/// (as `eam audit verify` prints it), read as the owner.
async fn audit_state(
    owner: &mut sqlx::PgConnection,
    tenant: eam_store::TenantId,
) -> (i64, Vec<(i64, String)>) {
    let newest: i64 =
        sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM audit_log WHERE tenant_id = $1")
            .bind(tenant.0)
            .fetch_one(&mut *owner)
            .await
            .expect("newest");
    let heads: Vec<(i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT seq, published_at FROM audit_heads WHERE tenant_id = $1 ORDER BY seq",
    )
    .bind(tenant.0)
    .fetch_all(&mut *owner)
    .await
    .expect("heads");
    let heads = heads
        .into_iter()
        .map(|(seq, at)| (seq, at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .collect();
    (newest, heads)
}

/// Issue 24: deleting the newest audit entries, or editing one and recomputing every later
/// hash with the key itself, both verified as intact before; now `eam audit verify` holds the
/// log against the heads workers published to the archive and names the entry and the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eam_audit_verify_finds_a_truncated_and_a_rewritten_log_by_its_published_heads() {
    use sqlx::Connection;
    let env = TestEnv::start_with(
        small_params(2401),
        EnvOptions {
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let mut owner = sqlx::PgConnection::connect(&env.db.owner_url)
        .await
        .expect("owner");

    // A rewrite: 6 entries and a head; entry 3 edited.
    let firm_b = env.tenant("Firm B").await;
    let (base, _) = audit_state(&mut owner, firm_b).await;
    audit_entries(&env, firm_b, 6).await;
    assert_eq!(
        eam_audit(&env, &["publish-heads"]).await,
        (true, "1 heads published".into())
    );
    let (_, heads) = audit_state(&mut owner, firm_b).await;
    let t = &heads[0].1;
    let edited = base + 3;
    sqlx::query(
        "UPDATE audit_log SET details = '{\"n\": \"edited\"}' WHERE tenant_id = $1 AND seq = $2",
    )
    .bind(firm_b.0)
    .bind(edited)
    .execute(&mut owner)
    .await
    .expect("edit");
    let b = firm_b.0.to_string();
    let verify_b = ["verify", "--tenant", b.as_str()];
    let mut tx = env.store.tenant_tx(firm_b).await.expect("tx");
    let mut rows = eam_store::audit::list(&mut tx, None, 1000)
        .await
        .expect("rows");
    drop(tx);
    let edited_id = rows[(edited - 1) as usize].id;
    assert_eq!(
        eam_audit(&env, &verify_b).await,
        (
            false,
            format!(
                "{b} {b}: BROKEN at entry {edited} (id {edited_id}): its content does not match \
                 its hash; {} entries before it verify",
                edited - 1
            )
        )
    );
    // Every later hash recomputed with the key itself: the chain verifies, the head does not.
    let keys = env.store.audit_keys().clone();
    let old_newest = rows.last().expect("rows").hash.clone();
    for i in (edited - 1) as usize..rows.len() {
        if i > 0 {
            rows[i].prev_hash = rows[i - 1].hash.clone();
        }
        rows[i].hash = keys.entry_hash(firm_b, &rows[i]).expect("keyed");
        sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE id = $3")
            .bind(&rows[i].prev_hash)
            .bind(&rows[i].hash)
            .bind(rows[i].id)
            .execute(&mut owner)
            .await
            .expect("re-chain");
    }
    let last = rows.last().expect("rows");
    assert_eq!(
        eam_audit(&env, &verify_b).await,
        (
            false,
            format!(
                "{b} {b}: BROKEN at entry {} (id {}): entry {} is not the one the head published \
                 at {t} names (hash {} then, {} now): the log was rewritten after {t}; {} entries \
                 before it verify",
                last.seq,
                last.id,
                last.seq,
                &old_newest[..12],
                &last.hash[..12],
                last.seq - 1
            )
        )
    );
    // Truncation: 5 entries, a head, 3 more, a head, one more not anchored yet.
    let firm_a = env.tenant("Firm A").await;
    let (base, _) = audit_state(&mut owner, firm_a).await;
    audit_entries(&env, firm_a, 5).await;
    assert_eq!(
        eam_audit(&env, &["publish-heads"]).await,
        (true, "1 heads published".into())
    );
    audit_entries(&env, firm_a, 3).await;
    assert_eq!(
        eam_audit(&env, &["publish-heads"]).await,
        (true, "1 heads published".into())
    );
    // Nothing new: nothing published again.
    assert_eq!(
        eam_audit(&env, &["publish-heads"]).await,
        (true, "0 heads published".into())
    );
    audit_entries(&env, firm_a, 1).await;
    let (newest, heads) = audit_state(&mut owner, firm_a).await;
    assert_eq!(newest, base + 9);
    assert_eq!(
        heads.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![base + 5, base + 8]
    );
    let (t1, t2) = (&heads[0].1, &heads[1].1);
    let a = firm_a.0.to_string();
    let verify_a = ["verify", "--tenant", a.as_str()];
    assert_eq!(
        eam_audit(&env, &verify_a).await,
        (
            true,
            format!(
                "{a} {a}: {} entries, chain intact; 2 published heads match, the newest at entry \
                 {} ({t2}); 1 entries after it not anchored yet",
                base + 9,
                base + 8
            )
        )
    );
    // The app role cannot delete; whoever owns the database can.
    let deleted = sqlx::query("DELETE FROM audit_log WHERE tenant_id = $1 AND seq > $2")
        .bind(firm_a.0)
        .bind(base + 6)
        .execute(&mut owner)
        .await
        .expect("delete")
        .rows_affected();
    assert_eq!(deleted, 3);
    // Workers do not publish a head over a log shorter than one already published.
    let out = env
        .eam("ops")
        .args(["audit", "publish-heads"])
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "the audit log of tenant {a} ends at entry {}, but its head of entry {} was \
             published: entries were deleted; not publishing (eam audit verify)",
            base + 6,
            base + 8
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        eam_audit(&env, &verify_a).await,
        (
            false,
            format!(
                "{a} {a}: BROKEN at entry {}: the log ends at entry {}, but the head published at \
                 {t2} names entry {}: entries {} to {} were deleted after {t2}; the log matched \
                 the head published at {t1} (entry {}); {} entries before it verify",
                base + 7,
                base + 6,
                base + 8,
                base + 7,
                base + 8,
                base + 5,
                base + 6
            )
        )
    );

    // Verifying every tenant reports both, and fails.
    let (ok, all) = eam_audit(&env, &["verify"]).await;
    assert!(!ok);
    assert_eq!(all.matches("BROKEN").count(), 2, "{all}");
    owner.close().await.ok();
    env.finish().await;
}
