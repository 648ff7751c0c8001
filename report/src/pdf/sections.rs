//! The statement's sections in the order a client reads them, and the frame (header and
//! footer) of every page.
//!
//! Each section says plainly when it has nothing to show instead of drawing an empty table;
//! a statement with no data at all is its cover, saying so, and the data's provenance.

use chrono::NaiveDate;
use eam_model::domain::Currency;
use eam_model::records::PriceType;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::fonts::Face;
use super::layout::{
    ACCENT, BODY_TOP, CONTENT_WIDTH, Flow, INK, MARGIN, MUTED, NEGATIVE, PAGE_HEIGHT, PAGE_WIDTH,
    RULE, SHADE, Style,
};
use super::table::{self, Cell, Column, Row};
use crate::format;
use crate::statement::{AllocationSlice, Statement};

/// The sentence an empty statement's cover carries when the notes do not already say it.
pub const NO_DATA: &str = "There is no data for this client in this period: no positions, cash \
                           balances, external flows or transactions.";

/// Room a heading keeps for what follows it (a table's header and first rows).
const KEEP_AFTER_HEADING: f32 = 60.0;

/// Lays out every section.
pub fn lay_out(flow: &mut Flow, s: &Statement) {
    cover(flow, s);
    if s.is_empty() {
        provenance(flow, s);
        return;
    }
    allocation(flow, s);
    positions(flow, s);
    cash(flow, s);
    fx_rates(flow, s);
    performance(flow, s);
    transactions(flow, s);
    provenance(flow, s);
}

/// The logo's box in the header, in points.
#[derive(Debug, Clone, Copy)]
pub struct LogoBox {
    pub w: f32,
    pub h: f32,
}

impl LogoBox {
    /// The largest box of the image's proportions within 110 x 28 points.
    pub fn fit(width_px: u32, height_px: u32) -> Option<LogoBox> {
        if width_px == 0 || height_px == 0 {
            return None;
        }
        let (w, h) = (width_px as f32, height_px as f32);
        let scale = (110.0 / w).min(28.0 / h);
        Some(LogoBox {
            w: w * scale,
            h: h * scale,
        })
    }
}

/// Adds the header (logo, firm, client, period) and footer (generation time, "Page n of m")
/// to every page.
pub fn frame(flow: &mut Flow, s: &Statement, logo: Option<LogoBox>) {
    let total = flow.pages.len();
    let faces = flow.faces;
    for (index, page) in flow.pages.iter_mut().enumerate() {
        let mut f = Flow::new(faces);
        header(&mut f, s, logo);
        footer(&mut f, s, index + 1, total);
        if let Some(mut frame) = f.pages.pop() {
            page.ops.append(&mut frame.ops);
        }
    }
}

fn header(f: &mut Flow, s: &Statement, logo: Option<LogoBox>) {
    let top = 30.0;
    let mut x = MARGIN;
    if let Some(b) = logo {
        f.push(super::layout::Op::Logo {
            x,
            y: top + (28.0 - b.h) / 2.0,
            w: b.w,
            h: b.h,
        });
        x += b.w + 10.0;
    }
    let right = PAGE_WIDTH - MARGIN;
    let half = CONTENT_WIDTH / 2.0 - 10.0;
    let firm_style = Style::bold(11.0).color(ACCENT);
    let firm = f
        .faces
        .get(Face::Bold)
        .fit(&s.firm.name, 11.0, right - half - x - 10.0);
    f.text(x, top + 18.0, firm_style, firm);
    let client = match &s.client.reference {
        Some(r) if !r.is_empty() => format!("{} ({r})", s.client.name),
        _ => s.client.name.clone(),
    };
    let title = Style::bold(9.0).color(ACCENT);
    let small = Style::regular(7.5).color(MUTED);
    f.text_right(right, top + 8.0, title, "Portfolio statement");
    let client = f.faces.get(Face::Regular).fit(&client, 7.5, half);
    f.text_right(right, top + 18.0, Style::regular(7.5), client);
    f.text_right(
        right,
        top + 27.0,
        small,
        format!(
            "{} to {} · {}",
            format::date(s.period.from),
            format::date(s.period.to),
            s.reporting_currency
        ),
    );
    f.rule(MARGIN, BODY_TOP - 18.0, CONTENT_WIDTH, 0.8, ACCENT);
}

fn footer(f: &mut Flow, s: &Statement, page: usize, total: usize) {
    let y = PAGE_HEIGHT - 36.0;
    f.rule(MARGIN, y - 10.0, CONTENT_WIDTH, 0.4, RULE);
    let small = Style::regular(7.0).color(MUTED);
    let left = format!(
        "Generated {} · {} figures rounded half to even for presentation",
        format::timestamp(s.generated_at),
        s.reporting_currency,
    );
    let left = f
        .faces
        .get(Face::Regular)
        .fit(&left, 7.0, CONTENT_WIDTH - 80.0);
    f.text(MARGIN, y, small, left);
    f.text_right(
        PAGE_WIDTH - MARGIN,
        y,
        Style::regular(7.0),
        format!("Page {page} of {total}"),
    );
}

/// A section's title, kept with the start of what follows.
fn heading(flow: &mut Flow, title: &str) {
    let style = Style::bold(13.0).color(ACCENT);
    if !flow.ensure(style.line_height() + 8.0 + KEEP_AFTER_HEADING) && flow.y() > BODY_TOP {
        flow.advance(16.0);
    }
    let baseline = flow.y() + style.size;
    flow.text(MARGIN, baseline, style, title);
    flow.advance(style.line_height() + 2.0);
    flow.rule(MARGIN, flow.y(), CONTENT_WIDTH, 0.4, RULE);
    flow.advance(8.0);
}

/// A title inside a section.
fn subheading(flow: &mut Flow, title: &str) {
    let style = Style::bold(9.0);
    if !flow.ensure(style.line_height() + KEEP_AFTER_HEADING) && flow.y() > BODY_TOP {
        flow.advance(6.0);
    }
    let baseline = flow.y() + style.size;
    flow.text(MARGIN, baseline, style, title);
    flow.advance(style.line_height() + 3.0);
}

/// A plain sentence in place of an empty table.
fn nothing(flow: &mut Flow, text: &str) {
    flow.paragraph(text, Style::regular(8.5).color(MUTED));
    flow.advance(4.0);
}

/// Label-value lines: the label on the left, the value right-aligned at `value_right`.
fn key_values(flow: &mut Flow, lines: &[(String, String, Style)], value_right: f32) {
    let label_style = Style::regular(8.5).color(MUTED);
    for (label, value, style) in lines {
        let height = style.line_height().max(label_style.line_height()) + 2.0;
        flow.ensure(height);
        let baseline = flow.y() + style.size.max(label_style.size);
        flow.text(MARGIN, baseline, label_style, label.as_str());
        flow.text_right(MARGIN + value_right, baseline, *style, value.as_str());
        flow.advance(height);
    }
}

fn cover(flow: &mut Flow, s: &Statement) {
    let ccy = s.reporting_currency;
    let title = Style::bold(20.0).color(ACCENT);
    flow.text(MARGIN, flow.y() + 20.0, title, "Portfolio statement");
    flow.advance(34.0);
    let name = flow
        .faces
        .get(Face::Bold)
        .fit(&s.client.name, 14.0, CONTENT_WIDTH);
    flow.text(MARGIN, flow.y() + 14.0, Style::bold(14.0), name);
    flow.advance(20.0);
    let mut ids = Vec::new();
    if let Some(r) = s.client.reference.as_deref().filter(|r| !r.is_empty()) {
        ids.push(format!("Client reference {r}"));
    }
    ids.push(format!("Client id {}", s.client.id));
    flow.paragraph(&ids.join(" · "), Style::regular(8.0).color(MUTED));
    flow.advance(12.0);

    let value = Style::regular(8.5);
    key_values(
        flow,
        &[
            (
                "Period".into(),
                format!(
                    "{} to {}",
                    format::long_date(s.period.from),
                    format::long_date(s.period.to)
                ),
                value,
            ),
            (
                "Valuation date".into(),
                format::long_date(s.valuation.as_of),
                value,
            ),
            ("Reporting currency".into(), ccy.to_string(), value),
            ("Generated".into(), format::timestamp(s.generated_at), value),
        ],
        260.0,
    );
    flow.advance(12.0);
    total_box(flow, s);
    flow.advance(10.0);
    key_figures(flow, s);
    notes(flow, s);
}

/// The consolidated total, large, or why there is none.
fn total_box(flow: &mut Flow, s: &Statement) {
    let ccy = s.reporting_currency;
    let top = flow.y();
    let height = 52.0;
    flow.rect(MARGIN, top, CONTENT_WIDTH, height, SHADE);
    let label = format!(
        "Total portfolio value as of {}",
        format::long_date(s.valuation.as_of)
    );
    flow.text(
        MARGIN + 12.0,
        top + 17.0,
        Style::regular(8.5).color(MUTED),
        label,
    );
    match s.valuation.total {
        Some(total) => {
            let style = Style::bold(20.0).color(if total.is_sign_negative() && !total.is_zero() {
                NEGATIVE
            } else {
                INK
            });
            flow.text(MARGIN + 12.0, top + 42.0, style, format::money(total, ccy));
        }
        None => flow.text(
            MARGIN + 12.0,
            top + 42.0,
            Style::bold(14.0).color(NEGATIVE),
            "Not available",
        ),
    }
    flow.advance(height + 6.0);
    if s.valuation.total.is_none() {
        for reason in &s.valuation.reasons {
            flow.paragraph(
                &format!("Not valued: {reason}"),
                Style::regular(8.0).color(NEGATIVE),
            );
        }
    }
    if s.valuation.stale {
        flow.paragraph(
            "Some exchange rates used are stale: see \"Exchange rates used\".",
            Style::regular(8.0).color(NEGATIVE),
        );
    }
}

fn key_figures(flow: &mut Flow, s: &Statement) {
    let p = &s.performance;
    let ccy = s.reporting_currency;
    let value = Style::regular(8.5);
    let mut lines = vec![
        (
            "Value at the start of the period".to_owned(),
            money_or_na(p.start_value, ccy),
            value,
        ),
        (
            "Net external flows".to_owned(),
            money_or_na(p.net_flows, ccy),
            value,
        ),
        (
            "Value at the end of the period".to_owned(),
            money_or_na(p.end_value, ccy),
            value,
        ),
        (
            "Time-weighted return (period)".to_owned(),
            p.time_weighted
                .as_ref()
                .map_or("n/a".into(), |t| format::percent(t.cumulative)),
            value,
        ),
    ];
    if let Some(a) = p.time_weighted.as_ref().and_then(|t| t.annualized) {
        lines.push((
            "Time-weighted return (annualised)".to_owned(),
            format::percent(a),
            value,
        ));
    }
    lines.push((
        "Money-weighted return (annual)".to_owned(),
        p.money_weighted
            .as_ref()
            .map_or("n/a".into(), |m| format::percent(m.annual_rate)),
        value,
    ));
    key_values(flow, &lines, 260.0);
    for reason in &p.reasons {
        flow.paragraph(reason, Style::regular(8.0).color(NEGATIVE));
    }
}

fn notes(flow: &mut Flow, s: &Statement) {
    let mut notes: Vec<&str> = s.notes.iter().map(String::as_str).collect();
    if s.is_empty() && notes.is_empty() {
        notes.push(NO_DATA);
    }
    if notes.is_empty() {
        return;
    }
    flow.advance(10.0);
    subheading(flow, "Notes");
    for note in notes {
        flow.paragraph(note, Style::regular(8.5));
        flow.advance(2.0);
    }
}

fn allocation(flow: &mut Flow, s: &Statement) {
    heading(
        flow,
        &format!("Allocation as of {}", format::date(s.valuation.as_of)),
    );
    let ccy = s.reporting_currency;
    let groups: [(&str, &[AllocationSlice]); 3] = [
        ("Asset class", &s.valuation.by_asset_class),
        ("Currency", &s.valuation.by_currency),
        ("Custodian", &s.valuation.by_custodian),
    ];
    if groups.iter().all(|(_, slices)| slices.is_empty()) {
        nothing(
            flow,
            "Nothing to allocate: no position or balance was valued.",
        );
        return;
    }
    for (title, slices) in groups {
        subheading(flow, &format!("By {}", title.to_lowercase()));
        let columns = [
            Column::text(title, 150.0),
            Column::figure(format!("Value ({ccy})"), 95.0),
            Column::figure("Weight", 60.0),
            Column::text("", 210.0),
        ];
        let rows = slices.iter().map(|slice| {
            Row::Data(vec![
                // Asset classes are words (`equity`); currencies and custodians are names.
                Cell::text(if title == "Asset class" {
                    capitalised(&slice.key)
                } else {
                    slice.key.clone()
                }),
                Cell::figure(format::amount(slice.value, ccy)),
                slice
                    .weight
                    .map_or_else(Cell::missing, |w| Cell::figure(format::percent(w))),
                Cell::bar(slice.weight.and_then(|w| w.to_f32()).unwrap_or(0.0)),
            ])
        });
        let total = Row::Total(vec![
            Cell::text("Total"),
            s.valuation
                .total
                .map_or_else(Cell::missing, |t| Cell::figure(format::amount(t, ccy))),
            Cell::empty(),
            Cell::empty(),
        ]);
        table::draw(flow, &columns, rows.chain(std::iter::once(total)));
    }
}

fn positions(flow: &mut Flow, s: &Statement) {
    heading(
        flow,
        &format!("Positions as of {}", format::date(s.valuation.as_of)),
    );
    if s.position_lines().next().is_none() {
        nothing(flow, "No positions at the end of the period.");
        return;
    }
    let ccy = s.reporting_currency;
    let columns = [
        Column::text("Security / ISIN", 150.0),
        Column::figure("Quantity", 54.0),
        Column::figure("Price", 50.0),
        Column::text("Ccy", 22.0),
        Column::figure("Local value", 64.0),
        Column::figure("FX rate", 44.0),
        Column::figure(format!("Value ({ccy})"), 66.0),
        Column::figure("Snapshot", 44.0),
    ];
    let mut rows = Vec::new();
    let mut grand: Option<Decimal> = Some(Decimal::ZERO);
    for custodian in &s.positions {
        for account in &custodian.accounts {
            rows.push(Row::Group(format!(
                "{} · {} · {}",
                custodian.custodian, account.account, account.currency
            )));
            let mut subtotal: Option<Decimal> = Some(Decimal::ZERO);
            for p in &account.positions {
                subtotal = sum(subtotal, p.value);
                let mut note = p.isin.as_ref().map(|i| i.as_str().to_owned());
                let security = Cell::text(p.security_name.as_str()).wrapped(2);
                let security = match &p.reason {
                    Some(reason) => {
                        let text = match note.take() {
                            Some(isin) => format!("{isin} · not valued: {reason}"),
                            None => format!("not valued: {reason}"),
                        };
                        security.note_colored(text, NEGATIVE)
                    }
                    None => security.note(note.unwrap_or_default()),
                };
                let price = p.price.map_or_else(Cell::missing, |v| match p.price_type {
                    PriceType::Percent => Cell::figure(format!("{}%", format::price(v))),
                    PriceType::Amount => Cell::figure(format::price(v)),
                });
                rows.push(Row::Data(vec![
                    security,
                    Cell::figure(format::quantity(p.quantity)),
                    price,
                    Cell::text(p.price_currency.as_str()),
                    amount_cell(p.local_value, p.price_currency),
                    p.fx_rate
                        .map_or_else(Cell::missing, |r| Cell::figure(format::rate(r))),
                    amount_cell(p.value, ccy),
                    Cell::figure(format::date(p.snapshot_date)),
                ]));
            }
            grand = sum(grand, subtotal);
            rows.push(total_row(
                8,
                6,
                format!("Total {}", account.account),
                subtotal,
                ccy,
            ));
        }
    }
    rows.push(total_row(8, 6, "Total positions".into(), grand, ccy));
    table::draw(flow, &columns, rows);
}

fn cash(flow: &mut Flow, s: &Statement) {
    heading(
        flow,
        &format!("Cash balances as of {}", format::date(s.valuation.as_of)),
    );
    if s.cash.is_empty() {
        nothing(flow, "No cash balances at the end of the period.");
        return;
    }
    let ccy = s.reporting_currency;
    let columns = [
        Column::text("Custodian", 100.0),
        Column::text("Account", 130.0),
        Column::text("Ccy", 24.0),
        Column::figure("Balance", 76.0),
        Column::figure("FX rate", 50.0),
        Column::figure(format!("Value ({ccy})"), 80.0),
        Column::figure("Date", 50.0),
    ];
    let mut total = Some(Decimal::ZERO);
    let mut rows: Vec<Row> = s
        .cash
        .iter()
        .map(|c| {
            total = sum(total, c.value);
            let account = Cell::text(c.account.as_str());
            let account = match &c.reason {
                Some(r) => account.note_colored(format!("not converted: {r}"), NEGATIVE),
                None => account,
            };
            Row::Data(vec![
                Cell::text(c.custodian.as_str()),
                account,
                Cell::text(c.currency.as_str()),
                Cell::figure(format::amount(c.amount, c.currency)),
                c.fx_rate
                    .map_or_else(Cell::missing, |r| Cell::figure(format::rate(r))),
                amount_cell(c.value, ccy),
                Cell::figure(format::date(c.date)),
            ])
        })
        .collect();
    rows.push(total_row(7, 5, "Total cash".into(), total, ccy));
    table::draw(flow, &columns, rows);
}

fn fx_rates(flow: &mut Flow, s: &Statement) {
    let ccy = s.reporting_currency;
    heading(flow, "Exchange rates used");
    if s.fx_rates.is_empty() {
        nothing(
            flow,
            &format!("No conversion was needed: every figure is in {ccy}."),
        );
        return;
    }
    let columns = [
        Column::text("Currency", 60.0),
        Column::figure(format!("1 unit in {ccy}"), 90.0),
        Column::figure("Rate date", 70.0),
        Column::text("Sources", 200.0),
        Column::text("Status", 90.0),
    ];
    let rows = s.fx_rates.iter().map(|r| {
        let status = if r.stale {
            Cell::text("stale").styled(Style::bold(table::BODY).color(NEGATIVE))
        } else {
            Cell::text("current")
        };
        Row::Data(vec![
            Cell::text(r.currency.as_str()),
            Cell::figure(format::rate(r.rate)),
            Cell::figure(format::date(r.date)),
            Cell::text(r.sources.join(", ")).wrapped(2),
            status,
        ])
    });
    table::draw(flow, &columns, rows);
}

fn performance(flow: &mut Flow, s: &Statement) {
    let p = &s.performance;
    heading(
        flow,
        &format!(
            "Performance {} to {}",
            format::date(s.period.from),
            format::date(s.period.to)
        ),
    );
    key_figures(flow, s);
    let note = Style::regular(7.5).color(MUTED);
    flow.advance(4.0);
    if let Some(t) = &p.time_weighted {
        flow.paragraph(&format!("Time-weighted return: {}", t.method), note);
    }
    if let Some(m) = &p.money_weighted {
        flow.paragraph(&format!("Money-weighted return: {}", m.method), note);
    }
    flow.advance(6.0);
    subheading(flow, "External flows");
    if p.flows.is_empty() {
        nothing(flow, "No external flows in the period.");
        return;
    }
    let ccy = s.reporting_currency;
    let columns = [
        Column::figure("Date", 50.0),
        Column::text("Custodian", 95.0),
        Column::text("Account", 125.0),
        Column::text("Kind", 60.0),
        Column::figure("Amount", 76.0),
        Column::text("Ccy", 24.0),
        Column::figure(format!("Value ({ccy})"), 80.0),
    ];
    let mut rows: Vec<Row> = p
        .flows
        .iter()
        .map(|f| {
            Row::Data(vec![
                Cell::figure(format::date(f.date)),
                Cell::text(f.custodian.as_str()),
                Cell::text(f.account.as_str()),
                Cell::text(capitalised(f.kind.as_str())),
                Cell::figure(format::amount(f.amount, f.currency)),
                Cell::text(f.currency.as_str()),
                amount_cell(f.value, ccy),
            ])
        })
        .collect();
    rows.push(total_row(
        7,
        6,
        "Net external flows".into(),
        p.net_flows,
        ccy,
    ));
    table::draw(flow, &columns, rows);
}

fn transactions(flow: &mut Flow, s: &Statement) {
    heading(
        flow,
        &format!(
            "Transactions {} to {}",
            format::date(s.period.from),
            format::date(s.period.to)
        ),
    );
    if s.transactions.is_empty() {
        nothing(flow, "No transactions in the period.");
        return;
    }
    flow.paragraph(
        &format!(
            "{} transactions, amounts in the account's currency; debits negative.",
            format::quantity(Decimal::from(s.transactions.len()))
        ),
        Style::regular(8.0).color(MUTED),
    );
    flow.advance(4.0);
    let columns = [
        Column::figure("Booked", 46.0),
        Column::figure("Value date", 46.0),
        Column::text("Account", 112.0),
        Column::text("Type", 44.0),
        Column::text("Description", 150.0),
        Column::figure("Amount", 64.0),
        Column::text("Ccy", 22.0),
    ];
    let rows = s.transactions.iter().map(|t| {
        Row::Data(vec![
            Cell::figure(format::date(t.booking_date)),
            t.value_date
                .map_or_else(Cell::empty, |d| Cell::figure(format::date(d))),
            Cell::text(t.account.as_str()),
            Cell::text(capitalised(t.kind.as_str())),
            Cell::text(t.description.as_str()).wrapped(2),
            Cell::figure(format::amount(t.amount, t.currency)),
            Cell::text(t.currency.as_str()),
        ])
    });
    table::draw(flow, &columns, rows);
}

fn provenance(flow: &mut Flow, s: &Statement) {
    heading(flow, "Data provenance");
    let p = &s.provenance;
    subheading(flow, "Synchronisations the figures come from");
    if p.runs.is_empty() {
        nothing(flow, "No synchronisation has brought data for this client.");
    } else {
        let columns = [
            Column::text("Custodian", 95.0),
            Column::text("Connection", 110.0),
            Column::text("Run id", 150.0),
            Column::figure("Finished (UTC)", 70.0),
            Column::text("Status", 90.0),
        ];
        let rows = p.runs.iter().map(|r| {
            Row::Data(vec![
                Cell::text(r.custodian.as_str()),
                Cell::text(r.connection.as_str()),
                Cell::text(r.run_id.to_string()),
                r.finished_at
                    .map_or_else(Cell::missing, |t| Cell::figure(format::minute(t))),
                Cell::text(r.status.as_str().replace('_', " ")),
            ])
        });
        table::draw(flow, &columns, rows);
    }
    subheading(flow, "Data as of, per account");
    if p.accounts.is_empty() {
        nothing(flow, "No account of this client has data.");
        return;
    }
    let columns = [
        Column::text("Custodian", 150.0),
        Column::text("Account", 220.0),
        Column::figure("Data as of", 80.0),
    ];
    let rows = p.accounts.iter().map(|a| {
        Row::Data(vec![
            Cell::text(a.custodian.as_str()),
            Cell::text(a.account.as_str()),
            a.data_as_of
                .map_or_else(Cell::missing, |d: NaiveDate| Cell::figure(format::date(d))),
        ])
    });
    table::draw(flow, &columns, rows);
}

/// A running total: unknown once a part is unknown (or the sum leaves Decimal's range).
fn sum(total: Option<Decimal>, part: Option<Decimal>) -> Option<Decimal> {
    total.zip(part).and_then(|(a, b)| a.checked_add(b))
}

fn amount_cell(value: Option<Decimal>, currency: Currency) -> Cell {
    value.map_or_else(Cell::missing, |v| Cell::figure(format::amount(v, currency)))
}

fn money_or_na(value: Option<Decimal>, currency: Currency) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format::money(v, currency))
}

/// A total row of `width` cells: the label first, the amount in column `at`.
fn total_row(
    width: usize,
    at: usize,
    label: String,
    value: Option<Decimal>,
    currency: Currency,
) -> Row {
    let mut amount = Some(amount_cell(value, currency));
    let cells = (0..width)
        .map(|i| match i {
            0 => Cell::text(label.as_str()),
            i if i == at => amount.take().unwrap_or_else(Cell::empty),
            _ => Cell::empty(),
        })
        .collect();
    Row::Total(cells)
}

/// `equity` -> `Equity` (for labels made of the model's lower-case names).
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
