//! Each fault kind over real HTTPS does what it says; budgets and counts are exact.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use eam_banksim::{Fault, FaultRule, RunningSim};
use eam_normalizer::bank_a::{DocumentKind, parse};
use serde_json::Value;

use crate::{error_chain, get, simulator, token, trusted_client};

const ACCOUNT: &str = "BA-000001-1";

/// Waits until `done` holds, failing the test after a few seconds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn transactions_path(account: &str) -> String {
    format!("/v1/accounts/{account}/transactions")
}

async fn send(
    http: &reqwest::Client,
    sim: &RunningSim,
    path: &str,
    token: &str,
) -> reqwest::Response {
    http.get(format!("{}{path}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("a response")
}

#[tokio::test]
async fn a_status_fault_answers_with_its_status_a_json_error_and_retry_after() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    sim.faults().inject(
        FaultRule::new(
            "/v1/accounts",
            Fault::Status {
                status: 503,
                retry_after_secs: Some(7),
            },
        )
        .times(1),
    );

    let refused = send(&http, &sim, "/v1/accounts", &token).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    let body: Value = refused.json().await.expect("a JSON error");
    assert_eq!(body["error"], "service_unavailable");
    assert!(body["message"].is_string(), "{body}");

    let served = send(&http, &sim, "/v1/accounts", &token).await;
    assert_eq!(served.status(), 200, "the rule expired after one answer");

    sim.faults().inject(
        FaultRule::new(
            "/oauth/token",
            Fault::Status {
                status: 429,
                retry_after_secs: None,
            },
        )
        .times(1),
    );
    let limited = http
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("a response");
    assert_eq!(limited.status(), 429);
    assert!(
        limited
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .is_none()
    );
    let body: Value = limited.json().await.expect("a JSON error");
    assert_eq!(body["error"], "too_many_requests");

    assert_eq!(sim.requests(), 4, "requests a fault answered count too");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_latency_fault_answers_normally_after_its_delay() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    let delay = Duration::from_millis(300);
    sim.faults().inject(
        FaultRule::new(
            "/v1/accounts",
            Fault::Latency {
                millis: u64::try_from(delay.as_millis()).expect("a small delay"),
            },
        )
        .times(1),
    );
    let started = Instant::now();
    let (status, body) = get(&http, &sim, "/v1/accounts?limit=3", &token).await;
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    assert_eq!(status, 200);
    let batch = parse(DocumentKind::Accounts, "bank_a", "accounts", &body).expect("parses");
    assert_eq!(batch.accounts.len(), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_hung_request_is_never_answered_so_the_client_times_out() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    sim.faults()
        .inject(FaultRule::new(transactions_path(ACCOUNT), Fault::Hang));
    let result = http
        .get(format!("{}{}", sim.base_url(), transactions_path(ACCOUNT)))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    let error = result.expect_err("a hung request gets no answer");
    assert!(error.is_timeout(), "{}", error_chain(&error));
    // Counted on arrival; waiting only absorbs a slow machine, the count must reach 1.
    eventually("the hung request was counted", || {
        sim.requests_to(&transactions_path(ACCOUNT)) == 1
    })
    .await;
    let (status, _) = get(&http, &sim, "/v1/accounts", &token).await;
    assert_eq!(status, 200, "other paths are unaffected");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_hung_request_is_released_with_a_503_when_the_simulator_shuts_down() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    sim.faults().inject(FaultRule::new("/v1", Fault::Hang));
    let url = format!("{}/v1/accounts", sim.base_url());
    let waiting = tokio::spawn(async move {
        http.get(url)
            .bearer_auth(token)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    eventually("the hung request arrived", || sim.requests_to("/v1") == 1).await;
    let started = Instant::now();
    sim.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown waited {:?} for the hung request",
        started.elapsed()
    );
    let status = waiting
        .await
        .expect("the client task completes")
        .expect("an answer at shutdown");
    assert_eq!(status, 503);
}

#[tokio::test]
async fn a_truncated_answer_is_half_the_body_with_a_matching_content_length() {
    let (sim, pki) = simulator().await;
    let http2 = trusted_client(&pki);
    // HTTP/1.1 frames the body by Content-Length alone: a wrong length would hang or fail.
    let http1 = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(&crate::read(&pki.ca_cert)).expect("CA certificate")
        ])
        .identity(
            reqwest::Identity::from_pem(
                &[crate::read(&pki.client_cert), crate::read(&pki.client_key)].concat(),
            )
            .expect("client identity"),
        )
        .http1_only()
        .build()
        .expect("HTTP/1.1 client");
    let token = token(&http2, &sim).await;
    let (_, whole) = get(&http2, &sim, "/v1/accounts?limit=5", &token).await;
    for (http, version) in [
        (&http2, reqwest::Version::HTTP_2),
        (&http1, reqwest::Version::HTTP_11),
    ] {
        sim.faults()
            .inject(FaultRule::new("/v1/accounts", Fault::Truncate).times(1));
        let response = send(http, &sim, "/v1/accounts?limit=5", &token).await;
        assert_eq!(response.version(), version);
        assert_eq!(response.status(), 200);
        let declared = response.content_length();
        let cut = response.bytes().await.expect("the framing is valid HTTP");
        assert_eq!(declared, Some(cut.len() as u64), "{version:?}");
        assert_eq!(cut.len(), whole.len() / 2, "{version:?}");
        assert!(whole.starts_with(&cut));
        assert!(serde_json::from_slice::<Value>(&cut).is_err());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_malformed_answer_is_navigable_json_the_parser_rejects_at_the_broken_field() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    for (path, kind, field) in [
        (
            format!("{}?limit=5", transactions_path(ACCOUNT)),
            DocumentKind::Transactions,
            "transactions[0].amount",
        ),
        (
            format!("/v1/accounts/{ACCOUNT}/positions?limit=2"),
            DocumentKind::Positions,
            "positions[0].quantity",
        ),
        (
            format!("/v1/accounts/{ACCOUNT}/balances"),
            DocumentKind::Balances,
            "balances[0].amount",
        ),
        (
            "/v1/accounts?limit=2".to_owned(),
            DocumentKind::Accounts,
            "accounts[0].currency",
        ),
    ] {
        sim.faults()
            .inject(FaultRule::new("/v1", Fault::Malformed).times(1));
        let (status, body) = get(&http, &sim, &path, &token).await;
        assert_eq!(status, 200, "{path}");
        let document: Value = serde_json::from_slice(&body).expect("well-formed JSON");
        if kind != DocumentKind::Accounts {
            assert_eq!(document["account_id"], ACCOUNT, "{path}");
        }
        if matches!(kind, DocumentKind::Transactions | DocumentKind::Accounts) {
            assert!(document["next_cursor"].is_string(), "{path}: {document}");
        }
        let error = parse(kind, "bank_a", &path, &body).expect_err("the parser refuses it");
        assert_eq!(error.field.as_deref(), Some(field), "{path}: {error}");
        assert!(error.to_string().contains("12,50"), "{path}: {error}");

        let (_, healthy) = get(&http, &sim, &path, &token).await;
        parse(kind, "bank_a", &path, &healthy).expect("the next answer is whole again");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_malformed_rule_is_not_used_up_by_answers_without_records() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    sim.faults()
        .inject(FaultRule::new("/", Fault::Malformed).times(1));
    let token = token(&http, &sim).await;
    let empty = format!(
        "{}?from=2000-01-01&to=2000-01-31",
        transactions_path(ACCOUNT)
    );
    let (status, body) = get(&http, &sim, &empty, &token).await;
    assert_eq!(status, 200);
    parse(DocumentKind::Transactions, "bank_a", &empty, &body).expect("an empty page is intact");
    assert_eq!(sim.faults().rules()[0].2, 0);

    let path = transactions_path(ACCOUNT);
    let (_, body) = get(&http, &sim, &path, &token).await;
    parse(DocumentKind::Transactions, "bank_a", &path, &body).expect_err("the first records");
    assert_eq!(sim.faults().rules()[0].2, 1);
    let (_, body) = get(&http, &sim, &path, &token).await;
    parse(DocumentKind::Transactions, "bank_a", &path, &body).expect("the rule is used up");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_duplicate_page_repeats_the_previous_page_first_and_loses_nothing() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    let rule = sim.faults().inject(FaultRule::new(
        transactions_path(ACCOUNT),
        Fault::DuplicatePage,
    ));
    let dataset = sim.dataset();
    let expected: Vec<String> = dataset
        .account(ACCOUNT)
        .expect("the account exists")
        .transactions
        .iter()
        .map(|t| t.transaction_id.clone())
        .collect();
    let plain_pages: Vec<&[String]> = expected.chunks(7).collect();

    let mut served_pages: Vec<Vec<String>> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{}?limit=7", transactions_path(ACCOUNT));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = get(&http, &sim, &path, &token).await;
        assert_eq!(status, 200);
        let batch = parse(DocumentKind::Transactions, "bank_a", &path, &body).expect("parses");
        served_pages.push(
            batch
                .transactions
                .into_iter()
                .map(|t| t.bank_reference.expect("an id"))
                .collect(),
        );
        let page: Value = serde_json::from_slice(&body).expect("JSON");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    assert_eq!(
        served_pages.len(),
        plain_pages.len(),
        "the cursors are unchanged"
    );
    assert_eq!(
        served_pages[0], plain_pages[0],
        "a first page has nothing to repeat"
    );
    for (i, served) in served_pages.iter().enumerate().skip(1) {
        assert_eq!(
            served,
            &[plain_pages[i - 1], plain_pages[i]].concat(),
            "page {i}"
        );
    }
    let seen: HashSet<&String> = served_pages.iter().flatten().collect();
    assert_eq!(seen, expected.iter().collect::<HashSet<_>>());
    let applied = sim.faults().rules()[0].2;
    assert_eq!(
        (sim.faults().rules()[0].0, applied as usize),
        (rule, plain_pages.len() - 1)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_reset_connection_fails_the_client_before_any_request_is_counted() {
    let (sim, pki) = simulator().await;
    sim.faults()
        .inject(FaultRule::new("/", Fault::ResetConnection).times(1));
    let result = trusted_client(&pki)
        .get(format!("{}/v1/accounts", sim.base_url()))
        .send()
        .await;
    let error = result.expect_err("the connection is reset");
    assert!(
        error.is_connect() || error.is_request(),
        "{}",
        error_chain(&error)
    );
    assert_eq!(sim.connections_accepted(), 1);
    assert_eq!(sim.requests(), 0);

    let http = trusted_client(&pki);
    token(&http, &sim).await;
    assert_eq!(
        sim.connections_accepted(),
        2,
        "the rule expired after one connection"
    );
    assert_eq!(sim.requests(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn skip_lets_the_first_requests_through_and_times_limits_the_rest() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let id = sim.faults().inject(
        FaultRule::new(
            "/oauth/token",
            Fault::Status {
                status: 500,
                retry_after_secs: None,
            },
        )
        .skip(1)
        .times(2),
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = http
            .post(format!("{}/oauth/token", sim.base_url()))
            .basic_auth(crate::CLIENT_ID, Some(crate::CLIENT_SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("a response");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 500, 500, 200]);
    let rules = sim.faults().rules();
    assert_eq!((rules[0].0, rules[0].2), (id, 2));
    assert_eq!(sim.requests_to("/oauth/token"), 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn requests_are_counted_under_each_path_prefix() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    for path in [
        "/v1/accounts".to_owned(),
        format!("/v1/accounts/{ACCOUNT}/balances"),
        transactions_path("BA-000001-2"),
        transactions_path("BA-000001-2"),
        "/v1/nowhere".to_owned(),
    ] {
        get(&http, &sim, &path, &token).await;
    }
    assert_eq!(sim.requests(), 6);
    assert_eq!(sim.requests_to("/"), 6);
    assert_eq!(sim.requests_to("/oauth/token"), 1);
    assert_eq!(sim.requests_to("/v1"), 5);
    assert_eq!(sim.requests_to("/v1/accounts"), 4);
    assert_eq!(sim.requests_to(&format!("/v1/accounts/{ACCOUNT}")), 1);
    assert_eq!(sim.requests_to(&transactions_path("BA-000001-2")), 2);
    assert_eq!(
        sim.requests_to("/v1/account"),
        0,
        "prefixes match whole segments"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn concurrent_requests_are_counted_exactly_and_share_a_fault_budget() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    sim.faults().inject(
        FaultRule::new(
            "/v1/accounts",
            Fault::Status {
                status: 503,
                retry_after_secs: Some(1),
            },
        )
        .times(10),
    );
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (http, token) = (http.clone(), token.clone());
        let url = format!("{}/v1/accounts?limit=1", sim.base_url());
        requests.spawn(async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = requests.join_next().await {
        statuses.push(done.expect("the task completes").expect("a response"));
    }
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 10);
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 30);
    assert_eq!(sim.requests_to("/v1/accounts"), 40);
    assert_eq!(sim.requests(), 41);
    assert_eq!(sim.faults().rules()[0].2, 10);
    sim.shutdown().await;
}
