//! Exchange rates: every rate is kept as the ECB quotes it (units of a currency per 1 EUR), so
//! any pair converts through EUR: `from -> to = per_eur(to) / per_eur(from)`.
//!
//! **Precedence** (one rule, for every figure): for a currency at a date, each source's latest
//! rate on or before that date is a candidate; the ECB reference rate wins over a rate a bank
//! states, unless the ECB's is stale and the bank's is not. When every candidate is stale the
//! most recent one is used and the conversion says so (`stale`); it is never presented as
//! current. Reason: the ECB's rate is the one reference every custodian's figures can share,
//! so a client's consolidated total does not depend on which bank's file came last.
//!
//! **A bank's stated rate** (1 `base` = `rate` `quote`) becomes an EUR rate of source
//! `bank:<custodian>` ([`RateBook::add_bank_pair`]): directly when either side is EUR;
//! otherwise only for the side the ECB does not quote that day, through the ECB's rate of the
//! other side on the same day (a bank's AED/CHF rate gives AED per EUR with the ECB's CHF). A
//! pair of two currencies the ECB both quotes that day adds nothing: the ECB's rates are used.
//!
//! Euro legacy currencies (`DEM`, `FRF`, ...) convert at their irrevocable fixed rates
//! (source `euro_fixed`, never stale), whatever a feed says.
//!
//! **Stale**: more than `stale_after` business days (Monday to Friday; holidays are not
//! known here, so a rate from before a holiday weekend counts the holiday as a business day)
//! between the rate's date and the date asked for.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate, Weekday};
use rust_decimal::Decimal;

use crate::domain::Currency;

/// Where a rate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateSource {
    /// The ECB euro reference rates (the market-data connector).
    Ecb,
    /// A rate a bank states in its files; the custodian's code.
    Bank(String),
    /// The irrevocable conversion rate of a euro legacy currency (`DEM` 1.95583): never stale.
    EuroFixed,
}

impl RateSource {
    /// Lower wins at equal freshness.
    fn rank(&self) -> u8 {
        match self {
            RateSource::EuroFixed => 0,
            RateSource::Ecb => 1,
            RateSource::Bank(_) => 2,
        }
    }

    pub fn label(&self) -> String {
        match self {
            RateSource::Ecb => "ecb".to_owned(),
            RateSource::Bank(custodian) => format!("bank:{custodian}"),
            RateSource::EuroFixed => "euro_fixed".to_owned(),
        }
    }
}

/// One rate: 1 EUR = `per_eur` units of `currency`, on `date`.
#[derive(Debug, Clone, PartialEq)]
pub struct EurRate {
    pub currency: Currency,
    pub date: NaiveDate,
    pub per_eur: Decimal,
    pub source: RateSource,
}

/// The rate used for one side of a conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct Leg {
    pub currency: Currency,
    pub per_eur: Decimal,
    pub date: NaiveDate,
    pub source: RateSource,
    pub stale: bool,
}

/// How to turn an amount in `from` into `to` ([`Conversion::apply`]; `rate` is what 1 unit
/// of `from` is worth in `to`, for display). `legs` are the EUR rates
/// used (none for the same currency, one when either side is EUR, two for a cross rate).
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub from: Currency,
    pub to: Currency,
    pub rate: Decimal,
    pub legs: Vec<Leg>,
}

impl Conversion {
    /// True when any rate used is stale.
    pub fn stale(&self) -> bool {
        self.legs.iter().any(|l| l.stale)
    }

    /// The oldest date of the rates used (the figure is as fresh as its oldest rate).
    pub fn date(&self) -> Option<NaiveDate> {
        self.legs.iter().map(|l| l.date).min()
    }

    /// `amount` in `to`: multiplied by the target's EUR rate before it is divided by the
    /// source's, so exact conversions stay exact (195.583 DEM -> 100 EUR, not 99.99...).
    pub fn apply(&self, amount: Decimal) -> Decimal {
        let per_eur = |c: Currency| {
            self.legs
                .iter()
                .find(|l| l.currency == c)
                .map_or(Decimal::ONE, |l| l.per_eur)
        };
        if self.from == self.to {
            return amount;
        }
        amount * per_eur(self.to) / per_eur(self.from)
    }
}

/// Why an amount cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("no {currency} rate on or before {as_of}")]
    Missing {
        currency: Currency,
        as_of: NaiveDate,
    },
    #[error("a rate must be positive: {currency} {per_eur} on {date}")]
    NotPositive {
        currency: Currency,
        per_eur: Decimal,
        date: NaiveDate,
    },
    #[error("a EUR rate for EUR is always 1: {per_eur} on {date}")]
    EuroPerEuro { per_eur: Decimal, date: NaiveDate },
}

/// The rates known, by currency, each list ordered by date.
#[derive(Debug, Clone)]
pub struct RateBook {
    rates: HashMap<Currency, Vec<EurRate>>,
    stale_after: u32,
}

impl RateBook {
    /// A book whose rates are stale after `stale_after` business days.
    pub fn new(stale_after: u32) -> RateBook {
        RateBook {
            rates: HashMap::new(),
            stale_after,
        }
    }

    /// Adds a rate; a second rate of the same source and date replaces the first.
    pub fn add(&mut self, rate: EurRate) -> Result<(), RateError> {
        if rate.currency == euro() {
            if rate.per_eur != Decimal::ONE {
                return Err(RateError::EuroPerEuro {
                    per_eur: rate.per_eur,
                    date: rate.date,
                });
            }
            return Ok(());
        }
        if rate.per_eur <= Decimal::ZERO {
            return Err(RateError::NotPositive {
                currency: rate.currency,
                per_eur: rate.per_eur,
                date: rate.date,
            });
        }
        let list = self.rates.entry(rate.currency).or_default();
        list.retain(|r| !(r.date == rate.date && r.source == rate.source));
        let at = list.partition_point(|r| r.date <= rate.date);
        list.insert(at, rate);
        Ok(())
    }

    /// Adds the rate a bank states, 1 `base` = `rate` `quote` on `date`, as an EUR rate of
    /// `RateSource::Bank(custodian)` (see the module's precedence). Add the ECB's rates first:
    /// a pair without EUR is turned into an EUR rate through the ECB's rate of that day.
    /// Returns the EUR rate added, if any.
    pub fn add_bank_pair(
        &mut self,
        custodian: &str,
        (base, quote): (Currency, Currency),
        rate: Decimal,
        date: NaiveDate,
    ) -> Result<Option<EurRate>, RateError> {
        if rate <= Decimal::ZERO {
            return Err(RateError::NotPositive {
                currency: quote,
                per_eur: rate,
                date,
            });
        }
        let ecb_on = |c: Currency| -> Option<Decimal> {
            if c == euro() {
                return Some(Decimal::ONE);
            }
            self.rates.get(&c).and_then(|list| {
                list.iter()
                    .find(|r| r.date == date && r.source == RateSource::Ecb)
                    .map(|r| r.per_eur)
            })
        };
        // 1 EUR = per_eur(base) base = per_eur(base) * rate quote.
        let derived = match (ecb_on(base), ecb_on(quote)) {
            _ if base == quote || base.euro_conversion_rate().is_some() => None,
            _ if quote.euro_conversion_rate().is_some() => None,
            (Some(per_base), None) => Some((quote, per_base * rate)),
            (None, Some(per_quote)) => Some((base, per_quote / rate)),
            _ => None,
        };
        let Some((currency, per_eur)) = derived else {
            return Ok(None);
        };
        let eur_rate = EurRate {
            currency,
            date,
            per_eur,
            source: RateSource::Bank(custodian.to_owned()),
        };
        self.add(eur_rate.clone())?;
        Ok(Some(eur_rate))
    }

    /// The EUR rate of `currency` to use at `as_of` (`None` for EUR itself).
    pub fn leg(&self, currency: Currency, as_of: NaiveDate) -> Result<Option<Leg>, RateError> {
        if currency == euro() {
            return Ok(None);
        }
        // A euro legacy currency converts at its fixed rate, whatever the date.
        if let Some(per_eur) = currency.euro_conversion_rate() {
            return Ok(Some(Leg {
                currency,
                per_eur,
                date: as_of,
                source: RateSource::EuroFixed,
                stale: false,
            }));
        }
        let missing = RateError::Missing { currency, as_of };
        let list = self.rates.get(&currency).ok_or(missing.clone())?;
        let known = &list[..list.partition_point(|r| r.date <= as_of)];
        // Each source's latest rate on or before the date.
        let mut latest: Vec<&EurRate> = Vec::new();
        for r in known.iter().rev() {
            if !latest.iter().any(|l| l.source == r.source) {
                latest.push(r);
            }
        }
        let stale = |r: &EurRate| business_days_between(r.date, as_of) > self.stale_after;
        let chosen = latest
            .iter()
            .filter(|r| !stale(r))
            .min_by_key(|r| r.source.rank())
            .or_else(|| {
                latest
                    .iter()
                    .max_by_key(|r| (r.date, std::cmp::Reverse(r.source.rank())))
            })
            .ok_or(missing)?;
        Ok(Some(Leg {
            currency,
            per_eur: chosen.per_eur,
            date: chosen.date,
            source: chosen.source.clone(),
            stale: stale(chosen),
        }))
    }

    /// How to convert `from` into `to` at `as_of`.
    pub fn conversion(
        &self,
        from: Currency,
        to: Currency,
        as_of: NaiveDate,
    ) -> Result<Conversion, RateError> {
        if from == to {
            return Ok(Conversion {
                from,
                to,
                rate: Decimal::ONE,
                legs: Vec::new(),
            });
        }
        let from_leg = self.leg(from, as_of)?;
        let to_leg = self.leg(to, as_of)?;
        let per_eur = |leg: &Option<Leg>| leg.as_ref().map_or(Decimal::ONE, |l| l.per_eur);
        let rate = per_eur(&to_leg) / per_eur(&from_leg);
        Ok(Conversion {
            from,
            to,
            rate,
            legs: from_leg.into_iter().chain(to_leg).collect(),
        })
    }
}

fn euro() -> Currency {
    Currency::EUR
}

/// Business days (Monday to Friday) after `from` up to and including `to`; 0 when `to` is
/// not after `from`.
pub fn business_days_between(from: NaiveDate, to: NaiveDate) -> u32 {
    if to <= from {
        return 0;
    }
    let days = (to - from).num_days();
    let weeks = days / 7;
    let mut count = weeks * 5;
    let mut day = from + chrono::Duration::days(weeks * 7);
    while day < to {
        day = day.succ_opt().unwrap_or(to);
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            count += 1;
        }
    }
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wealth::dec;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn c(s: &str) -> Currency {
        Currency::parse(s).unwrap()
    }
    fn rate(cur: &str, date: &str, per_eur: Decimal, source: RateSource) -> EurRate {
        EurRate {
            currency: c(cur),
            date: d(date),
            per_eur,
            source,
        }
    }
    fn bank() -> RateSource {
        RateSource::Bank("bank_b".into())
    }

    #[test]
    fn business_days_skip_weekends() {
        // Fri 2026-12-04 -> Mon 2026-12-07: one business day (Monday).
        assert_eq!(business_days_between(d("2026-12-04"), d("2026-12-07")), 1);
        assert_eq!(business_days_between(d("2026-12-07"), d("2026-12-07")), 0);
        assert_eq!(business_days_between(d("2026-12-07"), d("2026-12-04")), 0);
        // Mon -> Mon two weeks later: 10.
        assert_eq!(business_days_between(d("2026-11-23"), d("2026-12-07")), 10);
        // Sat -> Sun: none.
        assert_eq!(business_days_between(d("2026-12-05"), d("2026-12-06")), 0);
        // Thu -> Tue: Fri, Mon, Tue.
        assert_eq!(business_days_between(d("2026-12-03"), d("2026-12-08")), 3);
    }

    #[test]
    fn a_cross_rate_goes_through_eur_and_names_both_legs() {
        let mut book = RateBook::new(3);
        book.add(rate("CHF", "2026-12-04", dec!(0.9321), RateSource::Ecb))
            .unwrap();
        book.add(rate("USD", "2026-12-04", dec!(1.0540), RateSource::Ecb))
            .unwrap();
        let conv = book
            .conversion(c("USD"), c("CHF"), d("2026-12-07"))
            .unwrap();
        // 1 USD = 0.9321 / 1.0540 CHF.
        assert_eq!(conv.rate, dec!(0.9321) / dec!(1.0540));
        assert_eq!(
            conv.apply(dec!(1054.00)).round_dp(2),
            dec!(932.10),
            "1054 USD = 1000 EUR = 932.10 CHF"
        );
        assert_eq!(conv.legs.len(), 2);
        assert_eq!(conv.date(), Some(d("2026-12-04")));
        assert!(!conv.stale());
        // To EUR: one leg, the inverse.
        let to_eur = book
            .conversion(c("CHF"), Currency::EUR, d("2026-12-07"))
            .unwrap();
        assert_eq!(to_eur.legs.len(), 1);
        assert_eq!(to_eur.apply(dec!(932.10)), dec!(1000.00));
        // Same currency: rate one, no legs.
        let same = book
            .conversion(c("CHF"), c("CHF"), d("2026-12-07"))
            .unwrap();
        assert_eq!((same.rate, same.legs.len()), (Decimal::ONE, 0));
    }

    #[test]
    fn the_ecb_wins_over_a_bank_unless_it_is_stale_and_the_bank_is_not() {
        let mut book = RateBook::new(3);
        book.add(rate("USD", "2026-12-01", dec!(1.0500), RateSource::Ecb))
            .unwrap();
        book.add(rate("USD", "2026-12-01", dec!(1.0490), bank()))
            .unwrap();
        book.add(rate("USD", "2026-12-07", dec!(1.0610), bank()))
            .unwrap();
        // On 2026-12-03 both are fresh: the ECB's, though the bank's is as recent.
        let leg = book.leg(c("USD"), d("2026-12-03")).unwrap().unwrap();
        assert_eq!((leg.per_eur, &leg.source), (dec!(1.0500), &RateSource::Ecb));
        // On 2026-12-07 the ECB's (Tue 1st) is 4 business days old: stale; the bank's of the
        // day is used.
        let leg = book.leg(c("USD"), d("2026-12-07")).unwrap().unwrap();
        assert_eq!(
            (leg.per_eur, leg.source.label(), leg.stale),
            (dec!(1.0610), "bank:bank_b".into(), false)
        );
        // A date before any rate: missing, with the reason.
        assert_eq!(
            book.leg(c("USD"), d("2026-11-30")),
            Err(RateError::Missing {
                currency: c("USD"),
                as_of: d("2026-11-30")
            })
        );
        assert_eq!(
            RateError::Missing {
                currency: c("JPY"),
                as_of: d("2026-12-07")
            }
            .to_string(),
            "no JPY rate on or before 2026-12-07"
        );
    }

    #[test]
    fn when_every_rate_is_stale_the_latest_is_used_and_flagged() {
        let mut book = RateBook::new(2);
        book.add(rate("GBP", "2026-11-20", dec!(0.8400), RateSource::Ecb))
            .unwrap();
        book.add(rate("GBP", "2026-11-23", dec!(0.8450), bank()))
            .unwrap();
        let conv = book
            .conversion(Currency::EUR, c("GBP"), d("2026-12-07"))
            .unwrap();
        assert_eq!(conv.rate, dec!(0.8450));
        assert!(conv.stale());
        assert_eq!(conv.date(), Some(d("2026-11-23")));
    }

    #[test]
    fn a_euro_legacy_currency_converts_at_its_fixed_rate() {
        let mut book = RateBook::new(3);
        book.add(rate("CHF", "2026-12-04", dec!(0.9321), RateSource::Ecb))
            .unwrap();
        let conv = book
            .conversion(c("DEM"), c("CHF"), d("2026-12-07"))
            .unwrap();
        // 195.583 DEM = 100 EUR = 93.21 CHF.
        assert_eq!(conv.apply(dec!(195.583)), dec!(93.21));
        assert_eq!(conv.legs[0].source.label(), "euro_fixed");
        assert!(!conv.stale());
    }

    #[test]
    fn bad_rates_are_refused_and_a_later_one_of_a_source_replaces_it() {
        let mut book = RateBook::new(3);
        assert!(matches!(
            book.add(rate("USD", "2026-12-01", dec!(0), RateSource::Ecb)),
            Err(RateError::NotPositive { .. })
        ));
        assert!(matches!(
            book.add(rate("EUR", "2026-12-01", dec!(1.1), RateSource::Ecb)),
            Err(RateError::EuroPerEuro { .. })
        ));
        book.add(rate("USD", "2026-12-01", dec!(1.05), RateSource::Ecb))
            .unwrap();
        book.add(rate("USD", "2026-12-01", dec!(1.06), RateSource::Ecb))
            .unwrap();
        let leg = book.leg(c("USD"), d("2026-12-01")).unwrap().unwrap();
        assert_eq!(leg.per_eur, dec!(1.06));
    }

    #[test]
    fn a_bank_pair_with_euro_is_an_eur_rate_of_the_bank() {
        let mut book = RateBook::new(3);
        // 1 USD = 0.9500 EUR -> 1 EUR = 1/0.95 USD.
        let added = book
            .add_bank_pair("bank_b", (c("USD"), c("EUR")), dec!(0.95), d("2026-12-04"))
            .unwrap()
            .unwrap();
        assert_eq!(added.currency, c("USD"));
        assert_eq!(added.per_eur, dec!(1) / dec!(0.95));
        // 1 EUR = 158.51 JPY.
        let added = book
            .add_bank_pair(
                "bank_b",
                (c("EUR"), c("JPY")),
                dec!(158.51),
                d("2026-12-04"),
            )
            .unwrap()
            .unwrap();
        assert_eq!((added.currency, added.per_eur), (c("JPY"), dec!(158.51)));
        let leg = book.leg(c("JPY"), d("2026-12-04")).unwrap().unwrap();
        assert_eq!(leg.source.label(), "bank:bank_b");
    }

    #[test]
    fn a_bank_cross_rate_prices_only_the_currency_the_ecb_does_not_quote() {
        let mut book = RateBook::new(3);
        book.add(rate("CHF", "2026-12-04", dec!(0.9321), RateSource::Ecb))
            .unwrap();
        book.add(rate("USD", "2026-12-04", dec!(1.0540), RateSource::Ecb))
            .unwrap();
        // 1 AED = 0.2500 CHF: 1 EUR = 0.9321 CHF = 3.7284 AED.
        let added = book
            .add_bank_pair("bank_b", (c("AED"), c("CHF")), dec!(0.25), d("2026-12-04"))
            .unwrap()
            .unwrap();
        assert_eq!((added.currency, added.per_eur), (c("AED"), dec!(3.7284)));
        // The same pair written the other way round: 1 CHF = 4 AED.
        let mut other = book.clone();
        let added = other
            .add_bank_pair("bank_b", (c("CHF"), c("AED")), dec!(4), d("2026-12-04"))
            .unwrap()
            .unwrap();
        assert_eq!((added.currency, added.per_eur), (c("AED"), dec!(3.7284)));
        // 1,000 AED in USD: 1000 / 3.7284 * 1.0540.
        let conv = book
            .conversion(c("AED"), c("USD"), d("2026-12-04"))
            .unwrap();
        assert_eq!(
            conv.apply(dec!(1000)),
            dec!(1000) * dec!(1.0540) / dec!(3.7284)
        );
        assert_eq!(conv.legs[0].source.label(), "bank:bank_b");
        assert_eq!(conv.legs[1].source.label(), "ecb");
        // Both quoted by the ECB that day: nothing added, the ECB's rates stay.
        assert_eq!(
            book.add_bank_pair("bank_b", (c("USD"), c("CHF")), dec!(0.9), d("2026-12-04"))
                .unwrap(),
            None
        );
        let leg = book.leg(c("USD"), d("2026-12-04")).unwrap().unwrap();
        assert_eq!((leg.per_eur, leg.source), (dec!(1.0540), RateSource::Ecb));
        // Neither quoted that day: nothing to go through.
        assert_eq!(
            book.add_bank_pair("bank_b", (c("AED"), c("SAR")), dec!(1.02), d("2026-12-04"))
                .unwrap(),
            None
        );
        assert!(matches!(
            book.add_bank_pair("bank_b", (c("AED"), c("CHF")), dec!(0), d("2026-12-04")),
            Err(RateError::NotPositive { .. })
        ));
    }

    #[test]
    fn a_fresh_ecb_rate_wins_over_a_bank_rate_of_the_same_day() {
        let mut book = RateBook::new(3);
        book.add(rate("USD", "2026-12-04", dec!(1.0540), RateSource::Ecb))
            .unwrap();
        book.add_bank_pair("bank_b", (c("EUR"), c("USD")), dec!(1.06), d("2026-12-04"))
            .unwrap();
        let leg = book.leg(c("USD"), d("2026-12-04")).unwrap().unwrap();
        assert_eq!((leg.per_eur, leg.source), (dec!(1.0540), RateSource::Ecb));
        // Ten business days later the ECB's is stale and the bank's later one is not.
        book.add_bank_pair("bank_b", (c("EUR"), c("USD")), dec!(1.07), d("2026-12-17"))
            .unwrap();
        let leg = book.leg(c("USD"), d("2026-12-18")).unwrap().unwrap();
        assert_eq!(
            (leg.per_eur, leg.source.label(), leg.stale),
            (dec!(1.07), "bank:bank_b".into(), false)
        );
    }
}
