//! MT940, MT942 and MT950 cash statements: fields into typed statements.
//!
//! One statement (or one page of a statement split into pages) is `:20:` reference, `:21:`
//! related reference, `:25:` account, `:28C:` statement/page number, `:60F:`/`:60M:` opening
//! balance, repeated `:61:` entries each with an optional `:86:` text, `:62F:`/`:62M:` closing
//! balance, `:64:` available and `:65:` forward available balances, and a final `:86:` for the
//! statement. MT942 (interim report) has `:34F:` floor limits, `:13D:` a date and time and
//! `:90D:`/`:90C:` entry counts and sums instead of balances; MT950 has no `:86:`.
//!
//! The reader is lenient about what the corpus shows banks do and strict about what would
//! need a guess:
//!
//! - a new `:20:` starts a new statement even without `-` (Rabobank);
//! - a `:61:` line without entry date, with the entry date as spaces (ASNB), with a space
//!   before the transaction type (Deutsche Bank), without customer reference (Raiffeisen), or
//!   with its amount wrapped to the next line (a Sparkasse) is read;
//! - several `:86:` after one entry are joined (Rabobank);
//! - a second `:25:` inside a statement, a second opening or closing balance, an entry after
//!   the closing balance, or a balance with no currency is an error naming the line: the
//!   statement cannot be read without guessing which account or which balance is meant.
//!
//! This layer keeps values as written (currency codes as text, references untrimmed of
//! `NONREF`); [`crate::swift::cash`] validates them into the canonical model.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::swift::fin::{Event, Field};
use crate::swift::values::{
    DecimalMark, FieldError, SwiftDate, is_currency_code, parse_amount, parse_cash_amount,
    parse_mmdd_near, parse_yymmdd, split_chars,
};

/// Credit or debit mark of a balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BalanceMark {
    Credit,
    Debit,
}

/// A balance field (`:60a:`, `:62a:`, `:64:`, `:65:`): `C100318EUR380115,12`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub mark: BalanceMark,
    pub date: SwiftDate,
    /// Three letters as written (checked against ISO 4217 when mapped).
    pub currency: String,
    pub amount: Decimal,
    /// How the amount marked its decimals (a point is read, with a warning).
    pub decimal: DecimalMark,
}

impl Balance {
    /// Reads a balance. An amount without a currency before it is an error.
    pub fn parse(value: &str) -> Result<Balance, FieldError> {
        let v = value.trim();
        let (mark, rest) = match v.as_bytes().first() {
            Some(b'C') => (BalanceMark::Credit, &v[1..]),
            Some(b'D') => (BalanceMark::Debit, &v[1..]),
            _ => {
                return Err(FieldError::new(format!(
                    "'{v}' does not start with the mark C or D"
                )));
            }
        };
        let (date, rest) = split_chars(rest, 6);
        let date = parse_yymmdd(date)?;
        let (currency, amount) = split_chars(rest, 3);
        if !is_currency_code(currency) {
            return Err(FieldError::new(format!(
                "no currency before the amount in '{v}'"
            )));
        }
        let (amount, decimal) = parse_cash_amount(amount)?;
        Ok(Balance {
            mark,
            date,
            currency: currency.to_owned(),
            amount,
            decimal,
        })
    }

    /// Credit positive, debit negative.
    pub fn signed(&self) -> Decimal {
        match self.mark {
            BalanceMark::Credit => self.amount,
            BalanceMark::Debit => -self.amount,
        }
    }
}

/// The debit/credit mark of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryMark {
    Credit,
    Debit,
    /// `RC`: reversal (storno) of a credit, which takes money out: an effective debit.
    ReversalOfCredit,
    /// `RD`: reversal of a debit, which puts money back: an effective credit.
    ReversalOfDebit,
    /// `EC` (MT942): an expected credit, not booked yet.
    ExpectedCredit,
    /// `ED` (MT942): an expected debit, not booked yet.
    ExpectedDebit,
}

impl EntryMark {
    /// The mark as written.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryMark::Credit => "C",
            EntryMark::Debit => "D",
            EntryMark::ReversalOfCredit => "RC",
            EntryMark::ReversalOfDebit => "RD",
            EntryMark::ExpectedCredit => "EC",
            EntryMark::ExpectedDebit => "ED",
        }
    }

    /// Whether the entry raises the balance (credit, reversal of a debit).
    pub fn is_effective_credit(self) -> bool {
        matches!(
            self,
            EntryMark::Credit | EntryMark::ReversalOfDebit | EntryMark::ExpectedCredit
        )
    }

    pub fn is_reversal(self) -> bool {
        matches!(
            self,
            EntryMark::ReversalOfCredit | EntryMark::ReversalOfDebit
        )
    }

    pub fn is_expected(self) -> bool {
        matches!(self, EntryMark::ExpectedCredit | EntryMark::ExpectedDebit)
    }
}

/// A `:61:` statement line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub value_date: SwiftDate,
    /// The booking date (`MMDD`, year taken nearest the value date), when written.
    pub entry_date: Option<SwiftDate>,
    pub mark: EntryMark,
    /// Third letter of the currency code, when written (`CR300,` is credit, funds code `R`).
    pub funds_code: Option<char>,
    pub amount: Decimal,
    /// How the amount marked its decimals: `Missing` for `C500NTRF`, `Point` for `C5.00NTRF`.
    pub amount_mark: DecimalMark,
    /// Transaction type identification: a letter (`N`, `F`, `S`) and three characters.
    pub type_code: Option<String>,
    /// Reference for the account owner, as written (may be `NONREF`).
    pub customer_reference: Option<String>,
    /// Reference of the account servicing institution (after `//`), as written.
    pub bank_reference: Option<String>,
    /// Supplementary details (the second line, or what followed a 16-character reference).
    pub supplementary: Option<String>,
}

impl StatementLine {
    /// Reads a `:61:` value, continuation line included.
    pub fn parse(value: &str) -> Result<StatementLine, FieldError> {
        let mut lines = crate::swift::text::value_lines(value);
        let first = lines.next().unwrap_or_default();
        let mut rest_lines: Vec<&str> = lines.collect();
        let (vd, rest) = split_chars(first, 6);
        let value_date = parse_yymmdd(vd)?;
        let mut s = rest;
        let mut entry_date = None;
        let b = s.as_bytes();
        if b.len() >= 4 && b[..4].iter().all(u8::is_ascii_digit) {
            entry_date = Some(parse_mmdd_near(&s[..4], value_date.date)?);
            s = &s[4..];
        } else if b.len() >= 4 && b[..4].iter().all(|&c| c == b' ') {
            s = &s[4..];
        }
        let (mark, after) = match s.get(..2) {
            Some("RC") => (EntryMark::ReversalOfCredit, &s[2..]),
            Some("RD") => (EntryMark::ReversalOfDebit, &s[2..]),
            Some("EC") => (EntryMark::ExpectedCredit, &s[2..]),
            Some("ED") => (EntryMark::ExpectedDebit, &s[2..]),
            _ => match s.as_bytes().first() {
                Some(b'C') => (EntryMark::Credit, &s[1..]),
                Some(b'D') => (EntryMark::Debit, &s[1..]),
                _ => {
                    return Err(FieldError::new(format!(
                        "'{first}' has no debit/credit mark (C, D, RC, RD) after the dates"
                    )));
                }
            },
        };
        s = after;
        let mut funds_code = None;
        if let Some(&c) = s.as_bytes().first()
            && c.is_ascii_alphabetic()
        {
            funds_code = Some(char::from(c));
            s = &s[1..];
        }
        // A line that stops before the amount continues on the next line.
        let joined;
        if s.trim().is_empty() && !rest_lines.is_empty() {
            joined = rest_lines.remove(0);
            s = joined;
        }
        let amount_len = s
            .bytes()
            .position(|c| !(c.is_ascii_digit() || c == b',' || c == b'.'))
            .unwrap_or(s.len());
        if amount_len == 0 {
            return Err(FieldError::new(format!("'{first}' has no amount")));
        }
        let (amount, amount_mark) = parse_cash_amount(&s[..amount_len])?;
        s = s[amount_len..].trim_start_matches(' ');
        let mut type_code = None;
        if let Some(&c) = s.as_bytes().first()
            && c.is_ascii_alphabetic()
        {
            let (t, r) = split_chars(s, 4);
            // Room for the `/GVC` that the canonical mapping appends to make the bank code
            // (`NTRF/166`), so that it reuses this buffer instead of copying it.
            let mut code = String::with_capacity(t.len() + 4);
            code.push_str(t);
            type_code = Some(code);
            s = r;
        }
        let mut supplementary: Vec<&str> = Vec::new();
        let slashes = s.as_bytes().windows(2).position(|w| w == b"//");
        let (customer_reference, bank_reference) = match slashes {
            Some(i) if s[..i].chars().count() <= 16 => {
                let (bank, extra) = split_chars(&s[i + 2..], 16);
                if !extra.trim().is_empty() {
                    supplementary.push(extra.trim());
                }
                (&s[..i], Some(bank))
            }
            _ => {
                let (cust, extra) = split_chars(s, 16);
                if !extra.trim().is_empty() {
                    supplementary.push(extra.trim());
                }
                (cust, None)
            }
        };
        supplementary.extend(
            rest_lines
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty()),
        );
        let text = |t: &str| Some(t.trim().to_owned()).filter(|t| !t.is_empty());
        Ok(StatementLine {
            value_date,
            entry_date,
            mark,
            funds_code,
            amount,
            amount_mark,
            type_code,
            customer_reference: text(customer_reference),
            bank_reference: bank_reference.and_then(text),
            supplementary: Some(supplementary.join("\n")).filter(|s| !s.is_empty()),
        })
    }

    /// Credits and reversals of debits positive; debits and reversals of credits negative.
    pub fn signed(&self) -> Decimal {
        if self.mark.is_effective_credit() {
            self.amount
        } else {
            -self.amount
        }
    }

    /// The booking date: the entry date, else the value date (nothing else in the message
    /// says when an entry without entry date was booked).
    pub fn booking_date(&self) -> NaiveDate {
        self.entry_date.unwrap_or(self.value_date).date
    }
}

/// `:34F:` floor limit (MT942): `EURD0,00`, `EUR0,`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloorLimit {
    pub currency: String,
    pub mark: Option<BalanceMark>,
    pub amount: Decimal,
}

impl FloorLimit {
    pub fn parse(value: &str) -> Result<FloorLimit, FieldError> {
        let v = value.trim();
        let (currency, rest) = split_chars(v, 3);
        if !is_currency_code(currency) {
            return Err(FieldError::new(format!(
                "no currency before the amount in '{v}'"
            )));
        }
        let (mark, amount) = match rest.as_bytes().first() {
            Some(b'C') => (Some(BalanceMark::Credit), &rest[1..]),
            Some(b'D') => (Some(BalanceMark::Debit), &rest[1..]),
            _ => (None, rest),
        };
        Ok(FloorLimit {
            currency: currency.to_owned(),
            mark,
            amount: parse_amount(amount)?.0,
        })
    }
}

/// `:90D:`/`:90C:` (MT942): number and sum of the debit or credit entries, `3PLN0,03`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySum {
    pub count: u32,
    pub currency: String,
    pub amount: Decimal,
}

impl EntrySum {
    pub fn parse(value: &str) -> Result<EntrySum, FieldError> {
        let v = value.trim();
        let digits = v.bytes().take_while(u8::is_ascii_digit).count();
        let count = v[..digits]
            .parse()
            .map_err(|_| FieldError::new(format!("'{v}' does not start with a count")))?;
        let (currency, amount) = split_chars(&v[digits..], 3);
        if !is_currency_code(currency) {
            return Err(FieldError::new(format!(
                "no currency before the amount in '{v}'"
            )));
        }
        Ok(EntrySum {
            count,
            currency: currency.to_owned(),
            amount: parse_amount(amount)?.0,
        })
    }
}

/// `:28C:` statement number and optional page (sequence) number: `00004/00001`, `0072`. Each
/// is at most five digits; anything else (`1810118101`: a statement and a page run together,
/// or not) is not read as a number.
pub fn parse_statement_number(value: &str) -> (Option<u32>, Option<u32>) {
    let v = value.trim();
    let (n, p) = match v.split_once('/') {
        Some((n, p)) => (n, Some(p)),
        None => (v, None),
    };
    let number = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    (number(n), p.and_then(number))
}

/// Where a typed value came from: document index and line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct At {
    pub part: usize,
    pub line: usize,
}

impl At {
    fn of(f: &Field<'_>) -> At {
        At {
            part: f.part,
            line: f.line,
        }
    }
}

/// An opening or closing balance and whether it is intermediate (`M`) or final (`F`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementBalance {
    pub balance: Balance,
    pub intermediate: bool,
    pub at: At,
}

/// One `:61:` with the `:86:` text that follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: StatementLine,
    pub information: Option<String>,
    pub at: At,
}

/// A note about something read but interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub at: At,
    pub tag: &'static str,
    pub message: String,
}

/// One MT940/MT942/MT950 statement (page), values as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CashStatement {
    /// Message type from the envelope, when there was one.
    pub mt: Option<u16>,
    /// Where the statement's first field is.
    pub at: At,
    pub reference: Option<String>,
    pub related_reference: Option<String>,
    pub account: Option<String>,
    pub account_at: At,
    pub statement_number: Option<u32>,
    pub page_number: Option<u32>,
    pub opening: Option<StatementBalance>,
    pub closing: Option<StatementBalance>,
    pub available: Option<(Balance, At)>,
    pub forward: Vec<(Balance, At)>,
    pub floor_limits: Vec<FloorLimit>,
    /// `:13D:` as written (MT942 date, time and UTC offset).
    pub date_time: Option<String>,
    pub debit_sum: Option<EntrySum>,
    pub credit_sum: Option<EntrySum>,
    pub entries: Vec<Entry>,
    /// The `:86:` after the balances: information for the statement as a whole.
    pub information: Option<String>,
    pub notes: Vec<Note>,
}

/// An error of the reader: where, which tag, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub at: At,
    pub tag: String,
    pub reason: String,
}

/// Builds [`CashStatement`]s from FIN events, handing each finished one to a callback, so a
/// large file never holds more than one statement besides the caller's output.
pub struct CashReader<F> {
    current: Option<CashStatement>,
    next_mt: Option<u16>,
    /// The last field was a `:61:` or an `:86:` that followed one.
    in_entry: bool,
    /// Entries of the last statement: the next one is likely of the same size, so its list
    /// starts with that capacity instead of growing to it.
    last_entries: usize,
    done: F,
}

impl<F: FnMut(CashStatement) -> Result<(), ReadError>> CashReader<F> {
    pub fn new(done: F) -> Self {
        CashReader {
            current: None,
            next_mt: None,
            in_entry: false,
            last_entries: 0,
            done,
        }
    }

    /// Feeds one event.
    pub fn event(&mut self, event: Event<'_>) -> Result<(), ReadError> {
        match event {
            Event::Header { mt, .. } => {
                self.finish()?;
                self.next_mt = mt;
                Ok(())
            }
            Event::End { .. } => {
                self.finish()?;
                self.next_mt = None;
                Ok(())
            }
            Event::Field(f) => self.field(f),
            // Dialect notes are collected by the caller of the tokenizer.
            Event::Note(_) => Ok(()),
        }
    }

    /// Ends the input: hands over the statement still open.
    pub fn close(mut self) -> Result<F, ReadError> {
        self.finish()?;
        Ok(self.done)
    }

    fn finish(&mut self) -> Result<(), ReadError> {
        self.in_entry = false;
        match self.current.take() {
            Some(s) => {
                self.last_entries = s.entries.len();
                (self.done)(s)
            }
            None => Ok(()),
        }
    }

    fn field(&mut self, f: Field<'_>) -> Result<(), ReadError> {
        let at = At::of(&f);
        let err = |reason: String| ReadError {
            at,
            tag: f.tag.to_owned(),
            reason,
        };
        let fe = |e: FieldError| ReadError {
            at,
            tag: f.tag.to_owned(),
            reason: e.0,
        };
        if f.tag == "20" && self.current.is_some() {
            self.finish()?;
        }
        let mt = self.next_mt;
        let entries = self.last_entries;
        let st = self.current.get_or_insert_with(|| CashStatement {
            mt,
            at,
            entries: Vec::with_capacity(entries),
            ..CashStatement::default()
        });
        let was_in_entry = std::mem::replace(&mut self.in_entry, false);
        let text = || Some(f.value.trim().to_owned()).filter(|v| !v.is_empty());
        match f.tag {
            "20" => st.reference = text(),
            "21" => st.related_reference = text(),
            "25" | "25P" => {
                if st.account.is_some() || !st.entries.is_empty() {
                    return Err(err(format!(
                        "a second account identification '{}' inside one statement",
                        f.first_line()
                    )));
                }
                st.account = text();
                st.account_at = at;
            }
            "28" | "28C" => {
                (st.statement_number, st.page_number) = parse_statement_number(f.value);
                if st.statement_number.is_none() {
                    st.notes.push(Note {
                        at,
                        tag: ":28C:",
                        message: format!("statement number '{}' is not a number", f.value.trim()),
                    });
                }
            }
            "60F" | "60M" => {
                if st.opening.is_some() {
                    return Err(err("a second opening balance in one statement".into()));
                }
                if !st.entries.is_empty() {
                    return Err(err("an opening balance after the entries".into()));
                }
                let balance = single_line(&f).and_then(Balance::parse).map_err(fe)?;
                note_adjusted(st, at, ":60a:", balance.date);
                note_point(st, at, ":60a:", &balance);
                st.opening = Some(StatementBalance {
                    balance,
                    intermediate: f.tag == "60M",
                    at,
                });
            }
            "61" => {
                if st.closing.is_some() {
                    return Err(err("an entry after the closing balance".into()));
                }
                let line = StatementLine::parse(f.value).map_err(fe)?;
                note_adjusted(st, at, ":61:", line.value_date);
                if let Some(d) = line.entry_date {
                    note_adjusted(st, at, ":61:", d);
                }
                note_mark(st, at, ":61:", line.amount, line.amount_mark);
                st.entries.push(Entry {
                    line,
                    information: None,
                    at,
                });
                self.in_entry = true;
            }
            "86" => {
                let target = if was_in_entry {
                    self.in_entry = true;
                    st.entries.last_mut().map(|e| &mut e.information)
                } else {
                    None
                };
                let target = target.unwrap_or(&mut st.information);
                match target {
                    Some(t) => {
                        t.push('\n');
                        t.push_str(f.value);
                    }
                    None => *target = Some(f.value.to_owned()),
                }
            }
            "62F" | "62M" => {
                if st.closing.is_some() {
                    return Err(err("a second closing balance in one statement".into()));
                }
                let balance = single_line(&f).and_then(Balance::parse).map_err(fe)?;
                note_adjusted(st, at, ":62a:", balance.date);
                note_point(st, at, ":62a:", &balance);
                st.closing = Some(StatementBalance {
                    balance,
                    intermediate: f.tag == "62M",
                    at,
                });
            }
            "64" => {
                let balance = single_line(&f).and_then(Balance::parse).map_err(fe)?;
                note_point(st, at, ":64:", &balance);
                if st.available.is_some() {
                    return Err(err("a second closing available balance".into()));
                }
                st.available = Some((balance, at));
            }
            "65" => {
                let balance = single_line(&f).and_then(Balance::parse).map_err(fe)?;
                note_point(st, at, ":65:", &balance);
                st.forward.push((balance, at));
            }
            "34F" => {
                let limit = single_line(&f).and_then(FloorLimit::parse).map_err(fe)?;
                st.floor_limits.push(limit);
            }
            "13" | "13D" => st.date_time = text(),
            "90D" => st.debit_sum = Some(single_line(&f).and_then(EntrySum::parse).map_err(fe)?),
            "90C" => st.credit_sum = Some(single_line(&f).and_then(EntrySum::parse).map_err(fe)?),
            // `:NS:` (non-SWIFT, German) carries nothing the model keeps.
            _ => self.in_entry = was_in_entry,
        }
        Ok(())
    }
}

/// The value of a one-line field; more text after it means the field is not what it seems.
fn single_line<'a>(f: &Field<'a>) -> Result<&'a str, FieldError> {
    if let Some(extra) = f.continuation().find(|l| !l.trim().is_empty()) {
        return Err(FieldError::new(format!(
            "unexpected text '{extra}' after the value '{}'",
            f.first_line()
        )));
    }
    Ok(f.first_line())
}

/// An entry's amount written without the decimal comma, or with a point.
fn note_mark(
    st: &mut CashStatement,
    at: At,
    tag: &'static str,
    amount: Decimal,
    mark: DecimalMark,
) {
    let message = match mark {
        DecimalMark::Comma => return,
        DecimalMark::Missing => format!("amount {amount} written without a decimal comma"),
        DecimalMark::Point => {
            format!("amount written with a decimal point instead of a comma: read as {amount}")
        }
    };
    st.notes.push(Note { at, tag, message });
}

/// A balance written with a decimal point (a balance without any mark is SWIFT's `380115,`
/// minus the comma and not worth a warning).
fn note_point(st: &mut CashStatement, at: At, tag: &'static str, balance: &Balance) {
    if balance.decimal == DecimalMark::Point {
        note_mark(st, at, tag, balance.amount, DecimalMark::Point);
    }
}

fn note_adjusted(st: &mut CashStatement, at: At, tag: &'static str, d: SwiftDate) {
    if d.adjusted {
        st.notes.push(Note {
            at,
            tag,
            message: format!(
                "a date past the end of its month (30/360 convention) was read as {}",
                d.date
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().expect("test literal is a decimal")
    }

    #[test]
    fn a_statement_line_with_every_part() {
        let l = StatementLine::parse(
            "0709040904CR300,NTRFTFNr 40005 MSGID//0724710345313905\r\n/OCMT/EUR4,5/",
        )
        .unwrap();
        assert_eq!(
            l.value_date.date,
            NaiveDate::from_ymd_opt(2007, 9, 4).unwrap()
        );
        assert_eq!(
            l.entry_date.map(|d| d.date),
            NaiveDate::from_ymd_opt(2007, 9, 4)
        );
        assert_eq!(l.mark, EntryMark::Credit);
        assert_eq!(l.funds_code, Some('R'));
        assert_eq!(l.amount, dec("300"));
        assert_eq!(l.type_code.as_deref(), Some("NTRF"));
        assert_eq!(l.customer_reference.as_deref(), Some("TFNr 40005 MSGID"));
        assert_eq!(l.bank_reference.as_deref(), Some("0724710345313905"));
        assert_eq!(l.supplementary.as_deref(), Some("/OCMT/EUR4,5/"));
    }

    #[test]
    fn reversal_marks_are_read_before_the_funds_code() {
        let rc = StatementLine::parse("0709040904RCR204,88NRTINONREF").unwrap();
        assert_eq!(rc.mark, EntryMark::ReversalOfCredit);
        assert_eq!(rc.funds_code, Some('R'));
        assert_eq!(rc.signed(), dec("-204.88"));
        let rd = StatementLine::parse("2002010219RDR1027,25N068NONREF").unwrap();
        assert_eq!(rd.signed(), dec("1027.25"));
        let dd = StatementLine::parse("240312    DD212,39NMSCNONREF//").unwrap();
        assert_eq!((dd.mark, dd.funds_code), (EntryMark::Debit, Some('D')));
        assert_eq!(dd.entry_date, None);
        assert_eq!(dd.bank_reference, None);
    }

    #[test]
    fn a_reference_longer_than_16_characters_leaves_supplementary_details() {
        let l =
            StatementLine::parse("110527D000000001213,28N0440121470966      W.P. Jansen").unwrap();
        assert_eq!(l.customer_reference.as_deref(), Some("0121470966"));
        assert_eq!(l.supplementary.as_deref(), Some("W.P. Jansen"));
    }

    #[test]
    fn an_amount_wrapped_to_the_next_line_is_joined() {
        let l = StatementLine::parse("1811261126CR\n30,00N062NONREF").unwrap();
        assert_eq!(l.amount, dec("30"));
        assert_eq!(l.customer_reference.as_deref(), Some("NONREF"));
    }

    #[test]
    fn a_balance_without_currency_is_refused() {
        let e = Balance::parse("C020315105000,00").unwrap_err();
        assert!(e.0.contains("no currency"), "{e}");
        let b = Balance::parse("D140829EUR000000000147,64").unwrap();
        assert_eq!(b.signed(), dec("-147.64"));
    }
}
