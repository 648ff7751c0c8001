//! The exchange rates MT535 and MT536 state (`:92B::EXCH`), read end to end: exact rates,
//! directions, dates and warnings. ISO 15022's usage rule for field 92B: "1,00 of First
//! Currency Code = [Rate] of Second Currency Code".

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::model::{Batch, SourceFormat};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("test literal is a decimal")
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test literal is a date")
}

fn rates(b: &Batch) -> Vec<(&str, &str, &str, Decimal, NaiveDate)> {
    b.rates
        .iter()
        .map(|r| {
            (
                r.account.as_str(),
                r.base.as_str(),
                r.quote.as_str(),
                r.rate,
                r.date,
            )
        })
        .collect()
}

fn warnings(b: &Batch) -> Vec<(Option<usize>, &str, &str)> {
    b.warnings
        .iter()
        .map(|w| (w.line, w.field.as_deref().unwrap_or(""), w.message.as_str()))
        .collect()
}

/// An MT535 of a EUR account on 2026-11-20 holding 100 Apple shares priced in USD, with the
/// instrument's own fields after the quantity.
fn mt535(fields: &str) -> String {
    format!(
        "{{1:F01BANKDEFFAXXX0000000000}}{{2:O535BANKDEFFXXXXN}}{{4:\r
:16R:GENL\r
:28E:1/ONLY\r
:20C::SEME//H0000001\r
:23G:NEWM\r
:98A::STAT//20261120\r
:22F::CODE//COMP\r
:97A::SAFE//DEPOT-9\r
:17B::ACTI//Y\r
:16S:GENL\r
:16R:SUBSAFE\r
:16R:FIN\r
:35B:ISIN US0378331005\r
APPLE INC\r
:90B::MRKT//ACTU/USD190,5\r
:93B::AGGR//UNIT/100,\r
{fields}:16S:FIN\r
:16S:SUBSAFE\r
-}}"
    )
}

fn parse535(text: &str) -> Batch {
    crate::swift::parse(SourceFormat::Mt535, "bank_b", "m535", text.as_bytes())
        .expect("the statement parses")
}

#[test]
fn a_holding_valued_in_two_currencies_states_its_rate_as_the_standard_reads_it() {
    let b = parse535(&mt535(
        ":98A::PRIC//20261119\r
:19A::HOLD//EUR17526,\r
:19A::HOLD//USD19050,\r
:92B::EXCH//USD/EUR/0,92\r
",
    ));
    // Dated as the price; 1 USD = 0.92 EUR, as 19,050 USD and 17,526 EUR agree.
    assert_eq!(
        rates(&b),
        [("DEPOT-9", "USD", "EUR", dec("0.92"), date("2026-11-19"))]
    );
    assert_eq!(b.rates[0].provenance.format, SourceFormat::Mt535);
    assert_eq!(b.rates[0].provenance.position, 0);
    // The holding's value in its price currency is its market value; the EUR one is the same
    // value converted, not a value left out.
    assert_eq!(b.positions[0].market_value, Some(dec("19050")));
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn holding_values_that_contradict_the_currency_order_decide_with_a_warning() {
    let b = parse535(&mt535(
        ":19A::HOLD//USD19050,\r
:19A::HOLD//EUR17526,\r
:92B::EXCH//EUR/USD/0,92\r
",
    ));
    // No price date: the statement date. The values say 1 USD = 0.92 EUR.
    assert_eq!(
        rates(&b),
        [("DEPOT-9", "USD", "EUR", dec("0.92"), date("2026-11-20"))]
    );
    assert_eq!(
        warnings(&b),
        [(
            Some(19),
            ":92B::EXCH",
            ":92B::EXCH//EUR/USD/0,92 reads 1 EUR = 0.92 USD (ISO 15022: the first currency is \
             the base), but the holding values 17526 EUR and 19050 USD are converted at 1 USD = \
             0.92 EUR: read as the amounts say"
        )]
    );
}

#[test]
fn without_values_in_both_currencies_the_first_currency_is_the_base() {
    let b = parse535(&mt535(
        ":19A::HOLD//USD19050,\r
:92B::EXCH//EUR/USD/1,087\r
",
    ));
    assert_eq!(
        rates(&b),
        [("DEPOT-9", "EUR", "USD", dec("1.087"), date("2026-11-20"))]
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn a_rate_that_does_not_read_is_a_warning_and_the_holding_still_loads() {
    for (exch, line, field, message) in [
        (
            ":92B::EXCH//USD/EUR/0,\r\n",
            18,
            ":92B::EXCH",
            "exchange rate '0,' is not a positive decimal: no exchange rate is read from it",
        ),
        (
            ":92B::EXCH//USD/EURO/0,92\r\n",
            18,
            ":92B:",
            "'USD/EURO/0,92' is not an exchange rate (first currency/second currency/rate): no \
             exchange rate is read from it",
        ),
        (
            ":92B::EXCH//USD/EUR/0.92\r\n",
            18,
            ":92B:",
            "'0.92' is not an amount (digits with a decimal comma): no exchange rate is read \
             from it",
        ),
    ] {
        let b = parse535(&mt535(&format!(":19A::HOLD//USD19050,\r\n{exch}")));
        assert!(b.rates.is_empty(), "{exch}");
        assert_eq!(b.positions.len(), 1);
        assert_eq!(b.positions[0].market_value, Some(dec("19050")));
        assert_eq!(warnings(&b), [(Some(line), field, message)], "{exch}");
    }
    // One currency on both sides is no rate, and nothing to say.
    let b = parse535(&mt535(
        ":19A::HOLD//USD19050,\r\n:92B::EXCH//USD/USD/1,\r\n",
    ));
    assert!(b.rates.is_empty());
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn a_movement_states_its_rate_dated_as_it_settles() {
    let text = "{1:F01BANKDEFFAXXX0000000000}{2:O536BANKDEFFXXXXN}{4:\r
:16R:GENL\r
:28E:1/ONLY\r
:20C::SEME//T1\r
:23G:NEWM\r
:69A::STAT//20261102/20261104\r
:97A::SAFE//CUST-778341\r
:17B::ACTI//Y\r
:16S:GENL\r
:16R:SUBSAFE\r
:16R:FIN\r
:35B:ISIN US0378331005\r
APPLE INC\r
:16R:TRAN\r
:16R:LINK\r
:20C::ASRF//T-1\r
:16S:LINK\r
:16R:TRANSDET\r
:36B::PSTA//UNIT/50,\r
:19A::PSTA//NEUR8763,\r
:19A::SETT//USD9525,\r
:92B::EXCH//EUR/USD/0,92\r
:22H::REDE//RECE\r
:22H::PAYM//APMT\r
:98A::ESET//20261104\r
:16S:TRANSDET\r
:16S:TRAN\r
:16R:TRAN\r
:16R:LINK\r
:20C::ASRF//T-2\r
:16S:LINK\r
:16R:TRANSDET\r
:36B::PSTA//UNIT/10,\r
:19A::PSTA//EUR1752,6\r
:92B::EXCH//USD/EUR/0,92\r
:22H::REDE//DELI\r
:22H::PAYM//APMT\r
:98A::SETT//20261103\r
:16S:TRANSDET\r
:16S:TRAN\r
:16S:FIN\r
:16S:SUBSAFE\r
-}";
    let b = crate::swift::parse(SourceFormat::Mt536, "bank_b", "m536", text.as_bytes())
        .expect("the statement parses");
    // The buy: posting 8,763 EUR for 9,525 USD, written EUR/USD 0,92 (1 EUR = 0.92 USD?):
    // the amounts say 1 USD = 0.92 EUR. The sell states only its EUR amount: as written.
    assert_eq!(
        rates(&b),
        [
            ("CUST-778341", "USD", "EUR", dec("0.92"), date("2026-11-04")),
            ("CUST-778341", "USD", "EUR", dec("0.92"), date("2026-11-03")),
        ]
    );
    assert_eq!(
        warnings(&b),
        [(
            Some(22),
            ":92B::EXCH",
            ":92B::EXCH//EUR/USD/0,92 reads 1 EUR = 0.92 USD (ISO 15022: the first currency is \
             the base), but the amounts 8763 EUR and 9525 USD are converted at 1 USD = 0.92 \
             EUR: read as the amounts say"
        )]
    );
    assert_eq!(b.transactions.len(), 2);
}
