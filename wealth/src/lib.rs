//! The wealth view's figures: what a portfolio is worth as of a date ([`valuation`]) and how it
//! did over a period ([`performance`]), in one currency, from the rows the store holds.
//!
//! This is the one place those figures are computed: the API's `valuation` and `performance`
//! routes and the worker's report jobs call it, so a statement prints exactly the numbers the
//! API answers for the same client and date (DESIGN.md §11). It reads through the caller's
//! [`TenantTx`](eam_store::TenantTx) and computes with `model::wealth`, which stays pure; who
//! may see which accounts (the caller, its client scope) is the caller's business, decided
//! before anything here runs. No HTTP: the answers are plain serde structs that each edge maps
//! to its own format.
//!
//! Every conversion uses one rate book per answer ([`rates`]): the platform's stored reference
//! rates, plus the rates the tenant's banks stated in its documents.

pub mod currency;
pub mod performance;
pub mod rates;
pub mod valuation;

pub use currency::{account_currency, client_currency, parse_currency};
pub use performance::{MAX_DAYS, Performance, Period, measure};
pub use rates::{platform_book, tenant_book};
pub use valuation::{Valuation, value};

use chrono::NaiveDate;
use eam_model::wealth::fx::RateError;
use eam_store::StoreError;

/// Why a figure cannot be answered at all (a figure that cannot be valued is `None` with its
/// reason inside the answer instead; see [`valuation`] and [`performance`]).
#[derive(Debug, thiserror::Error)]
pub enum WealthError {
    /// A currency code that is not ISO 4217: a requested one, or the stored reporting currency
    /// a figure falls back to (the caller's request is answered with the same words).
    #[error("currency: '{0}' is not an ISO 4217 currency")]
    Currency(String),
    /// The period does not end after it starts.
    #[error("from ({from}) must be before to ({to})")]
    PeriodOrder { from: NaiveDate, to: NaiveDate },
    /// The period is longer than one request values ([`MAX_DAYS`]).
    #[error("the period is longer than {MAX_DAYS} days: ask for shorter ones")]
    PeriodTooLong,
    /// A stored reference rate the rate book refuses (the load validates them: a bug or a
    /// hand-edited row).
    #[error("a stored rate: {0}")]
    StoredRate(#[source] RateError),
    /// An invariant of this crate broke; the message names it.
    #[error("{0}")]
    Invariant(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WealthError {
    /// True when the error is the request's (a currency or a period it asked for), not the
    /// platform's: what an edge answers with "bad request".
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            WealthError::Currency(_) | WealthError::PeriodOrder { .. } | WealthError::PeriodTooLong
        )
    }
}

/// `dec("1.05")`: a Decimal from its text, for tests.
#[cfg(test)]
fn dec(s: &str) -> rust_decimal::Decimal {
    s.parse().expect("a decimal literal")
}
