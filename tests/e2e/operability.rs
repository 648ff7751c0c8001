//! What ops rely on at night: `/ready` follows PostgreSQL, Redis and the migrations, and a
//! request id sent by a client can be followed through the API, the worker and every bank call.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::kit::{CLIENT_SECRET, EnvOptions, Firm, TestEnv, small_params};
use crate::services::{PrivatePostgres, PrivateRedis};
use crate::workers::{worker_command, worker_log};

const DEADLINE: Duration = Duration::from_secs(60);

/// `GET /ready`: status, content type, body, and how long it took.
async fn ready(env: &TestEnv) -> (u16, String, Value, Duration) {
    let root = env.api.trim_end_matches("/api/v1");
    let started = Instant::now();
    let response = env
        .http
        .get(format!("{root}/ready"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("the API answers /ready");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.json().await.expect("a JSON body");
    (status, content_type, body, started.elapsed())
}

/// Polls `/ready` until it answers `status`, and returns that answer.
async fn wait_for_ready_status(env: &TestEnv, status: u16) -> (String, Value, Duration) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (code, content_type, body, took) = ready(env).await;
        if code == status {
            return (content_type, body, took);
        }
        assert!(
            Instant::now() < deadline,
            "/ready still {code} {body}, waiting for {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn all_ok() -> Value {
    json!({
        "status": "ready",
        "checks": { "postgres": "ok", "redis": "ok", "migrations": "ok" },
    })
}

/// Asserts a 503 answer: a problem document naming each check, with the failing ones in its
/// detail.
fn assert_unready(content_type: &str, body: &Value, checks: Value, failing: &[&str]) {
    assert_eq!(content_type, "application/problem+json", "{body}");
    assert_eq!(body["status"], 503, "{body}");
    assert_eq!(body["title"], "Service Unavailable", "{body}");
    assert_eq!(body["checks"], checks, "{body}");
    let detail = body["detail"].as_str().expect("a detail");
    for check in failing {
        assert!(detail.contains(&format!("{check}: ")), "{detail}");
    }
}

async fn healthy(env: &TestEnv) -> bool {
    let root = env.api.trim_end_matches("/api/v1");
    env.http
        .get(format!("{root}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_unready_while_postgres_is_stopped_and_ready_when_it_returns() {
    let mut pg = PrivatePostgres::start().await;
    let env = TestEnv::start_with(
        small_params(91),
        EnvOptions {
            database_url: Some(pg.url()),
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let (status, _, body, _) = ready(&env).await;
    assert_eq!((status, body), (200, all_ok()));

    pg.stop().await;
    let (content_type, body, took) = wait_for_ready_status(&env, 503).await;
    assert_unready(
        &content_type,
        &body,
        json!({ "postgres": "failed", "redis": "ok", "migrations": "unknown" }),
        &["postgres", "migrations"],
    );
    assert!(took < Duration::from_secs(5), "answered in {took:?}");
    assert!(healthy(&env).await, "/health is liveness only");

    pg.restart().await;
    let (content_type, body, _) = wait_for_ready_status(&env, 200).await;
    assert_eq!(content_type, "application/json; charset=utf-8");
    assert_eq!(body, all_ok());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_unready_while_redis_is_stopped_or_silent_and_ready_when_it_returns() {
    let mut redis = PrivateRedis::start().await;
    let env = TestEnv::start_with(
        small_params(92),
        EnvOptions {
            redis_url: Some(redis.url()),
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let (status, _, body, _) = ready(&env).await;
    assert_eq!((status, body), (200, all_ok()));
    let unready = json!({ "postgres": "ok", "redis": "failed", "migrations": "ok" });

    redis.stop().await;
    let (content_type, body, took) = wait_for_ready_status(&env, 503).await;
    assert_unready(&content_type, &body, unready.clone(), &["redis"]);
    assert!(took < Duration::from_secs(5), "answered in {took:?}");
    assert!(healthy(&env).await, "/health is liveness only");

    redis.restart().await;
    let (_, body, _) = wait_for_ready_status(&env, 200).await;
    assert_eq!(body, all_ok());

    // A Redis that accepts connections but never answers: the probe gives up on its own.
    redis.freeze().await;
    let (content_type, body, took) = wait_for_ready_status(&env, 503).await;
    assert_unready(&content_type, &body, unready, &["redis"]);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("redis: no answer within 2 s")),
        "{body}"
    );
    assert!(took < Duration::from_secs(5), "answered in {took:?}");
    redis.thaw().await;
    let (_, body, _) = wait_for_ready_status(&env, 200).await;
    assert_eq!(body, all_ok());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_requires_every_migration_of_the_binary_applied_and_none_failed() {
    let env = TestEnv::start_with(
        small_params(93),
        EnvOptions {
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let last = eam_store::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .expect("migrations");
    let mut owner = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.owner_url)
        .await
        .unwrap();
    let unready = json!({ "postgres": "ok", "redis": "ok", "migrations": "failed" });

    // sqlx marks a migration that did not complete as failed.
    sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = $1")
        .bind(last)
        .execute(&mut owner)
        .await
        .unwrap();
    let (status, content_type, body, _) = ready(&env).await;
    assert_eq!(status, 503, "{body}");
    assert_unready(&content_type, &body, unready.clone(), &["migrations"]);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("migrations that failed: {last}"))),
        "{body}"
    );

    // A database not migrated to this binary's version yet.
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(last)
        .execute(&mut owner)
        .await
        .unwrap();
    let (status, content_type, body, _) = ready(&env).await;
    assert_eq!(status, 503, "{body}");
    assert_unready(&content_type, &body, unready, &["migrations"]);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("migrations not applied: {last}"))),
        "{body}"
    );

    // Migrating applies it (the schema change itself is still there, so put the row back).
    let migration = eam_store::MIGRATOR
        .iter()
        .find(|m| m.version == last)
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, $2, true, $3, 0)",
    )
    .bind(last)
    .bind(migration.description.as_ref())
    .bind(migration.checksum.as_ref())
    .execute(&mut owner)
    .await
    .unwrap();
    let (status, _, body, _) = ready(&env).await;
    assert_eq!((status, body), (200, all_ok()));
    env.finish().await;
}

/// The JSON lines of a worker's log file.
fn json_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// POSTs with an `X-Request-Id`; returns the status, the body and the echoed id.
async fn post_with_request_id(
    env: &TestEnv,
    path: &str,
    token: &str,
    request_id: &str,
    body: Option<&Value>,
) -> (u16, Value, String) {
    let mut request = env
        .http
        .post(format!("{}{path}", env.api))
        .bearer_auth(token)
        .header("x-request-id", request_id);
    if let Some(b) = body {
        request = request.json(b);
    }
    let response = request.send().await.expect("API reachable");
    let status = response.status().as_u16();
    let echoed = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, response.json().await.unwrap_or_default(), echoed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_request_id_is_on_the_job_and_on_the_worker_and_connector_log_lines() {
    let env = TestEnv::start_with(
        small_params(94),
        EnvOptions {
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let log = worker_log(&env, "request-id");
    let mut worker = worker_command(&env, "request-id")
        .env("EAM_LOG__FORMAT", "json")
        .env("EAM_LOG__LEVEL", "info,eam_connectors=debug")
        .spawn()
        .expect("eam work starts");
    let Firm {
        token, connection, ..
    } = env.firm("Firm Logs", &["ops", "support"]).await;

    let request_id = format!("e2e-{}", Uuid::new_v4().simple());
    let (status, accepted, echoed) = post_with_request_id(
        &env,
        &format!("/connections/{connection}/sync"),
        &token,
        &request_id,
        None,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(echoed, request_id);
    let run = accepted["run_id"].as_str().expect("run id").to_owned();
    let job = env.wait_for_job(&token, &run, DEADLINE).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["request_id"], request_id.as_str(), "{job}");

    // The worker writes its last line of the sync just after committing: wait for it.
    let of_run = |line: &Value| line["run_id"] == run.as_str();
    let deadline = Instant::now() + DEADLINE;
    let lines = loop {
        let lines: Vec<Value> = json_lines(&log).into_iter().filter(of_run).collect();
        if lines
            .iter()
            .any(|l| l["message"] == "sync attempt finished")
        {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "no JSON line of the finished sync in {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let carries_ids = |line: &&Value| line["request_id"] == request_id.as_str();
    for message in ["sync started", "sync loaded", "sync attempt finished"] {
        let line = lines
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no '{message}' line: {lines:#?}"));
        assert!(
            line["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("eam_worker")),
            "{line}"
        );
        assert!(carries_ids(&line), "{line}");
    }
    let bank_calls: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "eam_connectors::http" && l["message"] == "bank request")
        .collect();
    assert!(!bank_calls.is_empty(), "no bank request logged: {lines:#?}");
    for call in &bank_calls {
        assert!(carries_ids(call), "{call}");
        assert_eq!(call["level"], "DEBUG", "{call}");
        assert!(
            matches!(call["method"].as_str(), Some("GET" | "POST")),
            "{call}"
        );
        assert_eq!(call["status"], 200, "{call}");
        assert!(call["elapsed_ms"].is_u64(), "{call}");
        assert_eq!(call["attempt"], 1, "{call}");
        let path = call["path"].as_str().expect("a path");
        assert!(path.starts_with('/') && !path.contains('?'), "{call}");
    }
    assert!(
        bank_calls.iter().any(|c| c["path"] == "/oauth/token"),
        "the token request is logged too"
    );
    // Every line inside the sync's span carries the request id (the queue's own lines about
    // the delivery, outside it, carry the run id only), and no line carries a secret.
    let in_sync = |l: &&Value| {
        l["spans"]
            .as_str()
            .is_some_and(|s| s.split(':').any(|name| name == "sync"))
    };
    assert!(lines.iter().filter(in_sync).count() >= 3 + bank_calls.len());
    assert!(
        lines.iter().filter(in_sync).all(|l| carries_ids(&l)),
        "{lines:#?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains(CLIENT_SECRET),
        "a secret in the worker's log"
    );
    assert!(
        !text.contains("access_token"),
        "a token in the worker's log"
    );

    worker.kill().await.ok();
    let _ = std::fs::remove_file(&log);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_and_a_bulk_retry_keep_the_request_id_that_asked_for_them() {
    let env = TestEnv::start(small_params(95)).await;
    let tenant = env.tenant("Firm Retry").await;
    let token = env.token(tenant, &["ops", "support"]);
    // A wrong client secret: the bank refuses it and the run fails at once (auth).
    let wrong = env.tenant_file(tenant, "wrong-secret");
    std::fs::write(&wrong, "not-the-secret").unwrap();
    let mut body = env.connection_body(tenant);
    body["client_secret_ref"] = TestEnv::file_ref(&wrong).into();
    let connection = env.create_connection(&token, &body).await;
    let failed = env.sync_and_wait(&token, &connection).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["request_id"].is_string(),
        "the API made one up: {failed}"
    );
    let failed = failed["id"].as_str().unwrap().to_owned();

    let retry_id = format!("retry-{}", Uuid::new_v4().simple());
    let (status, retried, _) = post_with_request_id(
        &env,
        &format!("/jobs/{failed}/retry"),
        &token,
        &retry_id,
        None,
    )
    .await;
    assert_eq!(status, 200, "{retried}");
    let retry = retried["run_id"].as_str().unwrap().to_owned();
    let job = env.wait_for_job(&token, &retry, DEADLINE).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["request_id"], retry_id.as_str(), "{job}");

    let bulk_id = format!("bulk-{}", Uuid::new_v4().simple());
    let (status, bulk, _) = post_with_request_id(
        &env,
        "/jobs/retry",
        &token,
        &bulk_id,
        Some(&json!({ "status": "failed" })),
    )
    .await;
    assert_eq!(status, 200, "{bulk}");
    let runs = bulk["retried"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{bulk}");
    let run = runs[0]["run_id"].as_str().unwrap();
    assert_eq!(runs[0]["retry_of"], retry.as_str());
    let job = env.get(&format!("/jobs/{run}"), &token).await;
    assert_eq!(job["request_id"], bulk_id.as_str(), "{job}");

    let _ = std::fs::remove_file(&wrong);
    env.finish().await;
}

/// Issue 24: start-up errors name the setting, where its value came from and the host:port,
/// never a password, and fail at once; an `EAM_` variable that is no setting is warned of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_name_the_setting_its_source_and_the_address() {
    let env = TestEnv::start(small_params(804)).await;
    let run = async |vars: Vec<(&str, String)>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_eam"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("EAM_LOG__FORMAT", "pretty")
            .kill_on_drop(true);
        for (k, v) in vars {
            command.env(k, v);
        }
        let started = std::time::Instant::now();
        let out = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("eam serve gives up")
            .expect("eam serve runs");
        assert!(!out.status.success());
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (text, started.elapsed())
    };

    // Nothing listens on the port: the database URL, its source and the address, at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (text, took) = run(vec![
        (
            "DATABASE_URL",
            format!("postgres://eam:hunter2secret@127.0.0.1:{port}/eamdb"),
        ),
        ("EAM_DATABASE_URL", "postgres://ignored".into()),
    ])
    .await;
    assert!(
        text.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port}, database eamdb as eam_app \
             (database.url from environment variable DATABASE_URL, database.app_user from the \
             built-in default)"
        )),
        "{text}"
    );
    assert!(
        text.contains("environment variable EAM_DATABASE_URL is not a setting and is ignored"),
        "{text}"
    );
    assert!(!text.contains("hunter2secret"), "{text}");
    assert!(took < Duration::from_secs(5), "failed after {took:?}");

    // PostgreSQL refuses the password (a server that answers every login with 28P01): the
    // settings holding the role and its password, and where each came from.
    let refusing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refusing_port = refusing.local_addr().unwrap().port();
    let refuser = tokio::spawn(refuse_every_login(refusing));
    let (text, took) = run(vec![
        (
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{refusing_port}/eamdb"),
        ),
        ("EAM_DATABASE__APP_PASSWORD", "wrong-hunter3".into()),
    ])
    .await;
    refuser.abort();
    assert!(
        text.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{refusing_port}, database eamdb as eam_app \
             (database.url from environment variable DATABASE_URL, database.app_user from the \
             built-in default): error returned from database: password authentication failed \
             for user \"eam_app\"; the role is database.app_user (eam_app, from the built-in \
             default), its password database.app_password (from environment variable \
             EAM_DATABASE__APP_PASSWORD)"
        )),
        "{text}"
    );
    assert!(!text.contains("wrong-hunter3"), "{text}");
    assert!(took < Duration::from_secs(5), "failed after {took:?}");

    // Production refuses the development issuer (and says which settings to change).
    let (text, _) = run(vec![
        ("DATABASE_URL", env.db.owner_url.clone()),
        ("EAM_DEPLOYMENT__PRODUCTION", "true".into()),
    ])
    .await;
    assert!(
        text.contains(
            "deployment.production (from environment variable EAM_DEPLOYMENT__PRODUCTION) \
             refuses development settings: auth.local_issuer_dir (from the built-in default) \
             turns on the development token issuer"
        ),
        "{text}"
    );

    // The API's port is taken: the address and the setting.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let (text, _) = run(vec![
        ("DATABASE_URL", env.db.owner_url.clone()),
        ("REDIS_URL", env.redis_url.clone()),
        ("EAM_API__BIND", address.clone()),
    ])
    .await;
    assert!(
        text.contains(&format!(
            "cannot listen on {address} (api.bind from environment variable EAM_API__BIND)"
        )),
        "{text}"
    );
    drop(busy);

    // Redis does not answer: its address and the setting.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (text, _) = run(vec![
        ("DATABASE_URL", env.db.owner_url.clone()),
        ("REDIS_URL", format!("redis://:redispw@127.0.0.1:{port}")),
    ])
    .await;
    assert!(
        text.contains(&format!(
            "cannot connect to Redis at 127.0.0.1:{port} (redis.url from environment variable REDIS_URL)"
        )),
        "{text}"
    );
    assert!(!text.contains("redispw"), "{text}");
    env.finish().await;
}

/// A PostgreSQL server that refuses every login as a wrong password would (protocol 3: an
/// SSLRequest is declined, the startup message answered with ErrorResponse 28P01).
async fn refuse_every_login(listener: tokio::net::TcpListener) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut role = String::from("?");
            loop {
                let Ok(len) = socket.read_u32().await else {
                    return;
                };
                let mut body = vec![0u8; (len as usize).saturating_sub(4)];
                if socket.read_exact(&mut body).await.is_err() {
                    return;
                }
                if body.get(..4) == Some(&80_877_103u32.to_be_bytes()[..]) {
                    // SSLRequest: no TLS here.
                    if socket.write_all(b"N").await.is_err() {
                        return;
                    }
                    continue;
                }
                // StartupMessage: protocol version, then key\0value\0 pairs.
                let params: Vec<&[u8]> = body
                    .get(4..)
                    .unwrap_or_default()
                    .split(|b| *b == 0)
                    .collect();
                if let Some(i) = params.iter().position(|p| *p == b"user") {
                    role = String::from_utf8_lossy(params.get(i + 1).copied().unwrap_or_default())
                        .into_owned();
                }
                break;
            }
            let mut fields = Vec::new();
            for (code, value) in [
                (b'S', "FATAL".to_owned()),
                (b'V', "FATAL".to_owned()),
                (b'C', "28P01".to_owned()),
                (
                    b'M',
                    format!("password authentication failed for user \"{role}\""),
                ),
            ] {
                fields.push(code);
                fields.extend_from_slice(value.as_bytes());
                fields.push(0);
            }
            fields.push(0);
            let mut message = vec![b'E'];
            message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
            message.extend_from_slice(&fields);
            let _ = socket.write_all(&message).await;
            let _ = socket.shutdown().await;
        });
    }
}

/// Issue 21: with `api.metrics_bind`, `/metrics` is served on its own address (one the load
/// balancer does not expose) and no longer on the API's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_served_apart_from_the_api() {
    let env = TestEnv::start(small_params(2105)).await;
    let free = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let (api, metrics) = (free(), free());
    let issuer = std::env::temp_dir().join(format!("eam-issuer-{}", uuid::Uuid::new_v4().simple()));
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_eam"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &env.db.owner_url)
        .env("REDIS_URL", &env.redis_url)
        .env("EAM_API__BIND", &api)
        .env("EAM_API__METRICS_BIND", &metrics)
        .env("EAM_AUTH__LOCAL_ISSUER_DIR", &issuer)
        .env("EAM_LOG__LEVEL", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("eam serve starts");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match http.get(format!("http://{api}/health")).send().await {
            Ok(r) if r.status() == 200 => break,
            _ => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the API did not come up"
                );
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let apart = http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(apart.status(), 200);
    let text = apart.text().await.unwrap();
    assert!(text.contains("eam_"), "{text}");
    let on_api = http
        .get(format!("http://{api}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404);
    let health = http
        .get(format!("http://{metrics}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    serve.kill().await.ok();
    std::fs::remove_dir_all(&issuer).ok();
    env.finish().await;
}

/// Issue 21: a caller's W3C `traceparent` becomes the request id, goes with the run it starts
/// and reaches the bank on every request of that sync; a sync started without one still
/// carries a trace of its own (the request id) to the bank.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_reaches_the_bank_with_the_sync_it_started() {
    let env = TestEnv::start(small_params(2106)).await;
    let tenant = env.tenant("Firm A").await;
    let ops = env.token(tenant, &["ops", "support"]);
    let connection = env
        .create_connection(&ops, &env.connection_body(tenant))
        .await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let answer = env
        .http
        .post(format!("{}/connections/{connection}/sync", env.api))
        .bearer_auth(&ops)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["x-request-id"], trace);
    let accepted: serde_json::Value = answer.json().await.unwrap();
    let run = accepted["run_id"].as_str().unwrap().to_owned();
    let job = env.wait_for_job(&ops, &run, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["request_id"], trace);
    assert_eq!(env.sim.traces_seen(), vec![trace.to_owned()]);

    // Without one: the API's own request id is the trace the bank sees.
    let second = env.sync_and_wait(&ops, &connection).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let own = second["request_id"].as_str().unwrap().to_owned();
    assert_eq!(own.len(), 32);
    let mut expected = vec![trace.to_owned(), own];
    expected.sort();
    assert_eq!(env.sim.traces_seen(), expected);
    env.finish().await;
}
