//! The changes feed: what two syncs changed, read after a cursor, each change once, a booking
//! the bank delivered late with an old date included.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::kit::{TestEnv, small_params};

/// Every change after `cursor` (all pages), and the cursor to continue from.
async fn read_all(env: &TestEnv, token: &str, cursor: Option<&str>) -> (Vec<Value>, String) {
    let mut out = Vec::new();
    let mut cursor = cursor.map(str::to_owned);
    loop {
        let path = match &cursor {
            Some(c) => format!("/changes?limit=100&cursor={c}"),
            None => "/changes?limit=100".to_owned(),
        };
        let page = env.get(&path, token).await;
        out.extend(page["changes"].as_array().unwrap().iter().cloned());
        cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
        if page["has_more"] == false {
            return (out, cursor.unwrap());
        }
    }
}

fn counts(changes: &[Value]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for c in changes {
        *m.entry((
            c["entity"].as_str().unwrap().to_owned(),
            c["change"].as_str().unwrap().to_owned(),
        ))
        .or_insert(0) += 1;
    }
    m
}

/// The first sync's changes are every account, position and transaction, added, each once;
/// read again from its cursor, nothing. The bank then delivers a booking late (dated before
/// the latest one already delivered) and re-dates another: the second sync's changes are
/// exactly that added transaction and that modified one, with their current state. A client
/// user reads its own client's changes only; a forged cursor is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncs_with_a_back_dated_booking_give_exactly_the_added_and_modified_transactions() {
    let env = TestEnv::start(small_params(96)).await;
    let data = env.sim.dataset();
    let tenant = env.tenant("Firm C").await;
    let token = env.token(tenant, &["ops", "advisor"]);
    let connection = env
        .create_connection(&token, &env.connection_body(tenant))
        .await;
    let first = env.sync_and_wait(&token, &connection).await;
    assert_eq!(first["status"], "succeeded", "{first}");

    let (changes, cursor) = read_all(&env, &token, None).await;
    let accounts = env.get("/accounts", &token).await;
    let accounts = accounts.as_array().unwrap();
    let mut transactions = 0;
    for a in accounts {
        let page = env
            .get(
                &format!(
                    "/transactions?account_id={}&limit=500",
                    a["id"].as_str().unwrap()
                ),
                &token,
            )
            .await;
        assert!(page["next_cursor"].is_null());
        transactions += page["transactions"].as_array().unwrap().len();
    }
    let c = counts(&changes);
    assert_eq!(c[&("account".into(), "added".into())], accounts.len());
    assert_eq!(c[&("transaction".into(), "added".into())], transactions);
    assert!(c[&("position".into(), "added".into())] > 0);
    assert!(
        c.keys().all(|(_, change)| change == "added"),
        "a first sync only adds: {c:?}"
    );
    let ids: std::collections::HashSet<&str> =
        changes.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), changes.len(), "each once");
    let (again, same) = read_all(&env, &token, Some(&cursor)).await;
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(same, cursor);

    // The bank's late delivery: a booking of account A before its latest date, under a new
    // id; and another booking of A re-dated a day earlier. Both in the window the next sync
    // reads again (the cursor keeps 7 days of overlap).
    let latest = data
        .accounts
        .iter()
        .flat_map(|a| a.transactions.iter())
        .map(|t| t.booking_date)
        .max()
        .unwrap();
    let account = data
        .accounts
        .iter()
        .find(|a| {
            a.transactions
                .iter()
                .filter(|t| t.booking_date >= latest - chrono::Duration::days(5))
                .count()
                >= 2
        })
        .expect("an account with two recent bookings");
    let recent: Vec<_> = account
        .transactions
        .iter()
        .filter(|t| t.booking_date >= latest - chrono::Duration::days(5) && t.booking_date < latest)
        .collect();
    assert!(recent.len() >= 2, "{recent:?}");
    let (late, redated) = (recent[0], recent[1]);
    let late_id = format!("{}-LATE", late.transaction_id);
    env.sim.rewrite_bank_a(
        &format!("\"{}\"", late.transaction_id),
        &format!("\"{late_id}\""),
    );
    let new_date = redated.booking_date - chrono::Duration::days(1);
    env.sim.rewrite_bank_a(
        &format!(
            "\"transaction_id\":\"{}\",\"booking_date\":\"{}\"",
            redated.transaction_id, redated.booking_date
        ),
        &format!(
            "\"transaction_id\":\"{}\",\"booking_date\":\"{new_date}\"",
            redated.transaction_id
        ),
    );
    let second = env.sync_and_wait(&token, &connection).await;
    assert_eq!(second["status"], "succeeded", "{second}");

    let (changes, _) = read_all(&env, &token, Some(&cursor)).await;
    let got: Vec<(String, String, String, String)> = changes
        .iter()
        .map(|c| {
            (
                c["entity"].as_str().unwrap().to_owned(),
                c["change"].as_str().unwrap().to_owned(),
                c["data"]["bank_reference"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                c["data"]["booking_date"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut got = got;
    got.sort();
    assert_eq!(
        got,
        [
            (
                "transaction".to_owned(),
                "added".to_owned(),
                late_id.clone(),
                late.booking_date.to_string()
            ),
            (
                "transaction".to_owned(),
                "modified".to_owned(),
                redated.transaction_id.clone(),
                new_date.to_string()
            ),
        ]
    );
    assert!(
        late.booking_date < latest,
        "the added booking is back-dated"
    );

    // A client user: its own client's changes only.
    let clients = env.get("/clients", &token).await;
    let own = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["reference"] != account.client_reference.as_str())
        .expect("another client")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client_user = env.client_token(tenant, &own);
    let (theirs, _) = read_all(&env, &client_user, None).await;
    assert!(!theirs.is_empty());
    assert!(
        theirs.iter().all(|c| c["client_id"] == own.as_str()),
        "{theirs:?}"
    );
    let (status, _, _) = env
        .call(
            reqwest::Method::GET,
            "/changes?cursor=forged",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 400);
    env.finish().await;
}
