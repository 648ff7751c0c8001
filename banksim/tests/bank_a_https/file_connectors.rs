//! The platform's bank_b and bank_c connectors against the simulator over mutual TLS: a
//! fetch returns every file once with its format, `after` returns only newer files, a wrong
//! API key is an auth error, and a file damaged in transit is a data error naming it.

use std::collections::HashSet;
use std::time::Duration;

use eam_banksim::pki::PkiPaths;
use eam_banksim::{Fault, FaultRule, RunningSim, StatementFile, iso_files, swift_files};
use eam_connectors::bank_b::{BankBClient, BankBConfig};
use eam_connectors::bank_c::{BankCClient, BankCConfig};
use eam_connectors::files::FetchedFiles;
use eam_connectors::{DocumentKind, ErrorClass, RetryPolicy, TlsIdentity};

use crate::file_banks::small_bank;
use crate::{CLIENT_SECRET, read, simulator_with};

fn identity(pki: &PkiPaths) -> TlsIdentity {
    TlsIdentity {
        client_cert_pem: read(&pki.client_cert),
        client_key_pem: read(&pki.client_key),
        ca_pem: read(&pki.ca_cert),
    }
}

/// No retries: every fault in these tests is meant to reach the caller as it is.
fn no_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
    }
}

fn bank_b(sim: &RunningSim, pki: &PkiPaths) -> BankBClient {
    BankBClient::new(BankBConfig {
        base_url: sim.bank_b_url(),
        tls: identity(pki),
        timeout: Duration::from_secs(10),
        retry: no_retries(),
        breaker: None,
        egress: eam_config::egress::EgressPolicy {
            allow_private_addresses: true,
        },
    })
    .expect("a bank_b client")
}

fn bank_c(sim: &RunningSim, pki: &PkiPaths, api_key: &str) -> BankCClient {
    BankCClient::new(BankCConfig {
        base_url: sim.bank_c_url(),
        api_key: api_key.to_owned(),
        tls: identity(pki),
        timeout: Duration::from_secs(10),
        retry: no_retries(),
        breaker: None,
        egress: eam_config::egress::EgressPolicy {
            allow_private_addresses: true,
        },
    })
    .expect("a bank_c client")
}

/// The fetched documents are the expected files, once each, in listing order, with their
/// listing data and untouched bytes.
fn assert_fetched(fetched: &FetchedFiles, expected: &[StatementFile]) {
    assert_eq!(fetched.documents.len(), expected.len());
    let ids: HashSet<&str> = fetched
        .documents
        .iter()
        .filter_map(|d| d.file.as_ref().map(|f| f.id.as_str()))
        .collect();
    assert_eq!(ids.len(), expected.len(), "every file once");
    for (document, file) in fetched.documents.iter().zip(expected) {
        let info = document
            .file
            .as_ref()
            .expect("a statement file names its file");
        assert_eq!(document.kind, DocumentKind::StatementFile);
        assert_eq!(document.page, 1);
        assert_eq!(info.id, file.id);
        assert_eq!(info.name, file.name);
        assert_eq!(info.format, file.format.as_str());
        assert_eq!(
            document.account_id.as_deref(),
            Some(file.account_id.as_str())
        );
        assert_eq!(document.name(), file.name);
        assert_eq!(document.body.as_ref(), file.bytes.as_slice());
    }
    assert_eq!(
        fetched.last_file_id.as_deref(),
        expected.last().map(|f| f.id.as_str())
    );
}

#[tokio::test]
async fn a_bank_b_fetch_returns_every_file_once_with_its_format() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let fetched = bank_b(&sim, &pki).fetch(None).await.expect("a fetch");
    assert_fetched(&fetched, &swift_files(&sim.dataset()));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bank_c_fetch_returns_every_file_once_with_its_format() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let fetched = bank_c(&sim, &pki, CLIENT_SECRET)
        .fetch(None)
        .await
        .expect("a fetch");
    assert_fetched(&fetched, &iso_files(&sim.dataset()));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_fetch_after_a_file_id_returns_only_newer_files() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let all = swift_files(&sim.dataset());
    let client = bank_b(&sim, &pki);
    let cut = all.len() / 3;
    let newer = client.fetch(Some(&all[cut].id)).await.expect("a fetch");
    assert_fetched(&newer, &all[cut + 1..]);
    let nothing = client
        .fetch(newer.last_file_id.as_deref())
        .await
        .expect("a fetch");
    assert!(nothing.documents.is_empty());
    assert_eq!(nothing.last_file_id, None, "nothing new: no cursor to move");

    let iso = iso_files(&sim.dataset());
    let newer = bank_c(&sim, &pki, CLIENT_SECRET)
        .fetch(Some(&iso[cut].id))
        .await
        .expect("a fetch");
    assert_fetched(&newer, &iso[cut + 1..]);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_api_key_for_bank_c_is_an_auth_error() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let error = bank_c(&sim, &pki, "not-the-key")
        .fetch(None)
        .await
        .expect_err("the key is refused");
    assert_eq!(error.class(), ErrorClass::Auth, "{error}");
    assert!(error.to_string().contains("401"), "{error}");
    assert!(!error.to_string().contains("not-the-key"), "{error}");
    assert_eq!(
        sim.requests_to("/bank-c"),
        1,
        "an auth error is not retried"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_truncated_file_is_a_data_error_naming_the_file() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let file = &swift_files(&sim.dataset())[3];
    sim.faults()
        .inject(FaultRule::new(format!("/bank-b/files/{}", file.id), Fault::Truncate).times(1));
    let error = bank_b(&sim, &pki)
        .fetch(None)
        .await
        .expect_err("a cut file is refused");
    assert_eq!(error.class(), ErrorClass::Data, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&file.name) && message.contains(&file.id),
        "{message}"
    );
    assert!(message.contains("bytes"), "{message}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_file_damaged_in_transit_is_a_data_error_naming_the_file() {
    let (sim, pki) = simulator_with(small_bank()).await;
    let file = &iso_files(&sim.dataset())[2];
    sim.faults()
        .inject(FaultRule::new(format!("/bank-c/files/{}", file.id), Fault::Malformed).times(1));
    let error = bank_c(&sim, &pki, CLIENT_SECRET)
        .fetch(None)
        .await
        .expect_err("a damaged file is refused");
    assert_eq!(error.class(), ErrorClass::Data, "{error}");
    let message = error.to_string();
    assert!(message.contains(&file.name), "{message}");
    assert!(message.contains("SHA-256"), "{message}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_listing_the_bank_cannot_deliver_is_retried_as_transient() {
    let (sim, pki) = simulator_with(small_bank()).await;
    sim.faults().inject(
        FaultRule::new(
            "/bank-b/files",
            Fault::Status {
                status: 503,
                retry_after_secs: None,
            },
        )
        .times(1),
    );
    let error = bank_b(&sim, &pki)
        .fetch(None)
        .await
        .expect_err("no retries here");
    assert_eq!(error.class(), ErrorClass::Transient, "{error}");
    let fetched = bank_b(&sim, &pki).fetch(None).await.expect("the next try");
    assert_fetched(&fetched, &swift_files(&sim.dataset()));
    sim.shutdown().await;
}
