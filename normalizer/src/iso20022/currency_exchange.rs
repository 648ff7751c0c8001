//! camt `AmtDtls/*/CcyXchg`: the exchange rate of one conversion, read with the amounts around
//! it so that they can decide its direction (see `crate::stated_rate`).
//!
//! An `AmtDtls` (of an entry, or of one of its `TxDtls`) holds up to six amounts of one
//! movement: instructed (`InstdAmt`), transaction (`TxAmt`), counter value (`CntrValAmt`),
//! announced posting (`AnncdPstngAmt`), proposed (`PrpsdAmt`) and proprietary (`PrtryAmt`), each
//! with an optional `CcyXchg`: source and target currency (`SrcCcy`, `TrgtCcy`), the unit
//! currency (`UnitCcy`), the rate (`XchgRate`) and its quotation date (`QtnDt`).
//!
//! Reading, as decided for camt:
//!
//! - **Currencies**: `SrcCcy` and `TrgtCcy`; a missing one is the first currency other than
//!   the known one among the amounts (the one the `CcyXchg` sits under first, then the others
//!   of its `AmtDtls`, then the entry's own amount). Source equal to target is no rate.
//! - **The file's reading**: ISO 20022 defines `UnitCcy` as the currency of which 1 unit is
//!   quoted ("in 1 GBP = xxx CUR, the unit currency is GBP"), so 1 `UnitCcy` = `XchgRate` of the
//!   other. Without `UnitCcy`, `XchgRate` is what ISO calls it, the factor that converts the
//!   source amount into the target: 1 `SrcCcy` = `XchgRate` `TrgtCcy`. A `UnitCcy` that is
//!   neither side is ignored with a warning.
//! - **The amounts decide** when the movement is stated in both currencies: the amount the
//!   `CcyXchg` sits under, else the first of its `AmtDtls` in that currency, else the entry's
//!   `Amt` (for an entry-level `AmtDtls`, or the only `TxDtls` of an entry: the entry amount of
//!   a batch is the sum of several conversions). A reading they contradict is reversed, with
//!   a warning (the Finnish samples write `UnitCcy` as the quoted currency).
//! - **Date**: `QtnDt`'s date, else the entry's booking date (as the entry is read, fallbacks
//!   included). A `QtnDt` that is no date leaves a warning and the booking date.
//! - A leaf that does not read (a currency that is no ISO 4217 code, a rate that is not a
//!   positive decimal) leaves a warning and no rate; the entry and its statement load as ever.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::value;
use super::xml::{RawText, Tag};
use crate::domain::Currency;
use crate::stated_rate::{Oriented, Written, orient, positive};

/// More exchanges or amounts than this in one `AmtDtls` are not read: the schema allows one
/// per amount kind (six), and a hostile file must not make an entry's state grow.
const MAX_PER_AMOUNT_DETAILS: usize = 8;

/// One `CcyXchg` as written.
#[derive(Debug, Clone)]
pub(super) struct CurrencyExchange {
    /// The amount element it sits under (`InstdAmt`, `TxAmt`, ...).
    pub(super) container: Tag,
    /// The line its element closes on, where its warnings point.
    pub(super) line: usize,
    source: Option<Currency>,
    target: Option<Currency>,
    unit: Option<Currency>,
    rate: Option<Decimal>,
    quoted: Option<NaiveDate>,
    /// A leaf did not read (already warned): no rate from it.
    broken: bool,
}

impl CurrencyExchange {
    fn new(container: Tag) -> Self {
        CurrencyExchange {
            container,
            line: 0,
            source: None,
            target: None,
            unit: None,
            rate: None,
            quoted: None,
            broken: false,
        }
    }
}

/// The amounts and exchanges of the `AmtDtls` being read.
#[derive(Debug, Default)]
pub(super) struct AmountDetails {
    amounts: Vec<(Tag, Decimal, Currency)>,
    exchanges: Vec<CurrencyExchange>,
    /// The open `CcyXchg` is one too many: its leaves are not read.
    over_limit: bool,
}

impl AmountDetails {
    /// A `CcyXchg` opens under `container`.
    pub(super) fn open_exchange(&mut self, container: Tag) {
        self.over_limit = self.exchanges.len() >= MAX_PER_AMOUNT_DETAILS;
        if !self.over_limit {
            self.exchanges.push(CurrencyExchange::new(container));
        }
    }

    /// An amount (`<container>/Amt`) closed; one that does not read is only no evidence.
    pub(super) fn amount(&mut self, container: Tag, amount: Option<(Decimal, Currency)>) {
        if let Some((amount, currency)) = amount
            && self.amounts.len() < MAX_PER_AMOUNT_DETAILS
        {
            self.amounts.push((container, amount, currency));
        }
    }

    /// A leaf of the open `CcyXchg` closed; the warning to leave when it does not read (a
    /// bad currency or rate loses the rate, a bad `QtnDt` only the date).
    pub(super) fn exchange_leaf(&mut self, leaf: Tag, text: &RawText<'_>) -> Result<(), String> {
        let Some(x) = self.exchanges.last_mut().filter(|_| !self.over_limit) else {
            return Ok(());
        };
        match leaf {
            Tag::SrcCcy | Tag::TrgtCcy | Tag::UnitCcy => {
                let currency = text.decode().and_then(|v| value::currency(&v));
                match currency {
                    Ok(c) => match leaf {
                        Tag::SrcCcy => x.source = Some(c),
                        Tag::TrgtCcy => x.target = Some(c),
                        _ => x.unit = Some(c),
                    },
                    Err(reason) => {
                        x.broken = true;
                        return Err(format!("{reason}: no exchange rate is read from it"));
                    }
                }
            }
            Tag::XchgRate => {
                let rate = text
                    .decode()
                    .and_then(|v| value::signed_decimal(&v).and_then(|r| positive(r, &v)));
                match rate {
                    Ok(r) => x.rate = Some(r),
                    Err(reason) => {
                        x.broken = true;
                        return Err(format!("{reason}: no exchange rate is read from it"));
                    }
                }
            }
            Tag::QtnDt => match text.decode().and_then(|v| value::date(&v)) {
                Ok(d) => x.quoted = Some(d),
                Err(reason) => {
                    return Err(format!(
                        "{reason}: the rate is dated with its entry's booking date"
                    ));
                }
            },
            _ => {}
        }
        Ok(())
    }

    /// The open `CcyXchg` closed on `line`.
    pub(super) fn close_exchange(&mut self, line: usize) {
        if let Some(x) = self.exchanges.last_mut().filter(|_| !self.over_limit) {
            x.line = line;
        }
    }

    /// The `AmtDtls` at `place` (its path in the entry) closed: each readable exchange with
    /// the amounts it can be checked against, the one it sits under first.
    pub(super) fn finish(self, place: &str) -> Vec<PendingExchange> {
        let AmountDetails {
            amounts, exchanges, ..
        } = self;
        exchanges
            .into_iter()
            .filter(|x| !x.broken)
            .map(|exchange| {
                let own = amounts.iter().filter(|(c, ..)| *c == exchange.container);
                let others = amounts.iter().filter(|(c, ..)| *c != exchange.container);
                let amounts = own.chain(others).map(|(_, a, c)| (*a, *c)).collect();
                PendingExchange {
                    field: format!("{place}/{:?}/CcyXchg", exchange.container),
                    exchange,
                    amounts,
                }
            })
            .collect()
    }
}

/// An entry or a detail keeps at most this many exchanges waiting (the schema has one
/// `AmtDtls` each, so at most six): a hostile file repeating `AmtDtls` must not grow it.
const MAX_WAITING: usize = 16;

/// Adds the exchanges of an `AmtDtls` to those `waiting` in its entry or detail.
pub(super) fn wait(waiting: &mut Vec<PendingExchange>, pending: Vec<PendingExchange>) {
    let room = MAX_WAITING.saturating_sub(waiting.len());
    waiting.extend(pending.into_iter().take(room));
}

/// A `CcyXchg` read, waiting for its entry: its date falls back on the entry's booking date,
/// and an only `TxDtls` may need the entry's amount.
#[derive(Debug, Clone)]
pub(super) struct PendingExchange {
    /// Its path in the entry (`NtryDtls/TxDtls[2]/AmtDtls/InstdAmt/CcyXchg`), for warnings.
    pub(super) field: String,
    pub(super) exchange: CurrencyExchange,
    amounts: Vec<(Decimal, Currency)>,
}

/// What one `CcyXchg` gives.
#[derive(Debug, PartialEq)]
pub(super) enum Outcome {
    /// A rate, with the warning to leave when the amounts overrode the file.
    Rate {
        oriented: Oriented,
        quoted: Option<NaiveDate>,
        warning: Option<String>,
    },
    /// One currency on both sides: no rate, nothing to say.
    SameCurrency,
    /// No rate, and why.
    Unreadable(String),
}

impl PendingExchange {
    /// Decides the rate, with `entry_amount` as the last evidence when the entry's amount is
    /// this conversion's.
    pub(super) fn settle(&self, entry_amount: Option<(Decimal, Currency)>) -> Outcome {
        let x = &self.exchange;
        let evidence: Vec<(Decimal, Currency)> =
            self.amounts.iter().copied().chain(entry_amount).collect();
        let other_than = |known: Currency| evidence.iter().map(|(_, c)| *c).find(|c| *c != known);
        let (source, target) = match (x.source, x.target) {
            (Some(s), Some(t)) => (s, t),
            (Some(s), None) => match other_than(s) {
                Some(t) => (s, t),
                None => {
                    return Outcome::Unreadable(
                        "the CcyXchg names no TrgtCcy and no amount in another currency than \
                         its SrcCcy: no exchange rate is read from it"
                            .to_owned(),
                    );
                }
            },
            (None, Some(t)) => match other_than(t) {
                Some(s) => (s, t),
                None => {
                    return Outcome::Unreadable(
                        "the CcyXchg names no SrcCcy and no amount in another currency than \
                         its TrgtCcy: no exchange rate is read from it"
                            .to_owned(),
                    );
                }
            },
            (None, None) => {
                return Outcome::Unreadable(
                    "the CcyXchg names neither SrcCcy nor TrgtCcy: no exchange rate is read \
                     from it"
                        .to_owned(),
                );
            }
        };
        if source == target {
            return Outcome::SameCurrency;
        }
        let Some(rate) = x.rate else {
            return Outcome::Unreadable(
                "the CcyXchg has no XchgRate: no exchange rate is read from it".to_owned(),
            );
        };
        let mut notes = Vec::new();
        let (unit, by_unit) = match x.unit {
            Some(u) if u == source || u == target => (u, true),
            Some(u) => {
                notes.push(format!(
                    "UnitCcy {u} is neither SrcCcy {source} nor TrgtCcy {target}: ignored"
                ));
                (source, false)
            }
            None => (source, false),
        };
        let other = if unit == source { target } else { source };
        let amount_in = |c: Currency| evidence.iter().find(|(_, ec)| *ec == c).map(|(a, _)| *a);
        let amounts = amount_in(unit).zip(amount_in(other));
        let oriented = orient(Written { unit, other, rate }, amounts);
        if let Some((in_unit, in_other)) = oriented.reversed_by {
            let said = if by_unit {
                format!("UnitCcy {unit} reads XchgRate {rate} as 1 {unit} = {rate} {other}")
            } else {
                format!(
                    "XchgRate {rate}, the factor converting SrcCcy into TrgtCcy, reads as \
                     1 {unit} = {rate} {other}"
                )
            };
            notes.push(format!(
                "{said}, but the amounts {in_unit} {unit} and {in_other} {other} are converted \
                 at 1 {other} = {rate} {unit}: read as the amounts say"
            ));
        }
        Outcome::Rate {
            oriented,
            quoted: x.quoted,
            warning: Some(notes.join("; ")).filter(|n| !n.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("test literal is a decimal")
    }

    fn c(s: &str) -> Currency {
        Currency::parse(s).expect("test currency")
    }

    fn pending(
        container: Tag,
        leaves: &[(Tag, &str)],
        amounts: &[(Tag, &str, &str)],
    ) -> Vec<PendingExchange> {
        let mut d = AmountDetails::default();
        for (tag, amount, currency) in amounts {
            d.amount(*tag, Some((dec(amount), c(currency))));
        }
        d.open_exchange(container);
        for (leaf, text) in leaves {
            let raw = RawText::for_test(text.as_bytes());
            let _ = d.exchange_leaf(*leaf, &raw);
        }
        d.close_exchange(7);
        d.finish("AmtDtls")
    }

    #[test]
    fn a_missing_target_is_the_other_currency_of_the_amounts() {
        let p = pending(
            Tag::InstdAmt,
            &[(Tag::SrcCcy, "USD"), (Tag::XchgRate, "0.92")],
            &[(Tag::InstdAmt, "100", "USD")],
        );
        // No amount in another currency in the AmtDtls: the entry's amount tells.
        let Outcome::Rate { oriented, .. } = p[0].settle(Some((dec("92"), c("EUR")))) else {
            panic!("a rate");
        };
        assert_eq!(
            (oriented.base, oriented.quote, oriented.rate),
            (c("USD"), c("EUR"), dec("0.92"))
        );
        assert!(matches!(p[0].settle(None), Outcome::Unreadable(_)));
    }

    #[test]
    fn a_unit_currency_of_neither_side_is_ignored_with_a_note() {
        let p = pending(
            Tag::InstdAmt,
            &[
                (Tag::SrcCcy, "USD"),
                (Tag::TrgtCcy, "EUR"),
                (Tag::UnitCcy, "GBP"),
                (Tag::XchgRate, "0.92"),
            ],
            &[],
        );
        let Outcome::Rate {
            oriented, warning, ..
        } = p[0].settle(None)
        else {
            panic!("a rate");
        };
        assert_eq!((oriented.base, oriented.quote), (c("USD"), c("EUR")));
        assert_eq!(
            warning.as_deref(),
            Some("UnitCcy GBP is neither SrcCcy USD nor TrgtCcy EUR: ignored")
        );
    }

    #[test]
    fn what_waits_in_an_entry_and_what_one_amount_details_holds_is_bounded() {
        let one = || {
            pending(
                Tag::TxAmt,
                &[
                    (Tag::SrcCcy, "USD"),
                    (Tag::TrgtCcy, "CHF"),
                    (Tag::XchgRate, "0.9"),
                ],
                &[],
            )
        };
        let mut waiting = Vec::new();
        for _ in 0..MAX_WAITING + 5 {
            wait(&mut waiting, one());
        }
        assert_eq!(waiting.len(), MAX_WAITING);
        let mut d = AmountDetails::default();
        for _ in 0..MAX_PER_AMOUNT_DETAILS + 3 {
            d.open_exchange(Tag::TxAmt);
            let raw = RawText::for_test(b"0.9");
            assert_eq!(d.exchange_leaf(Tag::XchgRate, &raw), Ok(()));
        }
        assert_eq!(d.finish("AmtDtls").len(), MAX_PER_AMOUNT_DETAILS);
    }

    #[test]
    fn a_bad_leaf_loses_the_rate_and_the_same_currency_gives_none() {
        let p = pending(
            Tag::TxAmt,
            &[
                (Tag::SrcCcy, "USD"),
                (Tag::TrgtCcy, "EUR"),
                (Tag::XchgRate, "0"),
            ],
            &[],
        );
        assert!(p.is_empty());
        let p = pending(
            Tag::TxAmt,
            &[
                (Tag::SrcCcy, "EUR"),
                (Tag::TrgtCcy, "EUR"),
                (Tag::XchgRate, "1"),
            ],
            &[],
        );
        assert_eq!(p[0].settle(None), Outcome::SameCurrency);
    }
}
