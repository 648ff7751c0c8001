//! Position reconciliation: a custody account's holdings must be the previous snapshot's plus
//! the securities movements booked in between. A trade the bank's securities feed leaves out
//! (bank_b's MT536) while its holdings statements (MT535) still show it is a break of kind
//! `position` on the run, listed by `/breaks` to its tenant only; nothing is corrected.

use std::str::FromStr;

use eam_banksim::dataset::{Dataset, SimAccount, SimTransaction};
use eam_banksim::files::FileFormat;
use eam_store::TenantId;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::kit::{TestEnv, small_params};

fn dec(v: &Value) -> Option<Decimal> {
    v.as_str().map(|s| Decimal::from_str(s).expect("decimal"))
}

/// A bank_b connection (SWIFT files) of `tenant`, created through the API.
pub(crate) async fn bank_b(env: &TestEnv, tenant: TenantId, token: &str) -> String {
    env.create_connection(
        token,
        &json!({
            "custodian": "bank_b", "name": "Bank B (SWIFT files)",
            "client_cert_ref": env.tenant_ref(tenant, "client.pem"),
            "client_key_ref": env.tenant_ref(tenant, "client.key"),
        }),
    )
    .await
}

/// The first booked buy of a custody account after the dataset's first day (the first day's
/// holdings have no snapshot before them to be checked against) whose account held something
/// the day before, or nothing, as `held_before` says.
pub(crate) fn a_buy_after_the_first_day(
    data: &Dataset,
    held_before: bool,
) -> (&SimAccount, &SimTransaction) {
    data.accounts
        .iter()
        .filter(|a| a.kind == "custody")
        .flat_map(|a| a.transactions.iter().map(move |t| (a, t)))
        .find(|(a, t)| {
            t.is_booked()
                && t.kind == "buy"
                && t.booking_date > data.start_date
                && t.booking_date.pred_opt().is_some_and(|before| {
                    data.positions_as_of(&a.account_id, before).is_empty() != held_before
                })
        })
        .expect("the seed books such a buy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trade_left_out_of_the_securities_feed_is_one_position_break_of_its_quantity() {
    let env = TestEnv::start(small_params(71)).await;
    let data = env.sim.dataset();

    // The same bank's files before the fault: holdings and trades agree, no break.
    let clean = env.tenant("Firm Clean").await;
    let clean_token = env.token(clean, &["ops", "advisor", "support"]);
    let clean_connection = bank_b(&env, clean, &clean_token).await;
    let job = env.sync_and_wait(&clean_token, &clean_connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["counts"]["breaks"], 0, "{job}");

    let (account, trade) = a_buy_after_the_first_day(&data, true);
    let security = trade.security.as_deref().expect("a traded security");
    let quantity = trade.quantity.expect("a traded quantity");
    let day = trade.booking_date;
    assert_eq!(
        trade.trade_date,
        Some(day),
        "trades book on their trade date"
    );
    env.sim
        .leave_out_trade(&trade.transaction_id)
        .expect("a booked trade");
    // What the bank reports held that day, and what the previous day plus the movements the
    // feed still carries make: short of the left-out buy.
    let reported = data
        .positions_as_of(&account.account_id, day)
        .into_iter()
        .find(|p| p.security.bank_security_id == security.bank_security_id)
        .map(|p| p.quantity)
        .expect("held on the day it was bought");
    let expected = reported - quantity;
    let mt535 = eam_banksim::swift_files(&data)
        .into_iter()
        .find(|f| {
            f.account_id == account.account_id && f.date == day && f.format == FileFormat::Mt535
        })
        .expect("the day's holdings statement");

    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let connection = bank_b(&env, tenant, &token).await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded_with_breaks", "{job}");
    assert_eq!(job["counts"]["breaks"], 1, "{job}");
    let run = job["id"].as_str().unwrap();

    let listed = env.get(&format!("/breaks?run_id={run}"), &token).await;
    let breaks = listed["breaks"].as_array().unwrap();
    assert_eq!(breaks.len(), 1, "{listed}");
    let b = &breaks[0];
    assert_eq!(b["kind"], "position", "{b}");
    assert_eq!(b["connection_id"], connection.as_str());
    assert_eq!(b["account_ref"], account.account_id.as_str());
    let accounts = env.get("/accounts", &token).await;
    let loaded = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["connection_id"] == connection && a["bank_account_id"] == account.account_id.as_str()
        })
        .expect("the custody account loaded");
    assert_eq!(b["account_id"], loaded["id"]);
    assert_eq!(b["currency"], Value::Null);
    assert_eq!(b["statement_date"], day.to_string().as_str());
    let day_before = day.pred_opt().unwrap();
    assert_eq!(b["period_from"], day_before.to_string().as_str());
    assert_eq!(dec(&b["expected"]), Some(expected), "{b}");
    assert_eq!(dec(&b["actual"]), Some(reported), "{b}");
    assert_eq!(dec(&b["difference"]), Some(quantity), "{b}");
    assert_eq!(b["source_document"], mt535.name.as_str());

    // The security: the one the account holds that day, named as the statements name it.
    let holdings = env
        .get(
            &format!(
                "/holdings?account_id={}&as_of={day}",
                loaded["id"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    let held = holdings["holdings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["security"]["id"] == b["security"]["id"])
        .unwrap_or_else(|| panic!("the break's security is held: {b} {holdings}"));
    assert_eq!(dec(&held["quantity"]), Some(reported));
    assert_eq!(held["source"]["document"], mt535.name.as_str());
    let s = &b["security"];
    assert_eq!(s["name"], security.name.as_str(), "{s}");
    assert_eq!(s["isin"], json!(security.isin), "{s}");
    let label = s["label"].as_str().unwrap();
    match &security.isin {
        Some(isin) => assert_eq!(label, format!("{isin} {}", security.name), "{s}"),
        None => assert!(label.ends_with(&format!(" {}", security.name)), "{s}"),
    }
    let message = b["message"].as_str().unwrap();
    assert!(
        message.ends_with(&format!("(difference {})", quantity.normalize())),
        "{message}"
    );

    // The kind filters to it; nothing else of the run is a break.
    let by_kind = env.get("/breaks?kind=position", &token).await;
    assert_eq!(by_kind["breaks"].as_array().unwrap().len(), 1, "{by_kind}");
    assert_eq!(by_kind["breaks"][0]["id"], b["id"]);

    // Another tenant sees none of it, and had none of its own.
    for path in ["/breaks", "/breaks?kind=position"] {
        let theirs = env.get(path, &clean_token).await;
        assert_eq!(theirs["breaks"], json!([]), "{path}: {theirs}");
    }
    let theirs = env
        .get(&format!("/breaks?run_id={run}"), &clean_token)
        .await;
    assert_eq!(theirs["breaks"], json!([]), "{theirs}");

    // The next sync finds no new file: no new check, no new break; the first stays.
    let again = env.sync_and_wait(&token, &connection).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["counts"]["breaks"], 0, "{again}");
    let all = env.get("/breaks", &token).await;
    assert_eq!(all["breaks"].as_array().unwrap().len(), 1, "{all}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_sync_checks_its_first_holdings_against_the_stored_ones_even_empty() {
    let env = TestEnv::start(small_params(72)).await;
    let data = env.sim.dataset();
    // The account held nothing the day before: its stored snapshot lists nothing, and still
    // is the one the trade's day is checked against.
    let (account, trade) = a_buy_after_the_first_day(&data, false);
    let security = trade.security.as_deref().expect("a traded security");
    let quantity = trade.quantity.expect("a traded quantity");
    let day = trade.booking_date;
    env.sim
        .leave_out_trade(&trade.transaction_id)
        .expect("a booked trade");
    // The bank delivers the files up to the day before the trade; the rest come later.
    let late: Vec<String> = eam_banksim::swift_files(&data)
        .into_iter()
        .filter(|f| f.date >= day)
        .map(|f| f.id)
        .collect();
    for id in &late {
        assert!(env.sim.withhold_file(id));
    }

    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let connection = bank_b(&env, tenant, &token).await;
    let first = env.sync_and_wait(&token, &connection).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["counts"]["breaks"], 0, "{first}");

    for id in &late {
        assert!(env.sim.release_file(id));
    }
    // This sync's first holdings (the trade's day) follow the stored ones of the day before;
    // every other account and security adds up across the two syncs.
    let second = env.sync_and_wait(&token, &connection).await;
    assert_eq!(second["status"], "succeeded_with_breaks", "{second}");
    assert_eq!(second["counts"]["breaks"], 1, "{second}");
    let run = second["id"].as_str().unwrap();
    let listed = env.get(&format!("/breaks?run_id={run}"), &token).await;
    let b = &listed["breaks"][0];
    assert_eq!(b["kind"], "position", "{listed}");
    assert_eq!(b["account_ref"], account.account_id.as_str());
    assert_eq!(
        b["period_from"],
        day.pred_opt().unwrap().to_string().as_str()
    );
    assert_eq!(b["statement_date"], day.to_string().as_str());
    let reported = data
        .positions_as_of(&account.account_id, day)
        .into_iter()
        .find(|p| p.security.bank_security_id == security.bank_security_id)
        .map(|p| p.quantity)
        .expect("held on the day it was bought");
    assert_eq!(dec(&b["actual"]), Some(reported), "{b}");
    assert_eq!(dec(&b["expected"]), Some(reported - quantity), "{b}");
    assert_eq!(dec(&b["difference"]), Some(quantity), "{b}");
    assert_eq!(b["security"]["name"], security.name.as_str(), "{b}");
    env.finish().await;
}
