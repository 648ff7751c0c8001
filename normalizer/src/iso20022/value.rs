//! Leaf values of ISO 20022 messages, read strictly: a value is either exactly what the schema
//! type allows or a reason why not. The readers attach the element path and the line.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::domain::Currency;

/// Free text longer than this (in characters) is cut: descriptions are for people, and a
/// record must not grow with a hostile file.
pub(crate) const MAX_FREE_TEXT: usize = 1000;

/// An `xs:decimal` amount or quantity without sign: digits with at most one decimal point.
pub(crate) fn unsigned_decimal(s: &str) -> Result<Decimal, String> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    plain_decimal(digits).ok_or_else(|| format!("'{s}' is not a non-negative decimal number"))
}

/// An `xs:decimal` that may carry a leading minus sign (quantities, signed values).
pub(crate) fn signed_decimal(s: &str) -> Result<Decimal, String> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let d = plain_decimal(digits).ok_or_else(|| format!("'{s}' is not a decimal number"))?;
    Ok(if negative { -d } else { d })
}

fn plain_decimal(s: &str) -> Option<Decimal> {
    let mut dots = 0;
    let mut digits = 0;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return None,
        }
    }
    if digits == 0 || dots > 1 {
        return None;
    }
    // from_str refuses more digits than a Decimal holds rather than rounding silently.
    Decimal::from_str(s).ok()
}

/// An ISO 4217 currency code.
pub(crate) fn currency(s: &str) -> Result<Currency, String> {
    Currency::parse(s).map_err(|e| e.to_string())
}

/// An `xs:date` (`YYYY-MM-DD`, optionally with a time zone, which is dropped) or an
/// `xs:dateTime` whose date part is taken as written: the bank's local date, not converted.
pub(crate) fn date(s: &str) -> Result<NaiveDate, String> {
    let bad = || format!("'{s}' is not a date (YYYY-MM-DD) or date-time");
    let b = s.as_bytes();
    if b.len() < 10 || !b[..10].is_ascii() {
        return Err(bad());
    }
    let rest = &s[10..];
    let tail_ok = rest.is_empty()
        || rest.starts_with('T')
        || rest == "Z"
        || ((rest.starts_with('+') || rest.starts_with('-')) && rest.len() == 6);
    if !tail_ok {
        return Err(bad());
    }
    NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").map_err(|_| bad())
}

/// An `xs:boolean`.
pub(crate) fn boolean(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("'{s}' is not a boolean (true or false)")),
    }
}

/// A sequence or page number; `None` when it does not fit 32 bits (the caller warns).
pub(crate) fn number(s: &str) -> Result<Option<u32>, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not a number"));
    }
    Ok(s.parse::<u32>().ok())
}

/// Free text with runs of white space (line breaks of wrapped fields) made single spaces,
/// cut at [`MAX_FREE_TEXT`] characters.
pub(crate) fn free_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_FREE_TEXT));
    let mut chars = 0;
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= MAX_FREE_TEXT {
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

/// Appends `part` to a text joined by `" / "`, within [`MAX_FREE_TEXT`] characters.
pub(crate) fn append_text(into: &mut Option<String>, part: &str) {
    let part = free_text(part);
    if part.is_empty() {
        return;
    }
    match into {
        None => *into = Some(part),
        Some(s) => {
            if s.chars().count() + 3 + part.chars().count() <= MAX_FREE_TEXT {
                s.push_str(" / ");
                s.push_str(&part);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_plain_decimals_only() {
        assert_eq!(unsigned_decimal("2450").unwrap().to_string(), "2450");
        assert_eq!(unsigned_decimal("0.12").unwrap().to_string(), "0.12");
        for bad in ["", "1e3", "-1", "1,5", "1.2.3", ".", "NaN", "1 000"] {
            assert!(unsigned_decimal(bad).is_err(), "{bad}");
        }
        assert!(unsigned_decimal("99999999999999999999999999999999").is_err());
        assert_eq!(signed_decimal("-12.5").unwrap().to_string(), "-12.5");
    }

    #[test]
    fn a_date_time_keeps_the_local_date_written() {
        let d = NaiveDate::from_ymd_opt(2020, 11, 25).unwrap();
        assert_eq!(date("2020-11-25T23:30:00-05:00").unwrap(), d);
        assert_eq!(date("2020-11-25").unwrap(), d);
        assert_eq!(date("2020-11-25+01:00").unwrap(), d);
        assert!(date("2020-02-30").is_err());
        assert!(date("25.11.2020").is_err());
        assert!(date("2020-11-25X").is_err());
    }

    #[test]
    fn free_text_collapses_line_breaks_and_is_capped() {
        assert_eq!(free_text("  a\r\n  b\tc "), "a b c");
        assert_eq!(free_text(&"x".repeat(5000)).len(), MAX_FREE_TEXT);
    }
}
