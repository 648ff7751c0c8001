//! Four-eyes approvals: with the default policy a sensitive action is stored, not done; a
//! second user with the right and a fresh second factor approves it and it is done once, the
//! audit log naming both; its requester cannot approve it, an expired or decided request
//! cannot be approved, and loosening the policy itself waits for approval.

use std::time::Duration;

use eam_banksim::{Fault, FaultRule};
use reqwest::Method;
use serde_json::{Value, json};

use crate::kit::{TestEnv, small_params};

/// A token of `subject` with `roles`, its second factor `mfa_age` seconds ago (`None`: none).
fn token(
    env: &TestEnv,
    tenant: eam_store::TenantId,
    subject: &str,
    roles: &[&str],
    mfa_age: Option<u64>,
) -> String {
    env.issuer
        .sign(&eam_auth::TokenRequest {
            subject: subject.into(),
            tenant_id: tenant.0,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            client_id: None,
            ttl: Duration::from_secs(600),
            mfa_at: mfa_age.map(|age| eam_auth::unix_now() - age),
        })
        .unwrap()
}

async fn post(env: &TestEnv, path: &str, token: &str, body: Value) -> (u16, Value) {
    let (status, answer, _) = env.call(Method::POST, path, Some(token), Some(&body)).await;
    (status, answer)
}

fn statuses(page: &Value) -> Vec<String> {
    let mut s: Vec<String> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["status"].as_str().unwrap().to_owned())
        .collect();
    s.sort();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_retry_waits_for_a_second_ops_user_and_runs_once() {
    let env = TestEnv::start(small_params(99)).await;
    let data = env.sim.dataset();
    let tenant = env.tenant_with_four_eyes("Firm E").await;
    let anna = token(&env, tenant, "ops-anna", &["ops"], Some(0));
    let ben = token(&env, tenant, "ops-ben", &["ops"], Some(0));
    let carl = token(&env, tenant, "ops-carl", &["ops"], Some(0));
    let ben_without_mfa = token(&env, tenant, "ops-ben", &["ops"], None);
    let admin = token(&env, tenant, "admin-dora", &["tenant_admin"], Some(0));

    // The default policy: every sensitive action.
    let policy = env.get("/approvals/policy", &anna).await;
    assert_eq!(policy["default"], true);
    assert_eq!(
        policy["actions"],
        json!([
            "connection.credentials",
            "jobs.bulk_retry",
            "jobs.replay",
            "users.roles",
            "clients.delete",
            "webhooks.change"
        ])
    );

    // Two connections whose sync failed once.
    let account = data.accounts[0].account_id.clone();
    let mut connections = Vec::new();
    for _ in 0..2 {
        let connection = env
            .create_connection(&anna, &env.connection_body(tenant))
            .await;
        env.sim.faults().inject(
            FaultRule::new(
                format!("/v1/accounts/{account}/transactions"),
                Fault::Malformed,
            )
            .times(1),
        );
        let job = env.sync_and_wait(&anna, &connection).await;
        assert_eq!(job["status"], "failed", "{job}");
        connections.push(connection);
    }

    // The request: 202 with the approval, nothing queued.
    let (status, pending, headers) = env
        .call(
            Method::POST,
            "/jobs/retry",
            Some(&anna),
            Some(&json!({"status": "failed"})),
        )
        .await;
    assert_eq!(status, 202, "{pending}");
    let approval = pending["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["action"], "jobs.bulk_retry");
    assert_eq!(pending["requested_by"], "ops-anna");
    assert_eq!(
        pending["summary"],
        "retry the failed or dead runs matching the filter (2 now)"
    );
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("/api/v1/approvals/{approval}")
    );
    let expires = chrono::DateTime::parse_from_rfc3339(pending["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let hours = (expires - chrono::Utc::now()).num_minutes();
    assert!(
        (23 * 60..=24 * 60).contains(&hours),
        "expires in {hours} min"
    );
    assert_eq!(
        statuses(&env.get("/jobs", &anna).await),
        ["failed", "failed"]
    );
    let events = env.get("/events?type=approval.requested", &admin).await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["subject"], format!("approval:{approval}"));
    assert_eq!(events[0]["data"]["requested_by"], "ops-anna");
    let listed = env.get("/approvals?status=pending", &ben).await;
    assert_eq!(listed["approvals"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["approvals"][0]["params"]["body"]["status"], "failed");

    // Its requester cannot approve it; without a fresh second factor nobody can.
    let path = format!("/approvals/{approval}/approve");
    let (status, refused) = post(&env, &path, &anna, json!({})).await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("four eyes"),
        "{refused}"
    );
    let (status, refused) = post(&env, &path, &ben_without_mfa, json!({})).await;
    assert_eq!(status, 401, "{refused}");
    // A tenant admin may not retry jobs, so may not approve a retry.
    let (status, refused) = post(&env, &path, &admin, json!({})).await;
    assert_eq!(status, 403, "{refused}");

    // Two other ops users approve at the same moment: one executes it, the other is told it
    // is decided.
    let note = json!({"note": "bank outage over"});
    let (first, second) = tokio::join!(
        post(&env, &path, &ben, note.clone()),
        post(&env, &path, &carl, note.clone())
    );
    let mut codes = [first.0, second.0];
    codes.sort();
    assert_eq!(codes, [200, 409], "{first:?} {second:?}");
    let (decided, approver) = if first.0 == 200 {
        (first.1, "ops-ben")
    } else {
        (second.1, "ops-carl")
    };
    assert_eq!(decided["status"], "executed", "{decided}");
    assert_eq!(decided["decided_by"], approver);
    assert_eq!(decided["decision_note"], "bank outage over");
    let retried = decided["result"]["retried"].as_array().unwrap();
    assert_eq!(retried.len(), 2, "{decided}");
    for r in retried {
        let job = env
            .wait_for_job(
                &anna,
                r["run_id"].as_str().unwrap(),
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["requested_by"], approver, "{job}");
    }
    assert_eq!(
        statuses(&env.get("/jobs", &anna).await),
        ["failed", "failed", "succeeded", "succeeded"]
    );
    let (status, again) = post(&env, &path, &ben, json!({})).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["detail"], "the request is already executed");

    // The audit log: the request by its requester, the retries and the approval by the
    // approver, each naming both.
    let audit = env.get("/audit?limit=50", &admin).await;
    let entries: Vec<&Value> = audit["entries"].as_array().unwrap().iter().collect();
    let of = |action: &str| -> Vec<&Value> {
        entries
            .iter()
            .copied()
            .filter(|e| e["action"] == action)
            .collect()
    };
    let requested = of("approval.requested");
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0]["actor"], "ops-anna");
    assert_eq!(requested[0]["target"], format!("approval:{approval}"));
    let retries = of("job.retried");
    assert_eq!(retries.len(), 2);
    let approved = of("approval.approved");
    assert_eq!(approved.len(), 1);
    for e in retries.iter().chain(&approved) {
        assert_eq!(e["actor"], approver, "{e}");
        assert_eq!(e["details"]["approval"]["id"], approval.as_str(), "{e}");
        assert_eq!(e["details"]["approval"]["requested_by"], "ops-anna", "{e}");
        assert_eq!(e["details"]["approval"]["approved_by"], approver, "{e}");
    }

    // A request past its expiry cannot be approved, and says so.
    let (status, pending) = post(&env, "/jobs/retry", &anna, json!({"status": "dead"})).await;
    assert_eq!(status, 202, "{pending}");
    let stale = pending["approval_id"].as_str().unwrap().to_owned();
    let mut owner = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.owner_url)
        .await
        .expect("owner connection");
    sqlx::query(
        "UPDATE approvals SET expires_at = now() - interval '1 minute' WHERE id = $1::uuid",
    )
    .bind(&stale)
    .execute(&mut owner)
    .await
    .expect("age the request");
    let (status, refused) = post(
        &env,
        &format!("/approvals/{stale}/approve"),
        &ben,
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("expired"),
        "{refused}"
    );
    let got = env.get(&format!("/approvals/{stale}"), &ben).await;
    assert_eq!(got["status"], "expired");
    let expired = env.get("/approvals?status=expired", &ben).await;
    assert_eq!(expired["approvals"].as_array().unwrap().len(), 1);
    assert!(
        env.get("/approvals?status=pending", &ben).await["approvals"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_webhooks_and_the_policy_itself_wait_for_another_admin() {
    let env = TestEnv::start(small_params(100)).await;
    let tenant = env.tenant_with_four_eyes("Firm G").await;
    let eva = token(&env, tenant, "admin-eva", &["tenant_admin"], Some(0));
    let finn = token(&env, tenant, "admin-finn", &["tenant_admin"], Some(0));
    let support = token(&env, tenant, "support-gus", &["support"], Some(0));

    // Registering a user with a role: stored, not done, until another admin approves.
    let (status, pending) = post(
        &env,
        "/users",
        &eva,
        json!({"subject": "new-ops", "email": "ops@firm.example", "roles": ["ops"]}),
    )
    .await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(
        pending["summary"],
        "register user new-ops with the roles ops"
    );
    let grant = pending["approval_id"].as_str().unwrap().to_owned();
    assert!(env.get("/users", &eva).await.as_array().unwrap().is_empty());
    // Support may read the request but not decide one about roles.
    let (status, refused) = post(
        &env,
        &format!("/approvals/{grant}/reject"),
        &support,
        json!({"note": "no"}),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    let (status, done) = post(
        &env,
        &format!("/approvals/{grant}/approve"),
        &finn,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["result"]["subject"], "new-ops");
    assert_eq!(done["result"]["roles"], json!(["ops"]));
    let users = env.get("/users", &eva).await;
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["roles"], json!(["ops"]));

    // A change that is not a role change needs nobody.
    let user = users[0]["id"].as_str().unwrap().to_owned();
    let (status, changed, _) = env
        .call(
            Method::PATCH,
            &format!("/users/{user}"),
            Some(&eva),
            Some(&json!({"email": "ops2@firm.example", "roles": ["ops"]})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["email"], "ops2@firm.example");

    // A webhook endpoint: the approver's answer carries the secret, the stored one does not.
    let (status, pending) = post(
        &env,
        "/webhooks",
        &eva,
        json!({"url": "http://127.0.0.1:9/hook", "event_types": ["sync.failed"]}),
    )
    .await;
    assert_eq!(status, 202, "{pending}");
    let hook = pending["approval_id"].as_str().unwrap().to_owned();
    let (status, done) = post(
        &env,
        &format!("/approvals/{hook}/approve"),
        &finn,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert!(
        done["result"]["secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_"),
        "{done}"
    );
    assert_eq!(done["result"]["endpoint"]["created_by"], "admin-finn");
    let stored = env.get(&format!("/approvals/{hook}"), &eva).await;
    assert_eq!(stored["status"], "executed");
    assert!(stored["result"].get("secret").is_none(), "{stored}");
    assert_eq!(
        stored["result"]["endpoint"]["url"],
        "http://127.0.0.1:9/hook"
    );

    // Rejected: nothing done, and it cannot be approved after.
    let (status, pending, _) = env
        .call(
            Method::DELETE,
            &format!(
                "/webhooks/{}",
                done["result"]["endpoint"]["id"].as_str().unwrap()
            ),
            Some(&eva),
            None,
        )
        .await;
    assert_eq!(status, 202, "{pending}");
    let deletion = pending["approval_id"].as_str().unwrap().to_owned();
    let (status, refused) = post(
        &env,
        &format!("/approvals/{deletion}/reject"),
        &finn,
        json!({}),
    )
    .await;
    assert_eq!(status, 422, "a rejection says why: {refused}");
    let (status, rejected) = post(
        &env,
        &format!("/approvals/{deletion}/reject"),
        &finn,
        json!({"note": "still in use"}),
    )
    .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["decision_note"], "still in use");
    let (status, _) = post(
        &env,
        &format!("/approvals/{deletion}/approve"),
        &finn,
        json!({}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        env.get("/webhooks", &eva).await.as_array().unwrap().len(),
        1
    );

    // Loosening the policy waits for another admin; tightening it does not.
    let (status, pending, _) = env
        .call(
            Method::PUT,
            "/approvals/policy",
            Some(&eva),
            Some(&json!({"actions": ["jobs.bulk_retry", "users.roles"]})),
        )
        .await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(
        pending["summary"],
        "stop asking for approval of connection.credentials, jobs.replay, clients.delete, webhooks.change"
    );
    let loosen = pending["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(
        env.get("/approvals/policy", &eva).await["default"],
        true,
        "unchanged until approved"
    );
    let (status, done) = post(
        &env,
        &format!("/approvals/{loosen}/approve"),
        &finn,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let policy = env.get("/approvals/policy", &eva).await;
    assert_eq!(policy["actions"], json!(["jobs.bulk_retry", "users.roles"]));
    assert_eq!(policy["default"], false);
    let (status, tightened, _) = env
        .call(
            Method::PUT,
            "/approvals/policy",
            Some(&eva),
            Some(&json!({"actions": ["users.roles", "jobs.bulk_retry", "clients.delete"]})),
        )
        .await;
    assert_eq!(status, 200, "{tightened}");
    assert_eq!(
        tightened["actions"],
        json!(["jobs.bulk_retry", "users.roles", "clients.delete"])
    );
    // With webhooks off the policy, a webhook change is done at once.
    let (status, changed, _) = env
        .call(
            Method::PATCH,
            &format!("/webhooks/{}", done_hook_id(&env, &eva).await),
            Some(&eva),
            Some(&json!({"description": "ops channel"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let (status, refused, _) = env
        .call(
            Method::PUT,
            "/approvals/policy",
            Some(&eva),
            Some(&json!({"actions": ["users.everything"]})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    env.finish().await;
}

async fn done_hook_id(env: &TestEnv, token: &str) -> String {
    env.get("/webhooks", token).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}
