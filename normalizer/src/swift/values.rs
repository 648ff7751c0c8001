//! The value formats shared by all FIN messages: amounts with a decimal comma, dates, codes.
//!
//! SWIFT amounts have a mandatory decimal comma and up to 15 characters: `380115,`, `0,12`
//! and `000000000147,64` are all valid. One bank in the corpus (Knab) writes `500` with no
//! comma; that is still unambiguous, so it is read and the caller records a warning. Legacy
//! exports write `12.50`: in cash statements ([`parse_cash_amount`]) a point is read as the
//! decimal mark where it cannot be a thousands separator, again with a warning.
//! Amounts are built digit by digit into a `Decimal` (never a float), and more than 28
//! significant digits is an error rather than a rounding.
//!
//! Dates: `YYMMDD` with a two-digit year in the window 1980 to 2079, `YYYYMMDD` in ISO 15022
//! messages. German banks compute interest on a 30/360 basis and write value dates such as
//! 30 February; such a day is read as the last day of its month and reported as adjusted,
//! so the caller can record a warning. A month outside 1 to 12 or a day 0 or above 31 is an
//! error: that is not a convention, it is garbage.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

/// Why a field value could not be read. The caller adds the document, line and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError(pub String);

impl FieldError {
    pub fn new(reason: impl Into<String>) -> Self {
        FieldError(reason.into())
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FieldError {}

/// A date as written, possibly moved to the last day of its month (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwiftDate {
    pub date: NaiveDate,
    /// The written day did not exist in its month (30 February) and was moved to the last day.
    pub adjusted: bool,
}

/// Parses a SWIFT amount: digits with an optional decimal comma. Returns the value and whether
/// the comma was there.
pub fn parse_amount(s: &str) -> Result<(Decimal, bool), FieldError> {
    let bad = || {
        FieldError::new(format!(
            "'{s}' is not an amount (digits with a decimal comma)"
        ))
    };
    let (int, frac, has_comma) = match s.split_once(',') {
        Some((i, f)) => (i, f, true),
        None => (s, "", false),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let int = int.trim_start_matches('0');
    if int.len() + frac.len() > 28 {
        return Err(FieldError::new(format!(
            "'{s}' has more digits than an amount can hold"
        )));
    }
    let mantissa = int
        .bytes()
        .chain(frac.bytes())
        .fold(0i128, |m, d| m * 10 + i128::from(d - b'0'));
    // At most 28 digits and a scale of at most 28: within Decimal's range.
    let scale = u32::try_from(frac.len()).map_err(|_| bad())?;
    Decimal::try_from_i128_with_scale(mantissa, scale)
        .map(|d| (d, has_comma))
        .map_err(|_| bad())
}

/// How a cash statement's amount marks its decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalMark {
    /// `12,50`, `380115,`: SWIFT's own form.
    Comma,
    /// `500`: no mark at all (Knab).
    Missing,
    /// `12.50`: a legacy dialect writing the point.
    Point,
}

/// Parses an amount of a cash statement: a SWIFT amount, or the legacy dialect that writes
/// `.` as the decimal mark. The point is read only where it cannot be a thousands separator:
/// one point, no comma, and not exactly three digits after it (`1.234` is refused as
/// ambiguous). The caller records a warning for [`DecimalMark::Point`] and
/// [`DecimalMark::Missing`]. The SWIFT form is tried first, so it costs nothing extra.
pub fn parse_cash_amount(s: &str) -> Result<(Decimal, DecimalMark), FieldError> {
    let err = match parse_amount(s) {
        Ok((d, true)) => return Ok((d, DecimalMark::Comma)),
        Ok((d, false)) => return Ok((d, DecimalMark::Missing)),
        Err(e) => e,
    };
    let Some((int, frac)) = s.split_once('.') else {
        return Err(err);
    };
    if frac.contains('.') || s.contains(',') {
        return Err(err);
    }
    if frac.len() == 3 {
        return Err(FieldError::new(format!(
            "'{s}' is ambiguous: the point may be a decimal mark or a thousands separator"
        )));
    }
    let mut comma = String::with_capacity(s.len());
    comma.push_str(int);
    comma.push(',');
    comma.push_str(frac);
    match parse_amount(&comma) {
        Ok((d, _)) => Ok((d, DecimalMark::Point)),
        Err(_) => Err(err),
    }
}

/// Parses `YYMMDD` (years 1980 to 2079).
pub fn parse_yymmdd(s: &str) -> Result<SwiftDate, FieldError> {
    let n = digits(s, 6).ok_or_else(|| FieldError::new(format!("'{s}' is not a date (YYMMDD)")))?;
    let yy = n / 10000;
    let year = if yy < 80 { 2000 + yy } else { 1900 + yy };
    ymd(year as i32, (n / 100) % 100, n % 100)
        .ok_or_else(|| FieldError::new(format!("'{s}' is not a date (YYMMDD)")))
}

/// Parses `YYYYMMDD`.
pub fn parse_yyyymmdd(s: &str) -> Result<SwiftDate, FieldError> {
    let n =
        digits(s, 8).ok_or_else(|| FieldError::new(format!("'{s}' is not a date (YYYYMMDD)")))?;
    ymd((n / 10000) as i32, (n / 100) % 100, n % 100)
        .ok_or_else(|| FieldError::new(format!("'{s}' is not a date (YYYYMMDD)")))
}

/// Parses the `MMDD` entry date of a `:61:` line: the year is the one (of the value date's
/// year and the years either side) that puts it nearest the value date, so a booking on
/// 2 January for a value date of 30 December lands in the next year.
pub fn parse_mmdd_near(s: &str, near: NaiveDate) -> Result<SwiftDate, FieldError> {
    let n = digits(s, 4).ok_or_else(|| FieldError::new(format!("'{s}' is not a date (MMDD)")))?;
    let (month, day) = (n / 100, n % 100);
    // The usual case, answered without trying the other years: a date of the value date's
    // own year within 150 days of it is the nearest. The same month and day in the year
    // before or after lie at least 364 days from it (a year, less a day when 29 February
    // exists in only one of them), so more than 150 days from the value date.
    if let Some(d) = ymd(near.year(), month, day)
        && (d.date.num_days_from_ce() - near.num_days_from_ce()).abs() <= 150
    {
        return Ok(d);
    }
    [near.year() - 1, near.year(), near.year() + 1]
        .into_iter()
        .filter_map(|y| ymd(y, month, day))
        .min_by_key(|d| (d.date - near).num_days().abs())
        .ok_or_else(|| FieldError::new(format!("'{s}' is not a date (MMDD)")))
}

/// A calendar date; a day past the end of its month moves to the last day (30/360 dates).
fn ymd(year: i32, month: u32, day: u32) -> Option<SwiftDate> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if let Some(date) = NaiveDate::from_ymd_opt(year, month, day) {
        return Some(SwiftDate {
            date,
            adjusted: false,
        });
    }
    let last = (28..day)
        .rev()
        .find_map(|d| NaiveDate::from_ymd_opt(year, month, d))?;
    Some(SwiftDate {
        date: last,
        adjusted: true,
    })
}

/// Exactly `len` ASCII digits as a number.
fn digits(s: &str, len: usize) -> Option<u32> {
    let b = s.as_bytes();
    (b.len() == len && b.iter().all(u8::is_ascii_digit))
        .then(|| b.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
}

/// Counts identical natural keys per account within one read, so the n-th twin gets `#n`.
///
/// Keyed by a 64-bit hash of account and key instead of the strings: this map is on the hot
/// path of every entry (a quarter of the MT940 parse time with `String` keys and SipHash). A
/// collision of two different keys can only append a needless `#2` to the second one, which
/// is still unique and still the same on every read of the same file.
#[derive(Debug, Default)]
pub struct Occurrences(std::collections::HashMap<u64, u32, std::hash::BuildHasherDefault<KeyHash>>);

impl Occurrences {
    /// Forgets every count (a new scope starts).
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// `key` the first time it is seen for `account`, else `key#n`.
    pub fn number(&mut self, account: &str, key: String) -> String {
        self.number_logged(account, key).0
    }

    /// [`Occurrences::number`], also answering the identity to [`Occurrences::forget_identity`]
    /// if the statement is taken back (a number, where keeping the key would copy strings).
    pub fn number_logged(&mut self, account: &str, key: String) -> (String, u64) {
        let h = Self::identity(account, &key);
        let n = self.0.entry(h).or_insert(0);
        *n += 1;
        let numbered = if *n == 1 { key } else { format!("{key}#{n}") };
        (numbered, h)
    }

    /// Takes back one [`Occurrences::number`] of `key` for `account`: the statement that
    /// numbered it was left out, and the next identical one must get the number it would have.
    pub fn forget(&mut self, account: &str, key: &str) {
        self.forget_identity(Self::identity(account, key));
    }

    /// [`Occurrences::forget`] by the identity [`Occurrences::number_logged`] answered.
    pub fn forget_identity(&mut self, h: u64) {
        if let Some(n) = self.0.get_mut(&h) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.remove(&h);
            }
        }
    }

    fn identity(account: &str, key: &str) -> u64 {
        mix(
            mix(0x243f_6a88_85a3_08d3, account.as_bytes()) ^ 0xff,
            key.as_bytes(),
        )
    }
}

/// A fast 64-bit hash of bytes, eight at a time, with a final avalanche so that every bit of
/// the result depends on the input (the map uses the low bits for its buckets).
fn mix(mut h: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = <[u8; 8]>::try_from(c).map_or(0, u64::from_le_bytes);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The keys of [`Occurrences`] are hashes already: use them as they are.
#[derive(Debug, Default)]
pub struct KeyHash(u64);

impl std::hash::Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = mix(self.0, bytes);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Three upper-case letters, as a currency code is written (validated later against ISO 4217).
pub fn is_currency_code(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// The first `n` characters of `s` and the rest (fewer when `s` is shorter).
pub fn split_chars(s: &str, n: usize) -> (&str, &str) {
    // ASCII, the usual case: the first `n` characters are the first `n` bytes.
    let head = &s.as_bytes()[..n.min(s.len())];
    if head.is_ascii() {
        return s.split_at(head.len());
    }
    match s.char_indices().nth(n) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().expect("test literal is a decimal")
    }

    #[test]
    fn amounts_take_a_comma_and_any_number_of_decimals() {
        for (s, v) in [
            ("380115,12", "380115.12"),
            ("380115,1", "380115.1"),
            ("380115,", "380115"),
            ("0,12", "0.12"),
            ("00,12", "0.12"),
            ("001,12", "1.12"),
            ("000000000147,64", "147.64"),
            (",5", "0.5"),
        ] {
            assert_eq!(parse_amount(s).unwrap(), (dec(v), true), "{s}");
        }
        assert_eq!(parse_amount("500").unwrap(), (dec("500"), false));
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for s in [
            "",
            ",",
            "1.5",
            "1,2,3",
            "-5,0",
            "1e3",
            "12 3,4",
            "99999999999999999999999999999,",
        ] {
            assert!(parse_amount(s).is_err(), "{s}");
        }
    }

    #[test]
    fn a_two_digit_year_falls_in_1980_to_2079() {
        assert_eq!(
            parse_yymmdd("791231").unwrap().date,
            NaiveDate::from_ymd_opt(2079, 12, 31).unwrap()
        );
        assert_eq!(
            parse_yymmdd("800101").unwrap().date,
            NaiveDate::from_ymd_opt(1980, 1, 1).unwrap()
        );
    }

    #[test]
    fn february_30_is_the_last_day_of_february_and_flagged() {
        let d = parse_yymmdd("160230").unwrap();
        assert_eq!(d.date, NaiveDate::from_ymd_opt(2016, 2, 29).unwrap());
        assert!(d.adjusted);
        let d = parse_yymmdd("170230").unwrap();
        assert_eq!(d.date, NaiveDate::from_ymd_opt(2017, 2, 28).unwrap());
        let d = parse_yymmdd("170431").unwrap();
        assert_eq!(d.date, NaiveDate::from_ymd_opt(2017, 4, 30).unwrap());
        assert!(parse_yymmdd("171301").is_err());
        assert!(parse_yymmdd("170100").is_err());
        assert!(parse_yymmdd("170132").is_err());
    }

    /// Every candidate year compared, as `parse_mmdd_near` did before its shortcut.
    fn nearest_of_three_years(s: &str, near: NaiveDate) -> Option<SwiftDate> {
        let n = digits(s, 4)?;
        [near.year() - 1, near.year(), near.year() + 1]
            .into_iter()
            .filter_map(|y| ymd(y, n / 100, n % 100))
            .min_by_key(|d| (d.date - near).num_days().abs())
    }

    #[test]
    fn the_same_year_shortcut_picks_what_comparing_every_year_picks() {
        let mut near = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();
        let last = NaiveDate::from_ymd_opt(2021, 1, 10).unwrap();
        while near <= last {
            for mmdd in (0..=1299).filter(|n| n % 100 <= 32) {
                let s = format!("{mmdd:04}");
                assert_eq!(
                    parse_mmdd_near(&s, near).ok(),
                    nearest_of_three_years(&s, near),
                    "{s} near {near}"
                );
            }
            near = near.succ_opt().unwrap();
        }
    }

    #[test]
    fn an_entry_date_rolls_over_the_year_end_towards_the_value_date() {
        let near = NaiveDate::from_ymd_opt(2019, 12, 30).unwrap();
        assert_eq!(
            parse_mmdd_near("0102", near).unwrap().date,
            NaiveDate::from_ymd_opt(2020, 1, 2).unwrap()
        );
        let near = NaiveDate::from_ymd_opt(2020, 1, 2).unwrap();
        assert_eq!(
            parse_mmdd_near("1230", near).unwrap().date,
            NaiveDate::from_ymd_opt(2019, 12, 30).unwrap()
        );
    }
}
