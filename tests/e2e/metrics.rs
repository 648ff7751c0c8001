//! `/metrics`: what a scrape shows after real requests and syncs, value for value.
//!
//! Every test has a system of its own, with metrics of its own (no process-global registry),
//! so the values asserted are exact even with the other tests running in the same process.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::kit::{EnvOptions, Firm, TestEnv, small_params};

const DEADLINE: Duration = Duration::from_secs(60);

/// One sample of a scrape: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed Prometheus text exposition (version 0.0.4).
#[derive(Debug)]
pub(crate) struct Scrape {
    samples: Vec<Sample>,
    /// Metric family name -> type, from the `# TYPE` lines.
    types: BTreeMap<String, String>,
}

impl Scrape {
    /// Parses the exposition; panics on a line that is not valid text format.
    fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        let mut types = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|e| panic!("{line}: {e}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels end with }");
                    (name.to_owned(), parse_labels(body))
                }
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        let scrape = Scrape { samples, types };
        for s in &scrape.samples {
            assert!(
                scrape.family_of(&s.name).is_some(),
                "{} has no # TYPE line",
                s.name
            );
        }
        scrape
    }

    /// The family a sample belongs to (histograms add _bucket, _sum, _count).
    fn family_of<'a>(&self, sample: &'a str) -> Option<&'a str> {
        if self.types.contains_key(sample) {
            return Some(sample);
        }
        ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| sample.strip_suffix(suffix))
            .find(|f| self.types.get(*f).is_some_and(|t| t == "histogram"))
    }

    /// Samples of `name` whose labels include all of `labels`.
    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The value of the one sample of `name` with exactly these labels, if present.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<_> = self
            .matching(name, labels)
            .filter(|s| s.labels.len() == labels.len())
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} twice: {found:?}");
        found.first().map(|s| s.value)
    }

    /// Like [`Scrape::value`], a missing sample being 0 (a counter never incremented).
    pub(crate) fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }

    /// The sum of every sample of `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }
}

/// `a="x",b="y"` into a map (values may hold escaped quotes and commas).
fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => match chars.next().expect("escaped char").1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The API's root URL (the kit's `api` is its `/api/v1`).
fn root(env: &TestEnv) -> &str {
    env.api.trim_end_matches("/api/v1")
}

async fn scrape_url(http: &reqwest::Client, url: &str) -> Scrape {
    let resp = http.get(url).send().await.expect("metrics reachable");
    assert_eq!(resp.status(), 200, "GET {url}");
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape::parse(&resp.text().await.expect("body"))
}

pub(crate) async fn scrape(env: &TestEnv) -> Scrape {
    scrape_url(&env.http, &format!("{}/metrics", root(env))).await
}

/// Scrapes until `check` holds, or panics at the deadline with the last scrape.
pub(crate) async fn scrape_until(
    env: &TestEnv,
    what: &str,
    check: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let s = scrape(env).await;
        if check(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: not seen in {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Triggers a sync and polls its job until it ends; returns the job and how many GETs of
/// the job answered 200.
async fn sync_counting_polls(env: &TestEnv, token: &str, connection: &str) -> (Value, u32) {
    let (status, accepted, _) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/sync"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let run = accepted["run_id"].as_str().expect("run id").to_owned();
    let deadline = Instant::now() + DEADLINE;
    let mut polls = 0;
    loop {
        let (status, job, _) = env
            .call(Method::GET, &format!("/jobs/{run}"), Some(token), None)
            .await;
        assert_eq!(status, 200, "{job}");
        polls += 1;
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            return (job, polls);
        }
        assert!(
            Instant::now() < deadline,
            "job {run} still {}",
            job["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_is_counted_by_custodian_outcome_and_records_loaded_by_kind() {
    let env = TestEnv::start_with(
        small_params(801),
        EnvOptions {
            // The test PKI's client certificate lives a year: within this window it is at risk.
            certificate_warning_days: 400,
            ..EnvOptions::default()
        },
    )
    .await;
    let Firm {
        token, connection, ..
    } = env.firm("Metrics SA", &["ops", "advisor", "support"]).await;

    let before = scrape(&env).await;
    assert_eq!(before.sum("eam_sync_attempts_total", &[]), 0.0);
    assert_eq!(
        before.value(
            "eam_sync_runs_active",
            &[("custodian", "bank_a"), ("state", "queued")]
        ),
        Some(0.0),
        "every custodian and state is shown, zeros included"
    );

    let (job, polls) = sync_counting_polls(&env, &token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let run = job["id"].as_str().expect("run id").to_owned();

    // Two unknown runs under the job route's template, two paths that match no route.
    let missing = uuid::Uuid::new_v4();
    for _ in 0..2 {
        let (status, _, _) = env
            .call(Method::GET, &format!("/jobs/{missing}"), Some(&token), None)
            .await;
        assert_eq!(status, 404);
    }
    for path in [
        format!("{}/api/v1/no-such-thing/{missing}", root(&env)),
        format!("{}/nothing/here", root(&env)),
    ] {
        let resp = env.http.get(&path).send().await.expect("API reachable");
        assert_eq!(resp.status(), 404, "{path}");
    }

    // The dispatcher reports the worker's breaker within a tick or two.
    let s = scrape_until(&env, "the breaker reported", |s| {
        s.sum("eam_circuit_breakers_reported", &[("state", "closed")]) == 1.0
    })
    .await;

    // Sync attempts and their duration, by custodian and outcome: exactly one.
    let bank_a_ok = [("custodian", "bank_a"), ("outcome", "succeeded")];
    assert_eq!(s.value("eam_sync_attempts_total", &bank_a_ok), Some(1.0));
    assert_eq!(s.sum("eam_sync_attempts_total", &[]), 1.0);
    assert_eq!(
        s.value("eam_sync_duration_seconds_count", &bank_a_ok),
        Some(1.0)
    );
    assert!(
        s.value("eam_sync_duration_seconds_sum", &bank_a_ok)
            .unwrap()
            > 0.0
    );
    let mut inf = bank_a_ok.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(s.value("eam_sync_duration_seconds_bucket", &inf), Some(1.0));

    // Records loaded, by kind and effect: the run's own counts.
    let counts = &job["counts"];
    let mut loaded = 0.0;
    for (kind, key) in [
        ("clients", "clients"),
        ("accounts", "accounts"),
        ("securities", "securities"),
        ("positions", "positions"),
        ("cash_balances", "balances"),
        ("transactions", "transactions"),
        ("prices", "prices"),
    ] {
        for effect in ["inserted", "updated", "unchanged"] {
            let expected = counts[key][effect].as_f64().expect("a count");
            let labels = [("custodian", "bank_a"), ("kind", kind), ("effect", effect)];
            assert_eq!(
                s.value("eam_records_loaded_total", &labels),
                Some(expected),
                "{kind} {effect}: run counts {counts}"
            );
            loaded += expected;
        }
    }
    assert!(
        counts["transactions"]["inserted"].as_f64().unwrap() > 0.0,
        "{counts}"
    );
    assert_eq!(
        s.value(
            "eam_records_loaded_total",
            &[
                ("custodian", "bank_a"),
                ("kind", "positions"),
                ("effect", "closed")
            ]
        ),
        counts["positions_closed"].as_f64()
    );
    assert_eq!(
        s.sum("eam_records_loaded_total", &[]),
        loaded + counts["positions_closed"].as_f64().unwrap()
    );

    // HTTP requests by route template and status, never by raw path.
    let job_route = [
        ("method", "GET"),
        ("route", "/api/v1/jobs/{id}"),
        ("status", "200"),
    ];
    assert_eq!(
        s.value("eam_http_requests_total", &job_route),
        Some(polls as f64)
    );
    assert_eq!(
        s.value("eam_http_request_duration_seconds_count", &job_route),
        Some(polls as f64)
    );
    assert_eq!(
        s.value(
            "eam_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/api/v1/jobs/{id}"),
                ("status", "404")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        s.value(
            "eam_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/api/v1/connections/{id}/sync"),
                ("status", "202")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "eam_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/api/v1/connections"),
                ("status", "201")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "eam_http_requests_total",
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
        ),
        Some(2.0),
        "paths that match no route share one label"
    );
    for sample in s.matching("eam_http_requests_total", &[]) {
        let route = &sample.labels["route"];
        for id in [&connection, &run, &missing.to_string()] {
            assert!(!route.contains(id.as_str()), "a raw path as label: {route}");
        }
    }

    // Queue depth: nothing left queued or running.
    assert_eq!(s.sum("eam_sync_runs_active", &[]), 0.0);
    // The connection's certificate, read by the sync, expires within the warning window.
    let cert = |custodian, status| {
        s.value(
            "eam_client_certificates_at_risk",
            &[("custodian", custodian), ("status", status)],
        )
    };
    assert_eq!(cert("bank_a", "expiring"), Some(1.0));
    assert_eq!(cert("bank_a", "expired"), Some(0.0));
    assert_eq!(cert("bank_b", "expiring"), Some(0.0));
    // This process's breaker for the simulator: closed.
    let endpoint_of = |state| s.sum("eam_circuit_breaker_state", &[("state", state)]);
    assert_eq!(
        (
            endpoint_of("closed"),
            endpoint_of("half_open"),
            endpoint_of("open")
        ),
        (1.0, 0.0, 0.0)
    );
    // Every platform source answered.
    assert_eq!(s.sum("eam_scrape_error", &[]), 0.0);
    assert_eq!(s.matching("eam_scrape_error", &[]).count(), 3);

    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_429_is_counted_under_the_limit_that_refused_it() {
    let env = TestEnv::start_with(
        small_params(802),
        EnvOptions {
            security: eam_api::security::SecuritySettings {
                tenant_per_second: 1,
                tenant_burst: 8,
                user_per_second: 1,
                user_burst: 3,
                ..EnvOptions::default().security
            },
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let tenant = env.tenant("Busy SA").await;
    let alice = env.token(tenant, &["advisor"]);

    // Alice runs into her own limit (3); what her limit refuses spends nothing of the
    // tenant's, so other users, three requests each, then run into the tenant's (8). Limits
    // refill once a second, so the 429s are tallied as they come, by the limit each names.
    let mut refused: BTreeMap<String, f64> = BTreeMap::new();
    let mut answered = 0.0;
    let user = |n: usize| {
        env.issuer
            .sign(&eam_auth::TokenRequest {
                subject: format!("busy-{n}"),
                tenant_id: tenant.0,
                roles: vec!["ops".into()],
                client_id: None,
                ttl: Duration::from_secs(600),
                mfa_at: None,
            })
            .unwrap()
    };
    for limit in ["3", "8"] {
        let mut hit = 0;
        'calls: for n in 0..40 {
            let token = if limit == "3" {
                alice.clone()
            } else {
                user(n / 3)
            };
            let (status, body, headers) = env.call(Method::GET, "/me", Some(&token), None).await;
            if status == 429 {
                let named = headers["ratelimit-limit"].to_str().unwrap().to_owned();
                *refused.entry(named.clone()).or_default() += 1.0;
                if named == limit {
                    hit += 1;
                    if hit == 2 {
                        break 'calls;
                    }
                }
            } else {
                assert_eq!(status, 200, "{body}");
                answered += 1.0;
            }
        }
        assert_eq!(hit, 2, "two 429s from the limit of {limit}: {refused:?}");
    }

    let s = scrape(&env).await;
    assert_eq!(
        s.count("eam_rate_limited_requests_total", &[("scope", "user")]),
        refused.get("3").copied().unwrap_or(0.0)
    );
    assert_eq!(
        s.count("eam_rate_limited_requests_total", &[("scope", "tenant")]),
        refused.get("8").copied().unwrap_or(0.0)
    );
    let me = |status| {
        s.count(
            "eam_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/api/v1/me"),
                ("status", status),
            ],
        )
    };
    assert_eq!(me("429"), refused.values().sum::<f64>());
    assert_eq!(me("200"), answered);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_depth_counts_every_tenants_runs_queued_waiting_and_running() {
    // No worker: a triggered sync stays queued.
    let env = TestEnv::start_with(
        small_params(803),
        EnvOptions {
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let mut runs = Vec::new();
    let mut tokens = Vec::new();
    for firm in ["Firm A", "Firm B"] {
        let tenant = env.tenant(firm).await;
        let token = env.token(tenant, &["ops", "support"]);
        let connection = env
            .create_connection(&token, &env.connection_body(tenant))
            .await;
        let (status, accepted, _) = env
            .call(
                Method::POST,
                &format!("/connections/{connection}/sync"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        runs.push(accepted["run_id"].as_str().expect("run id").to_owned());
        tokens.push(token);
    }
    let depth = |s: &Scrape, state| {
        s.value(
            "eam_sync_runs_active",
            &[("custodian", "bank_a"), ("state", state)],
        )
    };

    // Both tenants' runs, though the app role sees one tenant at a time.
    let s = scrape(&env).await;
    assert_eq!(depth(&s, "queued"), Some(2.0));
    assert_eq!(depth(&s, "waiting"), Some(0.0));
    assert_eq!(depth(&s, "running"), Some(0.0));
    assert_eq!(
        s.sum("eam_sync_runs_active", &[("custodian", "bank_b")]),
        0.0
    );

    // A run whose next attempt is later (as after a transient failure) is waiting, not queued.
    let mut owner = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.owner_url)
        .await
        .expect("owner connection");
    sqlx::query(
        "UPDATE sync_runs SET next_attempt_at = now() + interval '1 hour' WHERE id = $1::uuid",
    )
    .bind(&runs[1])
    .execute(&mut owner)
    .await
    .expect("postpone the run");
    let s = scrape(&env).await;
    assert_eq!(depth(&s, "queued"), Some(1.0));
    assert_eq!(depth(&s, "waiting"), Some(1.0));

    // A cancelled run leaves the queue.
    let (status, body, _) = env
        .call(
            Method::POST,
            &format!("/jobs/{}/cancel", runs[0]),
            Some(&tokens[0]),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let s = scrape(&env).await;
    assert_eq!(depth(&s, "queued"), Some(0.0));
    assert_eq!(depth(&s, "waiting"), Some(1.0));
    // No sync ran in this process, and it has no worker whose breakers it could show.
    assert_eq!(s.sum("eam_sync_attempts_total", &[]), 0.0);
    assert_eq!(s.matching("eam_circuit_breaker_state", &[]).count(), 0);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_serves_its_own_metrics() {
    let env = TestEnv::start_with(
        small_params(804),
        EnvOptions {
            in_process_worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let name = "metrics-worker";
    let mut worker = crate::workers::spawn_worker(&env, name);
    // It binds a free port (worker.metrics_bind = 127.0.0.1:0) and logs it.
    let log = crate::workers::worker_log(&env, name);
    let deadline = Instant::now() + DEADLINE;
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let found = text
            .lines()
            .filter(|l| l.contains("worker metrics listening"))
            .find_map(|l| {
                let at = l.find("127.0.0.1:")?;
                let port: String = l[at + "127.0.0.1:".len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                (!port.is_empty()).then(|| format!("127.0.0.1:{port}"))
            });
        if let Some(addr) = found {
            break addr;
        }
        assert!(Instant::now() < deadline, "no metrics address in {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let health = env
        .http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .expect("worker health");
    assert_eq!(health.status(), 200);

    let Firm {
        token, connection, ..
    } = env.firm("Worker SA", &["ops", "advisor"]).await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    let worker_url = format!("http://{addr}/metrics");
    let s = scrape_url(&env.http, &worker_url).await;
    assert_eq!(
        s.value(
            "eam_sync_attempts_total",
            &[("custodian", "bank_a"), ("outcome", "succeeded")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "eam_records_loaded_total",
            &[
                ("custodian", "bank_a"),
                ("kind", "accounts"),
                ("effect", "inserted")
            ]
        ),
        job["counts"]["accounts"]["inserted"].as_f64()
    );
    assert_eq!(
        s.sum("eam_circuit_breaker_state", &[("state", "closed")]),
        1.0
    );
    // The platform gauges are the API's: a fleet of workers would repeat them.
    assert_eq!(s.matching("eam_sync_runs_active", &[]).count(), 0);
    // The API process ran no sync: its metrics are its own.
    let api = scrape(&env).await;
    assert_eq!(api.sum("eam_sync_attempts_total", &[]), 0.0);

    worker.start_kill().expect("stop the worker");
    let _ = worker.wait().await;
    env.finish().await;
}

#[test]
fn the_exposition_parser_reads_labels_with_escapes() {
    let s = Scrape::parse(
        "# TYPE a_total counter\na_total 1\n\
         # TYPE h histogram\nh_bucket{x=\"q\\\"uo,te\",le=\"+Inf\"} 2\nh_count{x=\"y\"} 2\n",
    );
    assert_eq!(
        s.value("h_bucket", &[("x", "q\"uo,te"), ("le", "+Inf")]),
        Some(2.0)
    );
    assert_eq!(s.value("h_count", &[("x", "y")]), Some(2.0));
    assert_eq!(s.count("h_count", &[("x", "z")]), 0.0);
}
