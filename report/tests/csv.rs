//! The CSV files parsed back give the statement's figures exactly; the zip holds the same
//! files.

mod fixtures;

use std::collections::HashMap;
use std::io::{Cursor, Read};

use eam_report::csv_files::FILES;
use eam_report::{CsvFile, RenderError, Statement, render_csv, render_csv_zip};
use fixtures::d;
use rust_decimal::Decimal;

/// A file's rows as header name -> field.
fn rows(file: &CsvFile) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(file.content.as_slice());
    let header: Vec<String> = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .map(|r| {
            let record = r.expect("a well-formed row");
            header
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

fn file<'a>(files: &'a [CsvFile], name: &str) -> &'a CsvFile {
    files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} is written"))
}

/// A field as a decimal, and the text exactly as the statement's decimal writes itself.
fn exact(row: &HashMap<String, String>, column: &str, expected: Option<Decimal>) {
    let field = &row[column];
    match expected {
        Some(v) => {
            assert_eq!(field, &v.to_string(), "{column}");
            assert_eq!(field.parse::<Decimal>().ok(), Some(v), "{column}");
        }
        None => assert!(field.is_empty(), "{column} is empty when absent"),
    }
}

#[test]
fn one_file_per_table_in_a_fixed_order() {
    let files = render_csv(&fixtures::realistic()).expect("renders");
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, FILES);
    assert_eq!(
        names,
        [
            "summary.csv",
            "allocation.csv",
            "positions.csv",
            "cash.csv",
            "fx_rates.csv",
            "performance_flows.csv",
            "transactions.csv",
            "provenance.csv"
        ]
    );
}

#[test]
fn positions_parsed_back_equal_the_statement_exactly() {
    let s = fixtures::realistic();
    let files = render_csv(&s).expect("renders");
    let parsed = rows(file(&files, "positions.csv"));
    let expected: Vec<_> = s.position_lines().collect();
    assert_eq!(parsed.len(), expected.len());
    assert_eq!(parsed.len(), 40);
    for (row, (custodian, account, p)) in parsed.iter().zip(expected) {
        assert_eq!(row["custodian"], custodian);
        assert_eq!(row["account"], account.account);
        assert_eq!(row["security_name"], p.security_name);
        assert_eq!(
            row["isin"],
            p.isin.as_ref().map(|i| i.as_str()).unwrap_or_default()
        );
        exact(row, "quantity", Some(p.quantity));
        exact(row, "price", p.price);
        exact(row, "local_value", p.local_value);
        exact(row, "fx_rate", p.fx_rate);
        exact(row, "value", p.value);
        assert_eq!(row["price_type"], p.price_type.as_str());
        assert_eq!(row["snapshot_date"], p.snapshot_date.to_string());
        assert_eq!(row["reporting_currency"], "CHF");
    }
    // One row in full: 250,000 face of a bond at 96.715 %.
    let bond = parsed
        .iter()
        .find(|r| r["security_name"] == "Swiss Confederation 0.5% 2032")
        .expect("the bond");
    assert_eq!(bond["quantity"], "250000");
    assert_eq!(bond["price"], "96.715");
    assert_eq!(bond["price_type"], "percent");
    assert_eq!(bond["value"], "241787.500");
    assert_eq!(bond["value_presented"], "241787.50");
    // The euro bond's value has more than two decimals; presented, it rounds half to even.
    let bund = parsed
        .iter()
        .find(|r| r["security_name"] == "Bundesrepublik Deutschland 2.6% 2034")
        .expect("the Bund");
    assert_eq!(bund["local_value"], "152013.000");
    assert_eq!(bund["value"], "143074.6356000");
    assert_eq!(bund["value_presented"], "143074.64");
}

#[test]
fn the_summary_cash_allocation_and_flows_carry_the_exact_figures() {
    let s = fixtures::realistic();
    let files = render_csv(&s).expect("renders");

    let summary = rows(file(&files, "summary.csv"));
    assert_eq!(summary.len(), 1);
    let row = &summary[0];
    exact(row, "total", s.valuation.total);
    assert_eq!(row["total"], "3162281.45051425000");
    assert_eq!(row["total_presented"], "3162281.45");
    assert_eq!(row["period_from"], "2026-11-01");
    assert_eq!(row["period_to"], "2026-11-30");
    assert_eq!(row["generated_at"], "2026-12-02T06:00:00+00:00");
    assert_eq!(row["client_name"], "Dr. Anna Müller-Steiger");
    assert_eq!(row["twr_cumulative"], "0.0183467912");
    assert_eq!(row["twr_cumulative_percent"], "1.83");
    assert_eq!(row["mwr_annual_percent"], "24.61");
    exact(row, "net_flows", s.performance.net_flows);
    assert_eq!(row["stale_rates"], "true");

    let cash = rows(file(&files, "cash.csv"));
    assert_eq!(cash.len(), s.cash.len());
    for (row, c) in cash.iter().zip(&s.cash) {
        exact(row, "amount", Some(c.amount));
        exact(row, "value", c.value);
        exact(row, "fx_rate", c.fx_rate);
        assert_eq!(row["currency"], c.currency.as_str());
    }
    let overdraft = cash.iter().find(|r| r["currency"] == "USD").expect("USD");
    assert_eq!(overdraft["amount"], "-15320.75");
    assert_eq!(overdraft["value"], "-13535.4230025");
    assert_eq!(overdraft["value_presented"], "-13535.42");

    let allocation = rows(file(&files, "allocation.csv"));
    let slices: Vec<_> = [
        ("asset_class", &s.valuation.by_asset_class),
        ("currency", &s.valuation.by_currency),
        ("custodian", &s.valuation.by_custodian),
    ]
    .into_iter()
    .flat_map(|(dim, slices)| slices.iter().map(move |s| (dim, s)))
    .collect();
    assert_eq!(allocation.len(), slices.len());
    for (row, (dimension, slice)) in allocation.iter().zip(slices) {
        assert_eq!(row["dimension"], dimension);
        assert_eq!(row["key"], slice.key);
        exact(row, "value", Some(slice.value));
        exact(row, "weight", slice.weight);
    }

    let flows = rows(file(&files, "performance_flows.csv"));
    assert_eq!(flows.len(), 3);
    for (row, f) in flows.iter().zip(&s.performance.flows) {
        exact(row, "amount", Some(f.amount));
        exact(row, "value", f.value);
        assert_eq!(row["kind"], f.kind.as_str());
    }

    let rates = rows(file(&files, "fx_rates.csv"));
    assert_eq!(rates.len(), 3);
    assert_eq!(rates[1]["currency"], "GBP");
    assert_eq!(rates[1]["rate"], "1.1203");
    assert_eq!(rates[1]["stale"], "true");
    assert_eq!(rates[1]["sources"], "ecb bank:Banque du Léman SA");

    let provenance = rows(file(&files, "provenance.csv"));
    assert_eq!(provenance.len(), 3 + 4);
    assert_eq!(provenance[1]["status"], "succeeded_with_breaks");
    assert_eq!(provenance[6]["data_as_of"], "2026-11-30");
}

#[test]
fn two_thousand_transactions_parse_back_exactly() {
    let s = fixtures::with_transactions(2_000);
    let files = render_csv(&s).expect("renders");
    let parsed = rows(file(&files, "transactions.csv"));
    assert_eq!(parsed.len(), 2_000);
    for (row, t) in parsed.iter().zip(&s.transactions) {
        assert_eq!(row["booking_date"], t.booking_date.to_string());
        assert_eq!(
            row["value_date"],
            t.value_date.map(|d| d.to_string()).unwrap_or_default()
        );
        assert_eq!(row["account"], t.account);
        assert_eq!(row["type"], t.kind.as_str());
        assert_eq!(row["description"], t.description);
        exact(row, "amount", Some(t.amount));
        assert_eq!(row["currency"], t.currency.as_str());
    }
}

#[test]
fn text_with_commas_quotes_and_line_breaks_survives() {
    let mut s = fixtures::realistic();
    let awkward = "Fee, \"custody\"\nQ4; 50% of 1,000.00";
    s.transactions[0].description = awkward.to_owned();
    s.notes = vec!["first".to_owned(), "second, with \"quotes\"".to_owned()];
    let files = render_csv(&s).expect("renders");
    let parsed = rows(file(&files, "transactions.csv"));
    assert_eq!(parsed[0]["description"], awkward);
    let summary = rows(file(&files, "summary.csv"));
    assert_eq!(summary[0]["notes"], "first\nsecond, with \"quotes\"");
}

#[test]
fn text_a_spreadsheet_would_run_as_a_formula_is_quoted_figures_are_not() {
    let mut s = fixtures::realistic();
    s.transactions[0].description = "=HYPERLINK(\"http://x\",\"pay\")".to_owned();
    s.transactions[1].description = "@SUM(A1)".to_owned();
    s.transactions[2].description = "- card payment".to_owned();
    let files = render_csv(&s).expect("renders");
    let parsed = rows(file(&files, "transactions.csv"));
    assert_eq!(
        parsed[0]["description"],
        "'=HYPERLINK(\"http://x\",\"pay\")"
    );
    assert_eq!(parsed[1]["description"], "'@SUM(A1)");
    assert_eq!(parsed[2]["description"], "'- card payment");
    assert_eq!(parsed[3]["description"], s.transactions[3].description);
    // A negative amount is a figure: written as it is.
    assert_eq!(parsed[0]["amount"], s.transactions[0].amount.to_string());
    assert!(parsed[0]["amount"].starts_with('-'));
}

#[test]
fn the_zip_holds_the_same_files() {
    let s = fixtures::realistic();
    let files = render_csv(&s).expect("renders");
    let zip = render_csv_zip(&s).expect("zips");
    let mut archive = zip::ZipArchive::new(Cursor::new(zip.as_slice())).expect("a zip");
    assert_eq!(archive.len(), files.len());
    for (i, f) in files.iter().enumerate() {
        let mut entry = archive.by_index(i).expect("an entry");
        assert_eq!(entry.name().expect("a UTF-8 name"), f.name.as_str());
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("inflates");
        assert_eq!(content, f.content);
    }
    // Deterministic: the same statement gives the same archive.
    assert_eq!(render_csv_zip(&s).expect("zips"), zip);
}

#[test]
fn an_empty_statement_gives_header_only_tables() {
    let s: Statement = fixtures::empty();
    let files = render_csv(&s).expect("renders");
    for f in &files {
        let rows = rows(f);
        let expected = usize::from(f.name == "summary.csv");
        assert_eq!(rows.len(), expected, "{}", f.name);
    }
    let summary = rows(file(&files, "summary.csv"));
    assert_eq!(summary[0]["total"], "0");
    assert_eq!(summary[0]["total_presented"], "0.00");
    assert_eq!(summary[0]["start_value"], "");
    assert_eq!(d("0"), Decimal::ZERO);
}

#[test]
fn a_bad_period_is_refused_for_csv_too() {
    let mut s = fixtures::realistic();
    s.period.from = fixtures::date("2026-12-01");
    assert!(matches!(render_csv(&s), Err(RenderError::Period { .. })));
    assert!(matches!(
        render_csv_zip(&s),
        Err(RenderError::Period { .. })
    ));
}
