//! Reconciliation breaks and what they are checked against: what the normalizer's checks
//! (`eam_normalizer::reconcile` for cash statements, `eam_normalizer::position_check` for
//! holdings) return, the worker hands the store, and the store records and reads back; and
//! what the store reads for those checks: where an account's chain of statements ended
//! ([`StatementEnd`]), its holdings at a date ([`PositionSnapshot`]) and the securities
//! transactions booked since ([`SecuritiesTransaction`]).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::Currency;
use crate::records::{Direction, SecurityKey, StatedBalance, TransactionStatus, TransactionType};

/// What a check found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// Opening + entries differs from the closing balance.
    Balance,
    /// The opening balance differs from the previous statement's closing balance.
    Continuity,
    /// A statement number or page is missing.
    Sequence,
    /// A statement of a file could not be read on its own (cut short, no account or currency)
    /// and was left out while the rest of its file loaded.
    Unreadable,
    /// A custody account's holdings of a security differ from its previous snapshot plus the
    /// securities movements booked in between.
    Position,
}

impl BreakKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Balance => "balance",
            BreakKind::Continuity => "continuity",
            BreakKind::Sequence => "sequence",
            BreakKind::Unreadable => "unreadable",
            BreakKind::Position => "position",
        }
    }

    /// The kind named by [`BreakKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            BreakKind::Balance,
            BreakKind::Continuity,
            BreakKind::Sequence,
            BreakKind::Unreadable,
            BreakKind::Position,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One failed check, located in its statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Break {
    pub kind: BreakKind,
    pub account: String,
    /// None for a statement that could not be read far enough to say, and for a position
    /// (its figures are quantities, not money).
    pub currency: Option<Currency>,
    /// The statement's reference and number, where the bank gave them.
    pub statement_reference: Option<String>,
    pub statement_number: Option<u32>,
    /// The statement's date; for a position, the date of the snapshot checked.
    pub date: Option<NaiveDate>,
    /// What the check expected and what the statement says (amounts for balance and
    /// continuity, statement numbers for sequence, quantities for a position: the previous
    /// holding plus the movements, and the holding reported).
    pub expected: Option<Decimal>,
    pub actual: Option<Decimal>,
    pub message: String,
    /// The document the statement was read from.
    pub document: String,
    /// A position break's security.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<BreakSecurity>,
    /// A position break's previous snapshot date: the movements counted are those after it,
    /// up to [`Break::date`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_from: Option<NaiveDate>,
}

/// The security of a position break: its key, and how the sync's statements named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakSecurity {
    pub key: SecurityKey,
    /// The ISIN or the bank's id, and the name, as the sync's statements described it (e.g.
    /// `US0378331005 Apple Inc.`); the key's identifier alone when they did not describe it.
    pub label: String,
}

impl Break {
    /// The break a statement left out of its file is: located by document, statement and line.
    pub fn unreadable(r: &crate::records::RejectedStatement) -> Break {
        let line = r.line.map(|l| format!(", line {l}")).unwrap_or_default();
        let field = r
            .field
            .as_deref()
            .map(|f| format!(", field {f}"))
            .unwrap_or_default();
        Break {
            kind: BreakKind::Unreadable,
            account: r.account.clone().unwrap_or_default(),
            currency: None,
            statement_reference: r.reference.clone(),
            statement_number: Some(r.index),
            date: None,
            expected: None,
            actual: None,
            message: format!(
                "{}: statement {}{line}{field} left out: {}",
                r.document, r.index, r.reason
            ),
            document: r.document.clone(),
            security: None,
            period_from: None,
        }
    }

    /// Reported minus expected, when the check knows both: for a position, the quantity the
    /// bank holds beyond what the movements explain.
    pub fn difference(&self) -> Option<Decimal> {
        Some(self.actual? - self.expected?)
    }
}

/// A custody account's holdings on one date: every security it holds with its quantity (a
/// security it does not list, it holds none of).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionSnapshot {
    pub as_of: NaiveDate,
    pub holdings: Vec<(SecurityKey, Decimal)>,
}

/// The securities side of a transaction, for the position check: which security, how much,
/// which way and when. Whether and when it moves the holdings is the check's to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecuritiesTransaction {
    pub account: String,
    pub security: SecurityKey,
    pub kind: TransactionType,
    pub direction: Direction,
    pub status: TransactionStatus,
    /// As the bank stated it (a sale's quantity may carry a sign or not).
    pub quantity: Decimal,
    pub booking_date: NaiveDate,
    pub trade_date: Option<NaiveDate>,
}

/// Where an account's chain of statements ended: what the next statement must continue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementEnd {
    pub statement_number: Option<u32>,
    pub page_number: Option<u32>,
    pub last_page: bool,
    pub closing: StatedBalance,
    pub reference: Option<String>,
}

/// The key of a chain of statements: the account reference and the currency.
pub type ChainKey = (String, Currency);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_stored_name() {
        for k in [
            BreakKind::Balance,
            BreakKind::Continuity,
            BreakKind::Sequence,
            BreakKind::Unreadable,
            BreakKind::Position,
        ] {
            assert_eq!(BreakKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(BreakKind::parse("positions"), None);
    }

    #[test]
    fn the_difference_is_reported_minus_expected_when_both_are_known() {
        let r = crate::records::RejectedStatement {
            document: "f.mt940".into(),
            index: 1,
            reference: None,
            account: None,
            line: None,
            field: None,
            reason: "cut short".into(),
        };
        let mut b = Break::unreadable(&r);
        assert_eq!(b.difference(), None);
        b.expected = Some(Decimal::new(1000, 1));
        assert_eq!(b.difference(), None);
        b.actual = Some(Decimal::new(13025, 2));
        assert_eq!(b.difference(), Some(Decimal::new(3025, 2)));
    }
}
