//! Daily euro reference rates, as the ECB publishes them: units of a currency per 1 EUR, on
//! business days (Monday to Friday) only, with the ECB's precision (four decimals, two for
//! JPY). A seeded random walk in whole ticks, so every platform computes the same rates.

use chrono::{Datelike, NaiveDate, Weekday};
use rust_decimal::Decimal;

use super::random::{Purpose, Stream};

/// The currencies quoted, with a starting rate in ticks and the decimals of a tick.
const QUOTED: &[(&str, i64, u32)] = &[
    ("CHF", 9_400, 4),
    ("GBP", 8_500, 4),
    ("JPY", 16_000, 2),
    ("USD", 10_800, 4),
];

/// Rates of every quoted currency on every business day of the dataset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FxTable {
    start_date: NaiveDate,
    /// `(currency, rate per calendar day)`, `None` on weekends.
    by_currency: Vec<(&'static str, Vec<Option<Decimal>>)>,
}

impl FxTable {
    pub(crate) fn generate(seed: u64, start_date: NaiveDate, days: u32) -> FxTable {
        let by_currency = QUOTED
            .iter()
            .enumerate()
            .map(|(index, &(code, base, scale))| {
                let mut rng = Stream::new(seed, Purpose::Fx, index as u64);
                let mut ticks = base + base * rng.between(-300, 300) / 10_000;
                let series = (0..days)
                    .map(|day| {
                        let date = start_date + chrono::Duration::days(i64::from(day));
                        if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                            return None;
                        }
                        let rate = Decimal::new(ticks, scale);
                        // At most ±0.6 % a day, never below a tenth of the start.
                        let move_bps = rng.between(-60, 60);
                        ticks = (ticks + ticks * move_bps / 10_000).max(base / 10);
                        Some(rate)
                    })
                    .collect();
                (code, series)
            })
            .collect();
        FxTable {
            start_date,
            by_currency,
        }
    }

    /// The currencies quoted.
    pub(crate) fn currencies(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_currency.iter().map(|(c, _)| *c)
    }

    /// The rate of `currency` on `date`: none on weekends, outside the dataset, or for a
    /// currency not quoted (EUR itself included).
    pub(crate) fn rate(&self, currency: &str, date: NaiveDate) -> Option<Decimal> {
        let (_, series) = self.by_currency.iter().find(|(c, _)| *c == currency)?;
        let day = usize::try_from((date - self.start_date).num_days()).ok()?;
        series.get(day).copied().flatten()
    }

    /// The business days with rates, oldest first.
    pub(crate) fn days(&self) -> Vec<NaiveDate> {
        let len = self.by_currency.first().map_or(0, |(_, s)| s.len());
        (0..len)
            .filter(|&day| self.by_currency[0].1[day].is_some())
            .map(|day| self.start_date + chrono::Duration::days(day as i64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_exist_on_business_days_only_and_repeat_for_a_seed() {
        let start = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(); // a Monday
        let table = FxTable::generate(7, start, 14);
        let saturday = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert_eq!(table.rate("USD", saturday), None);
        assert_eq!(table.rate("EUR", start), None);
        assert_eq!(table.days().len(), 10);
        let usd = table.rate("USD", start).unwrap();
        assert_eq!(usd.scale(), 4);
        assert_eq!(table.rate("JPY", start).unwrap().scale(), 2);
        // Within ±3 % of the starting quote on the first day.
        assert!(
            usd >= Decimal::new(10_476, 4) && usd <= Decimal::new(11_124, 4),
            "{usd}"
        );
        assert_eq!(table, FxTable::generate(7, start, 14));
        assert_ne!(table, FxTable::generate(8, start, 14));
    }
}
