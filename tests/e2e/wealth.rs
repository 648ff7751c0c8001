//! The wealth view across custodians: accounts of all three banks assigned to one client (by
//! the bank, by rules per connection, by hand), valued as the simulator values them on three
//! dates, in the client's currency and another.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use eam_banksim::dataset::{SimAccount, SimParams};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::kit::{TestEnv, small_params};
use crate::market_data::{cents, dec, load_rates, simulator_accounts_valuation};

/// How bank_b and bank_c name an account: its IBAN, else the bank's id.
fn file_bank_key(a: &SimAccount) -> String {
    a.iban.clone().unwrap_or_else(|| a.account_id.clone())
}

/// The latest weekday on or before `d`.
fn weekday_on_or_before(mut d: NaiveDate) -> NaiveDate {
    while d.weekday().number_from_monday() > 5 {
        d = d.pred_opt().unwrap();
    }
    d
}

async fn accounts(env: &TestEnv, token: &str) -> Vec<Value> {
    env.get("/accounts", token)
        .await
        .as_array()
        .expect("accounts")
        .clone()
}

fn account_of<'a>(all: &'a [Value], connection: &str, bank_account_id: &str) -> &'a Value {
    all.iter()
        .find(|a| a["connection_id"] == connection && a["bank_account_id"] == bank_account_id)
        .unwrap_or_else(|| panic!("account {bank_account_id} of {connection} in {all:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_accounts_at_three_banks_is_valued_as_the_simulator_values_it() {
    let env = TestEnv::start(SimParams {
        clients: 3,
        accounts_per_client: 2,
        ..small_params(98)
    })
    .await;
    load_rates(&env).await;
    let data = env.sim.dataset();
    let tenant = env.tenant("Firm W").await;
    let token = env.token(tenant, &["ops", "advisor", "tenant_admin"]);
    let pki = |name: &str| env.tenant_ref(tenant, name);

    // Client X banks at bank_a (which names it); one account of another client's is read from
    // bank_b's files and one from bank_c's, which name no client: X's by rules.
    let x = &data.clients[0].reference;
    let own: Vec<&SimAccount> = data
        .accounts
        .iter()
        .filter(|a| &a.client_reference == x)
        .collect();
    let mut currencies: BTreeSet<&str> = own.iter().map(|a| a.currency).collect();
    let mut pick = |taken: &[&str]| -> &SimAccount {
        let others = data
            .accounts
            .iter()
            .filter(|a| &a.client_reference != x && !taken.contains(&a.account_id.as_str()));
        let missing = |a: &&SimAccount| {
            ["CHF", "EUR", "USD"].contains(&a.currency) && !currencies.contains(a.currency)
        };
        // Custody accounts first: their positions come from the files' own statements.
        let chosen = others
            .clone()
            .find(|a| missing(a) && a.kind == "custody")
            .or_else(|| others.clone().find(missing))
            .or_else(|| others.clone().find(|a| a.kind == "custody"))
            .expect("another client's account");
        currencies.insert(chosen.currency);
        chosen
    };
    let p = pick(&[]);
    let q = pick(&[p.account_id.as_str()]);
    assert!(
        ["CHF", "EUR", "USD"].iter().all(|c| currencies.contains(c)),
        "the seed gives the client CHF, EUR and USD accounts: {currencies:?}"
    );

    let mut body_a = env.connection_body(tenant);
    body_a["position_history_days"] = json!(30);
    let bank_a = env.create_connection(&token, &body_a).await;
    let bank_b = env
        .create_connection(
            &token,
            &json!({
                "custodian": "bank_b", "name": "Bank B",
                "client_cert_ref": pki("client.pem"), "client_key_ref": pki("client.key"),
            }),
        )
        .await;
    let bank_c = env
        .create_connection(
            &token,
            &json!({
                "custodian": "bank_c", "name": "Bank C",
                "client_secret_ref": pki("secret"),
                "client_cert_ref": pki("client.pem"), "client_key_ref": pki("client.key"),
            }),
        )
        .await;

    // bank_a first: it creates the clients.
    let job = env.sync_and_wait(&token, &bank_a).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let clients = env.get("/clients", &token).await;
    let client_id = |reference: &str| -> String {
        clients
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["reference"] == reference)
            .unwrap_or_else(|| panic!("client {reference}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let x_id = client_id(x);
    let y_id = client_id(&data.clients[1].reference);

    // A rule given before the accounts exist applies when the sync loads them.
    let (status, created, _) = env
        .call(
            Method::POST,
            &format!("/connections/{bank_b}/assignment-rules"),
            Some(&token),
            Some(&json!({ "pattern": file_bank_key(p), "client_id": x_id })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["accounts_changed"], 0);
    assert_eq!(created["rule"]["field"], "bank_account_id");
    assert_eq!(created["rule"]["priority"], 100);
    for connection in [&bank_b, &bank_c] {
        let job = env.sync_and_wait(&token, connection).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    let all = accounts(&env, &token).await;
    let on_b = account_of(&all, &bank_b, &file_bank_key(p));
    assert_eq!(
        (on_b["assignment"].as_str(), on_b["client"]["id"].as_str()),
        (Some("rule"), Some(x_id.as_str()))
    );
    // Nothing else of bank_b's or bank_c's has a client yet: listed as unassigned.
    let unassigned = all
        .iter()
        .filter(|a| a["assignment"] == "unassigned")
        .count();
    assert_eq!(unassigned, 2 * data.accounts.len() - 1);
    assert!(
        all.iter()
            .filter(|a| a["assignment"] == "unassigned")
            .all(|a| a["client"].is_null())
    );
    assert!(
        all.iter()
            .filter(|a| a["connection_id"] == bank_a.as_str())
            .all(|a| a["assignment"] == "bank")
    );

    // bank_c: a pattern for Q, and a catch-all of lower precedence for client Y; given after
    // the sync, both apply at once.
    let q_key = file_bank_key(q);
    let suffix = &q_key[q_key.len() - 6..];
    assert_eq!(
        data.accounts
            .iter()
            .filter(|a| file_bank_key(a).ends_with(suffix))
            .count(),
        1,
        "the suffix names Q alone"
    );
    let (status, created, _) = env
        .call(
            Method::POST,
            &format!("/connections/{bank_c}/assignment-rules"),
            Some(&token),
            Some(&json!({ "pattern": "*", "client_id": y_id, "priority": 200 })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["accounts_changed"], data.accounts.len());
    let (status, created, _) = env
        .call(
            Method::POST,
            &format!("/connections/{bank_c}/assignment-rules"),
            Some(&token),
            Some(&json!({ "pattern": format!("*{suffix}"), "client_id": x_id })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["accounts_changed"], 1);
    let rules = env
        .get(&format!("/connections/{bank_c}/assignment-rules"), &token)
        .await;
    let patterns: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(patterns, [format!("*{suffix}").as_str(), "*"]);
    let all = accounts(&env, &token).await;
    let on_c = account_of(&all, &bank_c, &q_key);
    assert_eq!(on_c["client"]["id"], x_id.as_str());
    assert_eq!(
        all.iter()
            .filter(|a| a["connection_id"] == bank_c.as_str() && a["client"]["id"] == y_id.as_str())
            .count(),
        data.accounts.len() - 1
    );

    // The client's reporting currency is CHF.
    let (status, _, _) = env
        .call(
            Method::PATCH,
            &format!("/clients/{x_id}"),
            Some(&token),
            Some(&json!({ "reporting_currency": "CHF" })),
        )
        .await;
    assert_eq!(status, 200);

    // Three dates: the last day, and a week and two weeks before.
    let end = data.params.end_date;
    let dates = [
        end,
        weekday_on_or_before(end - chrono::Days::new(7)),
        weekday_on_or_before(end - chrono::Days::new(14)),
    ];
    let mut valued: Vec<&str> = own.iter().map(|a| a.account_id.as_str()).collect();
    valued.push(&p.account_id);
    valued.push(&q.account_id);
    for date in dates {
        let chf = env
            .get(&format!("/clients/{x_id}/valuation?as_of={date}"), &token)
            .await;
        assert_eq!(chf["currency"], "CHF", "{chf}");
        assert_eq!(chf["accounts"], valued.len(), "{chf}");
        let custodians: Vec<&str> = chf["by_custodian"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["key"].as_str().unwrap())
            .collect();
        assert_eq!(custodians, ["bank_a", "bank_b", "bank_c"], "{chf}");
        let want = simulator_accounts_valuation(&data, &valued, date, "CHF");
        assert_eq!(dec(&chf["total_presented"]), cents(want), "{date}: {chf}");
        // Each line is of the date asked (daily snapshots at every bank).
        for line in chf["lines"].as_array().unwrap() {
            if line["kind"] == "position" {
                assert_eq!(line["as_of"], date.to_string(), "{line}");
            }
        }
    }
    // Three times as many valuations at once as the API has pooled connections (8 in the
    // kit): each answers, none waits on a connection another holds.
    let path = format!("/clients/{x_id}/valuation?as_of={end}");
    let burst = (0..24).map(|_| env.call(Method::GET, &path, Some(&token), None));
    let statuses: Vec<u16> = futures::future::join_all(burst)
        .await
        .into_iter()
        .map(|(status, _, _)| status)
        .collect();
    assert_eq!(statuses, vec![200; 24]);
    let usd = env
        .get(
            &format!("/clients/{x_id}/valuation?as_of={}&currency=USD", dates[1]),
            &token,
        )
        .await;
    assert_eq!(
        dec(&usd["total_presented"]),
        cents(simulator_accounts_valuation(
            &data, &valued, dates[1], "USD"
        ))
    );

    // Performance over the two weeks, against the simulator's own daily values and flows run
    // through an independent implementation (pyxirr's XIRR, a plain product for the TWR).
    let (from, to) = (dates[2], end);
    let perf = env
        .get(
            &format!("/clients/{x_id}/performance?from={from}&to={to}"),
            &token,
        )
        .await;
    assert_eq!(perf["reasons"], json!([]), "{perf}");
    assert_eq!(perf["currency"], "CHF");
    let daily = perf["daily"].as_array().unwrap();
    assert_eq!(daily.len() as i64, (to - from).num_days() + 1);
    let mut oracle_days = Vec::new();
    for (day, served) in from.iter_days().zip(daily) {
        let value = simulator_accounts_valuation(&data, &valued, day, "CHF");
        // The period starts at the end of `from`: that day's flows are in the start value.
        let flow = if day == from {
            Decimal::ZERO
        } else {
            simulator_flows(&data, &valued, day, "CHF")
        };
        assert_eq!(served["date"], day.to_string());
        assert_eq!(
            cents(dec(&served["value"])),
            cents(value),
            "{day}: {served}"
        );
        assert_eq!(cents(dec(&served["flow"])), cents(flow), "{day}: {served}");
        oracle_days.push(json!([
            day.to_string(),
            value.to_string(),
            flow.to_string()
        ]));
    }
    let flows = perf["flows"].as_array().unwrap();
    assert!(
        !flows.is_empty(),
        "the period has deposits or withdrawals: {perf}"
    );
    let sim_flows = data
        .accounts
        .iter()
        .filter(|a| valued.contains(&a.account_id.as_str()))
        .flat_map(|a| &a.transactions)
        .filter(|t| is_external_flow(t) && t.booking_date > from && t.booking_date <= to)
        .count();
    assert_eq!(flows.len(), sim_flows);
    let oracle = independent_returns(&json!(oracle_days));
    let bp = Decimal::new(1, 4);
    let twr = dec(&perf["time_weighted"]["cumulative"]);
    let mwr = dec(&perf["money_weighted"]["annual_rate"]);
    assert!((twr - oracle.0).abs() < bp, "TWR {twr} vs {}", oracle.0);
    assert!((mwr - oracle.1).abs() < bp, "XIRR {mwr} vs {}", oracle.1);
    assert_eq!(
        perf["time_weighted"]["subperiods"].as_i64(),
        Some((to - from).num_days())
    );
    // The same in USD, and for one account; bad periods and currencies are 400 problems.
    let in_usd = env
        .get(
            &format!("/clients/{x_id}/performance?from={from}&to={to}&currency=USD"),
            &token,
        )
        .await;
    assert_eq!(in_usd["currency"], "USD");
    assert_eq!(
        cents(dec(&in_usd["end_value"])),
        cents(simulator_accounts_valuation(&data, &valued, to, "USD"))
    );
    let one = on_b["id"].as_str().unwrap();
    let single = env
        .get(
            &format!("/accounts/{one}/performance?from={from}&to={to}"),
            &token,
        )
        .await;
    assert_eq!(
        (single["accounts"].as_i64(), single["currency"].as_str()),
        (Some(1), Some("CHF"))
    );
    assert_eq!(
        cents(dec(&single["end_value"])),
        cents(simulator_accounts_valuation(
            &data,
            &[p.account_id.as_str()],
            to,
            "CHF"
        ))
    );
    for (query, detail) in [
        (format!("to={to}"), "from: required (YYYY-MM-DD)".to_owned()),
        (
            format!("from={to}&to={from}"),
            format!("from ({to}) must be before to ({from})"),
        ),
        (
            format!("from={from}&to={to}&currency=EURO"),
            "currency: 'EURO' is not an ISO 4217 currency".to_owned(),
        ),
    ] {
        let (status, problem, _) = env
            .call(
                Method::GET,
                &format!("/clients/{x_id}/performance?{query}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            (status, problem["detail"].as_str()),
            (400, Some(detail.as_str()))
        );
    }
    env.finish().await;
}

/// What the simulator books as money into or out of a portfolio.
fn is_external_flow(t: &eam_banksim::dataset::SimTransaction) -> bool {
    t.is_booked() && matches!(t.kind, "deposit" | "withdrawal" | "transfer")
}

/// The simulator's external flows of `accounts` booked on `date`, in `target` at the
/// simulator's rates of the latest business day on or before it.
fn simulator_flows(
    data: &eam_banksim::dataset::Dataset,
    accounts: &[&str],
    date: NaiveDate,
    target: &str,
) -> Decimal {
    let fx_day = *data
        .fx_days()
        .iter()
        .rfind(|d| **d <= date)
        .expect("a rate day");
    let per_eur = |c: &str| {
        if c == "EUR" {
            rust_decimal::Decimal::ONE
        } else {
            data.fx_rate(c, fx_day).expect("quoted")
        }
    };
    data.accounts
        .iter()
        .filter(|a| accounts.contains(&a.account_id.as_str()))
        .flat_map(|a| &a.transactions)
        .filter(|t| is_external_flow(t) && t.booking_date == date)
        .map(|t| t.signed_amount() * per_eur(target) / per_eur(t.currency))
        .sum()
}

/// The time-weighted return (daily sub-periods, flows at the end of their day, linked) and
/// pyxirr's XIRR of `[[date, value, flow], ...]`, computed by Python from the figures alone.
fn independent_returns(days: &Value) -> (rust_decimal::Decimal, rust_decimal::Decimal) {
    const SCRIPT: &str = r#"
import datetime, json, sys
from pyxirr import xirr
days = [(datetime.date.fromisoformat(d), float(v), float(f)) for d, v, f in json.load(sys.stdin)]
growth = 1.0
for (_, before, _), (_, value, flow) in zip(days, days[1:]):
    growth *= (value - flow) / before
dates = [days[0][0]] + [d for d, _, f in days[1:] if f != 0] + [days[-1][0]]
amounts = [-days[0][1]] + [-f for _, _, f in days[1:] if f != 0] + [days[-1][1]]
print(json.dumps({"twr": repr(growth - 1), "xirr": repr(xirr(dates, amounts))}))
"#;
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(days.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pyxirr is installed by `make test`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let number = |k: &str| {
        let text = answer[k].as_str().unwrap();
        rust_decimal::Decimal::from_scientific(text)
            .or_else(|_| text.parse())
            .unwrap()
    };
    (number("twr"), number("xirr"))
}

/// A person's assignment stands over the bank's through later syncs, is audited, and gives
/// the bank's back when removed; bad requests change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_assigned_by_hand_keeps_its_client_through_syncs() {
    let env = TestEnv::start(SimParams {
        clients: 3,
        ..small_params(94)
    })
    .await;
    let crate::kit::Firm {
        tenant,
        token,
        connection,
    } = env
        .firm("Firm H", &["ops", "advisor", "tenant_admin"])
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let clients = env.get("/clients", &token).await;
    let clients = clients.as_array().unwrap();
    let (y, z) = (&clients[0], &clients[2]);
    let all = accounts(&env, &token).await;
    let account = all
        .iter()
        .find(|a| a["client"]["id"] == y["id"])
        .expect("an account of Y");
    let id = account["id"].as_str().unwrap();

    let (status, answer, _) = env
        .call(
            Method::PUT,
            &format!("/accounts/{id}/client"),
            Some(&token),
            Some(&json!({ "client_id": z["id"] })),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({ "account_id": id, "client_id": z["id"], "source": "manual" })
    );
    // The bank still names Y; the next sync loads the account again and leaves it with Z.
    let again = env.sync_and_wait(&token, &connection).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    let all = accounts(&env, &token).await;
    let now = all.iter().find(|a| a["id"] == id).unwrap();
    assert_eq!(
        (now["client"]["id"].clone(), now["assignment"].clone()),
        (z["id"].clone(), json!("manual"))
    );
    let z_accounts = env
        .get(&format!("/clients/{}", z["id"].as_str().unwrap()), &token)
        .await;
    assert_eq!(
        z_accounts["accounts"],
        all.iter().filter(|a| a["client"]["id"] == z["id"]).count()
    );
    // Audited with what it was before.
    let audit = env
        .get("/audit?action=account.client_assigned", &token)
        .await;
    let entry = audit["entries"]
        .as_array()
        .and_then(|e| e.first())
        .unwrap_or_else(|| panic!("an audit entry: {audit}"))
        .clone();
    assert_eq!(entry["details"]["before"]["source"], "bank", "{entry}");

    // Bad requests: 422 for an unknown client, 404 for an unknown account, 403 for a client
    // user, 409 to release an assignment that is not manual; nothing changes.
    let unknown = uuid::Uuid::new_v4();
    let (status, problem, _) = env
        .call(
            Method::PUT,
            &format!("/accounts/{id}/client"),
            Some(&token),
            Some(&json!({ "client_id": unknown })),
        )
        .await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (
            422,
            Some(format!("client_id: client {unknown} not found").as_str())
        )
    );
    let (status, problem, _) = env
        .call(
            Method::PUT,
            &format!("/accounts/{unknown}/client"),
            Some(&token),
            Some(&json!({ "client_id": z["id"] })),
        )
        .await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (404, Some(format!("account {unknown} not found").as_str()))
    );
    let client_token = env.token(tenant, &["client"]);
    let (status, _, _) = env
        .call(
            Method::DELETE,
            &format!("/accounts/{id}/client"),
            Some(&client_token),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let other = all.iter().find(|a| a["assignment"] == "bank").unwrap()["id"]
        .as_str()
        .unwrap();
    let (status, _, _) = env
        .call(
            Method::DELETE,
            &format!("/accounts/{other}/client"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 409);
    // Another firm cannot touch it: 404 as for an unknown id.
    let stranger = env.firm("Firm S", &["ops", "advisor"]).await;
    let (status, _, _) = env
        .call(
            Method::PUT,
            &format!("/accounts/{id}/client"),
            Some(&stranger.token),
            Some(&json!({ "client_id": z["id"] })),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = env
        .call(
            Method::GET,
            &format!("/connections/{connection}/assignment-rules"),
            Some(&stranger.token),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Released: the bank's client again, at once.
    let (status, answer, _) = env
        .call(
            Method::DELETE,
            &format!("/accounts/{id}/client"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({ "account_id": id, "client_id": y["id"], "source": "bank" })
    );

    // A rule naming a client keeps the client from being deleted; a bad field is a 422.
    let (status, problem, _) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/assignment-rules"),
            Some(&token),
            Some(&json!({ "field": "bic", "pattern": "X*", "client_id": z["id"] })),
        )
        .await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (422, Some("field: 'bic' is not bank_account_id or iban"))
    );
    let (status, created, _) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/assignment-rules"),
            Some(&token),
            Some(&json!({ "field": "iban", "pattern": "XX*", "client_id": z["id"] })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    // bank_a names every account's client: a rule changes none of them.
    assert_eq!(created["accounts_changed"], 0);
    let fresh = env
        .call(
            Method::POST,
            "/clients",
            Some(&token),
            Some(&json!({ "reference": "NEW-1", "name": "New client" })),
        )
        .await
        .1;
    let (status, _, _) = env
        .call(
            Method::POST,
            &format!("/connections/{connection}/assignment-rules"),
            Some(&token),
            Some(&json!({ "pattern": "none*", "client_id": fresh["id"] })),
        )
        .await;
    assert_eq!(status, 201);
    let (status, problem, _) = env
        .call(
            Method::DELETE,
            &format!("/clients/{}", fresh["id"].as_str().unwrap()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (
            409,
            Some("1 account assignment rule(s) name the client: remove them first")
        )
    );
    env.finish().await;
}

/// A bank_c camt.053 of `statements` (account id, closing in AED, an optional deposit's
/// `CcyXchg` of 1 CHF = `rate` AED) for `day`.
pub(crate) fn aed_statement(day: NaiveDate, statements: &[(&str, &str, Option<&str>)]) -> String {
    let mut body = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\">",
        "<BkToCstmrStmt><GrpHdr><MsgId>AED-1</MsgId><CreDtTm>2026-12-01T23:00:00</CreDtTm>",
        "</GrpHdr>"
    ));
    for (account, closing, rate) in statements {
        let entry = rate.map(|rate| {
            format!(
                "<Ntry><Amt Ccy=\"AED\">{closing}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>\
                 <BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt>\
                 <AcctSvcrRef>FX-{account}</AcctSvcrRef>\
                 <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>XBCT</SubFmlyCd></Fmly></Domn></BkTxCd>\
                 <NtryDtls><TxDtls><AmtDtls>\
                 <InstdAmt><Amt Ccy=\"CHF\">2500.00</Amt><CcyXchg><SrcCcy>CHF</SrcCcy><TrgtCcy>AED</TrgtCcy>\
                 <UnitCcy>CHF</UnitCcy><XchgRate>{rate}</XchgRate></CcyXchg></InstdAmt>\
                 <TxAmt><Amt Ccy=\"AED\">{closing}</Amt></TxAmt></AmtDtls></TxDtls></NtryDtls></Ntry>"
            )
        });
        let opening = if entry.is_some() { "0.00" } else { closing };
        body.push_str(&format!(
            "<Stmt><Id>{account}-{day}</Id><CreDtTm>{day}T23:00:00</CreDtTm>\
             <Acct><Id><Othr><Id>{account}</Id></Othr></Id><Ccy>AED</Ccy></Acct>\
             <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"AED\">{opening}</Amt>\
             <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>\
             <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"AED\">{closing}</Amt>\
             <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>{}</Stmt>",
            entry.unwrap_or_default()
        ));
    }
    body.push_str("</BkToCstmrStmt></Document>");
    body
}

/// A currency the ECB does not quote (AED) is valued at the rate its bank states: bank_c's
/// camt.053 converts a CHF deposit into AED at 1 CHF = 4 AED, so the account's 10,000 AED are
/// 2,500 CHF (source `bank:bank_c`), and in USD through the ECB's CHF and USD of the day. The
/// rate is the bank's for the whole firm: a second AED account whose own statement states no
/// rate is valued with it too. Another firm whose documents state no rate gets null with the
/// reason: one firm's bank rates never enter another's figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_currency_the_ecb_does_not_quote_is_valued_at_the_rate_its_bank_states() {
    let env = TestEnv::start(small_params(71)).await;
    load_rates(&env).await;
    let data = env.sim.dataset();
    let files = eam_banksim::files::iso_files(&data);
    let file = files
        .iter()
        .find(|f| {
            f.format == eam_banksim::files::FileFormat::Camt053
                && f.date.weekday().number_from_monday() <= 5
        })
        .expect("a camt.053 of a weekday");
    let day = file.date;
    let sync = |name: &'static str, body: String| {
        let env = &env;
        async move {
            env.sim.replace_file(&file.id, body.into_bytes());
            let tenant = env.tenant(name).await;
            let token = env.token(tenant, &["ops", "advisor", "tenant_admin"]);
            let connection = env
                .create_connection(&token, &env.file_bank_body(tenant, "bank_c"))
                .await;
            let job = env.sync_and_wait(&token, &connection).await;
            assert!(
                matches!(
                    job["status"].as_str(),
                    Some("succeeded" | "succeeded_with_breaks")
                ),
                "{job}"
            );
            let all = accounts(env, &token).await;
            let id = |bank_id: &str| {
                account_of(&all, &connection, bank_id)["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            };
            let ids = [id("AED-1"), id("AED-2")];
            (token, ids, job)
        }
    };
    let valuation = |id: &str, currency: &str| {
        format!("/accounts/{id}/valuation?as_of={day}&currency={currency}")
    };

    let stated = aed_statement(
        day,
        &[("AED-1", "10000.00", Some("4")), ("AED-2", "1000.00", None)],
    );
    let (token, [aed1, aed2], job) = sync("Firm AED", stated).await;
    assert_eq!(job["counts"]["rates"]["inserted"], json!(1), "{job}");
    let v = env.get(&valuation(&aed1, "CHF"), &token).await;
    assert_eq!(cents(dec(&v["total"])), Decimal::from(2500), "{v}");
    // AED's EUR rate is the bank's (through the ECB's CHF of the day), CHF's the ECB's.
    let fx = &v["lines"][0]["fx"];
    assert_eq!(fx["sources"], json!(["bank:bank_c", "ecb"]), "{v}");
    assert_eq!(dec(&fx["rate"]), Decimal::new(25, 2), "{v}");
    assert_eq!(fx["date"], json!(day.to_string()));
    assert_eq!(fx["stale"], json!(false));
    // AED-2's own statement states no rate: the bank's rate of the day values it all the same.
    let v = env.get(&valuation(&aed2, "CHF"), &token).await;
    assert_eq!(cents(dec(&v["total"])), Decimal::from(250), "{v}");

    // In USD: 10,000 AED = 2,500 CHF, converted at the ECB's CHF and USD of the day.
    let rates = env
        .get(&format!("/fx-rates?date={day}&base=EUR"), &token)
        .await;
    let per_eur = |code: &str| {
        rates["rates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["currency"] == code)
            .map(|r| dec(&r["rate"]))
            .unwrap_or_else(|| panic!("{code} in {rates}"))
    };
    // `/fx-rates` is the ECB's alone: AED is not among its rates.
    assert!(
        !rates["rates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["currency"] == "AED"),
        "{rates}"
    );
    let (chf, usd) = (per_eur("CHF"), per_eur("USD"));
    let v = env.get(&valuation(&aed1, "USD"), &token).await;
    let expected = Decimal::from(10_000) * usd / (chf * Decimal::from(4));
    assert_eq!(cents(dec(&v["total"])), cents(expected), "{v}");
    assert_eq!(
        v["lines"][0]["fx"]["sources"],
        json!(["bank:bank_c", "ecb"]),
        "{v}"
    );

    // Another firm, whose bank_c documents state no rate: null, with the reason.
    let unstated = aed_statement(
        day,
        &[("AED-1", "10000.00", None), ("AED-2", "1000.00", None)],
    );
    let (token, [other1, _], job) = sync("Firm without rates", unstated).await;
    assert_eq!(job["counts"]["rates"]["inserted"], json!(0), "{job}");
    let v = env.get(&valuation(&other1, "CHF"), &token).await;
    assert_eq!(v["total"], Value::Null, "{v}");
    assert_eq!(
        v["lines"][0]["reason"].as_str(),
        Some(format!("no AED rate on or before {day}").as_str()),
        "{v}"
    );
    env.finish().await;
}
