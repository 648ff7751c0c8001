//! bank_b's SWIFT FIN files: MT940 cash statements, MT535 holdings, MT536 trades.
//!
//! Written as back offices write them, so the parsers meet the variety real files have: lines
//! end with CRLF; a file is one message, either in the SWIFT envelope (SOH, `{1:}{2:}{4:` ...
//! `-}`, ETX) or plain (fields, then a line `-`), alternating by account and day; and the
//! files of every other account are ISO-8859-1 rather than UTF-8, which shows in names such as
//! `Nestlé` or `Genève` (the SWIFT X character set has no accents, but bank files carry them).
//!
//! What each message carries, and the choices behind it:
//!
//! - **MT940**: `:20:` reference, `:25:` the IBAN (cash accounts) or the account id (custody
//!   accounts), `:28C:` statement number = day number from the start date (1-based), page 1;
//!   `:60F:`/`:62F:` opening and closing dated the statement day; `:64:` available balance on
//!   the last day. Each booked entry is a `:61:` (value date, entry date, C/D, amount, a type
//!   code `N` + `SEC`/`DIV`/`INT`/`CHG`/`TRF`, `NONREF`, `//` the bank reference) and a
//!   DFÜ-structured `:86:`: a business code (805 fees, 814 interest, else 166 credits and 116
//!   debits), the description in `?20`..`?29` and the counterparty in `?32`/`?33`, which is the
//!   `:86:` form whose counterparty a reader can find again.
//! - **Bank reference**: SWIFT references are at most 16 characters and a transaction id such
//!   as `BA-000001-1-000012` has 18, so the reference is [`swift_reference`]: the id without
//!   the bank's `BA-` prefix, unique within the account as a natural key must be.
//! - **MT535**: complete (`:22F::CODE//COMP`) statement of the day's holdings; per position
//!   `:35B:` (ISIN and `/CH/` valor, or `/XX/` + the bank's own id when there is no ISIN, and
//!   the name), `FIA` with the currency and a CFI code for the asset class, `:90A:` percent or
//!   `:90B:` amount price, `:93B:` `UNIT` or `FAMT` quantity, `:19A:` holding value, book value
//!   (cost) and, for bonds, accrued interest; `:19A::HOLS` total.
//! - **MT536**: the day's booked buys and sells grouped by security: `:20C::ASRF//` the same
//!   reference as the MT940 entry (one trade, one natural key), quantity, posting amount
//!   (negative for a buy), receive/deliver against payment, settlement and trade dates, deal
//!   price and the description as narrative. Fees are not carried.

use std::fmt::Write as _;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{CashDay, HoldingsDay, TradesDay, cfi};
use crate::dataset::{SimPosition, SimSecurity, SimTransaction};

/// Characters per line of a narrative field (`:86:` is 6 lines of 65).
const NARRATIVE_WIDTH: usize = 65;
/// Characters per line of an ISO 15022 description (`:35B:`, `:70E:` lines of 35).
const DESCRIPTION_WIDTH: usize = 35;
/// Characters of one DFÜ subfield (`?20`, `?32`, ...).
const SUBFIELD_WIDTH: usize = 27;
/// The longest reference SWIFT allows (`16x`).
const MAX_REFERENCE: usize = 16;
/// The prefix of every account id, hence of every transaction id, of the simulated bank.
const ID_PREFIX: &str = "BA-";

/// The SWIFT reference (at most 16 characters) of a transaction id: the id itself when it
/// fits, else without the `BA-` prefix (`BA-000001-1-000012` is `000001-1-000012`), else the
/// account number and sequence (`12-000012`), else the sequence alone. Each is unique within
/// its account, which is where natural keys live.
pub fn swift_reference(transaction_id: &str) -> String {
    if transaction_id.chars().count() <= MAX_REFERENCE {
        return transaction_id.to_owned();
    }
    let bare = transaction_id
        .strip_prefix(ID_PREFIX)
        .unwrap_or(transaction_id);
    let mut parts = bare.rsplitn(3, '-');
    let sequence = parts.next().unwrap_or(bare);
    let account = parts.next();
    let candidates = [
        Some(bare.to_owned()),
        account.map(|a| format!("{a}-{sequence}")),
        Some(sequence.to_owned()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|c| c.chars().count() <= MAX_REFERENCE)
        .unwrap_or_else(|| {
            let skip = sequence.chars().count().saturating_sub(MAX_REFERENCE);
            sequence.chars().skip(skip).collect()
        })
}

/// How one file is dressed: envelope or plain, ISO-8859-1 or UTF-8.
#[derive(Debug, Clone, Copy)]
struct Style {
    envelope: bool,
    latin1: bool,
}

fn style(ordinal: usize, day: u32) -> Style {
    Style {
        envelope: (ordinal + day as usize).is_multiple_of(2),
        latin1: ordinal % 2 == 1,
    }
}

/// The fields of one message, each line ending in CRLF.
#[derive(Default)]
struct Fields(String);

impl Fields {
    /// Appends `:TAG:value`; a value of several lines is already joined with CRLF.
    fn field(&mut self, tag: &str, value: &str) {
        let _ = write!(self.0, ":{tag}:{value}\r\n");
    }

    /// Wraps the fields in a message of type `mt`, dated `date`, and encodes it.
    fn message(self, mt: u16, date: NaiveDate, style: Style) -> Vec<u8> {
        let mut text = String::with_capacity(self.0.len() + 128);
        if style.envelope {
            let d = date.format("%y%m%d");
            text.push('\x01');
            let _ = write!(
                text,
                "{{1:F01EAMPCHZZAXXX0000000000}}{{2:O{mt}1200{d}BANKBCHZAXXX0000000000{d}1200N}}{{4:\r\n"
            );
            text.push_str(&self.0);
            text.push_str("-}\x03");
        } else {
            text.push_str(&self.0);
            text.push_str("-\r\n");
        }
        encode(text, style.latin1)
    }
}

/// ISO-8859-1 bytes when asked and every character has one, else UTF-8.
fn encode(text: String, latin1: bool) -> Vec<u8> {
    if latin1 && text.chars().all(|c| u32::from(c) <= 0xFF) {
        // Checked just above: every character is below 256, so the cast keeps it whole.
        text.chars().map(|c| u32::from(c) as u8).collect()
    } else {
        text.into_bytes()
    }
}

/// A SWIFT amount: no sign, decimal comma always present (`1234,50`, `150,`).
fn amount(value: Decimal) -> String {
    let mut s = value.abs().to_string();
    match s.find('.') {
        Some(i) => s.replace_range(i..=i, ","),
        None => s.push(','),
    }
    s
}

/// An ISO 15022 amount with currency: `N` first when negative (`NCHF12,50`).
fn money(currency: &str, value: Decimal) -> String {
    let sign = if value.is_sign_negative() && !value.is_zero() {
        "N"
    } else {
        ""
    };
    format!("{sign}{currency}{}", amount(value))
}

/// A balance field: mark, date, currency, amount (`C261120CHF1000,00`).
fn balance(date: NaiveDate, currency: &str, value: Decimal) -> String {
    let mark = if value.is_sign_negative() && !value.is_zero() {
        'D'
    } else {
        'C'
    };
    format!("{mark}{}{currency}{}", date.format("%y%m%d"), amount(value))
}

fn yyyymmdd(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

/// Splits `text` into lines of at most `width` characters. No line after the first starts
/// with `:`, `-` or `{`, which a reader could take for a field, the end of the message or a
/// header; lines are cut anywhere (the readers join these fields without a separator).
fn wrap(text: &str, width: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = Vec::new();
    let mut start = 0;
    while chars.len() - start > width {
        let mut end = start + width;
        while end > start + 1 && matches!(chars[end], ':' | '-' | '{') {
            end -= 1;
        }
        lines.push(chars[start..end].iter().collect());
        start = end;
    }
    lines.push(chars[start..].iter().collect());
    lines.join("\r\n")
}

/// Splits a name into lines of at most `width` characters at spaces (a reader joins them
/// with a space), cutting a longer word where it must.
fn name_lines(name: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in name.split(' ') {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !line.is_empty() && !fits {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > width {
            let head: String = line.chars().take(width).collect();
            let tail: String = line.chars().skip(width).collect();
            lines.push(head);
            line = tail;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Appends `text` as DFÜ subfields numbered `numbers` (`?20...?21...`), 27 characters each,
/// the last one taking whatever is left. A `?` in the text would start a subfield: it
/// becomes `.` (no simulated text has one).
fn push_subfields(out: &mut String, numbers: &[&str], text: &str) {
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c == '?' { '.' } else { c })
        .collect();
    let mut rest = &chars[..];
    for (i, number) in numbers.iter().enumerate() {
        if rest.is_empty() {
            break;
        }
        let take = if i + 1 == numbers.len() {
            rest.len()
        } else {
            rest.len().min(SUBFIELD_WIDTH)
        };
        out.push('?');
        out.push_str(number);
        out.extend(&rest[..take]);
        rest = &rest[take..];
    }
}

const PURPOSE_SUBFIELDS: [&str; 14] = [
    "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "60", "61", "62", "63",
];
const NAME_SUBFIELDS: [&str; 2] = ["32", "33"];

/// The `:61:` transaction type code of a transaction kind.
fn type_code(kind: &str) -> &'static str {
    match kind {
        "buy" | "sell" => "NSEC",
        "dividend" => "NDIV",
        "interest" => "NINT",
        "fee" => "NCHG",
        _ => "NTRF",
    }
}

/// The structured `:86:` of an entry, or None when it has neither text nor counterparty.
fn information(t: &SimTransaction) -> Option<String> {
    if t.description.is_none() && t.counterparty.is_none() {
        return None;
    }
    let code = match (t.kind, t.direction) {
        ("fee", _) => "805",
        ("interest", _) => "814",
        (_, "credit") => "166",
        _ => "116",
    };
    let mut text = code.to_owned();
    if let Some(description) = &t.description {
        push_subfields(&mut text, &PURPOSE_SUBFIELDS, description);
    }
    if let Some(counterparty) = &t.counterparty {
        push_subfields(&mut text, &NAME_SUBFIELDS, counterparty);
    }
    Some(wrap(&text, NARRATIVE_WIDTH))
}

/// The MT940 of one account and day.
pub(super) fn mt940(day: &CashDay<'_>) -> Vec<u8> {
    let account = day.account;
    let currency = account.currency;
    let mut f = Fields::default();
    f.field("20", &format!("S{:08}{:05}", day.ordinal + 1, day.day + 1));
    f.field("25", account.iban.as_deref().unwrap_or(&account.account_id));
    f.field("28C", &format!("{:05}/001", day.day + 1));
    f.field("60F", &balance(day.date, currency, day.opening));
    for t in &day.entries {
        let value_date = t.value_date.unwrap_or(t.booking_date);
        let mark = if t.direction == "debit" { 'D' } else { 'C' };
        let line = format!(
            "{}{}{mark}{}{}NONREF//{}",
            value_date.format("%y%m%d"),
            t.booking_date.format("%m%d"),
            amount(t.amount),
            type_code(t.kind),
            swift_reference(&t.transaction_id)
        );
        f.field("61", &line);
        if let Some(information) = information(t) {
            f.field("86", &information);
        }
    }
    f.field("62F", &balance(day.date, currency, day.closing));
    if let Some(available) = day.available {
        f.field("64", &balance(day.date, currency, available));
    }
    f.message(940, day.date, style(day.ordinal, day.day))
}

/// `:35B:` of a security: ISIN and valor, or the bank's own id, then the name.
fn identification(security: &SimSecurity) -> String {
    let mut lines = Vec::new();
    match &security.isin {
        Some(isin) => {
            lines.push(format!("ISIN {isin}"));
            if let Some(valor) = &security.valor {
                lines.push(format!("/CH/{valor}"));
            }
        }
        None => lines.push(format!("/XX/{}", security.bank_security_id)),
    }
    lines.extend(name_lines(&security.name, DESCRIPTION_WIDTH));
    lines.join("\r\n")
}

/// `:90A:` or `:90B:` with a qualifier: percent of face or an amount per unit.
fn price_field(f: &mut Fields, qualifier: &str, security: &SimSecurity, price: Decimal) {
    if security.is_priced_in_percent() {
        f.field("90A", &format!(":{qualifier}//PRCT/{}", amount(price)));
    } else {
        f.field(
            "90B",
            &format!(":{qualifier}//ACTU/{}", money(security.currency, price)),
        );
    }
}

fn quantity(security: &SimSecurity, quantity: Decimal) -> String {
    let code = if security.quantity_type == "face_amount" {
        "FAMT"
    } else {
        "UNIT"
    };
    let sign = if quantity.is_sign_negative() && !quantity.is_zero() {
        "N"
    } else {
        ""
    };
    format!("{code}/{sign}{}", amount(quantity))
}

fn holding(f: &mut Fields, date: NaiveDate, p: &SimPosition) {
    let security = &p.security;
    f.field("16R", "FIN");
    f.field("35B", &identification(security));
    f.field("16R", "FIA");
    f.field("11A", &format!(":DENO//{}", security.currency));
    f.field("12C", &format!(":CLAS//{}", cfi(security.asset_class)));
    f.field("16S", "FIA");
    price_field(f, "MRKT", security, p.price);
    f.field("98A", &format!(":PRIC//{}", yyyymmdd(date)));
    f.field("93B", &format!(":AGGR//{}", quantity(security, p.quantity)));
    f.field(
        "19A",
        &format!(":HOLD//{}", money(p.price_currency, p.market_value)),
    );
    f.field(
        "19A",
        &format!(":BOOK//{}", money(p.price_currency, p.cost)),
    );
    if let Some(accrued) = p.accrued_interest {
        f.field(
            "19A",
            &format!(":ACRU//{}", money(p.price_currency, accrued)),
        );
    }
    f.field("16S", "FIN");
}

/// The MT535 (complete statement of holdings) of one custody account and day.
pub(super) fn mt535(day: &HoldingsDay<'_>) -> Vec<u8> {
    let account = day.account;
    let mut f = Fields::default();
    f.field("16R", "GENL");
    f.field("28E", "1/ONLY");
    f.field(
        "20C",
        &format!(":SEME//H{:08}{:05}", day.ordinal + 1, day.day + 1),
    );
    f.field("23G", "NEWM");
    f.field("98A", &format!(":STAT//{}", yyyymmdd(day.date)));
    f.field("22F", ":CODE//COMP");
    f.field("97A", &format!(":SAFE//{}", account.account_id));
    let active = if day.positions.is_empty() { "N" } else { "Y" };
    f.field("17B", &format!(":ACTI//{active}"));
    f.field("16S", "GENL");
    if !day.positions.is_empty() {
        f.field("16R", "SUBSAFE");
        for p in &day.positions {
            holding(&mut f, day.date, p);
        }
        f.field("16S", "SUBSAFE");
    }
    let total: Decimal = day.positions.iter().map(|p| p.market_value).sum();
    f.field("16R", "ADDINFO");
    f.field("19A", &format!(":HOLS//{}", money(account.currency, total)));
    f.field("16S", "ADDINFO");
    f.message(535, day.date, style(day.ordinal, day.day))
}

fn movement(f: &mut Fields, t: &SimTransaction, security: &SimSecurity) {
    let buy = t.kind == "buy";
    f.field("16R", "TRAN");
    f.field("16R", "LINK");
    f.field(
        "20C",
        &format!(":ASRF//{}", swift_reference(&t.transaction_id)),
    );
    f.field("16S", "LINK");
    f.field("16R", "TRANSDET");
    if let Some(q) = t.quantity {
        f.field("36B", &format!(":PSTA//{}", quantity(security, q)));
    }
    // The posting amount is what the client's cash account sees: a buy takes money out.
    let posting = if buy { -t.amount } else { t.amount };
    f.field("19A", &format!(":PSTA//{}", money(t.currency, posting)));
    f.field("22F", ":TRAN//SETT");
    f.field("22H", if buy { ":REDE//RECE" } else { ":REDE//DELI" });
    f.field("22H", ":PAYM//APMT");
    if let Some(settles) = t.settlement_date {
        f.field("98A", &format!(":SETT//{}", yyyymmdd(settles)));
    }
    let traded = t.trade_date.unwrap_or(t.booking_date);
    f.field("98A", &format!(":TRAD//{}", yyyymmdd(traded)));
    if let Some(price) = t.price {
        price_field(f, "DEAL", security, price);
    }
    if let Some(description) = &t.description {
        let lines = name_lines(description, DESCRIPTION_WIDTH).join("\r\n");
        f.field("70E", &format!(":TRDE//{lines}"));
    }
    f.field("16S", "TRANSDET");
    f.field("16S", "TRAN");
}

/// The MT536 (statement of transactions) of one custody account and day.
pub(super) fn mt536(day: &TradesDay<'_>) -> Vec<u8> {
    let account = day.account;
    let mut f = Fields::default();
    f.field("16R", "GENL");
    f.field("28E", "1/ONLY");
    f.field(
        "20C",
        &format!(":SEME//T{:08}{:05}", day.ordinal + 1, day.day + 1),
    );
    f.field("23G", "NEWM");
    let d = yyyymmdd(day.date);
    f.field("69A", &format!(":STAT//{d}/{d}"));
    f.field("97A", &format!(":SAFE//{}", account.account_id));
    let active = if day.trades.is_empty() { "N" } else { "Y" };
    f.field("17B", &format!(":ACTI//{active}"));
    f.field("16S", "GENL");
    // Grouped by security in order of first trade, as statements of transactions are.
    let mut securities: Vec<&SimSecurity> = Vec::new();
    for t in &day.trades {
        if let Some(s) = t.security.as_deref()
            && !securities
                .iter()
                .any(|known| known.bank_security_id == s.bank_security_id)
        {
            securities.push(s);
        }
    }
    if !securities.is_empty() {
        f.field("16R", "SUBSAFE");
        for security in securities {
            f.field("16R", "FIN");
            f.field("35B", &identification(security));
            for t in day.trades.iter().filter(|t| {
                t.security
                    .as_deref()
                    .is_some_and(|s| s.bank_security_id == security.bank_security_id)
            }) {
                movement(&mut f, t, security);
            }
            f.field("16S", "FIN");
        }
        f.field("16S", "SUBSAFE");
    }
    f.message(536, day.date, style(day.ordinal, day.day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_fit_sixteen_characters_and_stay_unique_within_an_account() {
        assert_eq!(swift_reference("BA-000001-1-000012"), "000001-1-000012");
        assert_eq!(swift_reference("SHORT-1"), "SHORT-1");
        assert_eq!(swift_reference("BA-000001-10-000012"), "000001-10-000012");
        assert_eq!(swift_reference("BA-000001-100-000012"), "100-000012");
        assert_eq!(
            swift_reference("BA-000001-1-12345678901234567890"),
            "5678901234567890"
        );
        assert!(swift_reference("x".repeat(40).as_str()).chars().count() <= 16);
    }

    #[test]
    fn amounts_always_have_a_decimal_comma_and_no_sign() {
        let d = |s: &str| s.parse::<Decimal>().expect("decimal literal");
        assert_eq!(amount(d("1234.50")), "1234,50");
        assert_eq!(amount(d("150")), "150,");
        assert_eq!(amount(d("-0.05")), "0,05");
        assert_eq!(money("CHF", d("-12.50")), "NCHF12,50");
        let day = NaiveDate::from_ymd_opt(2026, 11, 20).expect("date");
        assert_eq!(balance(day, "EUR", d("0")), "C261120EUR0,");
        assert_eq!(balance(day, "EUR", d("-3.10")), "D261120EUR3,10");
    }

    #[test]
    fn wrapped_lines_never_start_like_a_field_an_end_or_a_header() {
        let text = format!(
            "{}:20:x{}-{}{{",
            "a".repeat(64),
            "b".repeat(63),
            "c".repeat(64)
        );
        let wrapped = wrap(&text, 65);
        for line in wrapped.split("\r\n") {
            assert!(line.chars().count() <= 65, "{line}");
        }
        for line in wrapped.split("\r\n").skip(1) {
            assert!(!line.starts_with([':', '-', '{']), "{line}");
        }
        assert_eq!(wrapped.replace("\r\n", ""), text);
    }

    #[test]
    fn names_wrap_at_spaces_and_join_back_with_one() {
        let name = "LVMH Moët Hennessy Louis Vuitton SE and a longer tail";
        let lines = name_lines(name, 35);
        assert!(lines.iter().all(|l| l.chars().count() <= 35));
        assert_eq!(lines.join(" "), name);
    }

    #[test]
    fn latin1_is_used_only_when_every_character_has_a_byte() {
        assert_eq!(encode("Genève".into(), true), b"Gen\xE8ve");
        assert_eq!(encode("Genève".into(), false), "Genève".as_bytes());
        assert_eq!(encode("€".into(), true), "€".as_bytes());
    }
}
