//! Valuation: what accounts (one, or a client's across every custodian) are worth as of a date,
//! in one currency.
//!
//! Positions are valued in their price currency (`model::wealth::valuation`), cash at its
//! latest closing balance on or before the date; each figure is converted through EUR with the
//! tenant's rate book ([`crate::rates::tenant_book`]) and carries the rate, its date and
//! source. A figure that cannot be valued or converted is `None` with the reason, and the total
//! is then `None` too: a partial sum is never presented as the whole. Decimal throughout;
//! `*_presented` figures are rounded half to even to the currency's minor unit, the others are
//! exact.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use eam_model::domain::Currency;
use eam_model::records::PriceType;
use eam_model::wealth::fx::RateBook;
use eam_model::wealth::valuation::{Holding, present};
use eam_store::TenantTx;
use eam_store::read::AccountRow;
use eam_store::snapshots::{ClosingPoint, PositionLine};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::WealthError;

/// How a valuation's figures are rounded (said in every answer).
pub const ROUNDING: &str =
    "figures exact; *_presented rounded half to even to the currency's minor unit";

/// The conversion a figure used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fx {
    /// What 1 unit of the figure's own currency is worth in the valuation currency.
    pub rate: Decimal,
    /// The oldest EUR rate's date.
    pub date: Option<NaiveDate>,
    /// The EUR rates' sources (`ecb`, `bank:<custodian>`, `euro_fixed`).
    pub sources: Vec<String>,
    pub stale: bool,
}

/// What a line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Position,
    Cash,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Position => "position",
            LineKind::Cash => "cash",
        }
    }
}

/// One line of a valuation: a position or a cash balance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub account_id: Uuid,
    pub custodian: String,
    pub kind: LineKind,
    /// The security (positions).
    pub security_name: Option<String>,
    pub isin: Option<String>,
    pub asset_class: String,
    /// The date of the snapshot or balance valued.
    pub as_of: NaiveDate,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub price_type: Option<String>,
    /// The figure's own currency (price currency, or the balance's), as stored.
    pub local_currency: Option<String>,
    /// Value in the local currency (accrued interest included); `None` when it cannot be valued.
    pub local_value: Option<Decimal>,
    /// `price`, `bank_market_value` or `balance`.
    pub basis: Option<&'static str>,
    /// Value in the valuation currency; `None` when it cannot be valued or converted.
    pub value: Option<Decimal>,
    pub fx: Option<Fx>,
    /// Why `value` is `None`.
    pub reason: Option<String>,
}

/// A share of the total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slice {
    pub key: String,
    pub value: Decimal,
    /// Of the total, 0..1 (`None` when the total is, or is zero).
    pub weight: Option<Decimal>,
}

/// What the accounts are worth as of a date, line by line, with the allocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Valuation {
    pub as_of: NaiveDate,
    pub currency: Currency,
    /// `None` when any line could not be valued or converted (see `lines[].reason`).
    pub total: Option<Decimal>,
    pub total_presented: Option<Decimal>,
    /// True when any rate used is stale.
    pub stale: bool,
    pub accounts: usize,
    /// Account by account in the order given, each one's positions then its cash.
    pub lines: Vec<Line>,
    /// By key, ascending.
    pub by_asset_class: Vec<Slice>,
    pub by_currency: Vec<Slice>,
    pub by_custodian: Vec<Slice>,
    /// How figures are rounded ([`ROUNDING`]).
    pub rounding: &'static str,
}

/// Values `accounts` as of `as_of` in `currency`, reading on `tx` (the caller has decided the
/// accounts may be read); rates are stale after `stale_after` business days.
pub async fn value(
    tx: &mut TenantTx,
    accounts: &[AccountRow],
    as_of: NaiveDate,
    currency: Currency,
    stale_after: u32,
) -> Result<Valuation, WealthError> {
    let ids: Vec<Uuid> = accounts.iter().map(|a| a.id).collect();
    let book = crate::rates::tenant_book(tx, as_of, as_of, stale_after).await?;
    // Two statements whatever the number of accounts: each one's latest snapshot and
    // latest closing balance per currency on or before the date.
    let positions = eam_store::snapshots::positions_as_of(tx, &ids, as_of).await?;
    let closings = eam_store::snapshots::closings_as_of(tx, &ids, as_of).await?;
    Ok(assemble(
        &book,
        accounts,
        (&positions, &closings),
        as_of,
        currency,
    ))
}

/// The valuation of what was read: pure, so its arithmetic is tested without a database.
fn assemble(
    book: &RateBook,
    accounts: &[AccountRow],
    (positions, closings): (&[PositionLine], &[ClosingPoint]),
    as_of: NaiveDate,
    currency: Currency,
) -> Valuation {
    let mut lines = Vec::with_capacity(positions.len() + closings.len());
    for account in accounts {
        value_account(
            book,
            account,
            positions.iter().filter(|p| p.account_id == account.id),
            closings.iter().filter(|c| c.account_id == account.id),
            (as_of, currency),
            &mut lines,
        );
    }
    let complete = lines.iter().all(|l| l.value.is_some());
    let total = complete.then(|| lines.iter().filter_map(|l| l.value).sum::<Decimal>());
    let by_asset_class = slices(&lines, total, |l| l.asset_class.clone());
    let by_currency = slices(&lines, total, |l| {
        l.local_currency.clone().unwrap_or_default()
    });
    let by_custodian = slices(&lines, total, |l| l.custodian.clone());
    Valuation {
        as_of,
        currency,
        total,
        total_presented: total.map(|t| present(t, currency)),
        stale: lines.iter().any(|l| l.fx.as_ref().is_some_and(|f| f.stale)),
        accounts: accounts.len(),
        lines,
        by_asset_class,
        by_currency,
        by_custodian,
        rounding: ROUNDING,
    }
}

/// The lines' values summed by `key` (lines without a value left out), in key order.
fn slices(lines: &[Line], total: Option<Decimal>, key: impl Fn(&Line) -> String) -> Vec<Slice> {
    let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
    for l in lines {
        if let Some(v) = l.value {
            *sums.entry(key(l)).or_default() += v;
        }
    }
    sums.into_iter()
        .map(|(key, value)| Slice {
            key,
            value,
            weight: total.filter(|t| !t.is_zero()).map(|t| value / t),
        })
        .collect()
}

/// `amount` in `from` converted to `to`: the value, the conversion, or why there is none.
fn convert(
    book: &RateBook,
    from: Option<&str>,
    to: Currency,
    as_of: NaiveDate,
    amount: Option<Decimal>,
) -> (Option<Decimal>, Option<Fx>, Option<String>) {
    let Some(amount) = amount else {
        return (None, None, Some("no price and no market value".into()));
    };
    let Some(from) = from.and_then(|c| Currency::parse(c.trim()).ok()) else {
        return (
            None,
            None,
            Some("the figure's currency is not known".into()),
        );
    };
    match book.conversion(from, to, as_of) {
        Ok(conv) => (
            Some(conv.apply(amount)),
            Some(Fx {
                rate: conv.apply(Decimal::ONE),
                date: conv.date(),
                sources: conv.legs.iter().map(|l| l.source.label()).collect(),
                stale: conv.stale(),
            }),
            None,
        ),
        Err(e) => (None, None, Some(e.to_string())),
    }
}

fn value_account<'a>(
    book: &RateBook,
    account: &AccountRow,
    positions: impl Iterator<Item = &'a PositionLine>,
    closings: impl Iterator<Item = &'a ClosingPoint>,
    (as_of, currency): (NaiveDate, Currency),
    lines: &mut Vec<Line>,
) {
    for p in positions {
        let price_type = if p.price_type == "percent" {
            PriceType::Percent
        } else {
            PriceType::Amount
        };
        let valued = Holding {
            quantity: p.quantity,
            price: p.price,
            price_type,
            market_value: p.market_value,
            accrued_interest: p.accrued_interest,
        }
        .value();
        let local_currency = p
            .price_currency
            .clone()
            .or_else(|| p.security_currency.clone());
        let local_value = valued.map(|v| v.total());
        let (value, fx, reason) = convert(
            book,
            local_currency.as_deref(),
            currency,
            as_of,
            local_value,
        );
        lines.push(Line {
            account_id: account.id,
            custodian: account.custodian.clone(),
            kind: LineKind::Position,
            security_name: Some(p.security_name.clone()),
            isin: p.isin.clone(),
            asset_class: p.asset_class.clone(),
            as_of: p.as_of,
            quantity: Some(p.quantity),
            price: p.price,
            price_type: Some(p.price_type.clone()),
            local_currency,
            local_value,
            basis: valued.map(|v| v.basis.as_str()),
            value,
            fx,
            reason,
        });
    }
    // Cash: the latest closing balance on or before the date, per currency.
    for c in closings {
        let (value, fx, reason) = convert(book, Some(&c.currency), currency, as_of, Some(c.amount));
        lines.push(Line {
            account_id: account.id,
            custodian: account.custodian.clone(),
            kind: LineKind::Cash,
            security_name: None,
            isin: None,
            asset_class: "cash".into(),
            as_of: c.as_of,
            quantity: None,
            price: None,
            price_type: None,
            local_currency: Some(c.currency.clone()),
            local_value: Some(c.amount),
            basis: Some("balance"),
            value,
            fx,
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use eam_model::wealth::fx::{EurRate, RateSource};

    use super::*;
    use crate::dec;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).expect("a March day")
    }

    fn currency(code: &str) -> Currency {
        Currency::parse(code).expect("an ISO code")
    }

    fn account(n: u128, custodian: &str) -> AccountRow {
        AccountRow {
            id: Uuid::from_u128(n),
            connection_id: Uuid::from_u128(100 + n),
            custodian: custodian.to_owned(),
            client_id: None,
            client_reference: None,
            client_name: None,
            client_source: None,
            bank_account_id: format!("A{n}"),
            iban: None,
            currency: "CHF".into(),
            kind: "custody".into(),
        }
    }

    fn position(account: u128, name: &str, quantity: &str, price: Option<&str>) -> PositionLine {
        PositionLine {
            account_id: Uuid::from_u128(account),
            as_of: day(2),
            security_name: name.to_owned(),
            isin: None,
            asset_class: "equity".into(),
            quantity: dec(quantity),
            price: price.map(dec),
            price_type: "amount".into(),
            market_value: None,
            accrued_interest: None,
            price_currency: Some("USD".into()),
            security_currency: None,
        }
    }

    fn cash(account: u128, currency: &str, amount: &str) -> ClosingPoint {
        ClosingPoint {
            account_id: Uuid::from_u128(account),
            as_of: day(2),
            currency: currency.to_owned(),
            amount: dec(amount),
        }
    }

    /// 1 EUR = 0.95 CHF = 1.25 USD on 2 March.
    fn book() -> RateBook {
        let mut book = RateBook::new(3);
        for (code, per_eur) in [("CHF", "0.95"), ("USD", "1.25")] {
            book.add(EurRate {
                currency: currency(code),
                date: day(2),
                per_eur: dec(per_eur),
                source: RateSource::Ecb,
            })
            .expect("a positive rate");
        }
        book
    }

    #[test]
    fn lines_convert_through_eur_and_the_allocation_weighs_the_total() {
        let accounts = [account(1, "bank_a"), account(2, "bank_b")];
        let positions = [position(1, "ACME", "10", Some("12.5"))];
        let closings = [cash(2, "CHF", "95"), cash(1, "EUR", "10")];
        let v = assemble(
            &book(),
            &accounts,
            (&positions, &closings),
            day(3),
            currency("CHF"),
        );
        // 125 USD = 100 EUR = 95 CHF; 10 EUR = 9.5 CHF; 95 CHF.
        let values: Vec<_> = v.lines.iter().map(|l| (l.kind, l.value)).collect();
        assert_eq!(
            values,
            [
                (LineKind::Position, Some(dec("95"))),
                (LineKind::Cash, Some(dec("9.5"))),
                (LineKind::Cash, Some(dec("95"))),
            ]
        );
        assert_eq!(v.total, Some(dec("199.5")));
        assert_eq!(v.total_presented, Some(dec("199.50")));
        assert_eq!(v.accounts, 2);
        let fx = v.lines[0].fx.as_ref().expect("converted");
        assert_eq!((fx.rate, fx.date), (dec("0.76"), Some(day(2))));
        assert_eq!(fx.sources, ["ecb", "ecb"]);
        let custodians: Vec<_> = v
            .by_custodian
            .iter()
            .map(|s| (s.key.as_str(), s.value, s.weight))
            .collect();
        assert_eq!(
            custodians,
            [
                ("bank_a", dec("104.5"), Some(dec("104.5") / dec("199.5"))),
                ("bank_b", dec("95"), Some(dec("95") / dec("199.5"))),
            ]
        );
        let classes: Vec<_> = v.by_asset_class.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(classes, ["cash", "equity"]);
    }

    #[test]
    fn a_line_that_cannot_be_valued_leaves_the_total_unknown_with_its_reason() {
        let accounts = [account(1, "bank_a")];
        let positions = [
            position(1, "ACME", "10", Some("12.5")),
            position(1, "NOPRICE", "3", None),
        ];
        let closings = [cash(1, "AED", "40")];
        let v = assemble(
            &book(),
            &accounts,
            (&positions, &closings),
            day(3),
            currency("EUR"),
        );
        let reasons: Vec<_> = v.lines.iter().map(|l| l.reason.as_deref()).collect();
        assert_eq!(
            reasons,
            [
                None,
                Some("no price and no market value"),
                Some("no AED rate on or before 2026-03-03"),
            ]
        );
        assert_eq!((v.total, v.total_presented), (None, None));
        // The slices still sum what could be valued, without weights.
        assert_eq!(
            v.by_custodian,
            [Slice {
                key: "bank_a".into(),
                value: dec("100"),
                weight: None,
            }]
        );
    }

    #[test]
    fn a_rate_older_than_the_stale_limit_marks_the_valuation_stale() {
        let accounts = [account(1, "bank_a")];
        let closings = [cash(1, "USD", "125")];
        // 2 March (Monday) to 6 March (Friday): four business days, more than three.
        let v = assemble(
            &book(),
            &accounts,
            (&[], &closings),
            day(6),
            currency("EUR"),
        );
        assert_eq!(v.total, Some(dec("100")));
        assert!(v.stale);
        assert!(v.lines[0].fx.as_ref().is_some_and(|f| f.stale));
    }
}
