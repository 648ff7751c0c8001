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

use crate::kit::{Firm, TestEnv, breaker_settings, market_data_settings, small_params};

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string: {v}"))
        .parse()
        .expect("decimal")
}

fn market_settings(env: &TestEnv) -> eam_config::MarketDataSettings {
    market_data_settings(&env.sim, &env.pki)
}

/// Loads the simulator's whole rate history.
async fn load_rates(env: &TestEnv) {
    let settings = market_settings(env);
    let breakers = Breakers::new(breaker_settings());
    MarketData {
        settings: &settings,
        secrets: &env.secrets,
        breakers: &breakers,
        timeout: Duration::from_secs(10),
        retry: RetryPolicy::default(),
        egress: eam_config::egress::EgressPolicy {
            allow_private_addresses: true,
        },
    }
    .sync(&env.store, &env.archive, EcbFile::History)
    .await
    .expect("history loads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_rates_load_once_and_convert_through_eur_with_their_dates() {
    let env = TestEnv::start(small_params(91)).await;
    let settings = market_settings(&env);
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

/// The simulator's own valuation of a client's accounts on `date` in `target`: each position
/// at the simulator's price (percent of face / 100) plus accrued interest, each account's
/// closing cash, converted with the simulator's rates of the latest business day on or before
/// `date`.
fn simulator_valuation(
    data: &eam_banksim::dataset::Dataset,
    client_reference: &str,
    date: chrono::NaiveDate,
    target: &str,
) -> Decimal {
    let fx_day = *data
        .fx_days()
        .iter()
        .rfind(|d| **d <= date)
        .expect("a rate day");
    let per_eur = |c: &str| {
        if c == "EUR" {
            Decimal::ONE
        } else {
            data.fx_rate(c, fx_day).expect("quoted")
        }
    };
    let to_target = |amount: Decimal, from: &str| amount * per_eur(target) / per_eur(from);
    let mut total = Decimal::ZERO;
    for account in data
        .accounts
        .iter()
        .filter(|a| a.client_reference == client_reference)
    {
        for p in data.positions_as_of(&account.account_id, date) {
            let local = eam_banksim::dataset::gross_value(&p.security, p.quantity, p.price)
                + p.accrued_interest.unwrap_or_default();
            total += to_target(local, p.price_currency);
        }
        if let Some(closing) = data
            .balances(&account.account_id)
            .into_iter()
            .filter(|b| b.kind == "closing" && b.as_of <= date)
            .max_by_key(|b| b.as_of)
        {
            total += to_target(closing.amount, closing.currency);
        }
    }
    total
}

fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointNearestEven)
}

/// A client with custody and cash accounts in several currencies, synced from bank_a, valued
/// in CHF (its reporting currency) and in USD on request: equal to the simulator's own
/// valuation to the cent; every line carries its rate; a client user sees only its own client
/// and account; an unknown currency is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_valuation_equals_the_simulators_to_the_cent_in_any_currency() {
    let env = TestEnv::start(small_params(92)).await;
    load_rates(&env).await;
    let Firm {
        tenant,
        token,
        connection,
    } = env
        .firm("Firm A", &["ops", "advisor", "tenant_admin"])
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let data = env.sim.dataset();
    let date = data.params.end_date;

    let clients = env.get("/clients", &token).await;
    let client = &clients.as_array().expect("clients")[0];
    let id = client["id"].as_str().unwrap().to_owned();
    let reference = client["reference"].as_str().unwrap().to_owned();
    let (status, _, _) = env
        .call(
            Method::PATCH,
            &format!("/clients/{id}"),
            Some(&token),
            Some(&serde_json::json!({ "reporting_currency": "CHF" })),
        )
        .await;
    assert_eq!(status, 200);

    let chf = env
        .get(&format!("/clients/{id}/valuation?as_of={date}"), &token)
        .await;
    assert_eq!(chf["currency"], "CHF", "{chf}");
    let want = simulator_valuation(&data, &reference, date, "CHF");
    assert_eq!(dec(&chf["total_presented"]), cents(want), "{chf}");
    assert_eq!(cents(dec(&chf["total"])), cents(want));
    assert_eq!(chf["stale"], false);
    let lines = chf["lines"].as_array().unwrap();
    let accounts = data
        .accounts
        .iter()
        .filter(|a| a.client_reference == reference)
        .count();
    assert_eq!(chf["accounts"], accounts);
    assert!(lines.iter().any(|l| l["kind"] == "position"));
    assert!(lines.iter().any(|l| l["kind"] == "cash"));
    // Figures in more than one currency were converted (the client holds several).
    assert!(chf["by_currency"].as_array().unwrap().len() >= 2, "{chf}");
    for l in lines {
        assert!(l["value"].is_string(), "{l}");
        let local = l["local_currency"].as_str().unwrap();
        let sources = &l["fx"]["sources"];
        // CHF needs no rate, EUR one (CHF's), others two (theirs and CHF's).
        if local == "CHF" {
            assert_eq!(sources, &serde_json::json!([]), "{l}");
        } else if local == "EUR" {
            assert_eq!(sources, &serde_json::json!(["ecb"]), "{l}");
        } else {
            assert_eq!(sources, &serde_json::json!(["ecb", "ecb"]), "{l}");
        }
    }
    let slices: Decimal = chf["by_custodian"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| dec(&s["value"]))
        .sum();
    assert_eq!(slices, dec(&chf["total"]));

    let usd = env
        .get(
            &format!("/clients/{id}/valuation?as_of={date}&currency=USD"),
            &token,
        )
        .await;
    assert_eq!(
        dec(&usd["total_presented"]),
        cents(simulator_valuation(&data, &reference, date, "USD"))
    );

    // One account alone, as its client's user sees it; another client's account is a 404.
    let client_token = env
        .issuer
        .sign(&eam_auth::TokenRequest {
            subject: "client-user".into(),
            tenant_id: tenant.0,
            roles: vec!["client".into()],
            client_id: Some(uuid::Uuid::parse_str(&id).unwrap()),
            ttl: Duration::from_secs(600),
        })
        .expect("sign");
    let own = env.get("/accounts", &client_token).await;
    let own_account = own[0]["id"].as_str().unwrap().to_owned();
    let single = env
        .get(
            &format!("/accounts/{own_account}/valuation?as_of={date}"),
            &client_token,
        )
        .await;
    assert_eq!(single["currency"], "CHF");
    assert_eq!(single["accounts"], 1);
    let other = clients.as_array().unwrap()[1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, _) = env
        .call(
            Method::GET,
            &format!("/clients/{other}/valuation"),
            Some(&client_token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, problem, _) = env
        .call(
            Method::GET,
            &format!("/clients/{id}/valuation?currency=XXY"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (400, Some("currency: 'XXY' is not an ISO 4217 currency"))
    );
    env.finish().await;
}
