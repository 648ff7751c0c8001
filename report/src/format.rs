//! How figures are written, in the PDF and in the CSV's presented columns.
//!
//! Amounts are rounded half to even to their currency's minor unit by
//! [`eam_model::wealth::valuation::present`] (the platform's one presentation rounding) and
//! written with every minor digit (`1,234.50`). Quantities and prices are never rounded: they
//! are written exactly, trailing zeros dropped (prices keep two decimals, so columns read
//! evenly); exchange rates keep six significant decimals (rounded half to even) and at least
//! four. Percentages are the one other rounding: half to even to two places,
//! as the API's `*_percent` figures. `.` is the decimal mark and `,` groups thousands (the
//! English labels' convention); a negative figure starts with `-`.

use chrono::{DateTime, NaiveDate, Utc};
use eam_model::domain::Currency;
use eam_model::wealth::valuation::{minor_units, present};
use rust_decimal::{Decimal, RoundingStrategy};

/// An amount as presented: `-1,234,567.80` (CHF), `1,235` (JPY).
pub fn amount(value: Decimal, currency: Currency) -> String {
    grouped(presented(value, currency))
}

/// An amount rounded as presented, every minor digit kept (`1234.50`), `-0.00` made `0.00`.
pub fn presented(value: Decimal, currency: Currency) -> Decimal {
    let mut rounded = present(value, currency);
    rounded.rescale(minor_units(currency));
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    rounded
}

/// An amount with its currency code in front: `CHF 1,234.50`.
pub fn money(value: Decimal, currency: Currency) -> String {
    format!("{currency} {}", amount(value, currency))
}

/// A quantity, exactly: `250,000`, `12.5`.
pub fn quantity(value: Decimal) -> String {
    grouped(value.normalize())
}

/// A price, exactly, with at least two decimals: `187.35`, `98.125`, `1,020.00`.
pub fn price(value: Decimal) -> String {
    grouped(at_least(value, 2))
}

/// An exchange rate as presented: six significant digits after any leading zeros (a cross
/// rate is a quotient of 28 digits), rounded half to even, then at least four decimals:
/// `0.9412`, `1.0000`, `0.868564`, `0.00567123`, `158.5100`. The CSV files carry
/// the exact rate.
pub fn rate(value: Decimal) -> String {
    let fraction = value.abs().fract();
    // Zeros between the decimal point and the first significant digit of a rate below 1.
    let leading_zeros = if value.abs() < Decimal::ONE && !fraction.is_zero() {
        let digits = fraction.to_string();
        let decimals = digits.trim_start_matches("0.");
        (decimals.len() - decimals.trim_start_matches('0').len()) as u32
    } else {
        0
    };
    let dp = (leading_zeros + RATE_DIGITS).min(28);
    grouped(at_least(
        value.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven),
        4,
    ))
}

/// Significant decimals of a presented exchange rate.
const RATE_DIGITS: u32 = 6;

/// A fraction as a percentage rounded half to even to two places: `0.034249` -> `3.42%`.
/// `n/a` for a fraction too large to be a percentage in Decimal's range.
pub fn percent(fraction: Decimal) -> String {
    percent_points(fraction).map_or_else(|| "n/a".to_owned(), |p| format!("{}%", grouped(p)))
}

/// A fraction in percent, rounded half to even to two places: `0.034249` -> `3.42`; `None`
/// when a hundred times it leaves Decimal's range.
pub fn percent_points(fraction: Decimal) -> Option<Decimal> {
    let mut p = fraction
        .checked_mul(Decimal::ONE_HUNDRED)?
        .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    p.rescale(2);
    if p.is_zero() {
        p.set_sign_positive(true);
    }
    Some(p)
}

/// A date as ISO 8601: `2026-11-30`.
pub fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A date in words for the cover: `30 November 2026`.
pub fn long_date(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

/// A UTC time to the minute: `2026-12-01 06:00 UTC`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A UTC time to the minute, without the zone (for columns titled UTC): `2026-12-01 06:00`.
pub fn minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// A decimal exactly as computed, for the CSV files: plain digits, `.` decimal mark, no
/// grouping, its own scale kept (`1234.5600`).
pub fn exact(value: Decimal) -> String {
    value.to_string()
}

/// The value normalised, then padded to `min_dp` decimals (never rounded).
fn at_least(value: Decimal, min_dp: u32) -> Decimal {
    let mut v = value.normalize();
    if v.scale() < min_dp {
        v.rescale(min_dp);
    }
    v
}

/// The decimal's text with its integer digits grouped by three.
fn grouped(value: Decimal) -> String {
    let text = value.to_string();
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let mut out = String::with_capacity(text.len() + int.len() / 3);
    out.push_str(sign);
    for (i, digit) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("a decimal literal")
    }

    fn ccy(code: &str) -> Currency {
        Currency::parse(code).expect("an ISO 4217 code")
    }

    #[test]
    fn amounts_round_half_to_even_to_the_minor_unit_and_group_thousands() {
        assert_eq!(amount(d("1234567.805"), ccy("CHF")), "1,234,567.80");
        assert_eq!(amount(d("1234567.815"), ccy("CHF")), "1,234,567.82");
        assert_eq!(amount(d("-999.995"), ccy("EUR")), "-1,000.00");
        assert_eq!(amount(d("12"), ccy("USD")), "12.00");
        assert_eq!(amount(d("1234.5"), ccy("JPY")), "1,234");
        assert_eq!(amount(d("1.0005"), ccy("KWD")), "1.000");
        assert_eq!(amount(d("100"), ccy("CHF")), "100.00");
        assert_eq!(amount(d("100000"), ccy("CHF")), "100,000.00");
    }

    #[test]
    fn a_negative_amount_that_rounds_to_zero_has_no_sign() {
        assert_eq!(amount(d("-0.004"), ccy("CHF")), "0.00");
    }

    #[test]
    fn quantities_and_prices_are_exact_and_rates_keep_six_significant_decimals() {
        assert_eq!(quantity(d("250000.000")), "250,000");
        assert_eq!(quantity(d("-12.50")), "-12.5");
        assert_eq!(price(d("98.125")), "98.125");
        assert_eq!(price(d("1020")), "1,020.00");
        assert_eq!(rate(d("0.941200")), "0.9412");
        assert_eq!(rate(d("1")), "1.0000");
        assert_eq!(rate(d("0.00567123")), "0.00567123");
        // A cross rate's 28 digits, half to even at the sixth significant digit.
        assert_eq!(rate(d("0.8685644494550920724487813264")), "0.868564");
        assert_eq!(rate(d("0.00003254449455092072")), "0.0000325445");
        assert_eq!(rate(d("0.0000005")), "0.0000005");
        assert_eq!(rate(d("1.23456789")), "1.234568");
        assert_eq!(rate(d("158.51")), "158.5100");
    }

    #[test]
    fn percentages_round_half_to_even_to_basis_points() {
        assert_eq!(percent(d("0.034249")), "3.42%");
        assert_eq!(percent(d("0.00125")), "0.12%");
        assert_eq!(percent(d("0.00135")), "0.14%");
        assert_eq!(percent(d("-0.1")), "-10.00%");
        assert_eq!(percent(d("1")), "100.00%");
        assert_eq!(percent(Decimal::MAX), "n/a");
    }

    #[test]
    fn exact_keeps_the_scale() {
        assert_eq!(exact(d("1234.5600")), "1234.5600");
        assert_eq!(exact(d("-0.5")), "-0.5");
    }
}
