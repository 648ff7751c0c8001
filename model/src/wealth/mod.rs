//! The wealth view's arithmetic, pure so the API answers and the worker's jobs compute the same
//! figures: [`fx`] (reference rates, their precedence, cross rates through EUR, staleness),
//! [`valuation`] (a position's value, presentation rounding), [`series`] (a portfolio's value
//! day by day with its external flows) and [`performance`] (time-weighted and money-weighted
//! returns).
//!
//! Decimal end to end: nothing here rounds except [`valuation::present`], which rounds half to
//! even to the currency's minor unit, only for display.

pub mod fx;
pub mod performance;
pub mod series;
pub mod valuation;

/// `dec!(1.05)`: a Decimal from its literal text, for tests.
#[cfg(test)]
macro_rules! dec {
    ($x:expr) => {
        stringify!($x)
            .replace(' ', "")
            .parse::<rust_decimal::Decimal>()
            .expect("a decimal literal")
    };
}
#[cfg(test)]
pub(crate) use dec;
