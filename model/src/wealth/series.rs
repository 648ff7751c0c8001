//! A portfolio's value day by day in one currency, and its external flows: what
//! [`super::performance`] computes returns from.
//!
//! Each calendar day of the period is valued as a valuation of that day would be: every
//! account's latest position snapshot and latest closing balance per currency on or before
//! the day, converted with the rates of the day (`RateBook::conversion`). A day's flow is the
//! sum of the external flows booked that day, converted at that day's rates. A day whose
//! value cannot be computed (a position without price or market value, a currency without a
//! rate) stops the series with the reason: a return is never computed over a gap.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::fx::{Conversion, RateBook};
use super::performance::Observation;
use super::valuation::Holding;
use crate::domain::Currency;

/// What an account's snapshot holds in one currency: the sum of its positions' values (the
/// store sums them as [`Holding::value`] values each), or the name of a position without price
/// nor market value.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotValue {
    pub account: Uuid,
    pub date: NaiveDate,
    /// None when neither the positions nor their securities name one.
    pub currency: Option<Currency>,
    pub value: Decimal,
    /// A position of this snapshot and currency that cannot be valued, by name.
    pub unpriced: Option<String>,
}

impl SnapshotValue {
    /// One position's share of a snapshot.
    pub fn of_holding(
        account: Uuid,
        date: NaiveDate,
        label: &str,
        holding: &Holding,
        currency: Option<Currency>,
    ) -> SnapshotValue {
        let value = holding.value();
        SnapshotValue {
            account,
            date,
            currency,
            value: value.map_or(Decimal::ZERO, |v| v.total()),
            unpriced: value.is_none().then(|| label.to_owned()),
        }
    }
}

/// A closing cash balance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Closing {
    pub account: Uuid,
    pub date: NaiveDate,
    pub currency: Currency,
    pub amount: Decimal,
}

/// An external flow: + into the portfolio, - out of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flow {
    pub date: NaiveDate,
    pub currency: Currency,
    pub amount: Decimal,
}

/// Why a day has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{date}: {reason}")]
pub struct Gap {
    pub date: NaiveDate,
    pub reason: String,
}

/// The portfolio's days from `from` to `to` (both included), in `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub days: Vec<Observation>,
    /// True when a rate used on any day is stale.
    pub stale: bool,
}

/// Converts through `book`, a conversion per (currency, day) at most once; amounts go through
/// `Conversion::apply`, so figures equal a valuation's of the same day.
struct Converter<'a> {
    book: &'a RateBook,
    target: Currency,
    cache: HashMap<(Currency, NaiveDate), Conversion>,
    stale: bool,
}

impl Converter<'_> {
    fn convert(&mut self, amount: Decimal, from: Currency, day: NaiveDate) -> Result<Decimal, Gap> {
        let conv = match self.cache.entry((from, day)) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => {
                let conv = self
                    .book
                    .conversion(from, self.target, day)
                    .map_err(|e| Gap {
                        date: day,
                        reason: e.to_string(),
                    })?;
                slot.insert(conv)
            }
        };
        self.stale |= conv.stale();
        Ok(conv.apply(amount))
    }
}

/// Values `snapshots` and `closings` on each day from `from` to `to` and nets `flows` per day.
/// Both may start before `from` (the state on `from` is the latest on or before it), in any
/// order; an account's snapshot of a date may come in several values (one per currency).
pub fn daily(
    snapshots: &[SnapshotValue],
    closings: &[Closing],
    flows: &[Flow],
    book: &RateBook,
    target: Currency,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Series, Gap> {
    // Per account, its snapshots by date; per (account, currency), its closings by date.
    let mut by_account: BTreeMap<Uuid, BTreeMap<NaiveDate, Vec<&SnapshotValue>>> = BTreeMap::new();
    for v in snapshots {
        by_account
            .entry(v.account)
            .or_default()
            .entry(v.date)
            .or_default()
            .push(v);
    }
    let mut balances: BTreeMap<(Uuid, Currency), BTreeMap<NaiveDate, Decimal>> = BTreeMap::new();
    for c in closings {
        balances
            .entry((c.account, c.currency))
            .or_default()
            .insert(c.date, c.amount);
    }
    let mut flows_by_day: BTreeMap<NaiveDate, Vec<&Flow>> = BTreeMap::new();
    for f in flows {
        flows_by_day.entry(f.date).or_default().push(f);
    }
    let mut fx = Converter {
        book,
        target,
        cache: HashMap::new(),
        stale: false,
    };
    let mut days = Vec::new();
    for day in from.iter_days().take_while(|d| *d <= to) {
        let mut value = Decimal::ZERO;
        for dated in by_account.values() {
            let Some((_, held)) = dated.range(..=day).next_back() else {
                continue;
            };
            for part in held {
                if let Some(name) = &part.unpriced {
                    return Err(Gap {
                        date: day,
                        reason: format!("{name}: no price and no market value"),
                    });
                }
                let currency = part.currency.ok_or_else(|| Gap {
                    date: day,
                    reason: "a position's currency is not known".into(),
                })?;
                value += fx.convert(part.value, currency, day)?;
            }
        }
        for (&(_, currency), dated) in &balances {
            if let Some((_, amount)) = dated.range(..=day).next_back() {
                value += fx.convert(*amount, currency, day)?;
            }
        }
        let mut flow = Decimal::ZERO;
        for f in flows_by_day.get(&day).into_iter().flatten() {
            flow += fx.convert(f.amount, f.currency, day)?;
        }
        days.push(Observation {
            date: day,
            value,
            flow,
        });
    }
    Ok(Series {
        days,
        stale: fx.stale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::PriceType;
    use crate::wealth::dec;
    use crate::wealth::fx::{EurRate, RateSource};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn chf() -> Currency {
        Currency::parse("CHF").unwrap()
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn book() -> RateBook {
        let mut book = RateBook::new(3);
        for (day, chf_rate, usd_rate) in [
            ("2026-03-02", dec!(0.95), dec!(1.10)),
            ("2026-03-03", dec!(0.96), dec!(1.12)),
        ] {
            for (currency, per_eur) in [(chf(), chf_rate), (usd(), usd_rate)] {
                book.add(EurRate {
                    currency,
                    date: d(day),
                    per_eur,
                    source: RateSource::Ecb,
                })
                .unwrap();
            }
        }
        book
    }

    fn holding(quantity: Decimal, price: Option<Decimal>) -> Holding {
        Holding {
            quantity,
            price,
            price_type: PriceType::Amount,
            market_value: None,
            accrued_interest: None,
        }
    }

    fn share(account: Uuid, date: &str, quantity: Decimal, price: Decimal) -> SnapshotValue {
        SnapshotValue::of_holding(
            account,
            d(date),
            "ACME",
            &holding(quantity, Some(price)),
            Some(usd()),
        )
    }

    /// Two days by hand: 10 shares at 50 USD and 1,000 CHF of cash, then 12 shares at 55 USD
    /// after a 200 CHF deposit.
    #[test]
    fn each_day_is_valued_with_its_own_snapshot_balances_and_rates() {
        let account = Uuid::nil();
        let lines = [
            share(account, "2026-03-02", dec!(10), dec!(50)),
            share(account, "2026-03-03", dec!(12), dec!(55)),
        ];
        let closings = [
            Closing {
                account,
                date: d("2026-03-01"),
                currency: chf(),
                amount: dec!(1000),
            },
            Closing {
                account,
                date: d("2026-03-03"),
                currency: chf(),
                amount: dec!(1200),
            },
        ];
        let flows = [Flow {
            date: d("2026-03-03"),
            currency: chf(),
            amount: dec!(200),
        }];
        let series = daily(
            &lines,
            &closings,
            &flows,
            &book(),
            chf(),
            d("2026-03-02"),
            d("2026-03-03"),
        )
        .unwrap();
        // 500 USD x 0.95 / 1.10 + 1000; 660 USD x 0.96 / 1.12 + 1200.
        assert_eq!(
            series.days,
            vec![
                Observation {
                    date: d("2026-03-02"),
                    value: dec!(500) * dec!(0.95) / dec!(1.10) + dec!(1000),
                    flow: Decimal::ZERO,
                },
                Observation {
                    date: d("2026-03-03"),
                    value: dec!(660) * dec!(0.96) / dec!(1.12) + dec!(1200),
                    flow: dec!(200),
                },
            ]
        );
        assert!(!series.stale);
    }

    #[test]
    fn a_day_without_a_rate_or_a_price_is_a_gap_with_its_reason() {
        let account = Uuid::nil();
        let early = daily(
            &[share(account, "2026-03-01", dec!(1), dec!(1))],
            &[],
            &[],
            &book(),
            chf(),
            d("2026-03-01"),
            d("2026-03-02"),
        );
        assert_eq!(
            early,
            Err(Gap {
                date: d("2026-03-01"),
                reason: "no USD rate on or before 2026-03-01".into()
            })
        );
        let unpriced = SnapshotValue::of_holding(
            account,
            d("2026-03-02"),
            "ACME",
            &holding(dec!(1), None),
            Some(usd()),
        );
        let gap = daily(
            &[unpriced],
            &[],
            &[],
            &book(),
            chf(),
            d("2026-03-02"),
            d("2026-03-02"),
        )
        .unwrap_err();
        assert_eq!(gap.reason, "ACME: no price and no market value");
    }
}
