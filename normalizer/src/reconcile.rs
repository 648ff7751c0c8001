//! Data-quality checks over cash statements: never a silent success.
//!
//! A statement that does not add up is still loaded (the bank sent it; hiding it helps nobody)
//! but every inconsistency becomes a [`Break`] that support sees, and the run ends
//! `succeeded_with_breaks`. Three checks, per account and currency, over the statements of a
//! sync in date order, chained to the last statement of the previous sync ([`StatementEnd`]):
//!
//! - **balance**: a page's opening + its booked entries = its closing;
//! - **continuity**: a page's opening = the previous page's closing;
//! - **sequence**: no statement number is skipped, and a statement's pages come one after the
//!   other. A statement received twice is not a gap, nor is a numbering that restarts at 1
//!   (banks restart it every year).
//!
//! Statements without balances (camt.052 reports, camt.054 notifications, MT942) are not
//! checked. Pure: the worker reads the previous ends from the store, runs [`check`], and hands
//! the store the breaks and new ends to record. The types live in `eam_model::breaks`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

pub use eam_model::breaks::{Break, BreakKind, ChainKey, StatementEnd};

use crate::model::StatementSummary;

/// Checks the statements of one sync, chained to `previous` ends, and returns the breaks and
/// the new ends of every chain the statements touched.
pub fn check(
    statements: &[StatementSummary],
    previous: &BTreeMap<ChainKey, StatementEnd>,
) -> (Vec<Break>, BTreeMap<ChainKey, StatementEnd>) {
    let mut chains: BTreeMap<ChainKey, Vec<&StatementSummary>> = BTreeMap::new();
    for s in statements {
        if s.opening.is_some() || s.closing.is_some() {
            chains
                .entry((s.account.clone(), s.currency))
                .or_default()
                .push(s);
        }
    }
    let mut breaks = Vec::new();
    let mut ends = BTreeMap::new();
    for (key, mut pages) in chains {
        // Date order; within a day, statement and page number order. Stable, so pages
        // without numbers keep the order the bank delivered them in.
        pages.sort_by_key(|s| {
            (
                s.opening.as_ref().or(s.closing.as_ref()).map(|b| b.date),
                s.statement_number,
                s.page_number,
            )
        });
        let mut last = previous.get(&key).cloned();
        for page in pages {
            check_page(page, last.as_ref(), &mut breaks);
            if let Some(closing) = &page.closing {
                last = Some(StatementEnd {
                    statement_number: page.statement_number,
                    page_number: page.page_number,
                    last_page: page.last_page,
                    closing: closing.clone(),
                    reference: page.reference.clone(),
                });
            }
        }
        if let Some(end) = last {
            ends.insert(key, end);
        }
    }
    (breaks, ends)
}

fn check_page(page: &StatementSummary, previous: Option<&StatementEnd>, breaks: &mut Vec<Break>) {
    let located = |kind, expected, actual, message: String| Break {
        kind,
        account: page.account.clone(),
        currency: Some(page.currency),
        statement_reference: page.reference.clone(),
        statement_number: page.statement_number,
        date: page
            .closing
            .as_ref()
            .or(page.opening.as_ref())
            .map(|b| b.date),
        expected,
        actual,
        message,
        document: page.provenance.document.clone(),
        security: None,
        period_from: None,
    };
    if let (Some(opening), Some(closing)) = (&page.opening, &page.closing) {
        let computed = opening.amount + page.entries_total;
        if computed != closing.amount {
            breaks.push(located(
                BreakKind::Balance,
                Some(computed),
                Some(closing.amount),
                format!(
                    "opening {} + {} entries totalling {} = {}, but the statement closes at {} (difference {})",
                    opening.amount,
                    page.entry_count,
                    page.entries_total,
                    computed,
                    closing.amount,
                    closing.amount - computed
                ),
            ));
        }
    }
    let Some(previous) = previous else {
        return;
    };
    if let Some(opening) = &page.opening
        && opening.amount != previous.closing.amount
    {
        breaks.push(located(
            BreakKind::Continuity,
            Some(previous.closing.amount),
            Some(opening.amount),
            format!(
                "opens at {} but the previous statement{} closed at {} on {}",
                opening.amount,
                previous
                    .reference
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                previous.closing.amount,
                previous.closing.date
            ),
        ));
    }
    if let Some(message) = sequence_gap(page, previous) {
        let expected = expected_number(previous).map(Decimal::from);
        breaks.push(located(
            BreakKind::Sequence,
            expected,
            page.statement_number.map(Decimal::from),
            message,
        ));
    }
}

/// The statement number that should follow `previous` when it ended its statement.
fn expected_number(previous: &StatementEnd) -> Option<u32> {
    let n = previous.statement_number?;
    if previous.last_page {
        n.checked_add(1)
    } else {
        Some(n)
    }
}

fn sequence_gap(page: &StatementSummary, previous: &StatementEnd) -> Option<String> {
    let (Some(prev), Some(this)) = (previous.statement_number, page.statement_number) else {
        return None;
    };
    if this == prev {
        // The same statement: the next page, or the statement delivered again.
        if previous.last_page {
            return None;
        }
        let (Some(prev_page), Some(this_page)) = (previous.page_number, page.page_number) else {
            return None;
        };
        return (this_page > prev_page + 1).then(|| {
            format!(
                "statement {this} jumps from page {prev_page} to page {this_page}: {} missing",
                pages(prev_page + 1, this_page - 1)
            )
        });
    }
    if this == 1 || this < prev {
        return None; // the numbering restarted (a new year)
    }
    if !previous.last_page {
        return Some(format!(
            "statement {prev} ended without its last page before statement {this} began"
        ));
    }
    (this > prev + 1).then(|| {
        format!(
            "statement {this} follows statement {prev}: {} missing",
            if this == prev + 2 {
                format!("statement {}", prev + 1)
            } else {
                format!("statements {} to {}", prev + 1, this - 1)
            }
        )
    })
}

fn pages(from: u32, to: u32) -> String {
    if from == to {
        format!("page {from}")
    } else {
        format!("pages {from} to {to}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;
    use crate::model::{Provenance, SourceFormat, StatedBalance};
    use chrono::NaiveDate;

    fn d(s: &str) -> Decimal {
        s.parse().expect("test decimal")
    }

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).expect("test date")
    }

    fn stmt(
        number: u32,
        day: u32,
        opening: &str,
        entries: &str,
        closing: &str,
    ) -> StatementSummary {
        StatementSummary {
            account: "CH9300762011623852957".into(),
            currency: Currency::parse("CHF").expect("CHF"),
            reference: Some(format!("STMT{number}")),
            statement_number: Some(number),
            page_number: Some(1),
            last_page: true,
            opening: Some(StatedBalance {
                amount: d(opening),
                date: date(day),
                intermediate: false,
            }),
            closing: Some(StatedBalance {
                amount: d(closing),
                date: date(day),
                intermediate: false,
            }),
            entries_total: d(entries),
            entry_count: 2,
            provenance: Provenance {
                format: SourceFormat::Mt940,
                document: format!("day-{day}.sta"),
                position: 0,
            },
        }
    }

    #[test]
    fn consistent_statements_give_no_break_and_end_the_chain_at_the_last_closing() {
        let (breaks, ends) = check(
            &[
                stmt(2, 2, "100.00", "-20.50", "79.50"),
                stmt(1, 1, "50", "50", "100.00"),
            ],
            &BTreeMap::new(),
        );
        assert_eq!(breaks, vec![]);
        let end = ends.values().next().expect("one chain");
        assert_eq!(end.statement_number, Some(2));
        assert_eq!(end.closing.amount, d("79.50"));
    }

    #[test]
    fn a_statement_that_does_not_add_up_is_a_balance_break_with_the_difference() {
        let (breaks, _) = check(&[stmt(1, 1, "100.00", "10.00", "111.00")], &BTreeMap::new());
        assert_eq!(breaks.len(), 1);
        assert_eq!(breaks[0].kind, BreakKind::Balance);
        assert_eq!(breaks[0].expected, Some(d("110.00")));
        assert_eq!(breaks[0].actual, Some(d("111.00")));
        assert!(
            breaks[0].message.contains("difference 1.00"),
            "{}",
            breaks[0].message
        );
        assert_eq!(breaks[0].document, "day-1.sta");
    }

    #[test]
    fn an_opening_that_differs_from_the_previous_sync_closing_is_a_continuity_break() {
        let (_, ends) = check(&[stmt(1, 1, "0", "100", "100")], &BTreeMap::new());
        let (breaks, _) = check(&[stmt(2, 2, "90", "10", "100")], &ends);
        assert_eq!(breaks.len(), 1, "{breaks:?}");
        assert_eq!(breaks[0].kind, BreakKind::Continuity);
        assert_eq!(breaks[0].expected, Some(d("100")));
        assert_eq!(breaks[0].actual, Some(d("90")));
    }

    #[test]
    fn a_skipped_statement_number_is_a_sequence_break_but_a_redelivery_or_a_restart_is_not() {
        let (breaks, _) = check(
            &[stmt(1, 1, "0", "1", "1"), stmt(3, 2, "1", "1", "2")],
            &BTreeMap::new(),
        );
        assert_eq!(breaks.len(), 1, "{breaks:?}");
        assert_eq!(breaks[0].kind, BreakKind::Sequence);
        assert_eq!(
            breaks[0].message,
            "statement 3 follows statement 1: statement 2 missing"
        );
        let (breaks, _) = check(
            &[
                stmt(7, 1, "0", "1", "1"),
                stmt(7, 1, "0", "1", "1"),
                stmt(1, 2, "1", "1", "2"),
            ],
            &BTreeMap::new(),
        );
        assert!(
            breaks.iter().all(|b| b.kind != BreakKind::Sequence),
            "{breaks:?}"
        );
    }

    #[test]
    fn a_missing_page_is_a_sequence_break() {
        let mut first = stmt(5, 1, "0", "1", "1");
        first.page_number = Some(1);
        first.last_page = false;
        let mut third = stmt(5, 1, "1", "1", "2");
        third.page_number = Some(3);
        let (breaks, _) = check(&[first, third], &BTreeMap::new());
        assert_eq!(breaks.len(), 1, "{breaks:?}");
        assert_eq!(
            breaks[0].message,
            "statement 5 jumps from page 1 to page 3: page 2 missing"
        );
    }

    #[test]
    fn statements_without_balances_are_not_checked() {
        let mut report = stmt(1, 1, "0", "5", "0");
        report.opening = None;
        report.closing = None;
        let (breaks, ends) = check(&[report], &BTreeMap::new());
        assert!(breaks.is_empty() && ends.is_empty());
    }
}
