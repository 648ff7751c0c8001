//! Daily prices: a seeded random walk per security, kept in whole ticks.
//!
//! The walk runs on integers (ticks of the security's price precision, moves in basis points)
//! so it is exact and identical on every platform; floats would make the last digit depend on
//! the machine. A price exists for every day from the dataset's start to its end date.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::SimSecurity;
use super::random::{Purpose, Stream};

/// Prices of every security on every day of the dataset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PriceTable {
    start_date: NaiveDate,
    /// `by_security[security.index][day]`, day 0 being the start date.
    by_security: Vec<Vec<Decimal>>,
}

impl PriceTable {
    /// Walks every security's price over `days` days from `start_date`.
    pub(crate) fn generate(
        seed: u64,
        securities: &[std::sync::Arc<SimSecurity>],
        start_date: NaiveDate,
        days: u32,
    ) -> PriceTable {
        let by_security = securities
            .iter()
            .map(|security| walk(seed, security, days))
            .collect();
        PriceTable {
            start_date,
            by_security,
        }
    }

    /// The price of a security on a date; dates outside the table take the nearest day.
    pub(crate) fn price(&self, security: &SimSecurity, date: NaiveDate) -> Decimal {
        let Some(series) = self.by_security.get(security.index) else {
            return security.base_price;
        };
        let day = (date - self.start_date).num_days().max(0);
        let last = series.len().saturating_sub(1);
        let day = usize::try_from(day).unwrap_or(last).min(last);
        series.get(day).copied().unwrap_or(security.base_price)
    }
}

fn walk(seed: u64, security: &SimSecurity, days: u32) -> Vec<Decimal> {
    let scale = security.price_decimals;
    let mut rng = Stream::new(seed, Purpose::Prices, security.index as u64);
    let base = security.base_price.mantissa();
    let base = i64::try_from(base).unwrap_or(i64::MAX / 4);
    // Each seed starts the walk within plus or minus 8% of the listed price.
    let mut ticks = base + base * rng.between(-800, 800) / 10_000;
    let floor = (base / 5).max(1);
    let mut series = Vec::with_capacity(days as usize);
    for _ in 0..days {
        series.push(Decimal::new(ticks, scale));
        let move_bps = rng.between(-security.volatility_bps, security.volatility_bps);
        ticks = (ticks + ticks * move_bps / 10_000).max(floor);
    }
    series
}
