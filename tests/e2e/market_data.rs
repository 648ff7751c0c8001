//! Market data end to end: the simulator's ECB reference rates fetched over mTLS with the
//! platform's identity, archived, loaded idempotently, and served by `GET /fx-rates` against
//! any base with their dates, sources and staleness.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use eam_connectors::market_data::EcbFile;
use eam_connectors::{Breakers, RetryPolicy};
use eam_model::cron::CronSchedule;
use eam_store::archive::Archive;
use eam_worker::market_data::{MarketData, PLATFORM};
use eam_worker::tick::{MarketDataFire, tick_market_data};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::kit::{Firm, TestEnv, breaker_settings, market_data_settings, small_params};

pub(crate) fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string: {v}"))
        .parse()
        .expect("decimal")
}

fn market_settings(env: &TestEnv) -> eam_config::MarketDataSettings {
    market_data_settings(&env.sim, &env.pki)
}

/// Loads the simulator's whole rate history.
pub(crate) async fn load_rates(env: &TestEnv) {
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
    let accounts: Vec<&str> = data
        .accounts
        .iter()
        .filter(|a| a.client_reference == client_reference)
        .map(|a| a.account_id.as_str())
        .collect();
    simulator_accounts_valuation(data, &accounts, date, target)
}

/// [`simulator_valuation`] of the simulator's accounts `accounts`, whichever client they are.
pub(crate) fn simulator_accounts_valuation(
    data: &eam_banksim::dataset::Dataset,
    accounts: &[&str],
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
        .filter(|a| accounts.contains(&a.account_id.as_str()))
    {
        for p in data.positions_as_of(&account.account_id, date) {
            let local = eam_banksim::dataset::gross_value(&p.security, p.quantity, p.price)
                + p.accrued_interest.unwrap_or_default();
            total += to_target(local, p.price_currency);
        }
        if let Some(closing) = data
            .balances_as_of(&account.account_id, date)
            .into_iter()
            .filter(|b| b.kind == "closing" && b.as_of <= date)
            .max_by_key(|b| b.as_of)
        {
            total += to_target(closing.amount, closing.currency);
        }
    }
    total
}

pub(crate) fn cents(d: Decimal) -> Decimal {
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
            mfa_at: None,
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

/// Polls a market-data run until it leaves queued/running, within a deadline.
async fn wait_for_market_run(env: &TestEnv, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = env.get(&format!("/market-data/runs/{id}"), token).await;
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} still {}",
            run["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn counts(run: &Value) -> (i64, i64, i64) {
    let c = &run["counts"];
    (
        c["inserted"].as_i64().unwrap(),
        c["updated"].as_i64().unwrap(),
        c["unchanged"].as_i64().unwrap(),
    )
}

/// The platform's market-data schedule, ticked by two schedulers at the same simulated
/// moment: one run for the scheduled time, run as a job by the worker; with no rate stored it
/// loads the whole history, the next scheduled time the daily file (nothing new), and a
/// manual run of the history loads nothing new either. Ops and platform admins list the
/// runs; an advisor may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_market_data_runs_once_per_time_as_a_job_then_daily_and_by_hand() {
    let env = TestEnv::start(small_params(93)).await;
    let tenant = env.tenant("Platform ops").await;
    let ops = env.token(tenant, &["ops"]);
    let admin = env.token(tenant, &["platform_admin"]);
    let data = env.sim.dataset();
    let history_rates = (data.fx_days().len() * 4) as i64;
    let schedule = CronSchedule::parse("30 16 * * 1-5", "Europe/Berlin").unwrap();
    let catch_up = Duration::from_secs(12 * 3600);

    // Friday 16:30 in Frankfurt is 15:30 UTC; two schedulers a minute later, each on its own
    // pool, at the same time.
    let friday = utc("2026-11-20T15:30:00Z");
    let now = friday + chrono::Duration::minutes(1);
    let other = env.db.app_store().await;
    let (a, b) = tokio::join!(
        tick_market_data(&env.store, &schedule, catch_up, now),
        tick_market_data(&other, &schedule, catch_up, now),
    );
    let fires = [a.unwrap(), b.unwrap()];
    let enqueued: Vec<_> = fires
        .iter()
        .filter_map(|f| match f {
            MarketDataFire::Enqueued(run, at) => Some((*run, *at)),
            _ => None,
        })
        .collect();
    assert_eq!(enqueued.len(), 1, "one scheduler queued the run: {fires:?}");
    let run = enqueued[0];
    assert_eq!(run.1, friday);
    // The other found it handled: by the key, or already by the latest time recorded.
    assert!(
        fires.iter().any(|f| matches!(
            f,
            MarketDataFire::AlreadyHandled(_) | MarketDataFire::NotDue
        )),
        "{fires:?}"
    );
    // The key itself: the same time again inserts nothing.
    assert_eq!(
        eam_store::market_data_runs::fire(&other, friday)
            .await
            .unwrap(),
        None
    );
    // The next minute's tick finds the time handled.
    assert_eq!(
        tick_market_data(
            &env.store,
            &schedule,
            catch_up,
            now + chrono::Duration::minutes(1)
        )
        .await
        .unwrap(),
        MarketDataFire::NotDue
    );

    let first = wait_for_market_run(&env, &ops, &run.0.to_string()).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["trigger"], "schedule");
    assert_eq!(utc(first["scheduled_for"].as_str().unwrap()), friday);
    assert_eq!(first["file"], "history", "no rate was stored yet");
    assert_eq!(first["rates"], history_rates);
    assert_eq!(counts(&first), (history_rates, 0, 0));
    assert_eq!(first["error"], Value::Null);
    let sha = first["document_sha256"].as_str().unwrap();
    let kept = env
        .archive
        .get(&Archive::key(PLATFORM, sha), sha)
        .await
        .expect("the document is archived under the platform");
    assert!(kept.starts_with(b"<?xml"));

    // Monday's time: the daily file, already loaded.
    let monday = utc("2026-11-23T15:30:00Z");
    let MarketDataFire::Enqueued(second, _) =
        tick_market_data(&env.store, &schedule, catch_up, monday)
            .await
            .unwrap()
    else {
        panic!("Monday's time is due");
    };
    let second = wait_for_market_run(&env, &ops, &second.to_string()).await;
    assert_eq!(
        (second["status"].as_str(), second["file"].as_str()),
        (Some("succeeded"), Some("daily")),
        "{second}"
    );
    assert_eq!(counts(&second), (0, 0, 4));

    // By hand: the history again inserts nothing.
    let (status, queued, headers) = env
        .call(
            Method::POST,
            "/market-data/runs",
            Some(&admin),
            Some(&serde_json::json!({ "file": "history" })),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap();
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("/api/v1/market-data/runs/{id}")
    );
    assert_eq!(queued["trigger"], "manual");
    let manual = wait_for_market_run(&env, &ops, id).await;
    assert_eq!(manual["status"], "succeeded", "{manual}");
    assert_eq!(manual["requested_by"], "user-platform_admin");
    assert_eq!(counts(&manual), (0, 0, history_rates));
    assert_eq!(manual["document_sha256"], first["document_sha256"]);

    // Ops list them newest first; a wrong file is a 400; an advisor may do neither.
    let page = env.get("/market-data/runs?limit=2", &ops).await;
    let ids: Vec<&str> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id, second["id"].as_str().unwrap()]);
    let older = env
        .get(
            &format!(
                "/market-data/runs?cursor={}",
                page["next_cursor"].as_str().unwrap()
            ),
            &ops,
        )
        .await;
    assert_eq!(older["runs"][0]["id"], first["id"]);
    assert_eq!(older["next_cursor"], Value::Null);
    let (status, problem, _) = env
        .call(
            Method::POST,
            "/market-data/runs",
            Some(&ops),
            Some(&serde_json::json!({ "file": "weekly" })),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    let advisor = env.token(tenant, &["advisor"]);
    for (method, path) in [
        (Method::GET, "/market-data/runs"),
        (Method::POST, "/market-data/runs"),
    ] {
        let (status, _, _) = env
            .call(method, path, Some(&advisor), Some(&serde_json::json!({})))
            .await;
        assert_eq!(status, 403, "{path}");
    }
    env.finish().await;
}

/// One price as the API lists it, or as the simulator knows it: (bank security id, date,
/// kind, price, type, currency).
type PriceKey = (String, String, String, Decimal, String, String);

/// The prices a bank_a sync of the whole simulated bank reports: each custody position's price
/// on the end date (one per security: the bank prices a security once a day) and each trade's
/// deal price on its trade date.
fn simulator_prices(data: &eam_banksim::dataset::Dataset) -> Vec<PriceKey> {
    let end = data.params.end_date;
    let mut positions = std::collections::BTreeSet::new();
    let mut trades = Vec::new();
    for account in &data.accounts {
        for p in data.positions_as_of(&account.account_id, end) {
            positions.insert((
                p.security.bank_security_id.clone(),
                end.to_string(),
                "position".to_owned(),
                p.price,
                p.price_type.to_owned(),
                p.price_currency.to_owned(),
            ));
        }
        for t in &account.transactions {
            let (Some(security), Some(price)) = (&t.security, t.price) else {
                continue;
            };
            if !matches!(t.kind, "buy" | "sell") {
                continue;
            }
            trades.push((
                security.bank_security_id.clone(),
                t.trade_date.unwrap_or(t.booking_date).to_string(),
                "trade".to_owned(),
                price,
                security.price_type.to_owned(),
                t.currency.to_owned(),
            ));
        }
    }
    let mut all: Vec<PriceKey> = positions.into_iter().chain(trades).collect();
    all.sort();
    all
}

/// Every security id the API shows for the tenant's accounts (holdings and transactions), with
/// its bank security id.
async fn security_ids(env: &TestEnv, token: &str) -> std::collections::BTreeMap<String, String> {
    let mut ids = std::collections::BTreeMap::new();
    let accounts = env.get("/accounts", token).await;
    for a in accounts.as_array().unwrap() {
        let account = a["id"].as_str().unwrap();
        let held = env
            .get(&format!("/holdings?account_id={account}"), token)
            .await;
        for h in held["holdings"].as_array().unwrap() {
            ids.insert(
                h["security"]["id"].as_str().unwrap().to_owned(),
                h["security"]["bank_security_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let txs = env
            .get(
                &format!("/transactions?account_id={account}&limit=500"),
                token,
            )
            .await;
        assert_eq!(txs["next_cursor"], Value::Null);
        for t in txs["transactions"].as_array().unwrap() {
            if let Some(id) = t["security_id"].as_str() {
                ids.insert(
                    id.to_owned(),
                    t["bank_security_id"].as_str().unwrap().to_owned(),
                );
            }
        }
    }
    ids
}

/// Prices from a bank sync: every position price and trade price equal to the simulator's to
/// the last decimal, with type, currency and source; a resync inserts none; a date range
/// narrows them; bad dates are a 400; another tenant's security is a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_after_a_sync_equal_the_simulators_and_a_resync_inserts_none() {
    let env = TestEnv::start(small_params(94)).await;
    let firm = env.firm("Firm A", &["ops", "advisor"]).await;
    let (token, connection) = (firm.token.clone(), firm.connection.clone());
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let data = env.sim.dataset();
    let want = simulator_prices(&data);
    assert!(
        want.iter().any(|p| p.2 == "trade" && p.4 == "percent"),
        "a bond trade"
    );
    assert_eq!(
        job["counts"]["prices"]["inserted"].as_u64(),
        Some(want.len() as u64),
        "{}",
        job["counts"]
    );

    let securities = security_ids(&env, &token).await;
    let mut got: Vec<PriceKey> = Vec::new();
    for (id, bank_id) in &securities {
        let page = env.get(&format!("/securities/{id}/prices"), &token).await;
        assert_eq!(page["next_cursor"], Value::Null);
        for p in page["prices"].as_array().unwrap() {
            assert_eq!(p["source"]["source"], "bank:bank_a", "{p}");
            assert_eq!(p["source"]["connection_id"], connection.as_str());
            assert_eq!(
                p["source"]["transaction_id"].is_string(),
                p["source"]["kind"] == "trade"
            );
            got.push((
                bank_id.clone(),
                p["date"].as_str().unwrap().to_owned(),
                p["source"]["kind"].as_str().unwrap().to_owned(),
                dec(&p["price"]),
                p["price_type"].as_str().unwrap().to_owned(),
                p["currency"].as_str().unwrap().to_owned(),
            ));
        }
    }
    got.sort();
    assert_eq!(got, want);

    // A resync reports the same prices: nothing inserted or changed.
    let again = env.sync_and_wait(&token, &connection).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(
        again["counts"]["prices"]["inserted"], 0,
        "{}",
        again["counts"]
    );
    assert_eq!(again["counts"]["prices"]["updated"], 0);

    // A date range; bad dates.
    let (id, _) = securities.iter().next().unwrap();
    let end = data.params.end_date;
    let day = env
        .get(
            &format!("/securities/{id}/prices?from={end}&to={end}"),
            &token,
        )
        .await;
    assert!(
        day["prices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["date"] == end.to_string())
    );
    for query in [
        "from=2026-13-01",
        "to=yesterday",
        "from=2026-11-20&to=2026-11-01",
    ] {
        let (status, problem, headers) = env
            .call(
                Method::GET,
                &format!("/securities/{id}/prices?{query}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 400, "{query}: {problem}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/problem+json"),
            "{query}"
        );
    }

    // A client user: the prices of what its client holds or traded, deal prices of its own
    // trades only; a security only other clients hold or traded does not exist for it.
    let Firm { tenant, .. } = &firm;
    let clients = env.get("/clients", &token).await;
    let client = clients[0]["id"].as_str().unwrap();
    let client_token = env
        .issuer
        .sign(&eam_auth::TokenRequest {
            subject: "client-user".into(),
            tenant_id: tenant.0,
            roles: vec!["client".into()],
            client_id: Some(uuid::Uuid::parse_str(client).unwrap()),
            ttl: Duration::from_secs(600),
            mfa_at: None,
        })
        .expect("sign");
    let own = security_ids(&env, &client_token).await;
    let mut own_trades = std::collections::BTreeSet::new();
    for a in env
        .get("/accounts", &client_token)
        .await
        .as_array()
        .unwrap()
    {
        let txs = env
            .get(
                &format!(
                    "/transactions?account_id={}&limit=500",
                    a["id"].as_str().unwrap()
                ),
                &client_token,
            )
            .await;
        for t in txs["transactions"].as_array().unwrap() {
            own_trades.insert(t["id"].as_str().unwrap().to_owned());
        }
    }
    for id in own.keys() {
        let page = env
            .get(&format!("/securities/{id}/prices"), &client_token)
            .await;
        for p in page["prices"].as_array().unwrap() {
            if let Some(trade) = p["source"]["transaction_id"].as_str() {
                assert!(own_trades.contains(trade), "another client's trade: {p}");
            }
        }
    }
    let others: Vec<&String> = securities
        .keys()
        .filter(|s| !own.contains_key(*s))
        .collect();
    assert!(
        !others.is_empty(),
        "some security only the other client has"
    );
    for id in others {
        let (status, _, _) = env
            .call(
                Method::GET,
                &format!("/securities/{id}/prices"),
                Some(&client_token),
                None,
            )
            .await;
        assert_eq!(status, 404, "{id}");
    }

    // Another tenant's advisor: the security does not exist for it.
    let other = env.tenant("Firm B").await;
    let stranger = env.token(other, &["advisor"]);
    let (status, problem, _) = env
        .call(
            Method::GET,
            &format!("/securities/{id}/prices"),
            Some(&stranger),
            None,
        )
        .await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(problem["detail"], format!("security {id} not found"));
    env.finish().await;
}
