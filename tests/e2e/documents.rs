//! The raw statement archive: every document a sync fetches is kept (in a local directory by
//! default, in S3 in production: here moto's S3), listed and served to support exactly as the
//! bank sent it, kept when it does not parse, and replayed into the store without calling the
//! bank, through the API and through `eam replay`.

use std::time::Duration;

use eam_banksim::{Fault, FaultRule};
use eam_store::TenantId;
use eam_store::archive::{Archive, ArchiveLocation, S3Location};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Connection as _;
use uuid::Uuid;

use crate::kit::{self, EnvOptions, Firm, TestEnv, small_params};
use crate::sync::{assert_api_matches_dataset, row_counts};

/// Every document of a run, following `next_cursor` pages of `limit`.
async fn documents_of(env: &TestEnv, token: &str, run: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/documents?run_id={run}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = env.get(&path, token).await;
        out.extend(
            page["documents"]
                .as_array()
                .expect("documents")
                .iter()
                .cloned(),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// A document's content through the API, checked against the SHA-256 header.
async fn content(env: &TestEnv, token: &str, document: &Value) -> Vec<u8> {
    let id = document["id"].as_str().expect("id");
    let response = env
        .http
        .get(format!("{}/documents/{id}/content", env.api))
        .bearer_auth(token)
        .send()
        .await
        .expect("API reachable");
    assert_eq!(response.status().as_u16(), 200);
    let sha = response.headers()["x-content-sha256"]
        .to_str()
        .expect("header")
        .to_owned();
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .expect("header")
            .starts_with("attachment"),
        "served as a download, never rendered"
    );
    let body = response.bytes().await.expect("body").to_vec();
    assert_eq!(hex::encode(Sha256::digest(&body)), sha);
    assert_eq!(document["sha256"], sha);
    assert_eq!(document["size"], body.len());
    body
}

async fn owner(env: &TestEnv) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&env.db.owner_url)
        .await
        .expect("owner connection")
}

async fn audit_actions(env: &TestEnv, action: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(&mut owner(env).await)
        .await
        .expect("audit count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_file_is_archived_in_the_local_directory_and_served_exactly_as_received() {
    let env = TestEnv::start(small_params(81)).await;
    let tenant = env.tenant("Firm Archive").await;
    let token = env.token(tenant, &["ops", "support"]);
    let connection = env
        .create_connection(
            &token,
            &json!({
                "custodian": "bank_b", "name": "Bank B",
                "client_cert_ref": env.tenant_ref(tenant, "client.pem"),
                "client_key_ref": env.tenant_ref(tenant, "client.key"),
            }),
        )
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert!(matches!(job["status"].as_str(), Some("succeeded")), "{job}");
    let run = job["id"].as_str().expect("run").to_owned();

    let files = eam_banksim::swift_files(&env.sim.dataset());
    let documents = documents_of(&env, &token, &run, 7).await;
    assert_eq!(job["counts"]["documents"], files.len());
    assert_eq!(documents.len(), files.len(), "one document per file");
    // Newest first: the reverse of fetch (listing) order.
    for (document, file) in documents.iter().rev().zip(&files) {
        assert_eq!(document["name"], file.name.as_str());
        assert_eq!(document["file_id"], file.id.as_str());
        assert_eq!(document["format"], file.format.as_str());
        assert_eq!(document["kind"], "file");
        assert_eq!(document["run_id"], run.as_str());
        assert_eq!(document["connection_id"], connection.as_str());
        assert_eq!(document["attempt"], 1);
        assert_eq!(document["sha256"], file.sha256());
        assert_eq!(content(&env, &token, document).await, file.bytes);
        // Content-addressed under the tenant, in the configured directory.
        let key = Archive::key(tenant, &file.sha256());
        let dir = env.archive_dir.as_ref().expect("a local archive");
        assert_eq!(
            std::fs::read(dir.join(&key)).expect("archived file"),
            file.bytes
        );
    }
    assert_eq!(
        audit_actions(&env, "document.read").await,
        files.len() as i64
    );

    // A second sync fetches nothing new and archives nothing.
    let again = env.sync_and_wait(&token, &connection).await;
    assert_eq!(again["counts"]["documents"], 0, "{again}");

    // Who may read them: support, ops, tenant admins; not advisors or clients.
    let advisor = env.token(tenant, &["advisor"]);
    let (status, _, _) = env
        .call(Method::GET, "/documents", Some(&advisor), None)
        .await;
    assert_eq!(status, 403);
    let id = documents[0]["id"].as_str().expect("id");
    let (status, _, _) = env
        .call(
            Method::GET,
            &format!("/documents/{id}/content"),
            Some(&advisor),
            None,
        )
        .await;
    assert_eq!(status, 403);
    // Another tenant's support sees nothing of it.
    let other = env.tenant("Firm Other").await;
    let other_support = env.token(other, &["support"]);
    let (status, _, _) = env
        .call(
            Method::GET,
            &format!("/documents/{id}/content"),
            Some(&other_support),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let listed = env.get("/documents", &other_support).await;
    assert_eq!(listed["documents"], json!([]));
    env.finish().await;
}

/// Creates a bucket on the emulator (which checks no credentials).
async fn create_bucket(bucket: &str) {
    let response = reqwest::Client::new()
        .put(format!("{}/{bucket}", kit::moto_url()))
        .send()
        .await
        .expect("emulator reachable");
    assert!(
        response.status().is_success(),
        "create bucket: {response:?}"
    );
}

/// The keys under a prefix of a bucket on the emulator.
async fn s3_keys(bucket: &str, prefix: &str) -> Vec<String> {
    let xml = reqwest::Client::new()
        .get(format!("{}/{bucket}", kit::moto_url()))
        .query(&[("list-type", "2"), ("prefix", prefix)])
        .send()
        .await
        .expect("emulator reachable")
        .text()
        .await
        .expect("listing");
    xml.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_archived_in_s3_under_their_tenant() {
    let bucket = format!("eam-test-{}", Uuid::new_v4().simple());
    create_bucket(&bucket).await;
    let env = TestEnv::start_with(
        small_params(82),
        EnvOptions {
            archive: Some(ArchiveLocation::S3(S3Location {
                bucket: bucket.clone(),
                region: kit::MOTO_REGION.into(),
                endpoint: Some(kit::moto_url()),
                static_credentials: Some((
                    kit::MOTO_CREDENTIALS.0.into(),
                    kit::MOTO_CREDENTIALS.1.into(),
                )),
            })),
            ..EnvOptions::default()
        },
    )
    .await;
    let Firm {
        tenant,
        token,
        connection,
    } = env.firm("Firm S3", &["ops", "support"]).await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let run = job["id"].as_str().expect("run");

    let documents = documents_of(&env, &token, run, 500).await;
    assert_eq!(job["counts"]["documents"], documents.len());
    let names: Vec<&str> = documents
        .iter()
        .map(|d| d["name"].as_str().expect("name"))
        .collect();
    let data = env.sim.dataset();
    assert!(names.contains(&"accounts/page-1"), "{names:?}");
    for account in &data.accounts {
        for kind in ["positions", "balances", "transactions"] {
            let page = format!("{kind}/{}/page-1", account.account_id);
            assert!(names.contains(&page.as_str()), "{page} in {names:?}");
        }
    }
    let mut expected_keys: Vec<String> = Vec::new();
    for document in &documents {
        assert_eq!(document["format"], "bank_a_json");
        let body = content(&env, &token, document).await;
        assert!(
            serde_json::from_slice::<Value>(&body).is_ok(),
            "a bank_a page is JSON"
        );
        expected_keys.push(Archive::key(
            tenant,
            document["sha256"].as_str().expect("sha256"),
        ));
    }
    expected_keys.sort();
    expected_keys.dedup();
    let mut stored = s3_keys(&bucket, &format!("tenants/{tenant}/")).await;
    stored.sort();
    assert_eq!(stored, expected_keys, "one object per distinct content");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_does_not_parse_is_kept_for_support() {
    let env = TestEnv::start(small_params(83)).await;
    let tenant = env.tenant("Firm Data").await;
    let token = env.token(tenant, &["ops", "support"]);
    let account = env.sim.dataset().accounts[0].account_id.clone();
    env.sim.faults().inject(
        FaultRule::new(
            format!("/v1/accounts/{account}/transactions"),
            Fault::Malformed,
        )
        .times(1),
    );
    let connection = env
        .create_connection(&token, &env.connection_body(tenant))
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["class"], "data");
    let run = job["id"].as_str().expect("run");

    let documents = documents_of(&env, &token, run, 500).await;
    let name = format!("transactions/{account}/page-1");
    let bad = documents
        .iter()
        .find(|d| d["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} is kept: {documents:?}"));
    let body = content(&env, &token, bad).await;
    let page: Value = serde_json::from_slice(&body).expect("the malformed page is JSON");
    assert!(
        page["transactions"][0]["amount"].is_string(),
        "the page as the bank sent it: {page}"
    );
    assert!(
        job["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&name)),
        "the error names the document support can read"
    );
    let counts = row_counts(&env).await;
    assert!(
        counts.values().all(|n| *n == 0),
        "nothing loaded: {counts:?}"
    );
    env.finish().await;
}

/// Deletes every record the syncs loaded, as the owner: what a replay must rebuild.
async fn delete_loaded_records(env: &TestEnv) {
    let mut owner = owner(env).await;
    for table in [
        "prices",
        "transactions",
        "positions",
        "position_snapshots",
        "cash_balances",
        "reconciliation_breaks",
        "accounts",
        "securities",
        "clients",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut owner)
            .await
            .unwrap_or_else(|e| panic!("delete {table}: {e}"));
    }
}

fn replay_command(env: &TestEnv, run: &str, tenant: Option<TenantId>) -> tokio::process::Command {
    let mut command = env.eam("support-cli");
    command.args(["replay", "--run", run]);
    if let Some(t) = tenant {
        command.args(["--tenant", &t.to_string()]);
    }
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_rebuilds_deleted_data_from_the_archive_without_calling_the_bank() {
    let env = TestEnv::start(small_params(84)).await;
    let tenant = env.tenant("Firm Replay").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let data = env.sim.dataset();
    let connection = env
        .create_connection(&token, &env.connection_body(tenant))
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let run = job["id"].as_str().expect("run").to_owned();
    assert_api_matches_dataset(&env, &token, &data).await;
    let loaded = row_counts(&env).await;
    let cursor = env.get(&format!("/connections/{connection}"), &token).await["cursor"].clone();
    let bank_requests = env.sim.requests();

    delete_loaded_records(&env).await;
    assert!(row_counts(&env).await.values().all(|n| *n == 0));

    // Support replays the run through the API.
    let (status, accepted, headers) = env
        .call(
            Method::POST,
            &format!("/jobs/{run}/replay"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["replay_of"], run.as_str());
    let replay = accepted["run_id"].as_str().expect("run id").to_owned();
    assert_eq!(
        headers["location"],
        format!("/api/v1/jobs/{replay}").as_str()
    );
    let replayed = env
        .wait_for_job(&token, &replay, Duration::from_secs(60))
        .await;
    assert_eq!(replayed["status"], "succeeded", "{replayed}");
    assert_eq!(replayed["trigger"], "replay");
    assert_eq!(replayed["replay_of"], run.as_str());
    assert_eq!(replayed["counts"]["documents"], job["counts"]["documents"]);
    assert_eq!(replayed["cursor_before"], cursor);
    assert_eq!(replayed["cursor_after"], cursor);
    assert_api_matches_dataset(&env, &token, &data).await;
    assert_eq!(row_counts(&env).await, loaded, "the same records, no more");
    assert_eq!(env.sim.requests(), bank_requests, "the bank was not called");
    assert_eq!(
        env.get(&format!("/connections/{connection}"), &token).await["cursor"],
        cursor,
        "the cursor did not move"
    );

    // Replaying again changes nothing: the load is idempotent.
    let (status, again, _) = env
        .call(
            Method::POST,
            &format!("/jobs/{replay}/replay"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(
        again["replay_of"],
        run.as_str(),
        "linked to the run that fetched"
    );
    let again = env
        .wait_for_job(
            &token,
            again["run_id"].as_str().expect("run id"),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(again["status"], "succeeded", "{again}");
    for kind in [
        "clients",
        "accounts",
        "securities",
        "positions",
        "balances",
        "transactions",
    ] {
        let first = &job["counts"][kind];
        assert_eq!(first["updated"], 0, "{kind}: {first}");
        assert_eq!(
            again["counts"][kind],
            json!({"inserted": 0, "updated": 0, "unchanged": first["inserted"]}),
            "{kind}"
        );
    }

    // And ops can do the same from the command line, without a worker or the API.
    delete_loaded_records(&env).await;
    let output = replay_command(&env, &run, None)
        .output()
        .await
        .expect("eam replay runs");
    assert!(
        output.status.success(),
        "eam replay: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(printed["status"], "succeeded", "{printed}");
    assert_eq!(printed["replay_of"], run.as_str());
    assert_api_matches_dataset(&env, &token, &data).await;
    assert_eq!(row_counts(&env).await, loaded);
    assert_eq!(env.sim.requests(), bank_requests, "the bank was not called");
    assert_eq!(audit_actions(&env, "job.replayed").await, 3);
    let by_cli: String = sqlx::query_scalar(
        "SELECT actor FROM audit_log WHERE action = 'job.replayed' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut owner(&env).await)
    .await
    .expect("audit entry");
    assert_eq!(by_cli, "cli:support-cli");

    // A run that archived nothing cannot be replayed; a replay while a sync runs waits.
    let mut broken = env.connection_body(tenant);
    broken["client_secret_ref"] = json!(env.tenant_ref(tenant, "no-such-secret"));
    let broken = env.create_connection(&token, &broken).await;
    let failed = env.sync_and_wait(&token, &broken).await;
    assert_eq!(failed["error"]["class"], "auth", "{failed}");
    let (status, problem, _) = env
        .call(
            Method::POST,
            &format!("/jobs/{}/replay", failed["id"].as_str().expect("id")),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    let advisor = env.token(tenant, &["advisor"]);
    let (status, _, _) = env
        .call(
            Method::POST,
            &format!("/jobs/{run}/replay"),
            Some(&advisor),
            None,
        )
        .await;
    assert_eq!(status, 403);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_an_old_run_never_overwrites_what_a_newer_run_wrote() {
    let env = TestEnv::start(small_params(85)).await;
    let Firm {
        tenant,
        token,
        connection,
    } = env
        .firm("Firm Replay Order", &["ops", "advisor", "support"])
        .await;
    let old = env.sync_and_wait(&token, &connection).await;
    assert_eq!(old["status"], "succeeded", "{old}");
    let old_run = old["id"].as_str().unwrap().to_owned();

    // The bank corrects its data (another seed: the same ids, other values); a newer sync
    // loads the corrections.
    // The platform moves bank_a in the custodian registry to the corrected bank.
    let corrected = crate::kit::TestSim::start(small_params(86)).await;
    let platform = env.token(tenant, &["platform_admin"]);
    let (status, changed, _) = env
        .call(
            Method::PUT,
            "/custodians/bank_a",
            Some(&platform),
            Some(&serde_json::json!({
                "name": "Bank A (corrected)", "protocol": "bank_a",
                "base_url": corrected.sim.base_url(),
                "ca_cert_ref": TestEnv::file_ref(&corrected.pki.ca_cert),
            })),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["base_url"], corrected.sim.base_url());
    let newer = env.sync_and_wait(&token, &connection).await;
    assert_eq!(newer["status"], "succeeded", "{newer}");
    let newer_run = newer["id"].as_str().unwrap().to_owned();
    let written_by_newer = |table: &'static str| {
        let run = newer_run.clone();
        let env = &env;
        async move {
            let mut owner = owner(env).await;
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table} WHERE last_changed_run = $1::uuid"
            )))
            .bind(run)
            .fetch_one(&mut owner)
            .await
            .unwrap();
            n
        }
    };
    let mut before = Vec::new();
    for table in ["transactions", "positions", "cash_balances"] {
        before.push(written_by_newer(table).await);
    }
    assert!(
        before.iter().sum::<i64>() > 0,
        "the newer sync corrected something: {before:?}"
    );

    let (status, accepted, _) = env
        .call(
            Method::POST,
            &format!("/jobs/{old_run}/replay"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let replayed = env
        .wait_for_job(
            &token,
            accepted["run_id"].as_str().unwrap(),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(replayed["status"], "succeeded", "{replayed}");
    let mut after = Vec::new();
    for table in ["transactions", "positions", "cash_balances"] {
        after.push(written_by_newer(table).await);
    }
    assert_eq!(after, before, "what the newer run wrote stands");
    drop(corrected);
    env.finish().await;
}
