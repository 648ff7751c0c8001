//! Events and webhooks: the outbox's events delivered to a real HTTP receiver on loopback,
//! signed as Standard Webhooks and checked with PyPI's `standardwebhooks` (an implementation
//! not ours); retries and the delivery log; an endpoint down for days disabled on a simulated
//! clock; private addresses refused.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use eam_banksim::{Fault, FaultRule};
use eam_worker::webhooks::{WebhookSettings, client, deliver_due};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::kit::{EnvOptions, TestEnv, small_params};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A plain HTTP/1.1 receiver answering the given statuses in turn (then 200); a status 0
/// reads the request and never answers (the connection is held open).
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(statuses: Vec<u16>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = got.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break (None, 0);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (Some(i + 4), length);
                    }
                };
                let Some(head_end) = head_end else { continue };
                while buf.len() < head_end + length {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                    .collect();
                let body = buf[head_end..(head_end + length).min(buf.len())].to_vec();
                let n = {
                    let mut got = seen.lock().unwrap();
                    got.push(Received { headers, body });
                    got.len()
                };
                let status = statuses.get(n - 1).copied().unwrap_or(200);
                if status == 0 {
                    held.push(socket);
                    continue;
                }
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        Receiver { port, got, task }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/eam", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` requests came.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests came",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Verifies a message with PyPI `standardwebhooks` (installed by `make test`): true when it
/// accepts the signature.
fn python_verifies(secret: &str, r: &Received) -> bool {
    let dir = std::env::temp_dir().join(format!("eam-webhook-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("body"), &r.body).unwrap();
    let headers = json!({
        "webhook-id": r.header("webhook-id"),
        "webhook-timestamp": r.header("webhook-timestamp"),
        "webhook-signature": r.header("webhook-signature"),
    });
    std::fs::write(dir.join("headers"), headers.to_string()).unwrap();
    let script = "import json,sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        d=sys.argv[2]\n\
        body=open(d+'/body','rb').read()\n\
        headers=json.load(open(d+'/headers'))\n\
        Webhook(sys.argv[1]).verify(body, headers)\n\
        print('verified')\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script, secret, dir.to_str().unwrap()])
        .output()
        .expect("python3 with standardwebhooks (make test installs it)");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8_lossy(&out.stdout).trim() == "verified"
}

async fn create_endpoint(
    env: &TestEnv,
    token: &str,
    url: &str,
    types: &[&str],
) -> (String, String) {
    let (status, body, _) = env
        .call(
            Method::POST,
            "/webhooks",
            Some(token),
            Some(&json!({ "url": url, "event_types": types })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["endpoint"]["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// A bank_a sync of a new connection that fails (a malformed transactions page: a data
/// error, not retried): the connection and its job.
async fn failed_sync(env: &TestEnv, token: &str, tenant: eam_store::TenantId) -> (String, Value) {
    let account = env.sim.dataset().accounts[0].account_id.clone();
    env.sim.faults().inject(
        FaultRule::new(
            format!("/v1/accounts/{account}/transactions"),
            Fault::Malformed,
        )
        .times(1),
    );
    let connection = env
        .create_connection(token, &env.connection_body(tenant))
        .await;
    let job = env.sync_and_wait(token, &connection).await;
    assert_eq!(job["status"], "failed", "{job}");
    (connection, job)
}

/// A delivery log until its first delivery is no longer pending.
async fn settled(env: &TestEnv, token: &str, endpoint: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = env
            .get(&format!("/webhooks/{endpoint}/deliveries"), token)
            .await;
        let pending = page["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == "pending");
        if !pending && !page["deliveries"].as_array().unwrap().is_empty() {
            return page;
        }
        assert!(Instant::now() < deadline, "still pending: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sync that fails sends exactly one `sync.failed` webhook to the endpoint that asked for it,
/// signed so that an independent Standard Webhooks implementation accepts it (and refuses it
/// with another secret); the receiver answering 500 three times then 200 gets four attempts,
/// all logged, the same `webhook-id` each time; a redelivery sends it a fifth time. A sync that
/// succeeds sends `sync.succeeded` and one `portfolio.updated` per client to the endpoint that
/// opted in, and nothing to the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_is_one_signed_webhook_retried_until_the_receiver_takes_it() {
    let env = TestEnv::start(small_params(91)).await;
    let tenant = env.tenant("Firm W").await;
    let admin = env.token(tenant, &["tenant_admin", "ops"]);
    let failing = Receiver::start(vec![500, 500, 500]).await;
    let (endpoint, secret) =
        create_endpoint(&env, &admin, &failing.url(), &["sync.failed", "sync.dead"]).await;

    let (connection, job) = failed_sync(&env, &admin, tenant).await;

    let got = failing.wait_for(4).await;
    let log = settled(&env, &admin, &endpoint).await;
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{log}");
    let d = &deliveries[0];
    assert_eq!(d["event_type"], "sync.failed");
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["attempts"], 4);
    let codes: Vec<i64> = d["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 500, 200]);
    let got = &got[..4];
    let id = got[0].header("webhook-id").to_owned();
    assert_eq!(id, d["event_id"].as_str().unwrap());
    for r in got {
        assert_eq!(r.header("webhook-id"), id, "the same id on every attempt");
        assert!(python_verifies(&secret, r), "signature of {:?}", r.headers);
        assert!(!python_verifies(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            r
        ));
    }
    let message = got[3].json();
    assert_eq!(message["type"], "sync.failed");
    assert_eq!(message["data"]["run_id"], job["id"]);
    assert_eq!(message["data"]["connection_id"], json!(connection));
    assert_eq!(message["data"]["status"], "failed");
    assert_eq!(message["data"]["error"]["class"], "data");
    assert_eq!(message["data"]["error"]["message"], job["error"]["message"]);
    assert_eq!(got[0].body, got[3].body, "the same body on every attempt");
    let events = env.get("/events?type=sync.failed", &admin).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events["events"][0]["id"], json!(id));

    // Sent again by hand: a fifth request, same id.
    let (status, _, _) = env
        .call(
            Method::POST,
            &format!(
                "/webhooks/{endpoint}/deliveries/{}/redeliver",
                d["id"].as_str().unwrap()
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let got = failing.wait_for(5).await;
    assert_eq!(got[4].header("webhook-id"), id);

    // A sync that succeeds: the opted-in endpoint gets sync.succeeded and one
    // portfolio.updated per client; the first endpoint nothing more.
    let opted = Receiver::start(vec![]).await;
    let (second, second_secret) = create_endpoint(
        &env,
        &admin,
        &opted.url(),
        &["sync.succeeded", "portfolio.updated"],
    )
    .await;
    let good = env
        .create_connection(&admin, &env.connection_body(tenant))
        .await;
    let job = env.sync_and_wait(&admin, &good).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let clients = env.sim.dataset().clients.len();
    let got = opted.wait_for(1 + clients).await;
    settled(&env, &admin, &second).await;
    let mut types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    let mut want = vec!["portfolio.updated".to_owned(); clients];
    want.push("sync.succeeded".to_owned());
    assert_eq!(types, want);
    assert!(got.iter().all(|r| python_verifies(&second_secret, r)));
    assert_eq!(opted.received().len(), 1 + clients, "each once");
    assert_eq!(failing.received().len(), 5);
    env.finish().await;
}

/// No worker: deliveries driven on a simulated clock. A receiver that is down for the whole
/// window leaves the delivery retrying on the schedule; after three days of failures the
/// endpoint is disabled with its reason and `webhook.endpoint_disabled` emitted, and nothing
/// more is claimed for it; enabled again, its pending deliveries go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_three_days_gets_its_endpoint_disabled() {
    let env = TestEnv::start_with(
        small_params(92),
        EnvOptions {
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let tenant = env.tenant("Firm D").await;
    let admin = env.token(tenant, &["tenant_admin", "ops"]);
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (endpoint, _) = create_endpoint(
        &env,
        &admin,
        &format!("http://127.0.0.1:{closed}/down"),
        &["connection.paused", "connection.resumed"],
    )
    .await;
    let connection = env
        .create_connection(&admin, &env.connection_body(tenant))
        .await;
    let toggle = |enabled: bool| {
        let env = &env;
        let admin = admin.clone();
        let connection = connection.clone();
        async move {
            let action = if enabled { "resume" } else { "pause" };
            let (status, body, _) = env
                .call(
                    Method::POST,
                    &format!("/connections/{connection}/{action}"),
                    Some(&admin),
                    Some(&json!({ "reason": "maintenance window" })),
                )
                .await;
            assert!(status == 200 || status == 204, "{status} {body}");
        }
    };
    let settings = WebhookSettings {
        egress: eam_config::egress::EgressPolicy {
            allow_private_addresses: true,
        },
        timeout: Duration::from_secs(2),
        ..WebhookSettings::default()
    };
    let http = client(&settings).unwrap();
    toggle(false).await;
    let start = Utc::now() + chrono::Duration::seconds(1);
    let first = deliver_due(&env.store, &http, &settings, "test", start, 100)
        .await
        .unwrap();
    assert_eq!((first.claimed, first.retrying), (1, 1), "{first:?}");
    let view = env.get(&format!("/webhooks/{endpoint}"), &admin).await;
    assert_eq!(view["enabled"], true);
    assert!(view["failing_since"].is_string(), "{view}");

    // Every 30 minutes for three days, with a new event every day.
    let mut disabled_at = None;
    for step in 1..=(3 * 48 + 2) {
        let now = start + chrono::Duration::minutes(30 * step);
        if step % 48 == 0 {
            toggle(step % 96 != 0).await;
        }
        let r = deliver_due(&env.store, &http, &settings, "test", now, 100)
            .await
            .unwrap();
        assert_eq!(r.delivered, 0);
        if r.disabled > 0 {
            disabled_at = Some(now);
            break;
        }
    }
    let disabled_at = disabled_at.expect("the endpoint is disabled");
    assert!(disabled_at - start >= chrono::Duration::hours(72));
    assert!(disabled_at - start <= chrono::Duration::hours(72) + chrono::Duration::minutes(30));
    let view = env.get(&format!("/webhooks/{endpoint}"), &admin).await;
    assert_eq!(view["enabled"], false);
    let reason = view["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("(3 days or longer)"), "{reason}");
    let events = env
        .get("/events?type=webhook.endpoint_disabled", &admin)
        .await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events["events"][0]["data"]["endpoint_id"], json!(endpoint));
    // The first delivery was given up after its eight attempts (over 27 hours).
    let given_up = env
        .get(
            &format!("/webhooks/{endpoint}/deliveries?status=failed"),
            &admin,
        )
        .await;
    let given_up = given_up["deliveries"].as_array().unwrap();
    assert!(!given_up.is_empty());
    assert_eq!(given_up.last().unwrap()["attempts"], 8);
    let later = deliver_due(
        &env.store,
        &http,
        &settings,
        "test",
        disabled_at + chrono::Duration::days(1),
        100,
    )
    .await
    .unwrap();
    assert_eq!(later.claimed, 0, "a disabled endpoint gets nothing");
    // Enabled again: its failure streak is cleared and its pending deliveries are due.
    let (status, view, _) = env
        .call(
            Method::PATCH,
            &format!("/webhooks/{endpoint}"),
            Some(&admin),
            Some(&json!({ "enabled": true })),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["failing_since"], Value::Null);
    assert_eq!(view["disabled_reason"], Value::Null);
    let again = deliver_due(
        &env.store,
        &http,
        &settings,
        "test",
        disabled_at + chrono::Duration::days(2),
        100,
    )
    .await
    .unwrap();
    assert!(again.claimed >= 1, "{again:?}");
    env.finish().await;
}

/// With private addresses not allowed, a webhook URL naming loopback, the metadata service or
/// a private range is refused with a 422 naming the rule; so are other schemes and unknown
/// event types; nothing is stored. Rotation answers a new secret once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_urls_on_private_addresses_are_refused() {
    let env = TestEnv::start_with(
        small_params(93),
        EnvOptions {
            in_process_worker: false,
            egress: eam_config::egress::EgressPolicy {
                allow_private_addresses: false,
            },
            ..EnvOptions::default()
        },
    )
    .await;
    let tenant = env.tenant("Firm P").await;
    let admin = env.token(tenant, &["tenant_admin"]);
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/hook",
        "http://localhost/hook",
    ] {
        let (status, problem, _) = env
            .call(
                Method::POST,
                "/webhooks",
                Some(&admin),
                Some(&json!({ "url": url, "event_types": ["sync.failed"] })),
            )
            .await;
        assert_eq!(status, 422, "{url}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("url: ") && detail.contains("loopback, private, link-local"),
            "{detail}"
        );
    }
    for (body, detail) in [
        (
            json!({"url": "ftp://example.com/x", "event_types": ["sync.failed"]}),
            "url: 'ftp://example.com/x' is not an http:// or https:// URL with a host and without user info",
        ),
        (
            json!({"url": "https://user:pw@example.com/x", "event_types": ["sync.failed"]}),
            "url: 'https://user:pw@example.com/x' is not an http:// or https:// URL with a host and without user info",
        ),
        (
            json!({"url": "https://example.com/x", "event_types": []}),
            "event_types: name at least one event type",
        ),
    ] {
        let (status, problem, _) = env
            .call(Method::POST, "/webhooks", Some(&admin), Some(&body))
            .await;
        assert_eq!((status, problem["detail"].as_str()), (422, Some(detail)));
    }
    let (status, problem, _) = env
        .call(
            Method::POST,
            "/webhooks",
            Some(&admin),
            Some(&json!({"url": "https://example.com/x", "event_types": ["sync.maybe"]})),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("event_types: 'sync.maybe' is not an event type"),
        "{problem}"
    );
    assert_eq!(env.get("/webhooks", &admin).await, json!([]));
    env.finish().await;
}

/// At least once across a worker's death: the event is committed while no worker runs; a
/// worker process claims its delivery and is killed with SIGKILL while the receiver holds the
/// request; a second worker sends it again once the lease ends, with the same `webhook-id`,
/// so a consumer de-duplicating by it sees the event once. The log holds the one attempt that
/// was recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_delivery_leaves_the_event_to_another_with_the_same_id() {
    use crate::workers::worker_command;
    let env = TestEnv::start_with(
        small_params(94),
        EnvOptions {
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let tenant = env.tenant("Firm K").await;
    let admin = env.token(tenant, &["tenant_admin", "ops"]);
    let receiver = Receiver::start(vec![0]).await;
    let (endpoint, secret) =
        create_endpoint(&env, &admin, &receiver.url(), &["connection.paused"]).await;
    let connection = env
        .create_connection(&admin, &env.connection_body(tenant))
        .await;
    let (status, body, _) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/pause"),
            Some(&admin),
            Some(&json!({ "reason": "bank maintenance" })),
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    // Committed, not delivered: no worker runs.
    let events = env.get("/events?type=connection.paused", &admin).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "{events}");
    let event_id = events["events"][0]["id"].as_str().unwrap().to_owned();
    assert!(receiver.received().is_empty());

    let worker = |name: &str| {
        let mut command = worker_command(&env, name);
        command.env("EAM_WEBHOOKS__LEASE_SECS", "2");
        command.spawn().expect("eam work starts")
    };
    let mut first = worker("hooks-a");
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("webhook-id"), event_id);
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let log = env
        .get(&format!("/webhooks/{endpoint}/deliveries"), &admin)
        .await;
    assert_eq!(log["deliveries"][0]["status"], "pending", "{log}");
    assert_eq!(log["deliveries"][0]["attempts"], 0, "{log}");

    let _second = worker("hooks-b");
    let got = receiver.wait_for(2).await;
    let log = settled(&env, &admin, &endpoint).await;
    let d = &log["deliveries"][0];
    assert_eq!(d["status"], "succeeded", "{log}");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["log"][0]["status_code"], 200);
    let ids: std::collections::BTreeSet<&str> =
        got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(
        ids.len(),
        1,
        "a consumer de-duplicating by webhook-id sees it once"
    );
    assert!(got.iter().all(|r| python_verifies(&secret, r)));
    assert_eq!(got[1].json()["data"]["connection_id"], json!(connection));
    env.finish().await;
}

/// A real SMTP server for the test: PyPI's aiosmtpd writing each message into a maildir.
struct SmtpServer {
    port: u16,
    dir: std::path::PathBuf,
    child: std::process::Child,
}

impl SmtpServer {
    async fn start() -> SmtpServer {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir = std::env::temp_dir().join(format!("eam-maildir-{}", uuid::Uuid::new_v4()));
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (make test installs aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        SmtpServer { port, dir, child }
    }

    /// The messages received, as text, oldest first.
    fn messages(&self) -> Vec<String> {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(self.dir.join("new"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A message's decoded body parts (quoted-printable or base64, as lettre chose), via Python's
/// own e-mail parser.
fn parts(message: &str) -> Vec<(String, String)> {
    let script = "import email,sys,json\n\
        m=email.message_from_string(sys.stdin.read())\n\
        print(json.dumps([[p.get_content_type(), p.get_payload(decode=True).decode()] \
        for p in m.walk() if not p.is_multipart()]))\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), message.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice::<Vec<(String, String)>>(&out.stdout).unwrap()
}

/// E-mail to a real SMTP server: users subscribe to the types their roles allow (an advisor
/// may not have sync events); a failed sync reaches the subscribed ops user in the next
/// digest, not before, in one e-mail with a plain-text and an HTML part naming the run's
/// error, and nobody else; a dead sync reaches them at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_is_one_e_mail_in_the_digest_and_a_dead_one_goes_out_at_once() {
    use eam_worker::mailer::{MailSettings, Mailer, SmtpSecurity, send_due};
    let smtp = SmtpServer::start().await;
    let env = TestEnv::start(small_params(95)).await;
    let tenant = env.tenant("Firm M").await;
    let admin = env.token(tenant, &["tenant_admin"]);
    for (subject, email, role) in [
        ("user-ops", "ops@firm.example", "ops"),
        ("user-advisor", "adviser@firm.example", "advisor"),
    ] {
        let (status, body, _) = env
            .call(
                Method::POST,
                "/users",
                Some(&admin),
                Some(&json!({ "subject": subject, "email": email, "roles": [role] })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let ops = env.token(tenant, &["ops"]);
    let advisor = env.token(tenant, &["advisor"]);
    let (status, problem, _) = env
        .call(
            Method::PUT,
            "/me/notifications",
            Some(&advisor),
            Some(&json!({ "event_types": ["sync.failed"] })),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        problem["detail"],
        "event_types: 'sync.failed' is not one your roles may receive (break.opened, portfolio.updated, report.ready)"
    );
    let (status, mine, _) = env
        .call(
            Method::PUT,
            "/me/notifications",
            Some(&advisor),
            Some(&json!({ "event_types": ["report.ready"] })),
        )
        .await;
    assert_eq!(status, 200, "{mine}");
    let (status, mine, _) = env
        .call(
            Method::PUT,
            "/me/notifications",
            Some(&ops),
            Some(&json!({ "event_types": ["sync.failed", "sync.dead"] })),
        )
        .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["email"], "ops@firm.example");
    assert_eq!(env.get("/me/notifications", &ops).await, mine);

    let (_, job) = failed_sync(&env, &ops, tenant).await;

    let digest = eam_model::cron::CronSchedule::parse("0 7 * * *", "Europe/Zurich").unwrap();
    let mailer = Mailer::new(MailSettings {
        host: "127.0.0.1".into(),
        port: smtp.port,
        security: SmtpSecurity::None,
        credentials: None,
        from: "EAM Platform <notifications@eam.invalid>".parse().unwrap(),
        digest: digest.clone(),
        lease: Duration::from_secs(60),
        poll: Duration::from_secs(1),
        retry: Duration::from_secs(60),
        max_attempts: 3,
    })
    .unwrap();
    let now = Utc::now();
    let before = send_due(&env.store, &mailer, "test-mailer", now)
        .await
        .unwrap();
    assert_eq!(before.claimed, 0, "a failed sync waits for the digest");
    let seven = digest.upcoming(now, 1)[0].utc;
    let sent = send_due(&env.store, &mailer, "test-mailer", seven)
        .await
        .unwrap();
    assert_eq!((sent.claimed, sent.sent, sent.failed), (1, 1, 0));
    let again = send_due(
        &env.store,
        &mailer,
        "test-mailer",
        seven + chrono::Duration::minutes(1),
    )
    .await
    .unwrap();
    assert_eq!(again.claimed, 0, "sent once");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert!(m.contains("To: ops@firm.example"), "{m}");
    assert!(
        m.contains("Subject: [EAM] Firm M: 1 event since the last digest"),
        "{m}"
    );
    let parts = parts(m);
    let kinds: Vec<&str> = parts.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["text/plain", "text/html"]);
    let error = job["error"]["message"].as_str().unwrap();
    assert!(
        parts[0].1.contains("sync.failed: Sync of "),
        "{}",
        parts[0].1
    );
    assert!(parts[0].1.contains(error), "{}", parts[0].1);
    assert!(
        parts[1].1.contains("<td><code>sync.failed</code></td>"),
        "{}",
        parts[1].1
    );

    // A sync that ends dead: at once, whatever the digest time.
    let good = env
        .create_connection(&ops, &env.connection_body(tenant))
        .await;
    env.sim.faults().inject(FaultRule::new(
        "/",
        Fault::Status {
            status: 500,
            retry_after_secs: None,
        },
    ));
    let dead = env.sync_and_wait(&ops, &good).await;
    assert_eq!(dead["status"], "dead", "{dead}");
    env.sim.faults().clear();
    let urgent = send_due(&env.store, &mailer, "test-mailer", Utc::now())
        .await
        .unwrap();
    assert_eq!((urgent.claimed, urgent.sent), (1, 1));
    let messages = smtp.messages();
    assert_eq!(messages.len(), 2);
    assert!(
        messages[1].contains("gave up after its retries"),
        "{}",
        messages[1]
    );
    assert!(messages.iter().all(|m| !m.contains("adviser@firm.example")));
    env.finish().await;
}

/// `breaker.opened` / `breaker.closed`: reported by workers per endpoint, told to each tenant
/// with connections on that endpoint once per change of the endpoint as a whole (the first
/// worker's breaker opening, the last one closing or its worker stopping), naming the
/// tenant's connections; a tenant without connections there hears nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_is_one_event_per_tenant_until_the_last_worker_closes_it() {
    use eam_store::breakers::BreakerRow;
    let env = TestEnv::start(small_params(101)).await;
    let (a, b, c) = (
        env.tenant("Firm BA").await,
        env.tenant("Firm BB").await,
        env.tenant("Firm BC").await,
    );
    let (ta, tb, tc) = (
        env.token(a, &["ops"]),
        env.token(b, &["ops"]),
        env.token(c, &["ops"]),
    );
    for _ in 0..2 {
        env.create_connection(&ta, &env.connection_body(a)).await;
    }
    env.create_connection(&tb, &env.connection_body(b)).await;
    let endpoint = eam_model::endpoint_of(&env.sim.base_url());
    let report = |worker: &str, state: &str| {
        let open = state != "closed";
        let now = Utc::now();
        BreakerRow {
            endpoint: endpoint.clone(),
            worker_id: worker.into(),
            state: state.into(),
            consecutive_failures: if open { 5 } else { 0 },
            opened_at: open.then_some(now),
            open_until: open.then(|| now + chrono::Duration::seconds(30)),
            rejected_calls: 0,
            updated_at: now,
        }
    };
    let count = async |token: &str, kind: &str| -> Vec<Value> {
        env.get(&format!("/events?type={kind}"), token).await["events"]
            .as_array()
            .unwrap()
            .clone()
    };
    let tally = async |token: &str| -> (usize, usize) {
        (
            count(token, "breaker.opened").await.len(),
            count(token, "breaker.closed").await.len(),
        )
    };

    env.store
        .report_breakers(&[report("w-1", "open")])
        .await
        .unwrap();
    let opened = count(&ta, "breaker.opened").await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["subject"], format!("breaker:{endpoint}"));
    assert_eq!(opened[0]["data"]["endpoint"], endpoint.as_str());
    assert_eq!(opened[0]["data"]["custodian"], "bank_a");
    assert_eq!(opened[0]["data"]["workers_open"], 1);
    assert_eq!(
        opened[0]["data"]["connections"].as_array().unwrap().len(),
        2
    );
    assert_eq!(tally(&tb).await, (1, 0));
    assert_eq!(tally(&tc).await, (0, 0), "no connection on the endpoint");

    // A second worker's breaker opening, then the first one's closing: the endpoint stays
    // open, nothing new; half-open is not closed.
    for (worker, state) in [("w-2", "open"), ("w-1", "closed"), ("w-2", "half_open")] {
        env.store
            .report_breakers(&[report(worker, state)])
            .await
            .unwrap();
        assert_eq!(tally(&ta).await, (1, 0), "after {worker} {state}");
    }
    env.store
        .report_breakers(&[report("w-2", "closed")])
        .await
        .unwrap();
    assert_eq!(tally(&ta).await, (1, 1));
    assert_eq!(tally(&tb).await, (1, 1));
    let closed = count(&tb, "breaker.closed").await;
    assert_eq!(closed[0]["data"]["reason"], "the bank answers again");
    assert_eq!(closed[0]["data"]["workers_open"], 0);

    // Open again, then its worker stops (its rows go): closed, saying why.
    env.store
        .report_breakers(&[report("w-1", "open")])
        .await
        .unwrap();
    assert_eq!(tally(&ta).await, (2, 1));
    env.store.forget_breakers("w-1").await.unwrap();
    assert_eq!(tally(&ta).await, (2, 2));
    let closed = count(&ta, "breaker.closed").await;
    assert!(
        closed
            .iter()
            .any(|e| e["data"]["reason"] == "the worker whose breaker was open stopped"),
        "{closed:?}"
    );
    assert_eq!(tally(&tc).await, (0, 0));
    env.finish().await;
}
