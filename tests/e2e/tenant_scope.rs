//! Issue 23: a tenant reaches only its own secrets, and banks only where the platform's
//! custodian registry says they live, on public addresses.
//!
//! Tried as an attacker with an ordinary tenant's ops or tenant_admin role would: every
//! reference and URL below is refused with 422 when given through the API; planted directly
//! in the database (behind the API's back), the worker refuses it before it opens any
//! connection, which a capture server listening where the "bank" would be checks by counting
//! the connections it accepts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use eam_store::TenantId;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::kit::{EnvOptions, TestEnv, small_params, test_policy};

/// A TCP listener that counts the connections it accepts (and closes them at once).
struct Capture {
    port: u16,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Capture {
    async fn start() -> Capture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Capture {
            port,
            accepted,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Registers (or replaces) a custodian directly in the registry, as a platform bootstrap
/// would, bypassing the API's checks.
async fn plant_custodian(
    env: &TestEnv,
    code: &str,
    base_url: &str,
    tenant_urls: bool,
    allowed_hosts: &[&str],
) {
    eam_store::custodians::put(
        &env.store,
        &eam_store::custodians::Custodian {
            code: code.into(),
            name: format!("Custodian {code}"),
            protocol: "bank_a".into(),
            base_url: Some(base_url.into()),
            ca_cert_ref: Some(TestEnv::file_ref(&env.pki.ca_cert)),
            tenant_urls,
            allowed_hosts: allowed_hosts.iter().map(|h| (*h).to_owned()).collect(),
            updated_at: chrono::Utc::now(),
        },
    )
    .await
    .expect("plant custodian");
}

/// Runs SQL as the database owner (what an attacker with a database foothold, or a bug that
/// skips the API, would write).
async fn as_owner(env: &TestEnv, sql: &'static str, binds: &[&str]) {
    let mut owner = sqlx::PgConnection::connect(&env.db.owner_url)
        .await
        .unwrap();
    let mut query = sqlx::query(sql);
    for b in binds {
        query = query.bind(*b);
    }
    query.execute(&mut owner).await.unwrap();
}

/// Every reference of `tenant` that reaches outside its scope, with what it points at.
fn foreign_references(env: &TestEnv, tenant: TenantId, other: TenantId) -> Vec<(String, String)> {
    let mine = env.secrets_root.join(tenant.0.to_string());
    let issuer_key = env.secrets_root.join("platform-issuer").join("es256.pem");
    std::fs::create_dir_all(issuer_key.parent().unwrap()).unwrap();
    std::fs::write(&issuer_key, "-----BEGIN PRIVATE KEY-----platform").unwrap();
    let link = mine.join("link-to-other");
    if !link.exists() {
        std::os::unix::fs::symlink(env.tenant_file(other, "secret"), &link).unwrap();
    }
    vec![
        (
            "env://DATABASE_URL".into(),
            "the owner's database URL".into(),
        ),
        (
            "env://AWS_SECRET_ACCESS_KEY".into(),
            "another variable".into(),
        ),
        (
            TestEnv::file_ref(&issuer_key),
            "the issuer's signing key".into(),
        ),
        ("file:///etc/passwd".into(), "a system file".into()),
        (
            env.tenant_ref(other, "secret"),
            "another tenant's secret".into(),
        ),
        (
            format!("file://{}/../{}/secret", mine.display(), other.0),
            "another tenant's secret via ..".into(),
        ),
        (
            TestEnv::file_ref(&link),
            "another tenant's secret via a symlink".into(),
        ),
        (
            format!("aws-sm://eam/{}/bank#client_secret", other.0),
            "another tenant's Secrets Manager prefix".into(),
        ),
        (
            "aws-sm://eam-platform/database#password".into(),
            "a platform secret".into(),
        ),
    ]
}

fn assert_scope_refusal(status: u16, problem: &Value, field: &str, what: &str) {
    assert_eq!(status, 422, "{what}: {problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with(&format!(
            "{field}: secret reference outside the tenant's scope: "
        )),
        "{what}: {problem}"
    );
    assert_eq!(problem["status"], 422, "problem+json: {problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_outside_the_tenant_are_refused_at_creation_and_change_with_422() {
    let env = TestEnv::start(small_params(231)).await;
    let tenant = env.tenant("Firm Mallory").await;
    let other = env.tenant("Firm Victim").await;
    let admin = env.token(tenant, &["tenant_admin"]);
    let ops = env.token(tenant, &["ops"]);
    let good = env
        .create_connection(&ops, &env.connection_body(tenant))
        .await;

    for (reference, what) in foreign_references(&env, tenant, other) {
        for (role, token) in [("ops", &ops), ("tenant_admin", &admin)] {
            for field in ["client_secret_ref", "client_cert_ref"] {
                let mut body = env.connection_body(tenant);
                body[field] = json!(reference);
                let (status, problem, _) = env
                    .call(Method::POST, "/connections", Some(token), Some(&body))
                    .await;
                assert_scope_refusal(status, &problem, field, &format!("{role} POST {what}"));

                let (status, problem, _) = env
                    .call(
                        Method::PATCH,
                        &format!("/connections/{good}"),
                        Some(token),
                        Some(&json!({ field: reference })),
                    )
                    .await;
                assert_scope_refusal(status, &problem, field, &format!("{role} PATCH {what}"));
            }
        }
    }
    // The CA is the registry's: a connection cannot name one.
    let mut body = env.connection_body(tenant);
    body["ca_cert_ref"] = json!(env.tenant_ref(tenant, "client.pem"));
    let (status, problem, _) = env
        .call(Method::POST, "/connections", Some(&ops), Some(&body))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["detail"],
        "ca_cert_ref: the bank's CA is set by the platform's custodian registry, not by a connection; leave it out"
    );

    // Nothing was created or changed.
    let list = env.get("/connections", &ops).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        list[0]["client_secret_ref"],
        env.tenant_ref(tenant, "secret"),
        "{list}"
    );

    // A change of references inside the scope is audited with both sides.
    let renewed = env.tenant_ref(tenant, "client-renewed.pem");
    std::fs::copy(
        &env.pki.client_cert,
        env.tenant_file(tenant, "client-renewed.pem"),
    )
    .unwrap();
    let (status, changed, _) = env
        .call(
            Method::PATCH,
            &format!("/connections/{good}"),
            Some(&ops),
            Some(&json!({ "client_cert_ref": renewed })),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let audit = env.get("/audit?action=connection.changed", &admin).await;
    let entries = audit["entries"].as_array().expect("entries");
    let entry = entries
        .iter()
        .find(|e| e["action"] == "connection.changed")
        .expect("audited");
    assert_eq!(
        entry["details"]["before"]["client_cert_ref"],
        env.tenant_ref(tenant, "client.pem")
    );
    assert_eq!(entry["details"]["after"]["client_cert_ref"], renewed);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_refuses_planted_references_before_it_connects_anywhere() {
    let env = TestEnv::start_with(
        small_params(232),
        EnvOptions {
            // Every refusal below is a failed run: none may pause the connection.
            policy: eam_worker::SyncPolicy {
                pause_after_failures: 0,
                ..test_policy()
            },
            ..EnvOptions::default()
        },
    )
    .await;
    let capture = Capture::start().await;
    plant_custodian(
        &env,
        "capture",
        &format!("https://127.0.0.1:{}", capture.port),
        false,
        &[],
    )
    .await;
    let tenant = env.tenant("Firm Mallory").await;
    let other = env.tenant("Firm Victim").await;
    let ops = env.token(tenant, &["ops", "support"]);
    let mut body = env.connection_body(tenant);
    body["custodian"] = json!("capture");
    let connection = env.create_connection(&ops, &body).await;

    for (reference, what) in foreign_references(&env, tenant, other) {
        for column in ["client_secret_ref", "client_cert_ref"] {
            let sql = match column {
                "client_secret_ref" => {
                    "UPDATE bank_connections SET client_secret_ref = $1, client_cert_ref = $3
                     WHERE id = $2::uuid"
                }
                _ => {
                    "UPDATE bank_connections SET client_cert_ref = $1, client_secret_ref = $3
                     WHERE id = $2::uuid"
                }
            };
            let in_scope = if column == "client_secret_ref" {
                env.tenant_ref(tenant, "client.pem")
            } else {
                env.tenant_ref(tenant, "secret")
            };
            as_owner(&env, sql, &[&reference, &connection, &in_scope]).await;
            let job = env.sync_and_wait(&ops, &connection).await;
            assert_eq!(job["status"], "failed", "{what} in {column}: {job}");
            assert_eq!(job["error"]["class"], "auth", "{what}: {job}");
            assert_eq!(job["attempts"], 1, "{what}: {job}");
            let message = job["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.starts_with(&format!(
                    "secret reference outside the tenant's scope: {reference}: "
                )),
                "{what} in {column}: {message}"
            );
        }
    }
    assert_eq!(
        capture.accepted(),
        0,
        "nothing may reach the capture server"
    );

    // The control: with the tenant's own references the worker does connect there (the
    // capture server is no bank, so that run fails on TLS), so the zero above means
    // "refused before connecting", not "could not have seen it".
    as_owner(
        &env,
        "UPDATE bank_connections SET client_secret_ref = $1, client_cert_ref = $2
         WHERE id = $3::uuid",
        &[
            &env.tenant_ref(tenant, "secret"),
            &env.tenant_ref(tenant, "client.pem"),
            &connection,
        ],
    )
    .await;
    let job = env.sync_and_wait(&ops, &connection).await;
    assert_ne!(job["status"], "succeeded", "{job}");
    assert!(capture.accepted() >= 1, "the control run connected");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_addresses_come_from_the_registry_and_private_ones_are_refused() {
    let env = TestEnv::start_with(
        small_params(233),
        EnvOptions {
            policy: eam_worker::SyncPolicy {
                pause_after_failures: 0,
                ..test_policy()
            },
            egress: eam_config::egress::EgressPolicy {
                allow_private_addresses: false,
            },
            ..EnvOptions::default()
        },
    )
    .await;
    let capture = Capture::start().await;
    let tenant = env.tenant("Firm Mallory").await;
    let admin = env.token(tenant, &["tenant_admin"]);
    let ops = env.token(tenant, &["ops", "support"]);
    let platform = env.token(tenant, &["platform_admin"]);
    let private_urls = [
        format!("https://127.0.0.1:{}", capture.port),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://10.0.0.1".to_owned(),
        format!("https://localhost:{}", capture.port),
    ];

    // A custodian whose connections may name their own hosts, and these hosts among them.
    plant_custodian(
        &env,
        "own_urls",
        "https://bank.example",
        true,
        &["127.0.0.1", "169.254.169.254", "10.0.0.1", "localhost"],
    )
    .await;
    for url in &private_urls {
        for token in [&ops, &admin] {
            let mut body = env.connection_body(tenant);
            body["custodian"] = json!("own_urls");
            body["base_url"] = json!(url);
            let (status, problem, _) = env
                .call(Method::POST, "/connections", Some(token), Some(&body))
                .await;
            assert_eq!(status, 422, "{url}: {problem}");
            let detail = problem["detail"].as_str().unwrap_or_default();
            assert!(
                detail.starts_with("base_url: ")
                    && detail.ends_with(
                        "a loopback, private, link-local or reserved address; bank addresses must be public (egress.allow_private_addresses)"
                    ),
                "{url}: {detail}"
            );
        }
        // Nor may a platform admin register a bank there.
        let (status, problem, _) = env
            .call(
                Method::PUT,
                "/custodians/private_bank",
                Some(&platform),
                Some(&json!({"name": "Private", "protocol": "bank_b", "base_url": url})),
            )
            .await;
        assert_eq!(status, 422, "{url}: {problem}");
    }
    // A custodian without per-tenant URLs takes none; a host off the allowed list is refused.
    let mut body = env.connection_body(tenant);
    body["base_url"] = json!("https://bank-a.example");
    let (status, problem, _) = env
        .call(Method::POST, "/connections", Some(&ops), Some(&body))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["detail"],
        "base_url: custodian bank_a's address is set by the platform's custodian registry; leave base_url out"
    );
    let mut body = env.connection_body(tenant);
    body["custodian"] = json!("own_urls");
    body["base_url"] = json!("https://attacker.example");
    let (status, problem, _) = env
        .call(Method::POST, "/connections", Some(&ops), Some(&body))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("base_url: attacker.example is not among the hosts the custodian registry allows for own_urls"),
        "{problem}"
    );
    // Only platform admins maintain the registry.
    let (status, _, _) = env
        .call(
            Method::PUT,
            "/custodians/bank_a",
            Some(&admin),
            Some(
                &json!({"name": "Mine", "protocol": "bank_a", "base_url": "https://bank.example"}),
            ),
        )
        .await;
    assert_eq!(status, 403);

    // Planted behind the API's back, each private address is refused by the worker before it
    // connects: in the registry, and as a connection's own URL.
    let mut body = env.connection_body(tenant);
    body["custodian"] = json!("planted");
    plant_custodian(&env, "planted", "https://bank.example", false, &[]).await;
    let connection = env.create_connection(&ops, &body).await;
    for url in &private_urls {
        plant_custodian(&env, "planted", url, false, &[]).await;
        let job = env.sync_and_wait(&ops, &connection).await;
        assert_eq!(job["status"], "failed", "{url}: {job}");
        assert_eq!(job["error"]["class"], "auth", "{url}: {job}");
        let message = job["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("refused destination: ")
                && message.contains("a loopback, private, link-local or reserved address")
                && message.ends_with("; nothing was sent"),
            "{url}: {message}"
        );
    }
    // A connection's own URL the registry does not allow, planted in the database.
    plant_custodian(
        &env,
        "planted",
        "https://bank.example",
        true,
        &["bank.example"],
    )
    .await;
    as_owner(
        &env,
        "UPDATE bank_connections SET base_url = $1 WHERE id = $2::uuid",
        &[&format!("https://127.0.0.1:{}", capture.port), &connection],
    )
    .await;
    let job = env.sync_and_wait(&ops, &connection).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(
        job["error"]["message"],
        "refused destination: 127.0.0.1 is not a host the custodian registry names for planted; nothing was sent"
    );
    assert_eq!(
        capture.accepted(),
        0,
        "nothing may reach the capture server"
    );
    env.finish().await;
}
