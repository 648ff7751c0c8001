//! Reconciliation breaks and the chain ends they are checked against: what the normalizer's
//! checks (`eam_normalizer::reconcile`) return, the worker hands the store, and the store
//! records and reads back.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::Currency;
use crate::records::StatedBalance;

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
}

impl BreakKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Balance => "balance",
            BreakKind::Continuity => "continuity",
            BreakKind::Sequence => "sequence",
            BreakKind::Unreadable => "unreadable",
        }
    }
}

/// One failed check, located in its statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Break {
    pub kind: BreakKind,
    pub account: String,
    /// None for a statement that could not be read far enough to say.
    pub currency: Option<Currency>,
    /// The statement's reference and number, where the bank gave them.
    pub statement_reference: Option<String>,
    pub statement_number: Option<u32>,
    pub date: Option<NaiveDate>,
    /// What the check expected and what the statement says (amounts for balance and
    /// continuity, statement numbers for sequence).
    pub expected: Option<Decimal>,
    pub actual: Option<Decimal>,
    pub message: String,
    /// The document the statement was read from.
    pub document: String,
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
        }
    }
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
