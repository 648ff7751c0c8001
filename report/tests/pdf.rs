//! The PDF as a reader gets it, read back with poppler: the figures as presented, every
//! position, page numbers, repeated table headers, embedded fonts, the logo, and refusals.

mod fixtures;
mod poppler;

use eam_report::{NO_DATA, RenderError, Statement, render_pdf, render_pdf_counted};
use fixtures::d;
use poppler::{Pdf, squeezed};
use rust_decimal::{Decimal, RoundingStrategy};

/// An amount as a reader expects it: half to even to the cent, thousands grouped with `,`.
/// Written here again, independently of the crate, as the test's oracle.
fn cents(value: Decimal) -> String {
    let rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    let text = format!("{:.2}", rounded);
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (int, frac) = digits.split_once('.').expect("two decimals");
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{frac}")
}

fn assert_numbered(pdf: &Pdf) -> Vec<String> {
    let pages = pdf.pages();
    let texts = pdf.page_texts();
    assert_eq!(
        texts.len(),
        pages,
        "pdftotext and pdfinfo agree on the pages"
    );
    for (i, text) in texts.iter().enumerate() {
        let label = format!("Page {} of {pages}", i + 1);
        assert!(text.contains(&label), "page {} lacks '{label}'", i + 1);
    }
    texts
}

fn assert_fonts_embedded(pdf: &Pdf) {
    let fonts = pdf.fonts();
    assert!(!fonts.is_empty(), "the text uses fonts");
    for (name, embedded, subset, unicode) in fonts {
        assert!(embedded, "{name} is embedded");
        assert!(subset, "{name} is a subset");
        assert!(unicode, "{name} maps its glyphs to Unicode");
        assert!(
            name.contains("LiberationSans"),
            "{name} is the shipped font"
        );
    }
}

#[test]
fn the_realistic_statement_shows_the_total_and_every_position_with_its_value() {
    let s = fixtures::realistic();
    let (bytes, pages) = render_pdf_counted(&s).expect("the statement renders");
    let pdf = Pdf::new(&bytes);
    assert_eq!(
        pages as usize,
        pdf.pages(),
        "the pages counted are the pages written"
    );
    let text = pdf.text();

    // The total as presented, checked against an independent computation of the fixture.
    assert!(text.contains("CHF 3,162,281.45"), "{text}");
    assert_eq!(
        s.valuation.total.map(cents).as_deref(),
        Some("3,162,281.45")
    );

    let lines: Vec<&str> = text.lines().collect();
    let mut seen = 0;
    for (custodian, account, p) in s.position_lines() {
        let line = lines
            .iter()
            .find(|l| l.contains(p.security_name.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{} ({custodian}, {}) is listed",
                    p.security_name, account.account
                )
            });
        let value = cents(p.value.expect("fixture positions are valued"));
        assert!(
            line.contains(&value),
            "{}'s line shows its value {value}: {line}",
            p.security_name
        );
        if let Some(isin) = &p.isin {
            assert!(text.contains(isin.as_str()), "{isin} is shown");
        }
        seen += 1;
    }
    assert_eq!(seen, 40);
    for slice in &s.valuation.by_custodian {
        assert!(text.contains(&cents(slice.value)), "{} slice", slice.key);
    }
    // A negative figure keeps its sign; a stale rate is flagged.
    assert!(text.contains("-15,320.75"));
    assert!(text.contains("stale"));
    assert_numbered(&pdf);
    assert_fonts_embedded(&pdf);
}

#[test]
fn a_2000_transaction_statement_repeats_the_table_header_on_every_page_it_spans() {
    let s = fixtures::with_transactions(2_000);
    let pdf = Pdf::new(&render_pdf(&s).expect("the statement renders"));
    let pages = assert_numbered(&pdf);
    let header = "Booked Value date Account Type Description Amount Ccy";
    let first = pages
        .iter()
        .position(|p| p.contains("Transactions 2026-11-01 to 2026-11-30"))
        .expect("the transactions section");
    let last = pages
        .iter()
        .rposition(|p| p.contains("no. 1999"))
        .expect("the last transaction");
    assert!(
        last - first >= 20,
        "2,000 rows span many pages ({first}..={last})"
    );
    for (n, page) in pages.iter().enumerate().take(last + 1).skip(first) {
        let headers = page.lines().filter(|l| squeezed(l) == header).count();
        assert_eq!(headers, 1, "page {} repeats the header once", n + 1);
    }
    let text = pages.join("\n");
    let lines: Vec<&str> = text.lines().collect();
    for (i, t) in s.transactions.iter().enumerate() {
        let mark = format!("no. {i:04}");
        let line = lines
            .iter()
            .find(|l| l.contains(&mark))
            .unwrap_or_else(|| panic!("transaction {mark} is listed"));
        assert!(
            line.contains(&cents(t.amount)),
            "{mark} shows its amount: {line}"
        );
    }
    assert_fonts_embedded(&pdf);
}

#[test]
fn a_client_with_no_data_gets_a_valid_statement_that_says_so() {
    let s = fixtures::empty();
    assert!(s.is_empty());
    let pdf = Pdf::new(&render_pdf(&s).expect("the statement renders"));
    let pages = assert_numbered(&pdf);
    assert_eq!(pages.len(), 1);
    let text = squeezed(&pages.join(" "));
    assert!(text.contains(NO_DATA), "{text}");
    assert!(text.contains("Jean Dupont"));
    assert!(text.contains("EUR 0.00"));
    assert!(text.contains("No synchronisation has brought data for this client."));
    // No empty tables: no positions or transactions table header at all.
    assert!(!text.contains("Security / ISIN"));
    assert!(!text.contains("Value date"));
    assert_fonts_embedded(&pdf);
}

#[test]
fn a_figure_that_cannot_be_valued_is_shown_as_such_with_its_reason() {
    let mut s = fixtures::realistic();
    let reason = "no EUR rate on or before 2026-11-30";
    if let Some(p) = s.positions[1].accounts[0].positions.get_mut(0) {
        p.fx_rate = None;
        p.value = None;
        p.reason = Some(reason.to_owned());
    }
    s.valuation.total = None;
    s.performance.end_value = None;
    s.valuation.reasons = vec![format!("Pictet-Global Megatrend Selection: {reason}")];
    let pdf = Pdf::new(&render_pdf(&s).expect("the statement renders"));
    let text = squeezed(&pdf.text());
    assert!(text.contains("Not available"));
    assert!(text.contains(&format!("not valued: {reason}")), "{text}");
    assert!(
        !text.contains("CHF 3,162,281.45"),
        "no partial sum shown as the total"
    );
}

#[test]
fn long_texts_are_cut_or_wrapped_never_refused() {
    let mut s = fixtures::realistic();
    let long = "Very long security name ".repeat(20);
    s.positions[0].accounts[0].positions[0].security_name = long.clone();
    s.transactions[0].description = "word ".repeat(300);
    s.transactions[1].description = "X".repeat(400);
    s.client.name = "Name ".repeat(60);
    s.firm.name = "Firm ".repeat(60);
    let pdf = Pdf::new(&render_pdf(&s).expect("the statement renders"));
    let text = pdf.text();
    assert!(
        text.contains('\u{2026}'),
        "a cut text ends with an ellipsis"
    );
    assert!(
        !text.contains(long.trim()),
        "the long name is not drawn whole"
    );
    assert_numbered(&pdf);
}

#[test]
fn the_logo_is_drawn_and_a_logo_that_is_not_a_png_is_refused() {
    let mut s = fixtures::realistic();
    s.firm.logo_png = Some(fixtures::logo_png(240, 80));
    let pdf = Pdf::new(&render_pdf(&s).expect("a statement with a logo renders"));
    assert!(pdf.images() >= 1, "the logo is in the PDF");
    s.firm.logo_png = None;
    let pdf = Pdf::new(&render_pdf(&s).expect("a statement without a logo renders"));
    assert_eq!(pdf.images(), 0);

    s.firm.logo_png = Some(b"GIF89a not a png".to_vec());
    assert!(matches!(render_pdf(&s), Err(RenderError::Logo(_))));

    let mut truncated = fixtures::logo_png(240, 80);
    truncated.truncate(truncated.len() / 2);
    s.firm.logo_png = Some(truncated);
    assert!(matches!(render_pdf(&s), Err(RenderError::Logo(_))));

    s.firm.logo_png = Some(Vec::new());
    assert!(matches!(render_pdf(&s), Err(RenderError::Logo(_))));
}

#[test]
fn a_period_that_ends_before_it_starts_is_refused() {
    let mut s = fixtures::realistic();
    s.period.to = fixtures::date("2026-10-31");
    let err = render_pdf(&s).expect_err("refused");
    assert!(matches!(err, RenderError::Period { .. }));
    assert_eq!(
        err.to_string(),
        "the period ends on 2026-10-31, before it starts on 2026-11-01"
    );
}

#[test]
fn the_statement_round_trips_through_json_with_its_logo() {
    let mut s = fixtures::realistic();
    s.firm.logo_png = Some(fixtures::logo_png(8, 4));
    let json = serde_json::to_string(&s).expect("serializes");
    let back: Statement = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, s);
    // Decimals travel as strings, exactly.
    assert!(json.contains("\"rate\":\"0.88347\""));
    assert!(json.contains("\"language\":\"en\""));
    assert_eq!(back.valuation.total, Some(d("3162281.45051425000")));
}

#[test]
fn the_same_statement_gives_the_same_bytes() {
    let s = fixtures::realistic();
    assert_eq!(
        render_pdf(&s).expect("renders"),
        render_pdf(&s).expect("renders")
    );
}
