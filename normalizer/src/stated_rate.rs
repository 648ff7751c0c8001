//! The exchange rates banks state in their files (camt `CcyXchg`, MT535/MT536 `:92B::EXCH`,
//! semt.002 `FXDtls`), and the one rule that decides which currency such a rate quotes.
//!
//! A stated rate is a number and two currencies; which of the two is the one of which 1 unit
//! is quoted is the question. Each standard answers it (camt and semt.002: `UnitCcy`, "in
//! 1 GBP = xxx CUR the unit currency is GBP"; ISO 15022 `:92B:`: "1,00 of First Currency Code
//! = [Rate] of Second Currency Code"), and real files do not always follow their standard: the
//! Finnish camt samples write `UnitCcy` EUR beside 0.00630875 for a JPY->EUR conversion, which
//! is EUR per 1 JPY. The house rule for dialects is to follow the bank's intent and say so:
//!
//! - **Amounts decide** when the file states the converted amount in both currencies: of the
//!   two readings (1 unit = rate other, or 1 other = rate unit) the one whose ratio is the
//!   closer to the amounts' ratio wins ([`reading`]). Charges and rounding make the amounts
//!   inexact, so "closer" is by factor (log distance), which comes down to one comparison: the
//!   reading as written holds when the amounts' ratio and the rate lie on the same side of 1.
//!   A tie (the amounts equal, or a rate of exactly 1) keeps the file's reading. Overriding the
//!   file is a [`ParseWarning`](crate::model::ParseWarning) at the rate.
//! - **Without both amounts** the standard's definition holds.
//! - The rate itself is kept exactly as written; only base and quote are chosen. A rate that is
//!   not a positive decimal gives a warning and no rate, never a rejected statement; a rate
//!   between a currency and itself is no rate and is ignored.
//! - One document states the same rate once ([`SeenRates`]): identical rates (account, base,
//!   quote, date, rate) after the first are dropped.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use rust_decimal::Decimal;

use crate::domain::Currency;
use crate::model::StatedRate;

/// How a written rate is read: as the file states it (1 `unit` = rate `other`) or the other
/// way round (1 `other` = rate `unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    AsWritten,
    Reversed,
}

/// The reading of `rate` that reproduces the amounts of the conversion, given as the amount in
/// the file's unit currency and the amount in the other currency (signs are ignored). Without
/// both amounts, or when either is zero, the file's reading stands.
fn reading(rate: Decimal, amounts: Option<(Decimal, Decimal)>) -> Reading {
    let Some((in_unit, in_other)) = amounts else {
        return Reading::AsWritten;
    };
    let (in_unit, in_other) = (in_unit.abs(), in_other.abs());
    if in_unit.is_zero() || in_other.is_zero() {
        return Reading::AsWritten;
    }
    // As written the amounts' ratio in_other / in_unit should be near `rate`, reversed near
    // 1 / rate. The nearer by factor is the one on the same side of 1 as the ratio: no
    // division needed, so no rounding and no overflow.
    let ratio_above_one = in_other > in_unit;
    let ratio_below_one = in_other < in_unit;
    if (ratio_above_one && rate < Decimal::ONE) || (ratio_below_one && rate > Decimal::ONE) {
        Reading::Reversed
    } else {
        Reading::AsWritten
    }
}

/// A rate the file gives, checked: a positive decimal, or the reason it is not one.
pub(crate) fn positive(rate: Decimal, written: &str) -> Result<Decimal, String> {
    if rate > Decimal::ZERO {
        Ok(rate)
    } else {
        Err(format!(
            "exchange rate '{written}' is not a positive decimal"
        ))
    }
}

/// A rate as the file's standard reads it: 1 `unit` = `rate` `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) unit: Currency,
    pub(crate) other: Currency,
    pub(crate) rate: Decimal,
}

/// A rate with its direction decided: 1 `base` = `rate` `quote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Oriented {
    pub(crate) base: Currency,
    pub(crate) quote: Currency,
    pub(crate) rate: Decimal,
    /// The amounts (in the written unit currency, in the other; their sizes) that reversed the
    /// file's reading, for the warning that says so; `None` when the file's reading stands.
    pub(crate) reversed_by: Option<(Decimal, Decimal)>,
}

/// Decides the direction of a written rate from the converted amount the file states in each
/// currency (in the written unit currency, in the other), see the module's rule.
pub(crate) fn orient(written: Written, amounts: Option<(Decimal, Decimal)>) -> Oriented {
    match reading(written.rate, amounts) {
        Reading::AsWritten => Oriented {
            base: written.unit,
            quote: written.other,
            rate: written.rate,
            reversed_by: None,
        },
        Reading::Reversed => Oriented {
            base: written.other,
            quote: written.unit,
            rate: written.rate,
            reversed_by: amounts.map(|(a, b)| (a.abs(), b.abs())),
        },
    }
}

/// The rates of one document already emitted, by a 64-bit hash of what makes them identical
/// (8 bytes per distinct rate, however large the file). Two different rates whose hashes
/// collide would lose the second: with 64 bits, not in any file a bank writes.
#[derive(Default)]
pub(crate) struct SeenRates(HashSet<u64>);

impl SeenRates {
    /// True the first time this rate (account, base, quote, date, rate) is seen.
    pub(crate) fn first(&mut self, rate: &StatedRate) -> bool {
        self.0.insert(Self::identity(rate))
    }

    /// Forgets a rate seen in a statement that was then left out, so a later statement of the
    /// document that states it again still gives it.
    pub(crate) fn forget(&mut self, rate: &StatedRate) {
        self.0.remove(&Self::identity(rate));
    }

    fn identity(rate: &StatedRate) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        rate.account.hash(&mut h);
        rate.base.as_str().hash(&mut h);
        rate.quote.as_str().hash(&mut h);
        rate.date.hash(&mut h);
        // 0.6666670 and 0.666667 are one rate.
        rate.rate.normalize().hash(&mut h);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("test literal is a decimal")
    }

    #[test]
    fn amounts_that_fit_the_rate_as_written_keep_it() {
        // 1 GBP = 1.619 USD: 1000 GBP are 1619 USD (less 5 charges).
        let r = reading(dec("1.619"), Some((dec("1000"), dec("1614"))));
        assert_eq!(r, Reading::AsWritten);
        let r = reading(dec("0.618"), Some((dec("1000"), dec("618"))));
        assert_eq!(r, Reading::AsWritten);
    }

    #[test]
    fn amounts_that_fit_the_inverse_reverse_it() {
        // The Finnish dialect: UnitCcy EUR beside 0.00630875, amounts EUR 500 and JPY 79255:
        // 1 JPY = 0.00630875 EUR.
        let r = reading(dec("0.00630875"), Some((dec("500.00"), dec("79255.00"))));
        assert_eq!(r, Reading::Reversed);
        // UnitCcy JPY beside 158.51, amounts JPY 79255 and EUR 500: 1 EUR = 158.51 JPY.
        let r = reading(dec("158.51"), Some((dec("79255.00"), dec("500.00"))));
        assert_eq!(r, Reading::Reversed);
    }

    #[test]
    fn without_both_amounts_or_on_a_tie_the_file_decides() {
        assert_eq!(reading(dec("1.5"), None), Reading::AsWritten);
        assert_eq!(
            reading(dec("1.5"), Some((dec("0"), dec("10")))),
            Reading::AsWritten
        );
        assert_eq!(
            reading(dec("1.5"), Some((dec("10"), dec("10")))),
            Reading::AsWritten
        );
        assert_eq!(
            reading(dec("1"), Some((dec("10"), dec("12")))),
            Reading::AsWritten
        );
        // Negative amounts (a debit) count by their size.
        assert_eq!(
            reading(dec("2"), Some((dec("-10"), dec("-5")))),
            Reading::Reversed
        );
    }

    #[test]
    fn orient_names_base_and_quote_and_keeps_the_rate_as_written() {
        let c = |s: &str| Currency::parse(s).expect("test currency");
        let written = Written {
            unit: c("EUR"),
            other: c("USD"),
            rate: dec("0.666667"),
        };
        // EUR 2120.00, USD 3200.00.
        let o = orient(written, Some((dec("2120.00"), dec("3200.00"))));
        assert_eq!(
            (o.base, o.quote, o.rate, o.reversed_by),
            (
                c("USD"),
                c("EUR"),
                dec("0.666667"),
                Some((dec("2120.00"), dec("3200.00")))
            )
        );
        let o = orient(written, None);
        assert_eq!((o.base, o.quote, o.reversed_by), (c("EUR"), c("USD"), None));
    }

    #[test]
    fn only_a_positive_rate_is_a_rate() {
        assert_eq!(positive(dec("1.5"), "1.5"), Ok(dec("1.5")));
        assert!(positive(dec("0"), "0").is_err());
        assert!(positive(dec("-1.5"), "-1.5").is_err());
    }
}
