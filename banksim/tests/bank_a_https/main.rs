//! The simulator over real HTTPS: mutual TLS at the handshake, OAuth, bearer checks, paging;
//! fault injection and request counting in `faults`, the admin API in `admin`, the file banks
//! (bank_b, bank_c) in `file_banks`, and the platform's own bank_b/bank_c connectors against
//! them in `file_connectors`.

mod admin;
mod faults;
mod file_banks;
mod file_connectors;

use std::path::PathBuf;

use chrono::NaiveDate;
use eam_banksim::dataset::SimParams;
use eam_banksim::pki::{PkiPaths, ensure_pki};
use eam_banksim::{RunningSim, SimConfig, start};
use eam_normalizer::bank_a::{DocumentKind, parse};
use serde_json::Value;

const CLIENT_ID: &str = "eam-test-client";
const CLIENT_SECRET: &str = "s3cret-for-tests";

fn pki() -> PkiPaths {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // Shared by every test of this binary (and any concurrent run): ensure_pki must cope.
    let dir: PathBuf = std::env::temp_dir()
        .join("eam-banksim-https-tests")
        .join("pki");
    ensure_pki(&dir).expect("test PKI")
}

async fn simulator() -> (RunningSim, PkiPaths) {
    simulator_with(SimParams {
        transactions_per_account: 45,
        ..SimParams::demo(NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"))
    })
    .await
}

async fn simulator_with(params: SimParams) -> (RunningSim, PkiPaths) {
    let pki = pki();
    let sim = start(SimConfig {
        params,
        pki: pki.clone(),
        bind: "127.0.0.1:0".parse().expect("address"),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
    })
    .await
    .expect("simulator starts");
    (sim, pki)
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A client that trusts only the PKI's CA and presents `identity` (cert, key) if given.
fn client(
    pki: &PkiPaths,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&read(&pki.ca_cert)).expect("CA certificate");
    let mut builder = reqwest::Client::builder().tls_certs_only([ca]);
    if let Some((cert, key)) = identity {
        let pem = [read(cert), read(key)].concat();
        builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("client identity"));
    }
    builder.build().expect("HTTP client")
}

/// The error and its sources, joined: the TLS alert sits at the bottom of the chain.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(" <- ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn trusted_client(pki: &PkiPaths) -> reqwest::Client {
    client(pki, Some((&pki.client_cert, &pki.client_key)))
}

async fn token(http: &reqwest::Client, sim: &RunningSim) -> String {
    let response = http
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("token JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

async fn get(http: &reqwest::Client, sim: &RunningSim, path: &str, token: &str) -> (u16, Vec<u8>) {
    let response = http
        .get(format!("{}{path}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn a_client_with_a_certificate_from_the_ca_gets_a_token_and_a_page() {
    let (sim, pki) = simulator().await;
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    let (status, body) = get(&http, &sim, "/v1/accounts?limit=4", &token).await;
    assert_eq!(status, 200);
    let batch = parse(DocumentKind::Accounts, "bank_a", "accounts/1", &body).expect("parses");
    let expected: Vec<_> = sim
        .dataset()
        .accounts
        .iter()
        .take(4)
        .map(|a| a.account_id.clone())
        .collect();
    let served: Vec<_> = batch
        .accounts
        .iter()
        .map(|a| a.bank_account_id.clone())
        .collect();
    assert_eq!(served, expected);
    let page: Value = serde_json::from_slice(&body).expect("JSON");
    assert!(page["next_cursor"].is_string());
    assert_eq!(sim.requests(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_at_the_tls_handshake() {
    let (sim, pki) = simulator().await;
    let result = client(&pki, None)
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await;
    let error = result.expect_err("the server must refuse a client without a certificate");
    assert!(
        error_chain(&error).contains("CertificateRequired"),
        "{}",
        error_chain(&error)
    );
    assert_eq!(sim.requests(), 0, "the refusal happens before HTTP");
    assert_eq!(sim.connections_accepted(), 1, "but after the TCP accept");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_client_with_a_certificate_from_another_ca_is_refused_at_the_tls_handshake() {
    let (sim, pki) = simulator().await;
    let rogue = client(&pki, Some((&pki.rogue_client_cert, &pki.rogue_client_key)));
    let result = rogue
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await;
    let error = result.expect_err("the server must refuse a certificate from another CA");
    assert!(
        error_chain(&error).contains("UnknownCA"),
        "{}",
        error_chain(&error)
    );
    assert_eq!(sim.requests(), 0, "the refusal happens before HTTP");
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_are_an_invalid_client_and_other_grants_a_bad_request() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let url = format!("{}/oauth/token", sim.base_url());
    let wrong = http
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", "guess"),
        ])
        .send()
        .await
        .expect("response");
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_client");

    let basic = http
        .post(&url)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("response");
    assert_eq!(
        basic.status(),
        200,
        "credentials in HTTP Basic are accepted"
    );

    let password_grant = http
        .post(&url)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .expect("response");
    assert_eq!(password_grant.status(), 400);
    let body: Value = password_grant.json().await.expect("JSON");
    assert_eq!(body["error"], "unsupported_grant_type");
    sim.shutdown().await;
}

#[tokio::test]
async fn v1_requires_a_bearer_token_issued_by_the_token_endpoint() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let anonymous = http
        .get(format!("{}/v1/accounts", sim.base_url()))
        .send()
        .await
        .expect("response");
    assert_eq!(anonymous.status(), 401);
    let (status, body) = get(&http, &sim, "/v1/accounts", "made-up-token").await;
    assert_eq!(status, 401);
    let body: Value = serde_json::from_slice(&body).expect("JSON error");
    assert_eq!(body["error"], "unauthorized");
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_accounts_are_404_and_bad_parameters_400_as_json() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    for (path, expected) in [
        ("/v1/accounts/BA-999999-1/balances", 404),
        ("/v1/accounts/BA-000001-1/transactions?limit=5000", 400),
        (
            "/v1/accounts/BA-000001-1/transactions?cursor=not-a-cursor",
            400,
        ),
        ("/v1/accounts/BA-000001-1/positions?as_of=2026-11-21", 400),
        ("/v1/accounts/BA-000001-1/transactions?from=20.11.2026", 400),
    ] {
        let (status, body) = get(&http, &sim, path, &token).await;
        assert_eq!(status, expected, "{path}");
        let body: Value = serde_json::from_slice(&body).expect("JSON error");
        assert!(body["message"].is_string(), "{path}: {body}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn paging_over_https_returns_every_transaction_once_and_counts_each_request() {
    let (sim, pki) = simulator().await;
    let http = trusted_client(&pki);
    let token = token(&http, &sim).await;
    let dataset = sim.dataset();
    let account = &dataset.accounts[0];
    let mut served = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/v1/accounts/{}/transactions?limit=7", account.account_id);
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = get(&http, &sim, &path, &token).await;
        assert_eq!(status, 200);
        pages += 1;
        let batch = parse(DocumentKind::Transactions, "bank_a", &path, &body).expect("parses");
        served.extend(
            batch
                .transactions
                .into_iter()
                .map(|t| t.bank_reference.expect("id")),
        );
        let page: Value = serde_json::from_slice(&body).expect("JSON");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<_> = account
        .transactions
        .iter()
        .map(|t| t.transaction_id.clone())
        .collect();
    assert_eq!(served, expected);
    assert_eq!(pages, 45usize.div_ceil(7));
    assert_eq!(sim.requests(), 1 + pages as u64);
    sim.shutdown().await;
}

#[tokio::test]
async fn after_shutdown_the_port_no_longer_answers() {
    let (sim, pki) = simulator().await;
    let url = sim.base_url();
    sim.shutdown().await;
    let result = trusted_client(&pki)
        .get(format!("{url}/v1/accounts"))
        .send()
        .await;
    assert!(result.is_err());
}
