//! Market data end to end: the simulator's ECB reference rates fetched over mTLS with the
//! platform's identity, archived, loaded idempotently, and served by `GET /fx-rates` against
//! any base with their dates, sources and staleness.

use std::time::Duration;

use eam_connectors::market_data::EcbFile;
use eam_connectors::{Breakers, RetryPolicy};
use eam_store::archive::Archive;
use eam_worker::market_data::{MarketData, PLATFORM};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::kit::{TestEnv, breaker_settings, small_params};

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string: {v}"))
        .parse()
        .expect("decimal")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_rates_load_once_and_convert_through_eur_with_their_dates() {
    let env = TestEnv::start(small_params(91)).await;
    let settings = eam_config::MarketDataSettings {
        ecb_url: env.sim.ecb_url(),
        client_cert_ref: TestEnv::file_ref(&env.pki.client_cert),
        client_key_ref: TestEnv::file_ref(&env.pki.client_key),
        ca_cert_ref: TestEnv::file_ref(&env.pki.ca_cert),
        stale_after_business_days: 3,
    };
    let breakers = Breakers::new(breaker_settings());
    let market = MarketData {
        settings: &settings,
        secrets: &env.secrets,
        breakers: &breakers,
        timeout: Duration::from_secs(10),
        retry: RetryPolicy::default(),
        egress: eam_config::egress::EgressPolicy {
            allow_private_addresses: true,
        },
    };
    let data = env.sim.dataset();
    let days = data.fx_days();
    let expected_rates = days.len() * 4;

    let first = market
        .sync(&env.store, &env.archive, EcbFile::History)
        .await
        .expect("history loads");
    assert_eq!(first.rates, expected_rates);
    assert_eq!(
        (
            first.loaded.inserted,
            first.loaded.updated,
            first.loaded.unchanged
        ),
        (expected_rates as u64, 0, 0)
    );
    // The file is kept as received, under the platform's namespace of the archive.
    let kept = env
        .archive
        .get(&Archive::key(PLATFORM, &first.sha256), &first.sha256)
        .await
        .expect("archived");
    assert!(kept.starts_with(b"<?xml"));
    // Loading again changes nothing; the daily file is contained in the history.
    let again = market
        .sync(&env.store, &env.archive, EcbFile::History)
        .await
        .unwrap();
    assert_eq!(
        (
            again.loaded.inserted,
            again.loaded.updated,
            again.loaded.unchanged
        ),
        (0, 0, expected_rates as u64)
    );
    let daily = market
        .sync(&env.store, &env.archive, EcbFile::Daily)
        .await
        .unwrap();
    assert_eq!(
        (daily.rates, daily.loaded.inserted, daily.loaded.unchanged),
        (4, 0, 4)
    );

    // Any caller reads the rates: a client user of a tenant.
    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["client"]);
    let last = *days.last().unwrap();
    let rate = |c: &str| data.fx_rate(c, last).unwrap();
    let answer = env
        .get(&format!("/fx-rates?date={last}&base=CHF"), &token)
        .await;
    assert_eq!(answer["base"], "CHF");
    assert_eq!(answer["missing"], serde_json::json!([]));
    let rates = answer["rates"].as_array().unwrap();
    let codes: Vec<&str> = rates
        .iter()
        .map(|r| r["currency"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["EUR", "GBP", "JPY", "USD"]);
    let usd = &rates[3];
    // 1 CHF in USD = per_eur(USD) / per_eur(CHF), both of the last business day, from the ECB.
    assert_eq!(dec(&usd["rate"]), rate("USD") / rate("CHF"));
    assert_eq!(usd["stale"], false);
    let legs: Vec<(String, String, String)> = usd["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["currency"].as_str().unwrap().to_owned(),
                l["date"].as_str().unwrap().to_owned(),
                l["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        legs,
        [
            ("CHF".to_owned(), last.to_string(), "ecb".to_owned()),
            ("USD".to_owned(), last.to_string(), "ecb".to_owned())
        ]
    );
    assert_eq!(dec(&rates[0]["rate"]), Decimal::ONE / rate("CHF"));

    // Ten days later the same rates are stale, and said to be.
    let later = last + chrono::Duration::days(10);
    let stale = env.get(&format!("/fx-rates?date={later}"), &token).await;
    assert!(
        stale["rates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["stale"] == true),
        "{stale}"
    );
    // Before the first rate there is none, and each currency says why.
    let first_day = days[0] - chrono::Duration::days(1);
    let before = env
        .get(&format!("/fx-rates?date={first_day}"), &token)
        .await;
    assert_eq!(before["rates"], serde_json::json!([]));
    assert_eq!(
        before["missing"][0]["reason"],
        format!("no CHF rate on or before {first_day}")
    );
    // A base that is no currency: 400 problem+json.
    let (status, problem, _) = env
        .call(Method::GET, "/fx-rates?base=EURO", Some(&token), None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        problem["detail"],
        "base: 'EURO' is not an ISO 4217 currency"
    );

    env.finish().await;
}
