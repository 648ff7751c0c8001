//! Bank credentials and client certificates in AWS Secrets Manager (moto's emulator, started
//! by `make test`): connections hold references only; a sync resolves them through the secret
//! provider; a rotated client certificate is used without restarting anything; its expiry is
//! shown and flagged before it breaks a night's sync; and no secret value appears in the logs
//! or API answers of a full run.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use eam_banksim::pki::PkiPaths;
use eam_store::TenantId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::kit::{self, CLIENT_ID, CLIENT_SECRET, EnvOptions, TestEnv, small_params};
use crate::sync::assert_api_matches_dataset;
use crate::workers::{worker_command, worker_log};

const DEADLINE: Duration = Duration::from_secs(30);

/// A Secrets Manager client on the emulator: what ops use to create and rotate secrets.
pub(crate) fn secrets_manager() -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(kit::MOTO_REGION))
        .endpoint_url(kit::moto_url())
        .credentials_provider(Credentials::new(
            kit::MOTO_CREDENTIALS.0,
            kit::MOTO_CREDENTIALS.1,
            None,
            None,
            "e2e",
        ))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// A secret name of this test's own under the tenant's prefix (tests share the emulator).
fn unique_name(tenant: TenantId, what: &str) -> String {
    format!(
        "{}{}/{what}-{}",
        kit::TENANT_AWS_PREFIX,
        tenant.0,
        Uuid::new_v4().simple()
    )
}

/// A platform secret's name (outside every tenant's prefix): the bank's CA.
fn platform_name(what: &str) -> String {
    format!("eam-test-platform/{}/{what}", Uuid::new_v4().simple())
}

/// Points the registry's bank_a at a CA kept in Secrets Manager (a platform reference).
async fn bank_a_ca_from_secrets_manager(env: &TestEnv, ca_name: &str) {
    let mut entry = eam_store::custodians::get(&env.store, "bank_a")
        .await
        .expect("bank_a");
    entry.ca_cert_ref = Some(format!("aws-sm://{ca_name}"));
    eam_store::custodians::put(&env.store, &entry)
        .await
        .expect("registry");
}

async fn create_secret(sm: &aws_sdk_secretsmanager::Client, name: &str, value: &str) {
    sm.create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("create the secret");
}

async fn rotate_secret(sm: &aws_sdk_secretsmanager::Client, name: &str, value: &str) {
    sm.put_secret_value()
        .secret_id(name)
        .secret_string(value)
        .send()
        .await
        .expect("rotate the secret");
}

/// A client certificate and its key, with the notAfter it was made with.
struct ClientCert {
    cert: String,
    key: String,
    not_after: DateTime<Utc>,
}

/// The bank_a credentials as one secret: rotating it changes certificate and key together.
fn bundle(client: &ClientCert) -> String {
    json!({
        "client_secret": CLIENT_SECRET,
        "client_cert": client.cert,
        "client_key": client.key,
    })
    .to_string()
}

/// A PKI of the test's own: the simulator's CA and server certificate, and client certificates
/// of chosen lifetimes signed by that CA, or by a CA the simulator does not trust.
struct TestPki {
    paths: PkiPaths,
    ca: Issuer<'static, KeyPair>,
    rogue: Issuer<'static, KeyPair>,
}

/// Valid from yesterday until midnight UTC `valid_days` from today; returns that day.
fn set_validity(params: &mut CertificateParams, valid_days: i64) -> NaiveDate {
    use chrono::Datelike;
    let (from, to) = (day(-1), day(valid_days));
    params.not_before = rcgen::date_time_ymd(from.year(), from.month() as u8, from.day() as u8);
    params.not_after = rcgen::date_time_ymd(to.year(), to.month() as u8, to.day() as u8);
    to
}

fn day(offset_days: i64) -> NaiveDate {
    Utc::now().date_naive() + chrono::Duration::days(offset_days)
}

fn authority(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, 800);
    let pem = params.self_signed(&key).expect("CA").pem();
    (Issuer::new(params, key), pem)
}

fn leaf(
    ca: &Issuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    valid_days: i64,
) -> ClientCert {
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "eam-sync client");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let expiry = set_validity(&mut params, valid_days);
    let cert = params.signed_by(&key, ca).expect("certificate");
    ClientCert {
        cert: cert.pem(),
        key: key.serialize_pem(),
        not_after: Utc.from_utc_datetime(&expiry.and_hms_opt(0, 0, 0).expect("midnight")),
    }
}

impl TestPki {
    fn new() -> TestPki {
        let dir = std::env::temp_dir().join(format!("eam-test-pki-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("PKI dir");
        let paths = PkiPaths::in_dir(&dir);
        let (ca, ca_pem) = authority("EAM e2e CA");
        let (rogue, rogue_pem) = authority("EAM e2e rogue CA");
        let server = leaf(
            &ca,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            365,
        );
        let client = leaf(&ca, &[], ExtendedKeyUsagePurpose::ClientAuth, 365);
        let rogue_client = leaf(&rogue, &[], ExtendedKeyUsagePurpose::ClientAuth, 365);
        for (path, pem) in [
            (&paths.ca_cert, &ca_pem),
            (&paths.server_cert, &server.cert),
            (&paths.server_key, &server.key),
            (&paths.client_cert, &client.cert),
            (&paths.client_key, &client.key),
            (&paths.rogue_ca_cert, &rogue_pem),
            (&paths.rogue_client_cert, &rogue_client.cert),
            (&paths.rogue_client_key, &rogue_client.key),
        ] {
            std::fs::write(path, pem).expect("write PKI file");
        }
        TestPki { paths, ca, rogue }
    }

    /// A client certificate the simulator accepts, valid `days` from today.
    fn client(&self, days: i64) -> ClientCert {
        leaf(&self.ca, &[], ExtendedKeyUsagePurpose::ClientAuth, days)
    }

    /// A client certificate from a CA the simulator does not trust.
    fn rogue_client(&self, days: i64) -> ClientCert {
        leaf(&self.rogue, &[], ExtendedKeyUsagePurpose::ClientAuth, days)
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.paths.dir);
    }
}

fn not_after(certificate: &Value) -> Option<DateTime<Utc>> {
    certificate["not_after"].as_str().map(|s| {
        DateTime::parse_from_rfc3339(s)
            .expect("RFC 3339")
            .with_timezone(&Utc)
    })
}

/// Polls the connection's certificate until the API reads the expected one (the provider's
/// cache expires within its TTL).
async fn wait_for_certificate(
    env: &TestEnv,
    token: &str,
    connection: &str,
    expected: DateTime<Utc>,
) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let certificate = env
            .get(&format!("/connections/{connection}/certificate"), token)
            .await;
        if not_after(&certificate) == Some(expected) {
            return certificate;
        }
        assert!(
            Instant::now() < deadline,
            "the rotated certificate (notAfter {expected}) is not read: {certificate}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn aws_refs(name: &str) -> Value {
    json!({
        "client_secret_ref": format!("aws-sm://{name}#client_secret"),
        "client_cert_ref": format!("aws-sm://{name}#client_cert"),
        "client_key_ref": format!("aws-sm://{name}#client_key"),
    })
}

fn bank_a_body(refs: &Value) -> Value {
    let mut body = json!({
        "custodian": "bank_a",
        "name": "Bank A via Secrets Manager",
        "client_id": CLIENT_ID,
    });
    for (k, v) in refs.as_object().expect("refs") {
        body[k] = v.clone();
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_secrets_manager_sync_and_a_rotated_certificate_is_used_without_a_restart()
{
    let pki = TestPki::new();
    let expiring = pki.client(10);
    let rogue = pki.rogue_client(200);
    let renewed = pki.client(400);
    let env = TestEnv::start_with(
        small_params(71),
        EnvOptions {
            pki: Some(pki.paths.clone()),
            secrets_ttl: Duration::from_secs(1),
            ..EnvOptions::default()
        },
    )
    .await;
    let sm = secrets_manager();
    let tenant = env.tenant("Firm SM").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let name = unique_name(tenant, "bank-a");
    let ca_name = platform_name("bank-a-ca");
    create_secret(&sm, &name, &bundle(&expiring)).await;
    let ca_pem = std::fs::read_to_string(&pki.paths.ca_cert).expect("CA");
    create_secret(&sm, &ca_name, &ca_pem).await;
    bank_a_ca_from_secrets_manager(&env, &ca_name).await;

    let connection = env
        .create_connection(&token, &bank_a_body(&aws_refs(&name)))
        .await;
    let stored = env.get(&format!("/connections/{connection}"), &token).await;
    assert_eq!(
        stored["client_key_ref"],
        format!("aws-sm://{name}#client_key"),
        "the reference, never the value"
    );

    // Ten days left: at risk under the 30-day warning, and listed as such.
    let certificate = env
        .get(&format!("/connections/{connection}/certificate"), &token)
        .await;
    assert_eq!(certificate["status"], "expiring", "{certificate}");
    assert_eq!(certificate["at_risk"], true);
    assert_eq!(certificate["days_left"], 9);
    assert_eq!(not_after(&certificate), Some(expiring.not_after));
    let at_risk = env.get("/certificates?at_risk=true", &token).await;
    assert_eq!(at_risk["warning_days"], 30);
    // The workers' certificate check emits certificate.expiring once for it, however often it
    // runs.
    let check =
        |now| eam_worker::certificates::check_certificates(&env.store, &env.secrets, 30, now);
    let first = check(Utc::now()).await.unwrap();
    assert_eq!((first.checked, first.warned, first.unreadable), (1, 1, 0));
    assert_eq!(
        check(Utc::now()).await.unwrap().warned,
        0,
        "once per certificate"
    );
    let events = env.get("/events?type=certificate.expiring", &token).await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["status"], "expiring");
    assert_eq!(events[0]["data"]["days_left"], 9);
    assert_eq!(events[0]["data"]["connection_id"], json!(connection));
    assert_eq!(events[0]["subject"], format!("connection:{connection}"));
    // Eleven days on it has expired: one more event, then none.
    let later = Utc::now() + chrono::Duration::days(11);
    assert_eq!(check(later).await.unwrap().warned, 1);
    assert_eq!(check(later).await.unwrap().warned, 0);
    let listed: Vec<&str> = at_risk["certificates"]
        .as_array()
        .expect("certificates")
        .iter()
        .map(|c| c["connection_id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, vec![connection.as_str()]);

    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_api_matches_dataset(&env, &token, &env.sim.dataset()).await;
    let expiries = env
        .store
        .client_certificate_expiries()
        .await
        .expect("expiries");
    let recorded: Vec<_> = expiries
        .iter()
        .filter(|e| e.connection_id.to_string() == connection)
        .map(|e| e.expires_at)
        .collect();
    assert_eq!(recorded, vec![expiring.not_after], "kept for metrics");

    // Ops rotate the certificate in Secrets Manager to one the bank does not trust: the same
    // worker presents it at its next sync, and the bank refuses it.
    rotate_secret(&sm, &name, &bundle(&rogue)).await;
    wait_for_certificate(&env, &token, &connection, rogue.not_after).await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["class"], "auth", "{job}");
    assert_eq!(job["attempts"], 1);

    // Then to a renewed one: the next sync succeeds, and nothing is at risk any more.
    rotate_secret(&sm, &name, &bundle(&renewed)).await;
    let certificate = wait_for_certificate(&env, &token, &connection, renewed.not_after).await;
    assert_eq!(certificate["status"], "ok", "{certificate}");
    assert_eq!(certificate["at_risk"], false);
    assert_eq!(certificate["days_left"], 399);
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let at_risk = env.get("/certificates?at_risk=true", &token).await;
    assert_eq!(at_risk["certificates"], json!([]));
    let expiries = env
        .store
        .client_certificate_expiries()
        .await
        .expect("expiries");
    assert!(
        expiries
            .iter()
            .any(|e| e.connection_id.to_string() == connection
                && e.expires_at == renewed.not_after),
        "{expiries:?}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_fails_the_sync_as_auth_naming_the_reference_and_bad_references_are_refused()
 {
    let env = TestEnv::start(small_params(72)).await;
    let tenant = env.tenant("Firm SM").await;
    let token = env.token(tenant, &["ops", "support"]);
    for bad in [
        "aws-sm://",
        "aws-sm://name#",
        "aws-sm://na me#key",
        "vault://x",
    ] {
        let mut body = env.connection_body(tenant);
        body["client_secret_ref"] = json!(bad);
        let (status, problem, _) = env
            .call(Method::POST, "/connections", Some(&token), Some(&body))
            .await;
        assert_eq!(status, 422, "{bad}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("client_secret_ref")),
            "{problem}"
        );
    }

    let missing = format!("aws-sm://{}#client_secret", unique_name(tenant, "absent"));
    let mut body = env.connection_body(tenant);
    body["client_secret_ref"] = json!(missing);
    let connection = env.create_connection(&token, &body).await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["class"], "auth", "{job}");
    assert_eq!(job["attempts"], 1);
    let message = job["error"]["message"].as_str().expect("message");
    assert!(message.contains(&missing), "{message}");

    let mut body = env.connection_body(tenant);
    body["client_cert_ref"] = json!(format!("aws-sm://{}#cert", unique_name(tenant, "absent")));
    let unreadable = env.create_connection(&token, &body).await;
    let certificate = env
        .get(&format!("/connections/{unreadable}/certificate"), &token)
        .await;
    assert_eq!(certificate["status"], "unreadable", "{certificate}");
    assert_eq!(certificate["at_risk"], true);
    env.finish().await;
}

/// A `Write` into a shared buffer, for a tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// The values no log line or API answer may contain: the client secret and every line of the
/// private key's body.
fn secret_values(key_pem: &str) -> Vec<String> {
    let mut values = vec![CLIENT_SECRET.to_owned()];
    values.extend(
        key_pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(str::to_owned),
    );
    values
}

fn assert_free_of(what: &str, text: &str, values: &[String]) {
    for value in values {
        assert!(
            !text.contains(value.as_str()),
            "{what} contains a secret value"
        );
    }
}

/// The API and the simulator log, in this process, into a buffer: the test runs on one thread
/// so every task it spawns logs through the subscriber it sets. The worker is an `eam work`
/// process at debug level, logging to a file.
#[tokio::test(flavor = "current_thread")]
async fn a_full_run_leaves_no_secret_value_in_logs_or_api_answers() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer({
            let captured = captured.clone();
            move || captured.clone()
        })
        .finish();
    let _logs = tracing::subscriber::set_default(subscriber);
    // tracing caches each callsite's interest process-wide, and while one dispatcher exists it
    // asks the default of whichever thread hits a callsite first: another test's thread, which
    // has none, would switch the callsite off for this one too. With a second dispatcher
    // (never anyone's default) it asks every registered dispatcher instead.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());

    let env = TestEnv::start_with(
        small_params(73),
        EnvOptions {
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let sm = secrets_manager();
    let tenant = env.tenant("Firm Logs").await;
    let name = unique_name(tenant, "bank-a");
    let ca_name = platform_name("bank-a-ca");
    let read = |p: &Path| std::fs::read_to_string(p).expect("PKI file");
    let key_pem = read(&env.pki.client_key);
    let credentials = json!({
        "client_secret": CLIENT_SECRET,
        "client_cert": read(&env.pki.client_cert),
        "client_key": key_pem,
    })
    .to_string();
    create_secret(&sm, &name, &credentials).await;
    create_secret(&sm, &ca_name, &read(&env.pki.ca_cert)).await;
    bank_a_ca_from_secrets_manager(&env, &ca_name).await;

    let mut worker = worker_command(&env, "secrets")
        .env("EAM_LOG__LEVEL", "debug")
        .env("EAM_SECRETS__AWS_ENDPOINT", kit::moto_url())
        .env("EAM_SECRETS__AWS_REGION", kit::MOTO_REGION)
        .env("AWS_ACCESS_KEY_ID", kit::MOTO_CREDENTIALS.0)
        .env("AWS_SECRET_ACCESS_KEY", kit::MOTO_CREDENTIALS.1)
        .spawn()
        .expect("eam work starts");

    let token = env.token(tenant, &["ops", "advisor", "support", "tenant_admin"]);
    let mut answers = String::new();
    let mut record =
        |path: &str, status: u16, headers: &reqwest::header::HeaderMap, body: &Value| {
            answers.push_str(&format!("{status} {path} {headers:?} {body}\n"));
        };

    let body = bank_a_body(&aws_refs(&name));
    let (status, created, headers) = env
        .call(Method::POST, "/connections", Some(&token), Some(&body))
        .await;
    record("/connections", status, &headers, &created);
    assert_eq!(status, 201, "{created}");
    let connection = created["id"].as_str().expect("id").to_owned();
    let (status, accepted, headers) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/sync"),
            Some(&token),
            None,
        )
        .await;
    record("sync", status, &headers, &accepted);
    let run = accepted["run_id"].as_str().expect("run id").to_owned();
    let job = env
        .wait_for_job(&token, &run, Duration::from_secs(60))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");

    for path in [
        "/connections".to_owned(),
        format!("/connections/{connection}"),
        format!("/connections/{connection}/certificate"),
        "/certificates".to_owned(),
        "/jobs".to_owned(),
        format!("/jobs/{run}"),
        format!("/documents?run_id={run}"),
        "/accounts".to_owned(),
    ] {
        let (status, body, headers) = env.call(Method::GET, &path, Some(&token), None).await;
        assert_eq!(status, 200, "{path}: {body}");
        record(&path, status, &headers, &body);
    }

    worker.start_kill().expect("stop the worker");
    let _ = worker.wait().await;
    let worker_logs = std::fs::read_to_string(worker_log(&env, "secrets")).expect("worker log");
    assert!(
        worker_logs.contains(&run)
            && worker_logs.contains("sync loaded")
            && worker_logs.contains("secret fetched"),
        "the worker logged the run, and its Secrets Manager calls"
    );
    let api_logs = captured.text();
    assert!(api_logs.contains("connection created"), "the API logged");

    let values = secret_values(&key_pem);
    assert!(values.len() > 2, "the key has a body to look for");
    assert_free_of("the worker's log", &worker_logs, &values);
    assert_free_of("the API's log", &api_logs, &values);
    assert_free_of("the API's answers", &answers, &values);
    env.finish().await;
}
