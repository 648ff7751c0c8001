//! The statement as CSV files, one per table, and the same files in one zip.
//!
//! Every figure is written exactly as computed (`1234.5600`: plain digits, `.` decimal mark,
//! no grouping, the computed scale kept), so a file parsed back gives the statement's
//! decimals; amounts also have a `*_presented` column, rounded half to even to the currency's
//! minor unit as the PDF shows them (`1234.56`). Weights and returns are fractions
//! (`0.0342`) with a `*_percent` column as the PDF rounds them (`3.42`). Dates are ISO 8601
//! (`2026-11-30`), times RFC 3339 in UTC. An absent figure is an empty field, with the
//! reason in the row's `reason` column where the statement gives one. Rows are in the
//! statement's order. Free text that would start a spreadsheet formula gets a leading `'`. UTF-8, comma-separated, a header row first, fields quoted when needed.

use std::io::{Cursor, Write};

use chrono::{Datelike, Timelike};
use eam_model::domain::Currency;
use rust_decimal::Decimal;

use crate::RenderError;
use crate::format;
use crate::statement::Statement;

/// One CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvFile {
    /// The file's name, e.g. `positions.csv`.
    pub name: String,
    /// UTF-8 text.
    pub content: Vec<u8>,
}

/// The tables in the order they are written (and zipped).
pub const FILES: [&str; 8] = [
    "summary.csv",
    "allocation.csv",
    "positions.csv",
    "cash.csv",
    "fx_rates.csv",
    "performance_flows.csv",
    "transactions.csv",
    "provenance.csv",
];

/// One CSV file per table (see [`FILES`]).
pub fn render_csv(s: &Statement) -> Result<Vec<CsvFile>, RenderError> {
    s.check()?;
    let tables = [
        summary(s),
        allocation(s),
        positions(s),
        cash(s),
        fx_rates(s),
        performance_flows(s),
        transactions(s),
        provenance(s),
    ];
    FILES
        .iter()
        .zip(tables)
        .map(|(name, rows)| {
            Ok(CsvFile {
                name: (*name).to_owned(),
                content: write_csv(rows)?,
            })
        })
        .collect()
}

/// The CSV files in one zip archive (deflated; every entry dated when the statement was
/// generated, so the same statement gives the same bytes).
pub fn render_csv_zip(s: &Statement) -> Result<Vec<u8>, RenderError> {
    let files = render_csv(s)?;
    let t = s.generated_at;
    // Zip dates run from 1980 to 2107; outside that the entries keep the format's epoch.
    let modified = u16::try_from(t.year())
        .ok()
        .and_then(|year| {
            zip::DateTime::from_date_and_time(
                year,
                t.month() as u8,
                t.day() as u8,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
            )
            .ok()
        })
        .unwrap_or_default();
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(modified);
    let mut archive = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for file in files {
        archive.start_file(file.name, options).map_err(zip_error)?;
        archive
            .write_all(&file.content)
            .map_err(|e| RenderError::Zip(e.to_string()))?;
    }
    Ok(archive.finish().map_err(zip_error)?.into_inner())
}

fn zip_error(e: zip::result::ZipError) -> RenderError {
    RenderError::Zip(e.to_string())
}

/// A table: its header, then its rows.
type Table = Vec<Vec<String>>;

fn write_csv(rows: Table) -> Result<Vec<u8>, RenderError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(&row)
            .map_err(|e| RenderError::Csv(e.to_string()))?;
    }
    writer
        .into_inner()
        .map_err(|e| RenderError::Csv(e.to_string()))
}

fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn exact(v: Option<Decimal>) -> String {
    v.map(format::exact).unwrap_or_default()
}

/// An amount rounded as the PDF presents it, without grouping: `1234.56`.
fn presented(v: Option<Decimal>, currency: Currency) -> String {
    v.map(|v| format::presented(v, currency).to_string())
        .unwrap_or_default()
}

/// A fraction in percent as the PDF rounds it, without the sign: `3.42`.
fn percent(v: Option<Decimal>) -> String {
    v.and_then(format::percent_points)
        .map(|p| p.to_string())
        .unwrap_or_default()
}

/// Free text (names, booking texts, reasons, notes) as a field. Text that a spreadsheet would
/// take for a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a
/// leading `'`, the usual guard against formula injection: booking texts carry what
/// counterparties typed. Figures are never touched.
fn text(v: Option<&str>) -> String {
    let v = v.unwrap_or_default();
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    }
}

fn summary(s: &Statement) -> Table {
    let ccy = s.reporting_currency;
    let p = &s.performance;
    let twr = p.time_weighted.as_ref();
    let mwr = p.money_weighted.as_ref();
    vec![
        header(&[
            "firm",
            "client_id",
            "client_reference",
            "client_name",
            "period_from",
            "period_to",
            "reporting_currency",
            "generated_at",
            "language",
            "valuation_as_of",
            "total",
            "total_presented",
            "total_reasons",
            "stale_rates",
            "start_value",
            "end_value",
            "net_flows",
            "twr_cumulative",
            "twr_cumulative_percent",
            "twr_annualized",
            "twr_method",
            "mwr_annual",
            "mwr_annual_percent",
            "mwr_method",
            "performance_reasons",
            "notes",
        ]),
        vec![
            text(Some(&s.firm.name)),
            s.client.id.to_string(),
            text(s.client.reference.as_deref()),
            text(Some(&s.client.name)),
            format::date(s.period.from),
            format::date(s.period.to),
            ccy.to_string(),
            s.generated_at.to_rfc3339(),
            "en".to_owned(),
            format::date(s.valuation.as_of),
            exact(s.valuation.total),
            presented(s.valuation.total, ccy),
            text(Some(&s.valuation.reasons.join("\n"))),
            s.valuation.stale.to_string(),
            exact(p.start_value),
            exact(p.end_value),
            exact(p.net_flows),
            exact(twr.map(|t| t.cumulative)),
            percent(twr.map(|t| t.cumulative)),
            exact(twr.and_then(|t| t.annualized)),
            text(twr.map(|t| t.method.as_str())),
            exact(mwr.map(|m| m.annual_rate)),
            percent(mwr.map(|m| m.annual_rate)),
            text(mwr.map(|m| m.method.as_str())),
            text(Some(&p.reasons.join("\n"))),
            text(Some(&s.notes.join("\n"))),
        ],
    ]
}

fn allocation(s: &Statement) -> Table {
    let ccy = s.reporting_currency;
    let mut rows = vec![header(&[
        "dimension",
        "key",
        "value",
        "value_presented",
        "weight",
        "weight_percent",
        "currency",
    ])];
    for (dimension, slices) in [
        ("asset_class", &s.valuation.by_asset_class),
        ("currency", &s.valuation.by_currency),
        ("custodian", &s.valuation.by_custodian),
    ] {
        for slice in slices {
            rows.push(vec![
                dimension.to_owned(),
                text(Some(&slice.key)),
                format::exact(slice.value),
                presented(Some(slice.value), ccy),
                exact(slice.weight),
                percent(slice.weight),
                ccy.to_string(),
            ]);
        }
    }
    rows
}

fn positions(s: &Statement) -> Table {
    let ccy = s.reporting_currency;
    let mut rows = vec![header(&[
        "custodian",
        "account",
        "account_currency",
        "security_name",
        "isin",
        "asset_class",
        "quantity",
        "price",
        "price_type",
        "price_currency",
        "local_value",
        "local_value_presented",
        "fx_rate",
        "value",
        "value_presented",
        "reporting_currency",
        "reason",
        "snapshot_date",
    ])];
    for (custodian, account, p) in s.position_lines() {
        rows.push(vec![
            text(Some(custodian)),
            text(Some(&account.account)),
            account.currency.to_string(),
            text(Some(&p.security_name)),
            text(p.isin.as_ref().map(|i| i.as_str())),
            p.asset_class.as_str().to_owned(),
            format::exact(p.quantity),
            exact(p.price),
            p.price_type.as_str().to_owned(),
            p.price_currency.to_string(),
            exact(p.local_value),
            presented(p.local_value, p.price_currency),
            exact(p.fx_rate),
            exact(p.value),
            presented(p.value, ccy),
            ccy.to_string(),
            text(p.reason.as_deref()),
            format::date(p.snapshot_date),
        ]);
    }
    rows
}

fn cash(s: &Statement) -> Table {
    let ccy = s.reporting_currency;
    let mut rows = vec![header(&[
        "custodian",
        "account",
        "currency",
        "amount",
        "amount_presented",
        "fx_rate",
        "value",
        "value_presented",
        "reporting_currency",
        "reason",
        "date",
    ])];
    for c in &s.cash {
        rows.push(vec![
            text(Some(&c.custodian)),
            text(Some(&c.account)),
            c.currency.to_string(),
            format::exact(c.amount),
            presented(Some(c.amount), c.currency),
            exact(c.fx_rate),
            exact(c.value),
            presented(c.value, ccy),
            ccy.to_string(),
            text(c.reason.as_deref()),
            format::date(c.date),
        ]);
    }
    rows
}

fn fx_rates(s: &Statement) -> Table {
    let mut rows = vec![header(&[
        "currency",
        "reporting_currency",
        "rate",
        "date",
        "sources",
        "stale",
    ])];
    for r in &s.fx_rates {
        rows.push(vec![
            r.currency.to_string(),
            s.reporting_currency.to_string(),
            format::exact(r.rate),
            format::date(r.date),
            text(Some(&r.sources.join(" "))),
            r.stale.to_string(),
        ]);
    }
    rows
}

fn performance_flows(s: &Statement) -> Table {
    let ccy = s.reporting_currency;
    let mut rows = vec![header(&[
        "date",
        "custodian",
        "account",
        "kind",
        "amount",
        "amount_presented",
        "currency",
        "value",
        "value_presented",
        "reporting_currency",
    ])];
    for f in &s.performance.flows {
        rows.push(vec![
            format::date(f.date),
            text(Some(&f.custodian)),
            text(Some(&f.account)),
            f.kind.as_str().to_owned(),
            format::exact(f.amount),
            presented(Some(f.amount), f.currency),
            f.currency.to_string(),
            exact(f.value),
            presented(f.value, ccy),
            ccy.to_string(),
        ]);
    }
    rows
}

fn transactions(s: &Statement) -> Table {
    let mut rows = Vec::with_capacity(s.transactions.len() + 1);
    rows.push(header(&[
        "booking_date",
        "value_date",
        "custodian",
        "account",
        "type",
        "description",
        "amount",
        "amount_presented",
        "currency",
    ]));
    for t in &s.transactions {
        rows.push(vec![
            format::date(t.booking_date),
            t.value_date.map(format::date).unwrap_or_default(),
            text(Some(&t.custodian)),
            text(Some(&t.account)),
            t.kind.as_str().to_owned(),
            text(Some(&t.description)),
            format::exact(t.amount),
            presented(Some(t.amount), t.currency),
            t.currency.to_string(),
        ]);
    }
    rows
}

/// Runs and accounts in one file: `record` says which, the other kind's columns are empty.
fn provenance(s: &Statement) -> Table {
    let mut rows = vec![header(&[
        "record",
        "custodian",
        "connection",
        "run_id",
        "finished_at",
        "status",
        "account",
        "data_as_of",
    ])];
    for r in &s.provenance.runs {
        rows.push(vec![
            "sync_run".to_owned(),
            text(Some(&r.custodian)),
            text(Some(&r.connection)),
            r.run_id.to_string(),
            r.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            r.status.as_str().to_owned(),
            String::new(),
            String::new(),
        ]);
    }
    for a in &s.provenance.accounts {
        rows.push(vec![
            "account".to_owned(),
            text(Some(&a.custodian)),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            text(Some(&a.account)),
            a.data_as_of.map(format::date).unwrap_or_default(),
        ]);
    }
    rows
}
