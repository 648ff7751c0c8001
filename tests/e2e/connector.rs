//! The bank_a connector against the simulator over real mTLS: what it fetches, and how each
//! way of being refused is classified.

use std::time::Duration;

use eam_connectors::PositionHistory;
use eam_connectors::bank_a::{BankAClient, BankAConfig};
use eam_connectors::market_data::{EcbClient, EcbConfig, EcbFile};
use eam_connectors::{ConnectorError, DocumentKind, ErrorClass, RetryPolicy, TlsIdentity};

use crate::kit::{CLIENT_ID, CLIENT_SECRET, TestSim, small_params};

fn read(p: &std::path::Path) -> Vec<u8> {
    std::fs::read(p).expect("PKI file")
}

fn client(base_url: &str, secret: &str, tls: TlsIdentity) -> BankAClient {
    BankAClient::new(BankAConfig {
        base_url: base_url.to_owned(),
        client_id: CLIENT_ID.into(),
        client_secret: secret.into(),
        tls,
        timeout: Duration::from_secs(10),
        retry: RetryPolicy::default(),
        breaker: None,
        egress: eam_config::egress::EgressPolicy {
            allow_private_addresses: true,
        },
    })
    .expect("client builds")
}

async fn fetch_error(client: &BankAClient) -> ConnectorError {
    client
        .fetch(None, PositionHistory::default())
        .await
        .expect_err("the bank refuses us")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_takes_one_token_and_every_page_once() {
    let sim = TestSim::start(small_params(21)).await;
    let data = sim.sim.dataset();
    let fetched = client(&sim.sim.base_url(), CLIENT_SECRET, sim.identity())
        .fetch(None, PositionHistory::default())
        .await
        .expect("fetch");
    let accounts = data.accounts.len();
    let count = |kind| fetched.documents.iter().filter(|d| d.kind == kind).count();
    // 30 transactions and 5 positions per account fit in one page each.
    assert_eq!(count(DocumentKind::Accounts), 1);
    assert_eq!(count(DocumentKind::Positions), accounts);
    assert_eq!(count(DocumentKind::Balances), accounts);
    assert_eq!(count(DocumentKind::Transactions), accounts);
    assert_eq!(fetched.documents[0].name(), "accounts/page-1");
    // One token request, then exactly one request per document.
    assert_eq!(sim.sim.requests(), 1 + fetched.documents.len() as u64);
}

/// With a position history, each account's daily positions and balances of the days before
/// the current one come too, after the latest one held, each page named apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_history_asks_for_each_day_after_the_latest_held() {
    let sim = TestSim::start(small_params(23)).await;
    let data = sim.sim.dataset();
    let end = data.params.end_date;
    let client = client(&sim.sim.base_url(), CLIENT_SECRET, sim.identity());
    let days = |from: chrono::NaiveDate| from.iter_days().take_while(|d| *d < end).count();
    let history = PositionHistory {
        days: 10,
        after: None,
    };
    let fetched = client.fetch(None, history).await.expect("fetch");
    let positions: Vec<_> = fetched
        .documents
        .iter()
        .filter(|d| d.kind == DocumentKind::Positions)
        .collect();
    let per_account = 1 + days(end - chrono::Days::new(10));
    assert_eq!(per_account, 11);
    assert_eq!(positions.len(), data.accounts.len() * per_account);
    let balances = fetched
        .documents
        .iter()
        .filter(|d| d.kind == DocumentKind::Balances)
        .count();
    assert_eq!(balances, data.accounts.len() * per_account);
    let names: std::collections::HashSet<String> = positions.iter().map(|d| d.name()).collect();
    assert_eq!(names.len(), positions.len(), "every page is named apart");
    // Each page says its date; the first is the current snapshot, then oldest to newest.
    let first_account = positions[0].account_id.clone();
    let dates: Vec<String> = positions
        .iter()
        .filter(|d| d.account_id == first_account)
        .map(|d| {
            let page: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
            page["as_of"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(dates[0], end.to_string());
    let mut history_dates = dates[1..].to_vec();
    history_dates.sort();
    assert_eq!(history_dates, dates[1..].to_vec());
    assert!(
        dates[1..]
            .iter()
            .all(|d| d.as_str() < end.to_string().as_str())
    );

    // Held up to two days ago: only the day after it.
    let after = end - chrono::Days::new(2);
    let later = client
        .fetch(
            Some(end),
            PositionHistory {
                days: 10,
                after: Some(after),
            },
        )
        .await
        .expect("fetch");
    let count = later
        .documents
        .iter()
        .filter(|d| d.kind == DocumentKind::Positions)
        .count();
    assert_eq!(count, data.accounts.len() * 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_by_the_bank_is_an_auth_error_and_a_dead_bank_is_transient() {
    let sim = TestSim::start(small_params(22)).await;
    let url = sim.sim.base_url();
    let good = sim.identity();

    let no_cert = TlsIdentity {
        client_cert_pem: vec![],
        client_key_pem: vec![],
        ..good.clone()
    };
    let e = fetch_error(&client(&url, CLIENT_SECRET, no_cert)).await;
    assert_eq!(e.class(), ErrorClass::Auth, "{e}");
    assert!(e.to_string().contains("CertificateRequired"), "{e}");

    let rogue = TlsIdentity {
        client_cert_pem: read(&sim.pki.rogue_client_cert),
        client_key_pem: read(&sim.pki.rogue_client_key),
        ..good.clone()
    };
    let e = fetch_error(&client(&url, CLIENT_SECRET, rogue)).await;
    assert_eq!(e.class(), ErrorClass::Auth, "{e}");

    // Without the custodian's CA the bank's certificate is not trusted: we refuse it.
    let system_roots = TlsIdentity {
        ca_pem: vec![],
        ..good.clone()
    };
    let e = fetch_error(&client(&url, CLIENT_SECRET, system_roots)).await;
    assert_eq!(e.class(), ErrorClass::Auth, "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");

    let e = fetch_error(&client(&url, "wrong-secret", good.clone())).await;
    assert!(
        matches!(e, ConnectorError::Unauthorized { status: 401, .. }),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Auth);
    assert_eq!(sim.sim.requests(), 1, "only the token request reached HTTP");

    let half_key = TlsIdentity {
        client_key_pem: vec![],
        ..good.clone()
    };
    let e = BankAClient::new(BankAConfig {
        base_url: url.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        tls: half_key,
        timeout: Duration::from_secs(1),
        retry: RetryPolicy::default(),
        breaker: None,
        egress: eam_config::egress::EgressPolicy {
            allow_private_addresses: true,
        },
    })
    .err()
    .expect("a certificate without its key is refused");
    assert_eq!(e.class(), ErrorClass::Auth);

    // A bank that is gone: connection refused, transient.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        )
    };
    let e = fetch_error(&client(&dead, CLIENT_SECRET, good)).await;
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
}

fn ecb(base_url: &str, tls: TlsIdentity) -> EcbClient {
    EcbClient::new(EcbConfig {
        base_url: base_url.to_owned(),
        tls,
        timeout: Duration::from_secs(10),
        retry: RetryPolicy::default(),
        breaker: None,
        egress: eam_config::egress::EgressPolicy {
            allow_private_addresses: true,
        },
    })
    .expect("client builds")
}

/// The market-data feed over mTLS: the daily file holds the dataset's last business day, the
/// history every business day, each rate exactly the simulator's; without a client
/// certificate the feed refuses us (auth).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ecb_reference_rates_arrive_over_mtls_exactly_as_the_simulator_set_them() {
    let sim = TestSim::start(small_params(23)).await;
    let data = sim.sim.dataset();
    let client = ecb(&sim.sim.ecb_url(), sim.identity());
    let days = data.fx_days();
    let currencies = data.fx_currencies();
    assert_eq!(currencies, ["CHF", "GBP", "JPY", "USD"]);
    // 20 calendar days hold 14 or 15 business days.
    assert!((14..=15).contains(&days.len()), "{days:?}");

    let daily = client.fetch(EcbFile::Daily).await.expect("daily");
    assert_eq!(
        (daily.kind, daily.name()),
        (DocumentKind::ReferenceRates, "eurofxref-daily.xml".into())
    );
    let parsed = eam_normalizer::ecb::parse(&daily.name(), &daily.body).expect("parses");
    let last = *days.last().unwrap();
    let expected: Vec<(String, chrono::NaiveDate, rust_decimal::Decimal)> = currencies
        .iter()
        .map(|c| (c.to_string(), last, data.fx_rate(c, last).unwrap()))
        .collect();
    let got: Vec<_> = parsed
        .rates
        .iter()
        .map(|r| (r.currency.as_str().to_owned(), r.date, r.per_eur))
        .collect();
    assert_eq!(got, expected);

    let history = client.fetch(EcbFile::History).await.expect("history");
    let parsed = eam_normalizer::ecb::parse(&history.name(), &history.body).expect("parses");
    assert_eq!(parsed.rates.len(), days.len() * currencies.len());
    for r in &parsed.rates {
        assert_eq!(
            Some(r.per_eur),
            data.fx_rate(r.currency.as_str(), r.date),
            "{r:?}"
        );
    }
    assert_eq!(
        parsed.rates.first().map(|r| r.date),
        days.first().copied(),
        "oldest first"
    );

    let no_cert = TlsIdentity {
        client_cert_pem: vec![],
        client_key_pem: vec![],
        ..sim.identity()
    };
    let e = ecb(&sim.sim.ecb_url(), no_cert)
        .fetch(EcbFile::Daily)
        .await
        .expect_err("refused");
    assert_eq!(e.class(), ErrorClass::Auth, "{e}");
}
