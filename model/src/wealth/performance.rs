//! Returns: time-weighted (what the manager did, independent of when money came and went) and
//! money-weighted (what the investor earned, the internal rate of return of their flows).
//!
//! External flows are money moving into (+) or out of (-) the portfolio: transfers in and out.
//! Trades, income and fees are not flows; they are part of the return.

use chrono::NaiveDate;
use rust_decimal::{Decimal, MathematicalOps};

/// How [`time_weighted`] computes, as the API names it in each answer.
pub const TWR_METHOD: &str = "time-weighted: a sub-period per valuation date, external flows at \
the end of their day, sub-period returns geometrically linked; annualized only over 365 days \
or more";

/// How [`money_weighted`] computes, as the API names it in each answer.
pub const MWR_METHOD: &str = "money-weighted: the annual internal rate of return (XIRR, \
actual days / 365) of the start value, the external flows and the end value";

/// One valuation date: the portfolio's value at the end of the day (the day's flows included)
/// and the day's net external flow (+ in, - out).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub date: NaiveDate,
    pub value: Decimal,
    pub flow: Decimal,
}

/// A time-weighted return over the observations' period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeWeighted {
    /// Over the whole period (0.342 = 34.2 %).
    pub cumulative: Decimal,
    /// Per year, for periods of at least 365 days.
    pub annualized: Option<Decimal>,
    /// Sub-periods linked (those with capital invested).
    pub subperiods: usize,
    pub days: i64,
}

/// A cash flow from the investor's side: paid in is negative, received positive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CashFlow {
    pub date: NaiveDate,
    pub amount: Decimal,
}

/// Why a return cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PerformanceError {
    #[error("a return needs at least two valuation dates")]
    TooFewObservations,
    #[error("valuation dates must increase: {0} follows a later or equal date")]
    DatesOutOfOrder(NaiveDate),
    #[error("on {0} value appeared in a portfolio holding nothing, without a flow bringing it")]
    ValueWithoutCapital(NaiveDate),
    #[error("an internal rate of return needs money both paid in and received")]
    OneSidedFlows,
    #[error("no internal rate of return between -95 % and +1000 % a year solves these flows")]
    NoSolution,
}

/// The time-weighted return of daily (or any) valuations: each sub-period's return is
/// `(value - flow) / previous value - 1`, linked `Π(1 + r) - 1`. A sub-period starting from
/// nothing (before the first deposit) is skipped.
pub fn time_weighted(observations: &[Observation]) -> Result<TimeWeighted, PerformanceError> {
    let (first, last) = match observations {
        [first, .., last] => (first, last),
        _ => return Err(PerformanceError::TooFewObservations),
    };
    let mut growth = Decimal::ONE;
    let mut subperiods = 0;
    for pair in observations.windows(2) {
        let (before, now) = (&pair[0], &pair[1]);
        if now.date <= before.date {
            return Err(PerformanceError::DatesOutOfOrder(now.date));
        }
        let end = now.value - now.flow;
        if before.value.is_zero() {
            if end.is_zero() {
                continue;
            }
            return Err(PerformanceError::ValueWithoutCapital(now.date));
        }
        growth *= end / before.value;
        subperiods += 1;
    }
    let days = (last.date - first.date).num_days();
    let annualized = (days >= 365 && growth > Decimal::ZERO)
        .then(|| {
            growth
                .checked_powd(Decimal::from(365) / Decimal::from(days))
                .map(|g| g - Decimal::ONE)
        })
        .flatten();
    Ok(TimeWeighted {
        cumulative: growth - Decimal::ONE,
        annualized,
        subperiods,
        days,
    })
}

/// The money-weighted return of a portfolio worth `start` at its start, receiving the
/// external `flows` (+ in, - out), and worth `end` at its end.
pub fn money_weighted(
    start: (NaiveDate, Decimal),
    flows: &[(NaiveDate, Decimal)],
    end: (NaiveDate, Decimal),
) -> Result<Decimal, PerformanceError> {
    let mut cash = Vec::with_capacity(flows.len() + 2);
    cash.push(CashFlow {
        date: start.0,
        amount: -start.1,
    });
    cash.extend(flows.iter().map(|&(date, amount)| CashFlow {
        date,
        amount: -amount,
    }));
    cash.push(CashFlow {
        date: end.0,
        amount: end.1,
    });
    xirr(&cash)
}

/// The annual rate `r` with `Σ amount / (1 + r)^(days since the first flow / 365) = 0`, as
/// spreadsheets' XIRR defines it; to 1e-12. Newton's method from 10 %, bisection where
/// Newton does not settle.
pub fn xirr(flows: &[CashFlow]) -> Result<Decimal, PerformanceError> {
    let has_in = flows.iter().any(|f| f.amount < Decimal::ZERO);
    let has_out = flows.iter().any(|f| f.amount > Decimal::ZERO);
    if !(has_in && has_out) {
        return Err(PerformanceError::OneSidedFlows);
    }
    let origin = flows.iter().map(|f| f.date).min().unwrap_or_default();
    let timed: Vec<(Decimal, Decimal)> = flows
        .iter()
        .map(|f| {
            let years = Decimal::from((f.date - origin).num_days()) / Decimal::from(365);
            (years, f.amount)
        })
        .collect();
    let tolerance = Decimal::new(1, 12);
    let mut rate = Decimal::new(1, 1);
    for _ in 0..60 {
        let Some((value, slope)) = npv_and_slope(&timed, rate) else {
            break;
        };
        if slope.is_zero() {
            break;
        }
        let next = rate - value / slope;
        if next <= Decimal::new(-95, 2) || next > Decimal::from(10) {
            break;
        }
        if (next - rate).abs() < tolerance {
            return Ok(next);
        }
        rate = next;
    }
    bisect(&timed, tolerance)
}

/// Net present value at `rate` and its derivative by the rate.
fn npv_and_slope(timed: &[(Decimal, Decimal)], rate: Decimal) -> Option<(Decimal, Decimal)> {
    let growth = Decimal::ONE + rate;
    let log = growth.checked_ln()?;
    let mut value = Decimal::ZERO;
    let mut slope = Decimal::ZERO;
    for &(years, amount) in timed {
        let discount = (-years * log).checked_exp()?;
        let term = amount.checked_mul(discount)?;
        value = value.checked_add(term)?;
        slope = slope.checked_sub(years.checked_mul(term)?.checked_div(growth)?)?;
    }
    Some((value, slope))
}

fn bisect(timed: &[(Decimal, Decimal)], tolerance: Decimal) -> Result<Decimal, PerformanceError> {
    let npv = |r: Decimal| npv_and_slope(timed, r).map(|(v, _)| v);
    let (mut low, mut high) = (Decimal::new(-95, 2), Decimal::from(10));
    let (Some(mut at_low), Some(at_high)) = (npv(low), npv(high)) else {
        return Err(PerformanceError::NoSolution);
    };
    if at_low.is_sign_negative() == at_high.is_sign_negative() {
        return Err(PerformanceError::NoSolution);
    }
    while high - low > tolerance {
        let mid = (low + high) / Decimal::TWO;
        let at_mid = npv(mid).ok_or(PerformanceError::NoSolution)?;
        if at_mid.is_sign_negative() == at_low.is_sign_negative() {
            low = mid;
            at_low = at_mid;
        } else {
            high = mid;
        }
    }
    Ok((low + high) / Decimal::TWO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wealth::dec;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn bp(x: Decimal) -> Decimal {
        (x * dec!(10000)).round_dp(2)
    }

    // Textbook 1 (CFA Institute, Quantitative Methods, "money-weighted and time-weighted
    // rates of return"): one share bought at 100 at t=0; at t=1 it pays a dividend of 2 and a
    // second share is bought at 120; at t=2 each pays 2 and both are sold at 130. Published:
    // MWR 13.86 %, TWR 15.84 % a year. Years of 365 days (2021, 2022).
    #[test]
    fn cfa_two_share_example() {
        let start = (d("2021-01-01"), dec!(100));
        // At t=1 the investor pays 120 and receives the dividend of 2: 118 net in; the
        // portfolio holds two shares worth 240.
        let flows = [(d("2022-01-01"), dec!(118))];
        let end = (d("2023-01-01"), dec!(264));
        let mwr = money_weighted(start, &flows, end).unwrap();
        assert_eq!(mwr.round_dp(4), dec!(0.1386));
        // Exact root of 100y² + 118y - 264 = 0: y = (-118 + √119524) / 200.
        assert_eq!(bp(mwr), dec!(1386.12));
        let twr = time_weighted(&[
            Observation {
                date: start.0,
                value: dec!(100),
                flow: dec!(0),
            },
            Observation {
                date: flows[0].0,
                value: dec!(240),
                flow: dec!(118),
            },
            Observation {
                date: end.0,
                value: dec!(264),
                flow: dec!(0),
            },
        ])
        .unwrap();
        // (1.22 × 1.10) - 1 over two years; √1.342 - 1 a year.
        assert_eq!(twr.cumulative, dec!(0.342));
        assert_eq!(twr.annualized.unwrap().round_dp(4), dec!(0.1584));
        assert_eq!(twr.subperiods, 2);
    }

    // Textbook 2 (Bodie, Kane, Marcus, Investments, "dollar-weighted returns"): a share bought
    // at 50, a second bought a year later at 53 after a dividend of 2, both sold at 54 a year
    // after that with a dividend of 2 each. Published: dollar-weighted 7.117 %, time-weighted
    // (geometric) 7.81 %.
    #[test]
    fn bkm_dollar_weighted_example() {
        let start = (d("2021-01-01"), dec!(50));
        let flows = [(d("2022-01-01"), dec!(51))];
        let end = (d("2023-01-01"), dec!(112));
        let mwr = money_weighted(start, &flows, end).unwrap();
        assert_eq!(mwr.round_dp(5), dec!(0.07117));
        let twr = time_weighted(&[
            Observation {
                date: start.0,
                value: dec!(50),
                flow: dec!(0),
            },
            Observation {
                date: flows[0].0,
                value: dec!(106),
                flow: dec!(51),
            },
            Observation {
                date: end.0,
                value: dec!(112),
                flow: dec!(0),
            },
        ])
        .unwrap();
        assert_eq!(twr.annualized.unwrap().round_dp(4), dec!(0.0781));
    }

    // Textbook 3 (Microsoft's XIRR function documentation): -10,000 on 1 Jan 2008, then
    // 2,750 (1 Mar 2008), 4,250 (30 Oct 2008), 3,250 (15 Feb 2009), 2,750 (1 Apr 2009).
    // Published: 0.373362535.
    #[test]
    fn spreadsheet_xirr_example() {
        let flows = [
            ("2008-01-01", dec!(-10000)),
            ("2008-03-01", dec!(2750)),
            ("2008-10-30", dec!(4250)),
            ("2009-02-15", dec!(3250)),
            ("2009-04-01", dec!(2750)),
        ]
        .map(|(date, amount)| CashFlow {
            date: d(date),
            amount,
        });
        // The exact root is 0.3733625335188 (bisection in f64 to 1e-15 agrees); the published
        // ninth digit reflects the spreadsheet's own stopping tolerance.
        let rate = xirr(&flows).unwrap();
        assert_eq!(bp(rate), dec!(3733.63));
        assert!(
            (rate - dec!(0.373362535)).abs() < dec!(0.000000002),
            "{rate}"
        );
        assert_eq!(rate.round_dp(10), dec!(0.3733625335));
    }

    #[test]
    fn a_portfolio_funded_after_its_start_and_a_total_loss() {
        // Empty until a deposit of 1,000 on day 1, then +10 %, then a withdrawal of 500
        // with the day's value 600 (so 1,100 before it), then flat.
        let twr = time_weighted(&[
            Observation {
                date: d("2026-01-01"),
                value: dec!(0),
                flow: dec!(0),
            },
            Observation {
                date: d("2026-01-02"),
                value: dec!(1000),
                flow: dec!(1000),
            },
            Observation {
                date: d("2026-01-03"),
                value: dec!(1100),
                flow: dec!(0),
            },
            Observation {
                date: d("2026-01-04"),
                value: dec!(600),
                flow: dec!(-500),
            },
            Observation {
                date: d("2026-01-05"),
                value: dec!(600),
                flow: dec!(0),
            },
        ])
        .unwrap();
        assert_eq!(
            (twr.cumulative, twr.subperiods, twr.annualized),
            (dec!(0.1), 3, None)
        );
        let loss = time_weighted(&[
            Observation {
                date: d("2025-01-01"),
                value: dec!(100),
                flow: dec!(0),
            },
            Observation {
                date: d("2026-01-01"),
                value: dec!(0),
                flow: dec!(0),
            },
        ])
        .unwrap();
        assert_eq!((loss.cumulative, loss.annualized), (dec!(-1), None));
    }

    #[test]
    fn inputs_that_have_no_return_are_refused_with_the_reason() {
        let one = [Observation {
            date: d("2026-01-01"),
            value: dec!(1),
            flow: dec!(0),
        }];
        assert_eq!(
            time_weighted(&one),
            Err(PerformanceError::TooFewObservations)
        );
        let backwards = [
            one[0],
            Observation {
                date: d("2025-12-31"),
                ..one[0]
            },
        ];
        assert_eq!(
            time_weighted(&backwards),
            Err(PerformanceError::DatesOutOfOrder(d("2025-12-31")))
        );
        let from_nothing = [
            Observation {
                date: d("2026-01-01"),
                value: dec!(0),
                flow: dec!(0),
            },
            Observation {
                date: d("2026-01-02"),
                value: dec!(5),
                flow: dec!(0),
            },
        ];
        assert_eq!(
            time_weighted(&from_nothing),
            Err(PerformanceError::ValueWithoutCapital(d("2026-01-02")))
        );
        let paid_in_only = [CashFlow {
            date: d("2026-01-01"),
            amount: dec!(-5),
        }];
        assert_eq!(xirr(&paid_in_only), Err(PerformanceError::OneSidedFlows));
    }
}
