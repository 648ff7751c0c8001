//! Statements as banks really send them (issue 15), synced end to end: a bad statement of a
//! camt message or a bad message of an MT535 file costs only itself (an `unreadable` break,
//! the run `succeeded_with_breaks`), control characters are removed from the stored text with
//! a warning on the run, a withdrawn currency is flagged on every record the API shows, and a
//! REST bank's security with an ISIN failing its check digit is kept under the bank's id.

use std::str::FromStr;

use eam_banksim::dataset::SimParams;
use eam_banksim::files::{FileFormat, StatementFile};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::kit::{TestEnv, small_params};

fn dec(v: &Value) -> Option<Decimal> {
    v.as_str().and_then(|s| Decimal::from_str(s).ok())
}

/// The first file of `format` the simulator lists.
fn first_file(env: &TestEnv, format: FileFormat) -> StatementFile {
    let data = env.sim.dataset();
    let files = match format {
        FileFormat::Camt053 | FileFormat::Semt002 => eam_banksim::files::iso_files(&data),
        _ => eam_banksim::files::swift_files(&data),
    };
    files
        .into_iter()
        .find(|f| f.format == format)
        .expect("a file of the format")
}

/// The tenant's account with the bank's id `bank_id`, as `GET /accounts` shows it.
async fn account(env: &TestEnv, token: &str, bank_id: &str) -> Value {
    env.get("/accounts", token)
        .await
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["bank_account_id"] == bank_id)
        .unwrap_or_else(|| panic!("account {bank_id} loaded"))
        .clone()
}

/// A camt.053 entry of `amount` EUR booked on `day` with the bank's reference.
fn camt_entry(amount: &str, cd: &str, reference: &str, day: &str) -> String {
    format!(
        "<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>{cd}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>\
         <BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt>\
         <AcctSvcrRef>{reference}</AcctSvcrRef></Ntry>"
    )
}

fn camt_balance(code: &str, amount: &str, day: &str) -> String {
    format!(
        "<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{amount}</Amt>\
         <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>"
    )
}

/// A camt.053 of bank_c holding three statements of one account: the first reads and adds
/// up, the second reads and does not add up, the third is cut short (an opening, no closing).
/// The first two load; the second is a balance break, the third an unreadable break naming
/// its document, statement, line and field; the run ends `succeeded_with_breaks`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camt_statement_cut_short_is_a_break_and_the_others_of_its_message_load() {
    let env = TestEnv::start(SimParams {
        days: 1,
        ..small_params(66)
    })
    .await;
    let file = first_file(&env, FileFormat::Camt053);
    let statement = |n: u32, body: String| {
        format!(
            "<Stmt><Id>CAMT-{n}</Id><ElctrncSeqNb>{n}</ElctrncSeqNb><Acct><Id><Othr><Id>CH-CUT-CAMT</Id>\
             </Othr></Id><Ccy>EUR</Ccy></Acct>{body}</Stmt>\n"
        )
    };
    let body = [
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n".to_owned(),
        "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\">\n".to_owned(),
        "<BkToCstmrStmt><GrpHdr><MsgId>CUT</MsgId><CreDtTm>2026-12-03T22:00:00+01:00</CreDtTm></GrpHdr>\n"
            .to_owned(),
        // Line 4.
        statement(
            1,
            [
                camt_balance("OPBD", "100.00", "2026-12-01"),
                camt_entry("50.00", "CRDT", "R-1", "2026-12-01"),
                camt_balance("CLBD", "150.00", "2026-12-01"),
            ]
            .concat(),
        ),
        // Line 5: 150 - 20 is 130, not 140.
        statement(
            2,
            [
                camt_balance("OPBD", "150.00", "2026-12-02"),
                camt_entry("20.00", "DBIT", "R-2", "2026-12-02"),
                camt_balance("CLBD", "140.00", "2026-12-02"),
            ]
            .concat(),
        ),
        // Line 6: the download stopped before the closing balance.
        statement(
            3,
            [
                camt_balance("OPBD", "140.00", "2026-12-03"),
                camt_entry("5.00", "CRDT", "R-3", "2026-12-03"),
            ]
            .concat(),
        ),
        "</BkToCstmrStmt></Document>\n".to_owned(),
    ]
    .concat();
    env.sim.replace_file(&file.id, body.into_bytes());

    let tenant = env.tenant("Firm camt").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let connection = env
        .create_connection(&token, &env.file_bank_body(tenant, "bank_c"))
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded_with_breaks", "{job}");
    let run = job["id"].as_str().unwrap();
    let breaks = env.get(&format!("/breaks?run_id={run}"), &token).await;
    let mut breaks: Vec<Value> = breaks["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["account_ref"] == "CH-CUT-CAMT")
        .map(|b| {
            json!({
                "kind": b["kind"], "statement_reference": b["statement_reference"],
                "statement_number": b["statement_number"], "currency": b["currency"],
                "source_document": b["source_document"], "message": b["message"],
            })
        })
        .collect();
    breaks.sort_by_key(|b| b["statement_number"].as_u64());
    assert_eq!(
        breaks,
        [
            json!({
                "kind": "balance", "statement_reference": "CAMT-2", "statement_number": 2,
                "currency": "EUR", "source_document": file.name,
                "message": "opening 150.00 + 1 entries totalling -20 = 130.00, but the statement \
                            closes at 140.00 (difference 10.00)",
            }),
            json!({
                "kind": "unreadable", "statement_reference": "CAMT-3", "statement_number": 3,
                "currency": null, "source_document": file.name,
                "message": format!(
                    "{}: statement 3, line 6, field Stmt[3]/Bal left out: the statement has an \
                     opening but no closing balance (CLBD): it is cut short",
                    file.name
                ),
            }),
        ],
        "{breaks:?}"
    );
    // The first two statements loaded: two transactions, and their balances.
    let id = account(&env, &token, "CH-CUT-CAMT").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tx = env
        .get(&format!("/transactions?account_id={id}"), &token)
        .await;
    let mut refs: Vec<_> = tx["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["bank_reference"].clone(), dec(&t["amount"])))
        .collect();
    refs.sort_by_key(|r| r.0.to_string());
    assert_eq!(
        refs,
        [
            (json!("R-1"), Some(Decimal::from(50))),
            (json!("R-2"), Some(Decimal::from(20)))
        ],
        "{tx}"
    );
    let balances = env.get(&format!("/balances?account_id={id}"), &token).await;
    let mut closings: Vec<_> = balances["balances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["kind"] == "closing")
        .map(|b| (b["as_of"].clone(), dec(&b["amount"])))
        .collect();
    closings.sort_by_key(|c| c.0.to_string());
    assert_eq!(
        closings,
        [
            (json!("2026-12-01"), Some(Decimal::from(150))),
            (json!("2026-12-02"), Some(Decimal::from(140)))
        ],
        "{balances}"
    );
    env.finish().await;
}

/// An MT535 file of bank_b with two messages, the second of which names an instrument
/// without its quantity: the first depot loads, the second message is an unreadable break.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mt535_message_that_cannot_be_read_is_a_break_and_the_other_depot_loads() {
    let env = TestEnv::start(SimParams {
        days: 1,
        ..small_params(67)
    })
    .await;
    let file = first_file(&env, FileFormat::Mt535);
    let day = file.date.format("%Y%m%d");
    let message = |reference: &str, depot: &str, holding: &str| {
        format!(
            "{{1:F01BANKCHZZAXXX0000000000}}{{2:O535BANKCHZZXXXXN}}{{4:\r\n\
             :16R:GENL\r\n:28E:1/ONLY\r\n:20C::SEME//{reference}\r\n:23G:NEWM\r\n\
             :98A::STAT//{day}\r\n:22F::CODE//COMP\r\n:97A::SAFE//{depot}\r\n:17B::ACTI//Y\r\n\
             :16S:GENL\r\n:16R:SUBSAFE\r\n:16R:FIN\r\n{holding}:16S:FIN\r\n:16S:SUBSAFE\r\n-}}\r\n"
        )
    };
    let body = [
        // Lines 1 to 19.
        message(
            "H-A",
            "DEPOT-A",
            ":35B:ISIN US0378331005\r\nAPPLE INC\r\n:93B::AGGR//UNIT/10,\r\n:19A::HOLD//EUR1800,\r\n",
        ),
        // Lines 20 to 37: the instrument whose block opens on line 31 has no :93B::AGGR.
        message(
            "H-B",
            "DEPOT-B",
            ":35B:ISIN DE0007236101\r\nSIEMENS AG\r\n:19A::HOLD//EUR1000,\r\n",
        ),
    ]
    .concat();
    env.sim.replace_file(&file.id, body.into_bytes());

    let tenant = env.tenant("Firm MT535").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let connection = env
        .create_connection(&token, &env.file_bank_body(tenant, "bank_b"))
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded_with_breaks", "{job}");
    let run = job["id"].as_str().unwrap();
    let breaks = env
        .get(&format!("/breaks?run_id={run}&kind=unreadable"), &token)
        .await;
    let breaks: Vec<Value> = breaks["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            json!({
                "account_ref": b["account_ref"], "statement_reference": b["statement_reference"],
                "statement_number": b["statement_number"], "source_document": b["source_document"],
                "message": b["message"],
            })
        })
        .collect();
    assert_eq!(
        breaks,
        [json!({
            "account_ref": "DEPOT-B", "statement_reference": "H-B", "statement_number": 2,
            "source_document": file.name,
            "message": format!(
                "{}: statement 2, line 31, field :93B::AGGR left out: the instrument has no \
                 aggregate balance (:93B::AGGR//)",
                file.name
            ),
        })]
    );
    let depot = account(&env, &token, "DEPOT-A").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let held = env
        .get(&format!("/holdings?account_id={depot}"), &token)
        .await;
    let held: Vec<_> = held["holdings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["security"]["isin"].clone(), h["quantity"].clone()))
        .collect();
    assert_eq!(held, [(json!("US0378331005"), json!("10"))]);
    let accounts = env.get("/accounts", &token).await;
    assert!(
        !accounts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["bank_account_id"] == "DEPOT-B"),
        "the message left out made no account: {accounts}"
    );
    env.finish().await;
}

/// bank_a (REST JSON) writes a held security's ISIN with a wrong check digit: the pages load,
/// the security is kept under the bank's own id with the ISIN as written in `raw_isin` (never
/// as `isin`), and the run carries the warning, where the page used to be refused whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_banks_isin_failing_its_check_digit_is_kept_under_its_id_with_a_warning() {
    let env = TestEnv::start(SimParams {
        days: 1,
        ..small_params(68)
    })
    .await;
    let data = env.sim.dataset();
    let (account_id, position) = data
        .accounts
        .iter()
        .filter(|a| a.kind == "custody")
        .find_map(|a| {
            data.positions_as_of(&a.account_id, crate::kit::end_date())
                .into_iter()
                .find(|p| p.security.isin.is_some())
                .map(|p| (a.account_id.clone(), p))
        })
        .expect("a held security with an ISIN");
    let isin = position.security.isin.clone().unwrap();
    // The same ISIN with another last digit: only its check digit fails.
    let (body, last) = isin.split_at(isin.len() - 1);
    let last = (last.parse::<u8>().unwrap() + 1) % 10;
    let wrong = format!("{body}{last}");
    env.sim
        .rewrite_bank_a(&format!("\"{isin}\""), &format!("\"{wrong}\""));

    let tenant = env.tenant("Firm REST ISIN").await;
    let token = env.token(tenant, &["ops", "advisor", "support"]);
    let connection = env
        .create_connection(&token, &env.connection_body(tenant))
        .await;
    let job = env.sync_and_wait(&token, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let bank_id = &position.security.bank_security_id;
    let expected = format!(
        "'{wrong}' is not a valid ISIN: check digit does not match: the security is kept as \
         bank:bank_a:{bank_id}, the ISIN as written in raw_isin"
    );
    let samples = job["counts"]["warning_samples"].as_array().unwrap();
    assert_eq!(job["counts"]["warnings"], samples.len(), "{job}");
    assert!(
        samples.iter().any(|w| w["field"]
            .as_str()
            .is_some_and(|f| f.starts_with("positions[") && f.ends_with("].security.isin"))),
        "{job}"
    );
    for w in samples {
        assert_eq!(w["message"], expected.as_str(), "{job}");
        assert_eq!(w["line"], Value::Null);
    }

    let id = account(&env, &token, &account_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let held = env.get(&format!("/holdings?account_id={id}"), &token).await;
    let held: Vec<_> = held["holdings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["security"]["bank_security_id"] == bank_id.as_str())
        .map(|h| {
            (
                h["security"]["isin"].clone(),
                h["security"]["raw_isin"].clone(),
                h["security"]["name"].clone(),
                dec(&h["quantity"]),
            )
        })
        .collect();
    assert_eq!(
        held,
        [(
            Value::Null,
            json!(wrong),
            json!(position.security.name),
            Some(position.quantity)
        )]
    );
    env.finish().await;
}

/// bank_b sends a Deutsche Mark statement whose narratives carry NUL, BEL and ESC (a
/// back-office export), and a holdings statement priced in Deutsche Mark. The text is stored
/// without the control characters, the run says where they were removed, and every balance,
/// transaction and position in DEM says `historic_currency: true` (an EUR one false).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_removed_with_a_warning_and_a_withdrawn_currency_is_flagged() {
    let env = TestEnv::start(SimParams {
        days: 1,
        ..small_params(69)
    })
    .await;
    let mt940 = first_file(&env, FileFormat::Mt940);
    let statement = concat!(
        "{1:F01BANKCHZZAXXX0000000000}{2:O9401200261201BANKCHZZAXXX00000000002612011200N}{4:\r\n",
        ":20:HIST-1\r\n:25:DE-HIST-ACCOUNT\r\n:28C:1/1\r\n:60F:C261130DEM1000,00\r\n",
        // Line 6 and 7: two NULs inside the narrative, a BEL at its end.
        ":61:2612011201D250,00NTRFREF-1//B-1\r\n:86:Miete\0\0 Januar\x07\r\n",
        // Line 8 and 9: an escape code.
        ":61:2612011201C100,00NTRFREF-2//B-2\r\n:86:Erstattung\x1b\r\n",
        ":62F:C261201DEM850,00\r\n-}\r\n",
    );
    env.sim
        .replace_file(&mt940.id, statement.as_bytes().to_vec());
    let mt535 = first_file(&env, FileFormat::Mt535);
    let day = mt535.date.format("%Y%m%d");
    let holdings = format!(
        "{{1:F01BANKCHZZAXXX0000000000}}{{2:O535BANKCHZZXXXXN}}{{4:\r\n\
         :16R:GENL\r\n:28E:1/ONLY\r\n:20C::SEME//HIST\r\n:23G:NEWM\r\n\
         :98A::STAT//{day}\r\n:22F::CODE//COMP\r\n:97A::SAFE//DEPOT-HIST\r\n:17B::ACTI//Y\r\n\
         :16S:GENL\r\n:16R:SUBSAFE\r\n:16R:FIN\r\n:35B:ISIN DE0007236101\r\nSIEMENS AG\r\n\
         :90B::MRKT//ACTU/DEM45,5\r\n:93B::AGGR//UNIT/10,\r\n:19A::HOLD//DEM455,\r\n\
         :16S:FIN\r\n:16S:SUBSAFE\r\n-}}\r\n"
    );
    env.sim.replace_file(&mt535.id, holdings.into_bytes());

    let tenant = env.tenant("Firm DEM").await;
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
    let samples = job["counts"]["warning_samples"].as_array().unwrap();
    assert_eq!(job["counts"]["warnings"], samples.len(), "{job}");
    let control: Vec<&Value> = samples
        .iter()
        .filter(|w| w["message"] != "the file is not UTF-8: read as ISO-8859-1")
        .collect();
    assert_eq!(
        control,
        [&json!({
            "document": mt940.name, "line": 7, "field": null,
            "message": "4 control characters (NUL or another C0 code) removed from the text on lines 7, 9",
        })],
        "{job}"
    );

    // The stored text is the narrative without them; the amounts are in DEM, flagged.
    let cash = account(&env, &token, "DE-HIST-ACCOUNT").await;
    assert_eq!(
        (&cash["currency"], &cash["historic_currency"]),
        (&json!("DEM"), &json!(true))
    );
    let id = cash["id"].as_str().unwrap();
    let tx = env
        .get(&format!("/transactions?account_id={id}"), &token)
        .await;
    let mut tx: Vec<_> = tx["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["bank_reference"].clone(),
                t["description"].clone(),
                t["currency"].clone(),
                t["historic_currency"].clone(),
            )
        })
        .collect();
    tx.sort_by_key(|t| t.0.to_string());
    assert_eq!(
        tx,
        [
            (
                json!("B-1"),
                json!("Miete Januar"),
                json!("DEM"),
                json!(true)
            ),
            (json!("B-2"), json!("Erstattung"), json!("DEM"), json!(true)),
        ]
    );
    let balances = env.get(&format!("/balances?account_id={id}"), &token).await;
    let mut balances: Vec<_> = balances["balances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["kind"].clone(),
                dec(&b["amount"]),
                b["currency"].clone(),
                b["historic_currency"].clone(),
            )
        })
        .collect();
    balances.sort_by_key(|b| b.0.to_string());
    assert_eq!(
        balances,
        [
            (
                json!("closing"),
                Some(Decimal::from(850)),
                json!("DEM"),
                json!(true)
            ),
            (
                json!("opening"),
                Some(Decimal::from(1000)),
                json!("DEM"),
                json!(true)
            ),
        ]
    );
    let depot = account(&env, &token, "DEPOT-HIST").await;
    let held = env
        .get(
            &format!("/holdings?account_id={}", depot["id"].as_str().unwrap()),
            &token,
        )
        .await;
    let held: Vec<_> = held["holdings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["security"]["isin"].clone(),
                h["price_currency"].clone(),
                h["historic_currency"].clone(),
                dec(&h["market_value"]),
            )
        })
        .collect();
    assert_eq!(
        held,
        [(
            json!("DE0007236101"),
            json!("DEM"),
            json!(true),
            Some(Decimal::from(455))
        )]
    );

    // Every other account of the bank is in a current currency: not flagged.
    let accounts = env.get("/accounts", &token).await;
    for a in accounts.as_array().unwrap() {
        let dem = a["currency"] == "DEM";
        assert_eq!(a["historic_currency"], json!(dem), "{a}");
        if dem {
            continue;
        }
        let id = a["id"].as_str().unwrap();
        let balances = env.get(&format!("/balances?account_id={id}"), &token).await;
        for b in balances["balances"].as_array().unwrap() {
            assert_eq!(b["historic_currency"], json!(false), "{b}");
        }
    }
    env.finish().await;
}
