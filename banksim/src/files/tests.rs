//! The statement files against the normalizer that reads them: every format parses back into
//! exactly what the dataset holds, every statement adds up and chains to the next day, and the
//! files list in id order.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use eam_normalizer::model::{
    AccountKind, BalanceKind, Batch, Direction, PriceType, QuantityType, SourceFormat,
    StatementSummary, Transaction, TransactionStatus, TransactionType,
};
use eam_normalizer::{position_check, statement};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::dataset::{SimParams, SimSecurity, generate};

const BANK_B: &str = "bank_b";
const BANK_C: &str = "bank_c";

fn end_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).expect("valid date")
}

fn params() -> SimParams {
    SimParams {
        seed: 11,
        clients: 2,
        accounts_per_client: 3,
        positions_per_account: 4,
        transactions_per_account: 40,
        days: 8,
        end_date: end_date(),
    }
}

fn parse(file: &StatementFile, custodian: &str) -> Batch {
    let format = SourceFormat::parse(file.format.as_str()).expect("listed formats are known");
    statement::parse(format, custodian, &file.name, &file.bytes).unwrap_or_else(|e| {
        panic!(
            "{} does not parse: {e}\n{}",
            file.name,
            String::from_utf8_lossy(&file.bytes)
        )
    })
}

fn day_number(dataset: &Dataset, date: NaiveDate) -> u32 {
    u32::try_from((date - dataset.start_date).num_days() + 1).expect("a day of the dataset")
}

fn key(custodian: &str, security: &SimSecurity) -> String {
    match (&security.isin, custodian) {
        (Some(isin), _) => format!("isin:{isin}"),
        (None, BANK_B) => format!("bank:{BANK_B}:XX/{}", security.bank_security_id),
        (None, _) => format!("bank:{custodian}:{}", security.bank_security_id),
    }
}

fn direction(t: &SimTransaction) -> Direction {
    if t.direction == "debit" {
        Direction::Debit
    } else {
        Direction::Credit
    }
}

/// The type a camt.053 reader recovers: exactly the dataset's.
fn camt_kind(kind: &str) -> TransactionType {
    match kind {
        "buy" => TransactionType::Buy,
        "sell" => TransactionType::Sell,
        "dividend" => TransactionType::Dividend,
        "interest" => TransactionType::Interest,
        "fee" => TransactionType::Fee,
        "deposit" => TransactionType::Deposit,
        "withdrawal" => TransactionType::Withdrawal,
        "transfer" => TransactionType::Transfer,
        other => panic!("unexpected kind {other}"),
    }
}

/// The type an MT940 reader recovers from the `:61:` code: deposits and withdrawals are
/// transfers, trades have no SWIFT code of their own.
fn mt940_kind(kind: &str) -> TransactionType {
    match kind {
        "dividend" => TransactionType::Dividend,
        "interest" => TransactionType::Interest,
        "fee" => TransactionType::Fee,
        "deposit" | "withdrawal" | "transfer" => TransactionType::Transfer,
        _ => TransactionType::Other,
    }
}

/// What every cash statement must say of itself: its day, one complete page, opening +
/// entries = closing. Returns (opening, closing).
fn check_summary(batch: &Batch, file: &StatementFile, dataset: &Dataset) -> (Decimal, Decimal) {
    let [summary]: &[StatementSummary; 1] = batch
        .statements
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("{}: one statement", file.name));
    assert_eq!(
        summary.statement_number,
        Some(day_number(dataset, file.date)),
        "{}",
        file.name
    );
    assert_eq!(summary.page_number, Some(1));
    assert!(summary.last_page);
    let opening = summary.opening.as_ref().expect("an opening balance");
    let closing = summary.closing.as_ref().expect("a closing balance");
    assert_eq!((opening.date, closing.date), (file.date, file.date));
    assert!(!opening.intermediate && !closing.intermediate);
    assert_eq!(
        opening.amount + summary.entries_total,
        closing.amount,
        "{}: opening + entries = closing",
        file.name
    );
    assert_eq!(summary.entry_count as usize, batch.transactions.len());
    (opening.amount, closing.amount)
}

/// The balances a cash statement loads: opening and closing of the day, available on the
/// last day.
fn check_balances(
    batch: &Batch,
    file: &StatementFile,
    dataset: &Dataset,
    summary: (Decimal, Decimal),
) {
    let account = dataset.account(&file.account_id).expect("a known account");
    let mut expected = vec![
        (BalanceKind::Opening, file.date, summary.0),
        (BalanceKind::Closing, file.date, summary.1),
    ];
    if file.date == dataset.params.end_date {
        let available = dataset
            .balances(&account.account_id)
            .into_iter()
            .find(|b| b.kind == "available")
            .expect("an available balance");
        expected.push((BalanceKind::Available, file.date, available.amount));
    }
    let loaded: Vec<_> = batch
        .balances
        .iter()
        .map(|b| (b.kind, b.as_of, b.amount))
        .collect();
    assert_eq!(loaded, expected, "{}", file.name);
    assert!(
        batch
            .balances
            .iter()
            .all(|b| b.currency.as_str() == account.currency)
    );
}

/// Opening balances chain from the account's opening through every day to its closing.
fn check_chain(
    dataset: &Dataset,
    statements: &BTreeMap<String, Vec<(NaiveDate, Decimal, Decimal)>>,
) {
    for account in &dataset.accounts {
        let days = statements
            .get(&account.account_id)
            .unwrap_or_else(|| panic!("{} has statements", account.account_id));
        assert_eq!(days.len(), dataset.params.days.max(1) as usize);
        let balances = dataset.balances(&account.account_id);
        let of = |kind: &str| {
            balances
                .iter()
                .find(|b| b.kind == kind)
                .map(|b| b.amount)
                .expect("dataset balance")
        };
        assert_eq!(days[0].1, of("opening"), "{}", account.account_id);
        assert_eq!(
            days[days.len() - 1].2,
            of("closing"),
            "{}",
            account.account_id
        );
        for pair in days.windows(2) {
            assert_eq!(pair[1].0, pair[0].0 + Days::new(1), "one statement per day");
            assert_eq!(
                pair[1].1, pair[0].2,
                "{}: opening = previous closing",
                account.account_id
            );
        }
    }
}

fn only_encoding_warnings(batch: &Batch, file: &StatementFile) {
    for w in &batch.warnings {
        assert!(
            w.message.contains("not UTF-8"),
            "{}: unexpected warning {w:?}",
            file.name
        );
    }
}

fn check_cash_entry(loaded: &Transaction, t: &SimTransaction, file: &StatementFile) {
    let what = format!("{} {}", file.name, t.transaction_id);
    assert_eq!(loaded.booking_date, t.booking_date, "{what}");
    assert_eq!(loaded.value_date, t.value_date, "{what}");
    assert_eq!(loaded.amount, t.amount, "{what}");
    assert_eq!(loaded.direction, direction(t), "{what}");
    assert_eq!(loaded.currency.as_str(), t.currency, "{what}");
    assert_eq!(loaded.status, TransactionStatus::Booked, "{what}");
    assert!(!loaded.reversal, "{what}");
    assert_eq!(loaded.description, t.description, "{what}");
    assert_eq!(loaded.counterparty, t.counterparty, "{what}");
}

fn check_position_common(
    loaded: &eam_normalizer::model::Position,
    p: &crate::dataset::SimPosition,
    file: &StatementFile,
) {
    let what = format!("{} {}", file.name, p.security.bank_security_id);
    assert_eq!(loaded.account, file.account_id, "{what}");
    assert_eq!(loaded.as_of, file.date, "{what}");
    assert_eq!(loaded.quantity, p.quantity, "{what}");
    let quantity_type = if p.quantity_type == "face_amount" {
        QuantityType::FaceAmount
    } else {
        QuantityType::Units
    };
    assert_eq!(loaded.quantity_type, quantity_type, "{what}");
    let price_type = if p.price_type == "percent" {
        PriceType::Percent
    } else {
        PriceType::Amount
    };
    assert_eq!(loaded.price_type, price_type, "{what}");
    assert_eq!(loaded.price, Some(p.price), "{what}");
    // A percent price names no currency: the position's is then its values' (MT535
    // `:19A::HOLD`, semt.002 `HldgVal`), the face amount's.
    assert_eq!(
        loaded
            .price_currency
            .map(|c| c.as_str().to_owned())
            .as_deref(),
        Some(p.price_currency),
        "{what}"
    );
    assert_eq!(loaded.market_value, Some(p.market_value), "{what}");
    assert_eq!(loaded.accrued_interest, p.accrued_interest, "{what}");
    assert_eq!(loaded.cost, Some(p.cost), "{what}");
}

/// Every bank_b file parses back into the dataset's records.
fn check_swift(dataset: &Dataset) {
    let files = swift_files(dataset);
    let mut statements: BTreeMap<String, Vec<(NaiveDate, Decimal, Decimal)>> = BTreeMap::new();
    let mut cash_entries: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut trades: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let batch = parse(file, BANK_B);
        only_encoding_warnings(&batch, file);
        let account = dataset.account(&file.account_id).expect("a known account");
        let statement_account = account.iban.as_deref().unwrap_or(&account.account_id);
        match file.format {
            FileFormat::Mt940 => {
                let summary = check_summary(&batch, file, dataset);
                assert_eq!(batch.statements[0].account, statement_account);
                check_balances(&batch, file, dataset, summary);
                statements
                    .entry(account.account_id.clone())
                    .or_default()
                    .push((file.date, summary.0, summary.1));
                let expected: Vec<&SimTransaction> = account
                    .transactions
                    .iter()
                    .filter(|t| t.is_booked() && t.booking_date == file.date)
                    .collect();
                assert_eq!(batch.transactions.len(), expected.len(), "{}", file.name);
                for (loaded, t) in batch.transactions.iter().zip(&expected) {
                    check_cash_entry(loaded, t, file);
                    assert_eq!(loaded.account, statement_account);
                    assert_eq!(
                        loaded.bank_reference.as_deref(),
                        Some(swift_reference(&t.transaction_id).as_str())
                    );
                    assert_eq!(loaded.kind, mt940_kind(t.kind), "{}", t.transaction_id);
                    cash_entries
                        .entry(account.account_id.clone())
                        .or_default()
                        .push(t.transaction_id.clone());
                }
            }
            FileFormat::Mt535 => {
                let expected = dataset.positions_as_of(&account.account_id, file.date);
                assert_eq!(batch.positions.len(), expected.len(), "{}", file.name);
                for (loaded, p) in batch.positions.iter().zip(&expected) {
                    check_position_common(loaded, p, file);
                    assert_eq!(loaded.security.as_str(), key(BANK_B, &p.security));
                    let security = batch
                        .securities
                        .iter()
                        .find(|s| s.key == loaded.security)
                        .expect("the security is described");
                    assert_eq!(security.name, p.security.name);
                    assert_eq!(security.valor, p.security.valor);
                }
                assert_eq!(batch.complete_snapshots.len(), 1);
                assert_eq!(batch.complete_snapshots[0].account, account.account_id);
                assert_eq!(batch.complete_snapshots[0].as_of, file.date);
                assert_eq!(batch.accounts.len(), 1);
                assert_eq!(batch.accounts[0].kind, AccountKind::Custody);
                assert_eq!(batch.accounts[0].currency.as_str(), account.currency);
            }
            FileFormat::Mt536 => {
                let expected: Vec<&SimTransaction> = account
                    .transactions
                    .iter()
                    .filter(|t| {
                        t.is_booked() && t.booking_date == file.date && t.security.is_some()
                    })
                    .filter(|t| matches!(t.kind, "buy" | "sell"))
                    .collect();
                assert!(!expected.is_empty(), "{} lists trades", file.name);
                assert_eq!(batch.transactions.len(), expected.len(), "{}", file.name);
                for t in &expected {
                    let reference = swift_reference(&t.transaction_id);
                    let loaded = batch
                        .transactions
                        .iter()
                        .find(|l| l.bank_reference.as_deref() == Some(reference.as_str()))
                        .unwrap_or_else(|| panic!("{}: {reference}", file.name));
                    let what = &t.transaction_id;
                    assert_eq!(loaded.account, account.account_id);
                    assert_eq!(loaded.kind, camt_kind(t.kind), "{what}");
                    assert_eq!(loaded.direction, direction(t), "{what}");
                    assert_eq!(loaded.amount, t.amount, "{what}");
                    assert_eq!(loaded.quantity, t.quantity, "{what}");
                    assert_eq!(loaded.price, t.price, "{what}");
                    assert_eq!(loaded.trade_date, t.trade_date, "{what}");
                    assert_eq!(loaded.settlement_date, t.settlement_date, "{what}");
                    // An MT536 movement books on its settlement date.
                    assert_eq!(Some(loaded.booking_date), t.settlement_date, "{what}");
                    assert_eq!(loaded.description, t.description, "{what}");
                    let security = t.security.as_deref().expect("a traded security");
                    assert_eq!(
                        loaded.security.as_ref().map(|k| k.as_str().to_owned()),
                        Some(key(BANK_B, security))
                    );
                    trades
                        .entry(account.account_id.clone())
                        .or_default()
                        .push(t.transaction_id.clone());
                }
            }
            other => panic!("bank_b lists {other:?}"),
        }
    }
    check_chain(dataset, &statements);
    for account in &dataset.accounts {
        let booked: Vec<String> = account
            .transactions
            .iter()
            .filter(|t| t.is_booked())
            .map(|t| t.transaction_id.clone())
            .collect();
        let listed = cash_entries.remove(&account.account_id).unwrap_or_default();
        assert_eq!(
            listed, booked,
            "{}: every booked entry once",
            account.account_id
        );
        let booked_trades: Vec<String> = account
            .transactions
            .iter()
            .filter(|t| t.is_booked() && matches!(t.kind, "buy" | "sell"))
            .map(|t| t.transaction_id.clone())
            .collect();
        let mut listed = trades.remove(&account.account_id).unwrap_or_default();
        listed.sort();
        assert_eq!(
            listed, booked_trades,
            "{}: every booked trade once",
            account.account_id
        );
    }
}

/// Every bank_c file parses back into the dataset's records.
fn check_iso(dataset: &Dataset) {
    let files = iso_files(dataset);
    let mut statements: BTreeMap<String, Vec<(NaiveDate, Decimal, Decimal)>> = BTreeMap::new();
    let mut cash_entries: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let batch = parse(file, BANK_C);
        assert!(
            batch.warnings.is_empty(),
            "{}: {:?}",
            file.name,
            batch.warnings
        );
        let account = dataset.account(&file.account_id).expect("a known account");
        let statement_account = account.iban.as_deref().unwrap_or(&account.account_id);
        match file.format {
            FileFormat::Camt053 => {
                let summary = check_summary(&batch, file, dataset);
                let reference = format!("{}-{}", account.account_id, file.date);
                assert_eq!(
                    batch.statements[0].reference.as_deref(),
                    Some(reference.as_str())
                );
                assert_eq!(batch.statements[0].account, statement_account);
                check_balances(&batch, file, dataset, summary);
                statements
                    .entry(account.account_id.clone())
                    .or_default()
                    .push((file.date, summary.0, summary.1));
                let expected: Vec<&SimTransaction> = account
                    .transactions
                    .iter()
                    .filter(|t| t.is_booked() && t.booking_date == file.date)
                    .collect();
                assert_eq!(batch.transactions.len(), expected.len(), "{}", file.name);
                for (loaded, t) in batch.transactions.iter().zip(&expected) {
                    check_cash_entry(loaded, t, file);
                    let what = &t.transaction_id;
                    assert_eq!(loaded.account, statement_account);
                    assert_eq!(loaded.bank_reference.as_deref(), Some(what.as_str()));
                    assert_eq!(loaded.natural_key, format!("ref:{what}"));
                    assert_eq!(loaded.kind, camt_kind(t.kind), "{what}");
                    assert_eq!(loaded.fees, t.fees, "{what}");
                    assert_eq!(loaded.quantity, t.quantity, "{what}");
                    assert_eq!(loaded.price, t.price, "{what}");
                    assert_eq!(loaded.trade_date, t.trade_date, "{what}");
                    assert_eq!(loaded.settlement_date, t.settlement_date, "{what}");
                    assert_eq!(
                        loaded.security.as_ref().map(|k| k.as_str().to_owned()),
                        t.security.as_deref().map(|s| key(BANK_C, s)),
                        "{what}"
                    );
                    cash_entries
                        .entry(account.account_id.clone())
                        .or_default()
                        .push(t.transaction_id.clone());
                }
                assert_eq!(batch.accounts.len(), 1);
                assert_eq!(batch.accounts[0].bank_account_id, statement_account);
                assert_eq!(
                    batch.accounts[0]
                        .iban
                        .as_ref()
                        .map(|i| i.as_str().to_owned()),
                    account.iban
                );
            }
            FileFormat::Semt002 => {
                let expected = dataset.positions_as_of(&account.account_id, file.date);
                assert_eq!(batch.positions.len(), expected.len(), "{}", file.name);
                for (loaded, p) in batch.positions.iter().zip(&expected) {
                    check_position_common(loaded, p, file);
                    assert_eq!(loaded.security.as_str(), key(BANK_C, &p.security));
                    let security = batch
                        .securities
                        .iter()
                        .find(|s| s.key == loaded.security)
                        .expect("the security is described");
                    assert_eq!(security.name, p.security.name);
                    assert_eq!(security.valor, p.security.valor);
                    assert_eq!(
                        security.bank_security_id.as_deref(),
                        Some(p.security.bank_security_id.as_str())
                    );
                }
                assert_eq!(batch.complete_snapshots.len(), 1);
                assert_eq!(batch.complete_snapshots[0].account, account.account_id);
                assert_eq!(batch.complete_snapshots[0].as_of, file.date);
                assert_eq!(batch.accounts.len(), 1);
                assert_eq!(batch.accounts[0].kind, AccountKind::Custody);
                assert_eq!(batch.accounts[0].currency.as_str(), account.currency);
            }
            other => panic!("bank_c lists {other:?}"),
        }
    }
    check_chain(dataset, &statements);
    for account in &dataset.accounts {
        let booked: Vec<String> = account
            .transactions
            .iter()
            .filter(|t| t.is_booked())
            .map(|t| t.transaction_id.clone())
            .collect();
        let listed = cash_entries.remove(&account.account_id).unwrap_or_default();
        assert_eq!(
            listed, booked,
            "{}: every booked entry once",
            account.account_id
        );
    }
}

fn small_params() -> impl Strategy<Value = SimParams> {
    (
        any::<u64>(),
        1u32..=2,
        1u32..=3,
        0u32..=3,
        0u32..=12,
        1u32..=6,
        0u64..3650,
    )
        .prop_map(
            |(seed, clients, accounts_per_client, positions, extra, days, offset)| SimParams {
                seed,
                clients,
                accounts_per_client,
                positions_per_account: positions,
                transactions_per_account: positions + extra,
                days,
                end_date: NaiveDate::from_ymd_opt(2021, 1, 1)
                    .and_then(|d| d.checked_add_days(Days::new(offset)))
                    .expect("a date within the SWIFT two-digit-year window"),
            },
        )
}

/// Every file of a bank read into one batch, as one sync reads them.
fn read_all(files: &[StatementFile], custodian: &str) -> Batch {
    let mut batch = Batch::default();
    for file in files {
        batch.extend(parse(file, custodian));
    }
    batch.dedup_securities();
    batch.merge_transactions();
    batch
}

/// The position breaks of a batch checked on its own, as the first sync of a connection is.
fn position_breaks(batch: &Batch) -> Vec<position_check::Break> {
    let snapshots = position_check::snapshots(batch);
    let transactions: Vec<_> = batch
        .transactions
        .iter()
        .filter_map(position_check::securities_side)
        .collect();
    position_check::check_batch(batch, &snapshots, &BTreeMap::new(), &transactions)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn each_days_holdings_are_the_day_befores_plus_the_trades_in_both_file_banks(
        params in small_params()
    ) {
        let dataset = generate(&params);
        for (files, custodian) in [(swift_files(&dataset), BANK_B), (iso_files(&dataset), BANK_C)] {
            let breaks = position_breaks(&read_all(&files, custodian));
            prop_assert!(breaks.is_empty(), "{custodian}: {breaks:?}");
        }
    }

    #[test]
    fn swift_files_parse_back_into_the_generated_records(params in small_params()) {
        check_swift(&generate(&params));
    }

    #[test]
    fn iso_files_parse_back_into_the_generated_records(params in small_params()) {
        check_iso(&generate(&params));
    }
}

#[test]
fn a_fuller_bank_round_trips_through_both_file_banks() {
    let dataset = generate(&params());
    check_swift(&dataset);
    check_iso(&dataset);
}

#[test]
fn ids_are_fixed_width_and_sort_in_date_account_format_order() {
    let dataset = generate(&params());
    for files in [swift_files(&dataset), iso_files(&dataset)] {
        assert!(files.iter().all(|f| is_file_id(&f.id)), "fixed width");
        let position = |f: &StatementFile| {
            dataset
                .accounts
                .iter()
                .position(|a| a.account_id == f.account_id)
                .expect("a known account")
        };
        for pair in files.windows(2) {
            assert!(pair[0].id < pair[1].id, "{} < {}", pair[0].id, pair[1].id);
            let a = (pair[0].date, position(&pair[0]), pair[0].format);
            let b = (pair[1].date, position(&pair[1]), pair[1].format);
            assert!(a < b, "{a:?} < {b:?}");
        }
    }
}

#[test]
fn every_day_has_a_cash_statement_per_account_and_holdings_per_custody_account() {
    let dataset = generate(&params());
    let days = dataset.params.days as usize;
    let custody = dataset
        .accounts
        .iter()
        .filter(|a| a.kind == "custody")
        .count();
    let swift = swift_files(&dataset);
    let count =
        |files: &[StatementFile], format| files.iter().filter(|f| f.format == format).count();
    assert_eq!(
        count(&swift, FileFormat::Mt940),
        days * dataset.accounts.len()
    );
    assert_eq!(count(&swift, FileFormat::Mt535), days * custody);
    assert!(count(&swift, FileFormat::Mt536) > 0);
    let iso = iso_files(&dataset);
    assert_eq!(
        count(&iso, FileFormat::Camt053),
        days * dataset.accounts.len()
    );
    assert_eq!(count(&iso, FileFormat::Semt002), days * custody);
    assert_eq!(
        swift[0].name,
        format!(
            "{}_{}.mt940",
            dataset.accounts[0].account_id, dataset.start_date
        )
    );
}

#[test]
fn swift_files_vary_envelope_and_encoding_and_end_lines_with_crlf() {
    let dataset = generate(&params());
    let files = swift_files(&dataset);
    let enveloped = files
        .iter()
        .filter(|f| f.bytes.starts_with(b"\x01{1:"))
        .count();
    assert!(
        enveloped > 0 && enveloped < files.len(),
        "both envelopes and plain files"
    );
    assert!(
        files
            .iter()
            .all(|f| { f.bytes.ends_with(b"-}\x03") || f.bytes.ends_with(b"\r\n-\r\n") })
    );
    let latin1 = files
        .iter()
        .filter(|f| std::str::from_utf8(&f.bytes).is_err())
        .count();
    assert!(latin1 > 0, "some files carry ISO-8859-1 names");
    for f in &files {
        let bare_lf = f
            .bytes
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || f.bytes[i - 1] != b'\r'));
        assert!(!bare_lf, "{} has a line end without CR", f.name);
    }
}

#[test]
fn the_same_dataset_writes_byte_identical_files() {
    let a = generate(&params());
    let b = generate(&params());
    assert_eq!(swift_files(&a), swift_files(&b));
    assert_eq!(iso_files(&a), iso_files(&b));
}

#[test]
fn after_selects_the_files_whose_id_sorts_later() {
    let dataset = generate(&params());
    let catalog = Catalog::new(&dataset, FileProtocol::Swift);
    let all = catalog.after(&dataset, None);
    let middle = all[all.len() / 2].id(&dataset);
    let later = catalog.after(&dataset, Some(&middle));
    assert_eq!(later.len(), all.len() - all.len() / 2 - 1);
    assert!(later.iter().all(|f| f.id(&dataset) > middle));
    assert!(
        catalog
            .after(&dataset, Some("99999999-99999999-9"))
            .is_empty()
    );
    assert_eq!(
        catalog.after(&dataset, Some("00000000-00000000-0")).len(),
        all.len()
    );
    assert_eq!(
        catalog.find(&dataset, &middle).map(|f| f.id(&dataset)),
        Some(middle)
    );
    assert_eq!(catalog.find(&dataset, "20261120-99999999-1"), None);
}

#[test]
fn a_trade_left_out_of_the_securities_feed_is_one_position_break_of_its_quantity() {
    let dataset = generate(&params());
    for kind in ["buy", "sell"] {
        // A trade after the first day: the first day's holdings have nothing before them.
        let (account, trade) = dataset
            .accounts
            .iter()
            .filter(|a| a.kind == "custody")
            .flat_map(|a| a.transactions.iter().map(move |t| (a, t)))
            .find(|(_, t)| t.is_booked() && t.kind == kind && t.booking_date > dataset.start_date)
            .unwrap_or_else(|| panic!("the dataset books a {kind} after its first day"));
        let (id, body) = mt536_without(&dataset, &trade.transaction_id).expect("a booked trade");
        let mut files = swift_files(&dataset);
        let file = files
            .iter_mut()
            .find(|f| f.id == id)
            .expect("the MT536 of the trade's day is listed");
        assert_eq!(
            (file.format, file.account_id.as_str(), file.date),
            (
                FileFormat::Mt536,
                account.account_id.as_str(),
                trade.booking_date
            )
        );
        file.bytes = body;
        let left = parse(file, BANK_B);
        let reference = swift_reference(&trade.transaction_id);
        assert!(
            left.transactions
                .iter()
                .all(|t| t.bank_reference.as_deref() != Some(reference.as_str())),
            "{reference} is left out"
        );

        let breaks = position_breaks(&read_all(&files, BANK_B));
        assert_eq!(breaks.len(), 1, "{kind}: {breaks:?}");
        let b = &breaks[0];
        let security = trade.security.as_deref().expect("a traded security");
        let quantity = trade.quantity.expect("a traded quantity");
        let held = dataset
            .positions_as_of(&account.account_id, trade.booking_date)
            .iter()
            .find(|p| p.security.bank_security_id == security.bank_security_id)
            .map_or(Decimal::ZERO, |p| p.quantity);
        let moved = if kind == "buy" { quantity } else { -quantity };
        assert_eq!(b.account, account.account_id);
        assert_eq!(
            b.security.as_ref().map(|s| s.key.as_str().to_owned()),
            Some(key(BANK_B, security))
        );
        assert_eq!(b.date, Some(trade.booking_date));
        assert_eq!(
            b.period_from,
            trade.booking_date.checked_sub_days(Days::new(1))
        );
        assert_eq!(b.actual, Some(held));
        assert_eq!(b.expected, Some(held - moved));
        assert_eq!(b.difference(), Some(moved));
    }
    let not_a_trade = dataset
        .accounts
        .iter()
        .flat_map(|a| &a.transactions)
        .find(|t| t.is_booked() && !matches!(t.kind, "buy" | "sell"))
        .expect("a booked transaction that is no trade");
    assert_eq!(mt536_without(&dataset, &not_a_trade.transaction_id), None);
    assert_eq!(mt536_without(&dataset, "BA-999999-1-000001"), None);
}
