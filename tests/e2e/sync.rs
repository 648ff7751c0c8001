//! The spine end to end: a sync triggered through the API loads exactly the bank's data.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use eam_banksim::dataset::Dataset;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::kit::{Firm, TestEnv, end_date, small_params};

fn dec(v: &Value) -> Option<Decimal> {
    v.as_str()
        .map(|s| Decimal::from_str(s).unwrap_or_else(|e| panic!("'{s}' is not a decimal: {e}")))
}

fn date(v: &Value) -> Option<NaiveDate> {
    v.as_str()
        .map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("'{s}': {e}")))
}

fn text(v: &Value) -> Option<&str> {
    v.as_str()
}

/// Rows per tenant table, read as the owner (so nothing is hidden).
pub(crate) async fn row_counts(env: &TestEnv) -> BTreeMap<&'static str, i64> {
    let mut owner = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.owner_url)
        .await
        .expect("owner connection");
    let mut counts = BTreeMap::new();
    for table in [
        "clients",
        "accounts",
        "securities",
        "positions",
        "cash_balances",
        "transactions",
        "prices",
    ] {
        let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"));
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&mut owner)
            .await
            .expect("count");
        counts.insert(table, n);
    }
    counts
}

/// Every page of an account's transactions, following `next_cursor`.
async fn all_transactions(env: &TestEnv, token: &str, account: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/transactions?account_id={account}&limit=7");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = env.get(&path, token).await;
        out.extend(
            page["transactions"]
                .as_array()
                .expect("array")
                .iter()
                .cloned(),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// Compares everything the API serves with the simulator's dataset, field by field.
pub(crate) async fn assert_api_matches_dataset(env: &TestEnv, token: &str, data: &Dataset) {
    let accounts = env.get("/accounts", token).await;
    let accounts = accounts.as_array().expect("accounts array");
    assert_eq!(accounts.len(), data.accounts.len(), "account count");
    for expected in &data.accounts {
        let account = accounts
            .iter()
            .find(|a| a["bank_account_id"] == expected.account_id.as_str())
            .unwrap_or_else(|| panic!("account {} is served", expected.account_id));
        assert_eq!(text(&account["iban"]), expected.iban.as_deref());
        assert_eq!(text(&account["currency"]), Some(expected.currency));
        assert_eq!(text(&account["kind"]), Some(expected.kind));
        assert_eq!(text(&account["custodian"]), Some("bank_a"));
        assert_eq!(
            text(&account["client"]["reference"]),
            Some(expected.client_reference.as_str())
        );
        assert_eq!(
            text(&account["client"]["name"]),
            Some(expected.client_name.as_str())
        );
        let id = account["id"].as_str().expect("id");

        // Holdings: the snapshot at the bank's current date, every field exact.
        let holdings = env.get(&format!("/holdings?account_id={id}"), token).await;
        let positions = data.positions_as_of(&expected.account_id, end_date());
        let served = holdings["holdings"].as_array().expect("holdings");
        assert_eq!(
            served.len(),
            positions.len(),
            "{}: holdings",
            expected.account_id
        );
        if !positions.is_empty() {
            assert_eq!(date(&holdings["as_of"]), Some(end_date()));
        }
        for p in &positions {
            let h = served
                .iter()
                .find(|h| h["security"]["bank_security_id"] == p.security.bank_security_id.as_str())
                .unwrap_or_else(|| panic!("position in {} is served", p.security.bank_security_id));
            let s = &h["security"];
            assert_eq!(text(&s["isin"]), p.security.isin.as_deref());
            assert_eq!(text(&s["valor"]), p.security.valor.as_deref());
            assert_eq!(text(&s["name"]), Some(p.security.name.as_str()));
            assert_eq!(text(&s["asset_class"]), Some(p.security.asset_class));
            assert_eq!(text(&s["currency"]), Some(p.security.currency));
            assert_eq!(dec(&h["quantity"]), Some(p.quantity), "quantity");
            assert_eq!(text(&h["quantity_type"]), Some(p.quantity_type));
            assert_eq!(dec(&h["price"]), Some(p.price), "price");
            assert_eq!(text(&h["price_type"]), Some(p.price_type));
            assert_eq!(text(&h["price_currency"]), Some(p.price_currency));
            assert_eq!(
                dec(&h["market_value"]),
                Some(p.market_value),
                "market value"
            );
            assert_eq!(dec(&h["accrued_interest"]), p.accrued_interest, "accrued");
            assert_eq!(dec(&h["cost"]), Some(p.cost), "cost");
            // Decimals are strings with the bank's own scale: "73997.00" stays "73997.00".
            for (field, bank) in [
                ("quantity", p.quantity),
                ("price", p.price),
                ("market_value", p.market_value),
                ("cost", p.cost),
            ] {
                assert_eq!(text(&h[field]), Some(bank.to_string().as_str()), "{field}");
            }
            assert_eq!(text(&h["source"]["format"]), Some("bank_a_json"));
        }

        // Cash balances.
        let balances = env.get(&format!("/balances?account_id={id}"), token).await;
        let served = balances["balances"].as_array().expect("balances");
        let expected_balances = data.balances(&expected.account_id);
        assert_eq!(served.len(), expected_balances.len(), "balance count");
        for b in &expected_balances {
            let found = served.iter().any(|s| {
                text(&s["kind"]) == Some(b.kind)
                    && text(&s["currency"]) == Some(b.currency)
                    && date(&s["as_of"]) == Some(b.as_of)
                    && dec(&s["amount"]) == Some(b.amount)
            });
            assert!(
                found,
                "{}: balance {b:?} is served as is: {served:?}",
                expected.account_id
            );
        }

        // Transactions, across pages, every field.
        let served = all_transactions(env, token, id).await;
        assert_eq!(
            served.len(),
            expected.transactions.len(),
            "{}: transactions",
            expected.account_id
        );
        let mut seen = std::collections::HashSet::new();
        for t in &served {
            assert!(
                seen.insert(t["id"].as_str().expect("id").to_owned()),
                "no transaction twice"
            );
        }
        for e in &expected.transactions {
            let t = served
                .iter()
                .find(|t| t["bank_reference"] == e.transaction_id.as_str())
                .unwrap_or_else(|| panic!("transaction {} is served", e.transaction_id));
            assert_eq!(date(&t["booking_date"]), Some(e.booking_date));
            assert_eq!(date(&t["value_date"]), e.value_date);
            assert_eq!(date(&t["trade_date"]), e.trade_date);
            assert_eq!(date(&t["settlement_date"]), e.settlement_date);
            assert_eq!(text(&t["type"]), Some(e.kind));
            assert_eq!(text(&t["bank_code"]), Some(e.bank_code));
            assert_eq!(dec(&t["amount"]), Some(e.amount), "{}", e.transaction_id);
            assert_eq!(text(&t["direction"]), Some(e.direction));
            assert_eq!(dec(&t["signed_amount"]), Some(e.signed_amount()));
            assert_eq!(text(&t["currency"]), Some(e.currency));
            assert_eq!(
                text(&t["isin"]),
                e.security.as_ref().and_then(|s| s.isin.as_deref())
            );
            assert_eq!(
                text(&t["bank_security_id"]),
                e.security.as_ref().map(|s| s.bank_security_id.as_str())
            );
            assert_eq!(dec(&t["quantity"]), e.quantity);
            assert_eq!(dec(&t["price"]), e.price);
            assert_eq!(dec(&t["fees"]), e.fees);
            assert_eq!(text(&t["status"]), Some(e.status));
            assert_eq!(text(&t["counterparty"]), e.counterparty.as_deref());
            assert_eq!(text(&t["description"]), e.description.as_deref());
        }
    }
}

pub(crate) fn total(counts: &Value, field: &str) -> u64 {
    [
        "clients",
        "accounts",
        "securities",
        "positions",
        "balances",
        "transactions",
    ]
    .iter()
    .map(|k| {
        counts[k][field]
            .as_u64()
            .unwrap_or_else(|| panic!("counts.{k}.{field}: {counts}"))
    })
    .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_through_the_api_loads_exactly_the_bank_data_and_a_second_changes_nothing() {
    let env = TestEnv::start(small_params(7)).await;
    let data = env.sim.dataset();
    let Firm {
        token, connection, ..
    } = env.firm("Firm A", &["ops", "advisor", "support"]).await;

    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1);
    assert!(job["error"].is_null(), "{job}");
    let counts = &job["counts"];
    let transactions: usize = data.accounts.iter().map(|a| a.transactions.len()).sum();
    let positions: usize = data
        .accounts
        .iter()
        .map(|a| data.positions_as_of(&a.account_id, end_date()).len())
        .sum();
    let balances: usize = data
        .accounts
        .iter()
        .map(|a| data.balances(&a.account_id).len())
        .sum();
    assert_eq!(counts["accounts"]["inserted"], data.accounts.len() as u64);
    assert_eq!(counts["clients"]["inserted"], data.clients.len() as u64);
    assert_eq!(counts["transactions"]["inserted"], transactions as u64);
    assert_eq!(counts["positions"]["inserted"], positions as u64);
    assert_eq!(counts["balances"]["inserted"], balances as u64);
    assert_eq!(total(counts, "updated"), 0);
    assert!(
        positions > 0 && transactions > 0,
        "the dataset is not empty"
    );

    assert_api_matches_dataset(&env, &token, &data).await;
    let before = row_counts(&env).await;
    assert_eq!(before["transactions"], transactions as i64);
    assert_eq!(before["positions"], positions as i64);

    // The same bank data again: nothing inserted, nothing updated, no row added.
    let again = env.sync_and_wait(&token, &connection).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(
        total(&again["counts"], "inserted"),
        0,
        "{}",
        again["counts"]
    );
    assert_eq!(total(&again["counts"], "updated"), 0, "{}", again["counts"]);
    assert_eq!(again["counts"]["positions_closed"], 0);
    assert_eq!(row_counts(&env).await, before);
    assert_api_matches_dataset(&env, &token, &data).await;

    // The job list shows both runs, newest first, with their cursors.
    let jobs = env.get("/jobs", &token).await;
    let listed: Vec<&str> = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        listed,
        [again["id"].as_str().unwrap(), job["id"].as_str().unwrap()]
    );
    assert!(
        again["cursor_before"]["transactions_from"].is_string(),
        "{again}"
    );
    env.finish().await;
}

/// The bank's checks on who we are really run: each broken credential fails the run as an
/// auth error on its first attempt, and nothing is loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_client_certificate_or_secret_the_sync_fails_as_auth_and_loads_nothing() {
    let env = TestEnv::start(small_params(8)).await;
    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);

    let mut no_cert = env.connection_body(tenant);
    no_cert.as_object_mut().unwrap().remove("client_cert_ref");
    no_cert.as_object_mut().unwrap().remove("client_key_ref");
    let mut rogue_cert = env.connection_body(tenant);
    rogue_cert["client_cert_ref"] = env.tenant_ref(tenant, "rogue.pem").into();
    rogue_cert["client_key_ref"] = env.tenant_ref(tenant, "rogue.key").into();
    let wrong_secret_file = env.tenant_file(tenant, "secret.wrong");
    std::fs::write(&wrong_secret_file, "not-the-secret").unwrap();
    let mut wrong_secret = env.connection_body(tenant);
    wrong_secret["client_secret_ref"] = TestEnv::file_ref(&wrong_secret_file).into();

    for (case, body, expect_in_message) in [
        ("no client certificate", no_cert, "TLS"),
        ("a certificate from another CA", rogue_cert, "TLS"),
        ("a wrong client secret", wrong_secret, "401"),
    ] {
        let connection = env.create_connection(&token, &body).await;
        let job = env.sync_and_wait(&token, &connection).await;
        assert_eq!(job["status"], "failed", "{case}: {job}");
        assert_eq!(job["attempts"], 1, "{case}: auth errors are not retried");
        assert_eq!(job["error"]["class"], "auth", "{case}: {job}");
        let message = job["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expect_in_message), "{case}: {message}");
        assert!(
            job["error"]["suggested_action"]
                .as_str()
                .is_some_and(|a| a.contains("certificate")),
            "{case}: support is told what to check: {job}"
        );
        let errors = job["attempt_errors"].as_array().expect("attempt errors");
        assert_eq!(errors.len(), 1, "{case}");
        assert_eq!(errors[0]["class"], "auth");
    }
    // A certificate file that is gone, or is not PEM: the bank is not asked, and support is
    // told to fix the file, not that the bank refused us.
    let gone = env.tenant_file(tenant, "gone.pem");
    std::fs::copy(env.tenant_file(tenant, "client.pem"), &gone).unwrap();
    let garbage = env.tenant_file(tenant, "garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    for (case, file, expect_in_message) in [
        ("a certificate file that is gone", &gone, "no such file"),
        (
            "a certificate file that is not PEM",
            &garbage,
            "holds no certificate",
        ),
    ] {
        let mut body = env.connection_body(tenant);
        body["client_cert_ref"] = TestEnv::file_ref(file).into();
        let connection = env.create_connection(&token, &body).await;
        if file == &gone {
            std::fs::remove_file(&gone).unwrap();
        }
        let job = env.sync_and_wait(&token, &connection).await;
        assert_eq!(
            (job["status"].as_str(), job["error"]["class"].as_str()),
            (Some("failed"), Some("auth")),
            "{case}: {job}"
        );
        let message = job["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expect_in_message), "{case}: {message}");
        assert!(
            job["error"]["suggested_action"]
                .as_str()
                .is_some_and(|a| a.starts_with("A secret, certificate, key or CA file")),
            "{case}: {job}"
        );
    }
    let (status, accounts, _) = env.call(Method::GET, "/accounts", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        accounts.as_array().map(Vec::len),
        Some(0),
        "nothing was loaded"
    );
    let counts = row_counts(&env).await;
    assert!(
        counts.values().all(|n| *n == 0),
        "no row anywhere: {counts:?}"
    );
    let _ = std::fs::remove_file(&wrong_secret_file);
    env.finish().await;
}

/// An MT535 of `positions` (ISIN, units), complete or delta, for safekeeping account DEPOT-1.
fn mt535(complete: bool, positions: &[(&str, u32)]) -> String {
    let mut out = String::from(
        "{1:F01BANKDEFFAXXX0000000000}{2:O535BANKDEFFXXXXN}{4:\r\n:16R:GENL\r\n:28E:1/ONLY\r\n:20C::SEME//SNAP\r\n:23G:NEWM\r\n:98A::STAT//20261120\r\n",
    );
    out.push_str(if complete {
        ":22F::CODE//COMP\r\n"
    } else {
        ":22F::CODE//DELT\r\n"
    });
    out.push_str(":97A::SAFE//DEPOT-1\r\n:17B::ACTI//Y\r\n:16S:GENL\r\n:16R:SUBSAFE\r\n");
    for (isin, units) in positions {
        out.push_str(&format!(
            ":16R:FIN\r\n:35B:ISIN {isin}\r\nSECURITY {isin}\r\n:93B::AGGR//UNIT/{units},\r\n:16S:FIN\r\n"
        ));
    }
    out.push_str(":16S:SUBSAFE\r\n-}\r\n");
    out
}

/// A complete holdings statement closes the positions of its account and date that it no
/// longer lists (and only those); a delta statement closes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_snapshot_closes_the_positions_it_omits_and_a_delta_closes_none() {
    use eam_normalizer::model::SourceFormat;
    use eam_store::runs::{Origin, Trigger};

    let db = crate::kit::TestDb::create().await;
    let store = db.app_store().await;
    let tenant = eam_store::tenants::create_tenant(&store, "Firm", &["bank_sync"])
        .await
        .unwrap();
    let mut tx = store.tenant_tx(tenant).await.unwrap();
    let connection = eam_store::connections::create(
        &mut tx,
        &eam_store::connections::NewConnection {
            custodian: "bank_b".into(),
            name: "Bank B".into(),
            base_url: None,
            client_id: None,
            client_secret_ref: None,
            client_cert_ref: None,
            client_key_ref: None,
            position_history_days: 0,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let connection = eam_store::ConnectionId(connection.id);
    let mut tx = store.tenant_tx(tenant).await.unwrap();
    let run = eam_store::runs::create(
        &mut tx,
        connection,
        Trigger::Manual,
        Origin::actor("test"),
        None,
    )
    .await
    .unwrap()
    .id;
    // The custody account, as the bank's account list would have brought it.
    sqlx::query(
        "INSERT INTO accounts (id, tenant_id, connection_id, bank_account_id, currency, kind,
            source_format, source_document, source_position, first_seen_run, last_changed_run)
         VALUES (gen_random_uuid(), $1, $2, 'DEPOT-1', 'EUR', 'custody', 'mt535', 'test', 0, $3, $3)",
    )
    .bind(tenant.0)
    .bind(connection.0)
    .bind(run.0)
    .execute(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let (a, b, c) = ("DE0005140008", "US0378331005", "CH0012032048");
    // (complete?, positions listed, positions it closes, positions held after it)
    type Step<'a> = (bool, Vec<(&'a str, u32)>, u64, Vec<(&'a str, i64)>);
    let steps: [Step; 4] = [
        (
            true,
            vec![(a, 10), (b, 20), (c, 30)],
            0,
            vec![(a, 10), (b, 20), (c, 30)],
        ),
        // Delta: lists b only, closes nothing.
        (false, vec![(b, 25)], 0, vec![(a, 10), (b, 25), (c, 30)]),
        // Complete without c: c is closed.
        (true, vec![(a, 10), (b, 25)], 1, vec![(a, 10), (b, 25)]),
        // The same complete statement again: nothing more to close.
        (true, vec![(a, 10), (b, 25)], 0, vec![(a, 10), (b, 25)]),
    ];
    for (i, (complete, listed, closed, held)) in steps.into_iter().enumerate() {
        let text = mt535(complete, &listed);
        let batch = eam_normalizer::swift::parse(
            SourceFormat::Mt535,
            &format!("doc-{i}"),
            "snapshot.fin",
            text.as_bytes(),
        )
        .unwrap();
        let mut tx = store.tenant_tx(tenant).await.unwrap();
        let counts = eam_store::load::load_batch(&mut tx, connection, run, &batch, None)
            .await
            .unwrap();
        assert_eq!(counts.positions_closed, closed, "step {i}");
        let rows: Vec<(String, Decimal)> = sqlx::query_as(
            "SELECT s.isin, p.quantity FROM positions p JOIN securities s ON s.id = p.security_id
             ORDER BY s.isin",
        )
        .fetch_all(tx.conn())
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut expected: Vec<(String, Decimal)> = held
            .iter()
            .map(|(isin, q)| ((*isin).to_owned(), Decimal::from(*q)))
            .collect();
        expected.sort();
        assert_eq!(rows, expected, "step {i}");
    }
    db.drop_db().await;
}
