//! One tenant synced from all three bank protocols: REST JSON (bank_a), SWIFT FIN files
//! (bank_b) and ISO 20022 files (bank_c), each compared with the simulator's data for what its
//! format carries.

use std::collections::HashMap;
use std::str::FromStr;

use eam_banksim::dataset::{Dataset, SimAccount, SimParams};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::kit::{CLIENT_SECRET, Firm, TestEnv, end_date, small_params};
use crate::sync::{assert_api_matches_dataset, total};

fn dec(v: &Value) -> Option<Decimal> {
    v.as_str().map(|s| Decimal::from_str(s).expect("decimal"))
}

/// The tenant's accounts of one connection, by the id the bank gave them.
async fn accounts_of(env: &TestEnv, token: &str, connection: &str) -> HashMap<String, Value> {
    env.get("/accounts", token)
        .await
        .as_array()
        .expect("accounts")
        .iter()
        .filter(|a| a["connection_id"] == connection)
        .map(|a| (a["bank_account_id"].as_str().unwrap().to_owned(), a.clone()))
        .collect()
}

/// Every transaction of an account, following pages.
async fn transactions(env: &TestEnv, token: &str, account: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = env
            .get(
                &format!("/transactions?account_id={account}&limit=500{cursor}"),
                token,
            )
            .await;
        out.extend(page["transactions"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// Compares a file bank's view of one account with the dataset: the account, its balances at
/// the start and end of the period, its holdings on the last day, and its booked entries.
async fn assert_file_bank_matches(
    env: &TestEnv,
    token: &str,
    data: &Dataset,
    account: &SimAccount,
    served: &Value,
    reference: impl Fn(&str) -> String,
) {
    let id = served["id"].as_str().unwrap();
    assert_eq!(served["currency"], account.currency);
    assert_eq!(served["kind"], account.kind, "{}", account.account_id);

    let balances = env.get(&format!("/balances?account_id={id}"), token).await;
    let balances = balances["balances"].as_array().unwrap();
    for expected in data.balances(&account.account_id) {
        if expected.kind == "available" {
            continue; // only the pending entries of bank_a make it differ from closing
        }
        let found = balances.iter().any(|b| {
            b["kind"] == expected.kind
                && b["as_of"] == expected.as_of.to_string().as_str()
                && dec(&b["amount"]) == Some(expected.amount)
        });
        assert!(found, "{} {expected:?} in {balances:?}", account.account_id);
    }

    let holdings = env.get(&format!("/holdings?account_id={id}"), token).await;
    let positions = data.positions_as_of(&account.account_id, end_date());
    let served_positions = holdings["holdings"].as_array().unwrap();
    assert_eq!(
        served_positions.len(),
        positions.len(),
        "{}",
        account.account_id
    );
    for p in &positions {
        let h = served_positions
            .iter()
            .find(|h| match &p.security.isin {
                Some(isin) => h["security"]["isin"] == isin.as_str(),
                None => h["security"]["name"] == p.security.name.as_str(),
            })
            .unwrap_or_else(|| panic!("{} holds {}", account.account_id, p.security.name));
        assert_eq!(dec(&h["quantity"]), Some(p.quantity));
        assert_eq!(h["quantity_type"], p.quantity_type);
        assert_eq!(dec(&h["price"]), Some(p.price));
        assert_eq!(h["price_type"], p.price_type);
        assert_eq!(dec(&h["market_value"]), Some(p.market_value));
        assert_eq!(dec(&h["accrued_interest"]), p.accrued_interest);
    }

    let served_tx = transactions(env, token, id).await;
    let booked: Vec<_> = account
        .transactions
        .iter()
        .filter(|t| t.is_booked())
        .collect();
    assert_eq!(served_tx.len(), booked.len(), "{}", account.account_id);
    for t in booked {
        let r = reference(&t.transaction_id);
        let s = served_tx
            .iter()
            .find(|s| s["bank_reference"] == r.as_str())
            .unwrap_or_else(|| panic!("{} carries {r}", account.account_id));
        assert_eq!(
            s["booking_date"],
            t.booking_date.to_string().as_str(),
            "{r}"
        );
        assert_eq!(dec(&s["amount"]), Some(t.amount), "{r}");
        assert_eq!(s["direction"], t.direction, "{r}");
        assert_eq!(dec(&s["signed_amount"]), Some(t.signed_amount()), "{r}");
        assert_eq!(s["currency"], t.currency);
        assert_eq!(s["status"], "booked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_synced_from_three_bank_protocols_holds_each_bank_data() {
    let env = TestEnv::start(small_params(61)).await;
    let data = env.sim.dataset();
    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let pki = |name: &str| env.tenant_ref(tenant, name);
    let bank_a = env
        .create_connection(&token, &env.connection_body(tenant))
        .await;
    let bank_b = env
        .create_connection(
            &token,
            &json!({
                "custodian": "bank_b", "name": "Bank B (SWIFT files)",
                "client_cert_ref": pki("client.pem"),
                "client_key_ref": pki("client.key"),
            }),
        )
        .await;
    let bank_c = env
        .create_connection(
            &token,
            &json!({
                "custodian": "bank_c", "name": "Bank C (ISO 20022 files)",
                "client_secret_ref": pki("secret"),
                "client_cert_ref": pki("client.pem"),
                "client_key_ref": pki("client.key"),
            }),
        )
        .await;
    assert!(!CLIENT_SECRET.is_empty());

    for connection in [&bank_a, &bank_b, &bank_c] {
        let job = env.sync_and_wait(&token, connection).await;
        assert_eq!(
            job["status"], "succeeded",
            "consistent statements, no break: {job}"
        );
        assert_eq!(job["counts"]["breaks"], 0, "{job}");
        assert_eq!(job["trigger"], "manual");
        assert_eq!(job["scheduled_for"], Value::Null, "{job}");
        // The one thing a parser has to interpret here: bank_b's ISO-8859-1 files (every
        // other account's) that are not valid UTF-8. Each warning is kept with its file.
        let samples = job["counts"]["warning_samples"].as_array().unwrap();
        assert_eq!(job["counts"]["warnings"], samples.len(), "{job}");
        // This dataset's names have accents: some of bank_b's Latin-1 files are not UTF-8.
        assert_eq!(connection == &bank_b, !samples.is_empty(), "{job}");
        for w in samples {
            assert_eq!(
                w["message"], "the file is not UTF-8: read as ISO-8859-1",
                "{job}"
            );
            assert!(connection == &bank_b, "{job}");
            assert!(w["document"].as_str().unwrap().ends_with(".mt940"), "{w}");
        }
    }

    // bank_b and bank_c: accounts by IBAN when they have one, else by the bank's id.
    let key = |a: &SimAccount| a.iban.clone().unwrap_or_else(|| a.account_id.clone());
    for (connection, reference) in [
        (&bank_b, eam_banksim::swift_reference as fn(&str) -> String),
        (&bank_c, (|id: &str| id.to_owned()) as fn(&str) -> String),
    ] {
        let served = accounts_of(&env, &token, connection).await;
        assert_eq!(served.len(), data.accounts.len(), "{served:?}");
        for account in &data.accounts {
            let a = served
                .get(&key(account))
                .unwrap_or_else(|| panic!("account {} is served", key(account)));
            assert_file_bank_matches(&env, &token, &data, account, a, reference).await;
        }
    }

    // bank_a, every field, through its own accounts (the helper compares the whole tenant, so
    // it runs on a tenant with bank_a alone).
    let Firm {
        token: token_a,
        connection,
        ..
    } = env.firm("Firm B", &["ops", "advisor", "support"]).await;
    let job = env.sync_and_wait(&token_a, &connection).await;
    assert_eq!(job["status"], "succeeded");
    assert_api_matches_dataset(&env, &token_a, &data).await;

    // A second sync of the file banks finds no new file and changes nothing.
    for connection in [&bank_b, &bank_c] {
        let again = env.sync_and_wait(&token, connection).await;
        assert_eq!(again["status"], "succeeded", "{again}");
        assert_eq!(total(&again["counts"], "inserted"), 0, "{again}");
        assert_eq!(total(&again["counts"], "updated"), 0, "{again}");
        assert!(again["cursor_after"]["files_after"].is_string(), "{again}");
    }
    // Securities are the tenant's, shared by the custodians: each bank's spelling only fills
    // gaps, so syncing every bank's data again rewrites none of them (no flip-flop).
    for body in [
        json!({"custodian": "bank_b", "name": "Bank B again",
               "client_cert_ref": pki("client.pem"), "client_key_ref": pki("client.key")}),
        json!({"custodian": "bank_c", "name": "Bank C again",
               "client_secret_ref": pki("secret"), "client_cert_ref": pki("client.pem"),
               "client_key_ref": pki("client.key")}),
        env.connection_body(tenant),
    ] {
        let connection = env.create_connection(&token, &body).await;
        let job = env.sync_and_wait(&token, &connection).await;
        assert_eq!(job["counts"]["securities"]["updated"], 0, "{job}");
        assert_eq!(job["counts"]["securities"]["inserted"], 0, "{job}");
    }
    let _ = bank_a;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_statement_loads_the_rest_and_ends_the_run_with_its_breaks_listed() {
    let env = TestEnv::start(small_params(62)).await;
    let data = env.sim.dataset();
    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    // A cash statement of a day with entries goes missing at the bank.
    let account = &data.accounts[1];
    let day = data.start_date + chrono::Days::new(5);
    let booked_that_day: Decimal = account
        .transactions
        .iter()
        .filter(|t| t.is_booked() && t.booking_date == day)
        .map(|t| t.signed_amount())
        .sum();
    assert!(
        !booked_that_day.is_zero(),
        "the seed books something that day"
    );
    let missing = eam_banksim::swift_files(&data)
        .into_iter()
        .find(|f| {
            f.account_id == account.account_id && f.date == day && f.format.as_str() == "mt940"
        })
        .expect("the day's MT940");
    assert!(env.sim.withhold_file(&missing.id));

    let connection = env
        .create_connection(
            &token,
            &json!({
                "custodian": "bank_b", "name": "Bank B",
                "client_cert_ref": env.tenant_ref(tenant, "client.pem"),
                "client_key_ref": env.tenant_ref(tenant, "client.key"),
            }),
        )
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded_with_breaks", "{job}");
    assert_eq!(job["counts"]["breaks"], 2, "{job}");

    let run = job["id"].as_str().unwrap();
    let breaks = env.get(&format!("/breaks?run_id={run}"), &token).await;
    let breaks = breaks["breaks"].as_array().unwrap();
    let account_ref = account
        .iban
        .clone()
        .unwrap_or_else(|| account.account_id.clone());
    let day_number = 6; // statements are numbered by day from the start date, from 1
    let sequence = breaks
        .iter()
        .find(|b| b["kind"] == "sequence")
        .expect("a sequence break");
    assert_eq!(sequence["account_ref"], account_ref.as_str());
    assert_eq!(
        sequence["message"],
        format!(
            "statement {} follows statement {}: statement {day_number} missing",
            day_number + 1,
            day_number - 1
        )
        .as_str()
    );
    let continuity = breaks
        .iter()
        .find(|b| b["kind"] == "continuity")
        .expect("a continuity break");
    // The next day opens where the missing statement closed: off by that day's entries.
    let difference = dec(&continuity["actual"]).unwrap() - dec(&continuity["expected"]).unwrap();
    assert_eq!(difference, booked_that_day, "{continuity}");
    assert!(
        continuity["account_id"].is_string(),
        "linked to the loaded account"
    );

    // Everything else loaded: the account's other booked entries are all there.
    let accounts = accounts_of(&env, &token, &connection).await;
    let served = transactions(&env, &token, accounts[&account_ref]["id"].as_str().unwrap()).await;
    let expected = account
        .transactions
        .iter()
        .filter(|t| t.is_booked() && t.booking_date != day)
        .count();
    assert!(served.len() >= expected, "{} of {expected}", served.len());
    env.finish().await;
}

/// A bank_b MT940 file holding three statements, the last cut short (no closing balance):
/// the first two load, and the run ends `succeeded_with_breaks` with one `unreadable` break
/// naming the file and the third statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_cut_short_is_a_break_and_its_neighbours_load() {
    let env = TestEnv::start(SimParams {
        days: 1,
        ..small_params(64)
    })
    .await;
    let data = env.sim.dataset();
    let file = eam_banksim::files::swift_files(&data)
        .into_iter()
        .find(|f| f.format == eam_banksim::files::FileFormat::Mt940)
        .expect("an MT940 file");
    let body = concat!(
        "{1:F01BANKCHZZAXXX0000000000}{2:O9401200261201BANKCHZZAXXX00000000002612011200N}{4:\r\n",
        ":20:CUT-1\r\n:25:CH-CUT-ACCOUNT\r\n:28C:1/1\r\n:60F:C261130EUR100,00\r\n",
        ":61:2612011201C50,00NTRFREF-1//B-1\r\n:86:first\r\n:62F:C261201EUR150,00\r\n-}\r\n",
        "{1:F01BANKCHZZAXXX0000000000}{2:O9401200261202BANKCHZZAXXX00000000002612021200N}{4:\r\n",
        ":20:CUT-2\r\n:25:CH-CUT-ACCOUNT\r\n:28C:2/1\r\n:60F:C261201EUR150,00\r\n",
        ":62F:C261202EUR150,00\r\n-}\r\n",
        "{1:F01BANKCHZZAXXX0000000000}{2:O9401200261203BANKCHZZAXXX00000000002612031200N}{4:\r\n",
        ":20:CUT-3\r\n:25:CH-CUT-ACCOUNT\r\n:28C:3/1\r\n:60F:C261202EUR150,00\r\n",
        ":61:2612031203D20,00NTRFREF-3//B-3\r\n-}\r\n",
    );
    env.sim.replace_file(&file.id, body.as_bytes().to_vec());

    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let connection = env
        .create_connection(&token, &env.file_bank_body(tenant, "bank_b"))
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded_with_breaks", "{job}");
    let run = job["id"].as_str().unwrap();
    let breaks = env.get(&format!("/breaks?run_id={run}"), &token).await;
    let breaks = breaks["breaks"].as_array().unwrap();
    assert_eq!(breaks.len(), 1, "{breaks:?}");
    let b = &breaks[0];
    assert_eq!(b["kind"], "unreadable");
    assert_eq!(b["account_ref"], "CH-CUT-ACCOUNT");
    assert_eq!(b["statement_reference"], "CUT-3");
    assert_eq!(b["statement_number"], 3);
    assert_eq!(b["currency"], serde_json::Value::Null);
    assert_eq!(b["source_document"], file.name.as_str());
    let message = b["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("{}: statement 3, line ", file.name)),
        "{message}"
    );
    // The first two statements loaded: the account, its one transaction and its closing 150.
    let accounts = env.get("/accounts", &token).await;
    let cut = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["bank_account_id"] == "CH-CUT-ACCOUNT")
        .expect("the account of the readable statements loaded");
    let id = cut["id"].as_str().unwrap();
    let tx = env
        .get(&format!("/transactions?account_id={id}"), &token)
        .await;
    assert_eq!(tx["transactions"].as_array().unwrap().len(), 1, "{tx}");
    let amount = |v: &Value| Decimal::from_str(v.as_str().unwrap_or_default()).ok();
    assert_eq!(
        amount(&tx["transactions"][0]["amount"]),
        Some(Decimal::from(50))
    );
    let balances = env.get(&format!("/balances?account_id={id}"), &token).await;
    assert!(
        balances["balances"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["kind"] == "closing"
                && amount(&b["amount"]) == Some(Decimal::from(150))
                && b["as_of"] == "2026-12-02"),
        "{balances}"
    );
    env.finish().await;
}

/// An MT535 of bank_b naming a security by an ISIN that fails its check digit: the statement
/// loads, the security is kept under the bank's own id with the ISIN as written in
/// `raw_isin` (never as `isin`), beside a holding whose ISIN is valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isin_failing_its_check_digit_is_kept_as_written_beside_the_banks_id() {
    let env = TestEnv::start(SimParams {
        days: 1,
        ..small_params(65)
    })
    .await;
    let data = env.sim.dataset();
    let file = eam_banksim::files::swift_files(&data)
        .into_iter()
        .find(|f| f.format == eam_banksim::files::FileFormat::Mt535)
        .expect("an MT535 file");
    let day = file.date.format("%Y%m%d");
    let body = format!(
        "{{1:F01BANKCHZZAXXX0000000000}}{{2:O535BANKCHZZXXXXN}}{{4:\r\n\
         :16R:GENL\r\n:28E:1/ONLY\r\n:20C::SEME//RAWISIN1\r\n:23G:NEWM\r\n\
         :98A::STAT//{day}\r\n:22F::CODE//COMP\r\n:97A::SAFE//DEPOT-RAW\r\n:17B::ACTI//Y\r\n\
         :16S:GENL\r\n:16R:SUBSAFE\r\n\
         :16R:FIN\r\n:35B:ISIN DE0005140009\r\n/DE/514000\r\nDEUTSCHE BANK AG\r\n\
         :93B::AGGR//UNIT/10,\r\n:19A::HOLD//EUR100,\r\n:16S:FIN\r\n\
         :16R:FIN\r\n:35B:ISIN US0378331005\r\nAPPLE INC\r\n\
         :93B::AGGR//UNIT/1,\r\n:19A::HOLD//EUR180,\r\n:16S:FIN\r\n\
         :16S:SUBSAFE\r\n-}}\r\n"
    );
    env.sim.replace_file(&file.id, body.into_bytes());

    let tenant = env.tenant("Firm ISIN").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let connection = env
        .create_connection(&token, &env.file_bank_body(tenant, "bank_b"))
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert!(
        matches!(
            job["status"].as_str(),
            Some("succeeded" | "succeeded_with_breaks")
        ),
        "{job}"
    );
    let accounts = accounts_of(&env, &token, &connection).await;
    let depot = accounts["DEPOT-RAW"]["id"].as_str().unwrap().to_owned();
    let held = env
        .get(&format!("/holdings?account_id={depot}"), &token)
        .await;
    let mut securities: Vec<(Value, Value, Value, Value)> = held["holdings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let s = &h["security"];
            (
                s["name"].clone(),
                s["isin"].clone(),
                s["raw_isin"].clone(),
                h["quantity"].clone(),
            )
        })
        .collect();
    securities.sort_by_key(|s| s.0.to_string());
    assert_eq!(
        securities,
        vec![
            (
                json!("APPLE INC"),
                json!("US0378331005"),
                Value::Null,
                json!("1")
            ),
            (
                json!("DEUTSCHE BANK AG"),
                Value::Null,
                json!("DE0005140009"),
                json!("10")
            ),
        ],
        "{held}"
    );
    env.finish().await;
}
