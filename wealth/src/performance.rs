//! Performance: how accounts (one, or a client's across every custodian) did over a period, in
//! one currency.
//!
//! Every calendar day of the period is valued as [`crate::valuation`] values it
//! (`model::wealth::series`); external flows are the booked deposits, withdrawals and
//! transfers (trades, income and fees are part of the return), converted at their day's
//! rates. The time-weighted return links the daily sub-periods; the money-weighted return is
//! the XIRR of the start value, the flows and the end value (`model::wealth::performance`).
//! A day that cannot be valued makes both returns `None` with the reason: a return is never
//! computed over a gap. Exact decimals; `*_presented` and `*_percent` figures are rounded half
//! to even.

use chrono::NaiveDate;
use eam_model::domain::Currency;
use eam_model::wealth::fx::RateBook;
use eam_model::wealth::performance::{MWR_METHOD, TWR_METHOD, money_weighted, time_weighted};
use eam_model::wealth::series::{self, Closing, Flow, SnapshotValue};
use eam_model::wealth::valuation::present;
use eam_store::TenantTx;
use eam_store::read::AccountRow;
use eam_store::snapshots::{self, ClosingPoint, FlowRow, SnapshotSum};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use uuid::Uuid;

use crate::WealthError;

/// The longest period one answer values (ten years of days).
pub const MAX_DAYS: i64 = 3_660;

/// A period to measure: from the end of `from` to the end of `to`, `from` before `to`, at most
/// [`MAX_DAYS`] long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    from: NaiveDate,
    to: NaiveDate,
}

impl Period {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Period, WealthError> {
        if from >= to {
            return Err(WealthError::PeriodOrder { from, to });
        }
        if (to - from).num_days() > MAX_DAYS {
            return Err(WealthError::PeriodTooLong);
        }
        Ok(Period { from, to })
    }

    pub fn from(&self) -> NaiveDate {
        self.from
    }

    pub fn to(&self) -> NaiveDate {
        self.to
    }
}

/// An external flow: money into (+) or out of (-) the portfolio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowLine {
    pub date: NaiveDate,
    pub account_id: Uuid,
    pub custodian: String,
    /// `deposit`, `withdrawal` or `transfer`.
    pub kind: String,
    /// In the account's currency, + in, - out.
    pub amount: Decimal,
    /// As booked.
    pub currency: String,
    /// In the performance currency at the day's rates; `None` when it cannot be converted.
    pub value: Option<Decimal>,
    pub counterparty: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeWeightedReturn {
    /// Over the period (0.0342 = 3.42 %).
    pub cumulative: Decimal,
    /// In percent, rounded half to even to 2 places (basis points).
    pub cumulative_percent: Decimal,
    /// Per year, for periods of 365 days or more.
    pub annualized: Option<Decimal>,
    /// Daily sub-periods linked (those with capital invested).
    pub subperiods: u32,
    pub days: i64,
    pub method: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MoneyWeightedReturn {
    /// The annual internal rate of return (0.05 = 5 % a year).
    pub annual_rate: Decimal,
    /// In percent, rounded half to even to 2 places (basis points).
    pub annual_percent: Decimal,
    pub method: &'static str,
}

/// The value at the end of a day, that day's flows included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyValue {
    pub date: NaiveDate,
    pub value: Decimal,
    /// The day's net external flow.
    pub flow: Decimal,
}

/// How the accounts did over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Performance {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub currency: Currency,
    pub accounts: usize,
    /// At the end of `from`; `None` when a day cannot be valued.
    pub start_value: Option<Decimal>,
    pub end_value: Option<Decimal>,
    pub end_value_presented: Option<Decimal>,
    /// The flows' sum in the performance currency (`None` when one cannot be converted).
    pub net_flows: Option<Decimal>,
    /// `None` with `reasons` when the period cannot be valued.
    pub time_weighted: Option<TimeWeightedReturn>,
    /// `None` with `reasons` when the period cannot be valued or the flows admit no rate.
    pub money_weighted: Option<MoneyWeightedReturn>,
    /// Why a figure is `None`, each reason once, in the order met.
    pub reasons: Vec<String>,
    /// True when any rate used is stale.
    pub stale: bool,
    /// Booked after `from`, up to `to`, by date.
    pub flows: Vec<FlowLine>,
    /// Every day from `from` to `to` (empty when the period cannot be valued).
    pub daily: Vec<DailyValue>,
}

/// What was read for a period.
struct Read {
    sums: Vec<SnapshotSum>,
    closings: Vec<ClosingPoint>,
    flows: Vec<FlowRow>,
}

/// Measures `accounts` over `period` in `currency`, reading on `tx` (the caller has decided the
/// accounts may be read); rates are stale after `stale_after` business days.
pub async fn measure(
    tx: &mut TenantTx,
    accounts: &[AccountRow],
    period: Period,
    currency: Currency,
    stale_after: u32,
) -> Result<Performance, WealthError> {
    let (from, to) = (period.from, period.to);
    let ids: Vec<Uuid> = accounts.iter().map(|a| a.id).collect();
    let book = crate::rates::tenant_book(tx, from, to, stale_after).await?;
    let read = Read {
        sums: snapshots::snapshot_sums(tx, &ids, from, to).await?,
        closings: snapshots::closings_until(tx, &ids, to).await?,
        flows: snapshots::external_flows(tx, &ids, from, to).await?,
    };
    compute(&book, accounts, read, period, currency)
}

/// The reasons a figure is missing, each once.
#[derive(Default)]
struct Reasons(Vec<String>);

impl Reasons {
    fn note(&mut self, reason: String) {
        if !self.0.contains(&reason) {
            self.0.push(reason);
        }
    }
}

/// The performance of what was read: pure, so its arithmetic is tested without a database.
fn compute(
    book: &RateBook,
    accounts: &[AccountRow],
    read: Read,
    period: Period,
    currency: Currency,
) -> Result<Performance, WealthError> {
    let (from, to) = (period.from, period.to);
    let mut reasons = Reasons::default();
    let held = snapshot_values(read.sums);
    let cash = known_closings(read.closings, &mut reasons);
    let (flows, listed) = external_flows(read.flows, accounts, book, currency, &mut reasons);
    let net_flows = listed.iter().map(|f| f.value).sum::<Option<Decimal>>();

    let mut answer = Performance {
        from,
        to,
        currency,
        accounts: accounts.len(),
        start_value: None,
        end_value: None,
        end_value_presented: None,
        net_flows,
        time_weighted: None,
        money_weighted: None,
        reasons: Vec::new(),
        stale: false,
        flows: listed,
        daily: Vec::new(),
    };
    match series::daily(&held, &cash, &flows, book, currency, from, to) {
        Err(gap) => reasons.note(format!("the period cannot be valued: {gap}")),
        Ok(series) => {
            answer.stale = series.stale;
            let (first, last) = match series.days.as_slice() {
                [first, .., last] => (*first, *last),
                _ => return Err(WealthError::Invariant("a period of one day")),
            };
            answer.start_value = Some(first.value);
            answer.end_value = Some(last.value);
            answer.end_value_presented = Some(present(last.value, currency));
            match time_weighted(&series.days) {
                Ok(twr) => {
                    answer.time_weighted = Some(TimeWeightedReturn {
                        cumulative: twr.cumulative,
                        cumulative_percent: percent(twr.cumulative),
                        annualized: twr.annualized,
                        subperiods: u32::try_from(twr.subperiods).unwrap_or(u32::MAX),
                        days: twr.days,
                        method: TWR_METHOD,
                    })
                }
                Err(e) => reasons.note(format!("time-weighted return: {e}")),
            }
            let day_flows: Vec<(NaiveDate, Decimal)> = series.days[1..]
                .iter()
                .filter(|d| !d.flow.is_zero())
                .map(|d| (d.date, d.flow))
                .collect();
            match money_weighted((from, first.value), &day_flows, (to, last.value)) {
                Ok(rate) => {
                    answer.money_weighted = Some(MoneyWeightedReturn {
                        annual_rate: rate,
                        annual_percent: percent(rate),
                        method: MWR_METHOD,
                    })
                }
                Err(e) => reasons.note(format!("money-weighted return: {e}")),
            }
            answer.daily = series
                .days
                .iter()
                .map(|d| DailyValue {
                    date: d.date,
                    value: d.value,
                    flow: d.flow,
                })
                .collect();
        }
    }
    answer.reasons = reasons.0;
    Ok(answer)
}

/// A rate in percent, rounded half to even to 2 places (basis points).
fn percent(rate: Decimal) -> Decimal {
    (rate * Decimal::ONE_HUNDRED).round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

/// The snapshots' sums as the series reads them (an unknown currency stays `None`: the series
/// says which day it cannot value).
fn snapshot_values(sums: Vec<SnapshotSum>) -> Vec<SnapshotValue> {
    sums.into_iter()
        .map(|p| SnapshotValue {
            account: p.account_id,
            date: p.as_of,
            currency: p.currency.and_then(|c| Currency::parse(c.trim()).ok()),
            value: p.value,
            unpriced: (p.unpriced > 0).then(|| {
                format!(
                    "{} position(s) such as {}",
                    p.unpriced,
                    p.unpriced_name.unwrap_or_default()
                )
            }),
        })
        .collect()
}

/// The closing balances in known currencies; each other one is a reason.
fn known_closings(closings: Vec<ClosingPoint>, reasons: &mut Reasons) -> Vec<Closing> {
    let mut cash = Vec::with_capacity(closings.len());
    for c in closings {
        match Currency::parse(&c.currency) {
            Ok(currency) => cash.push(Closing {
                account: c.account_id,
                date: c.as_of,
                currency,
                amount: c.amount,
            }),
            Err(_) => reasons.note(format!(
                "a balance in '{}' is not in a known currency",
                c.currency
            )),
        }
    }
    cash
}

/// The flows the series nets (those in a known currency) and every flow as listed, each
/// converted at its day's rates (a flow that cannot be converted is a reason).
fn external_flows(
    rows: Vec<FlowRow>,
    accounts: &[AccountRow],
    book: &RateBook,
    currency: Currency,
    reasons: &mut Reasons,
) -> (Vec<Flow>, Vec<FlowLine>) {
    let custodian = |id: Uuid| {
        accounts
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.custodian.clone())
            .unwrap_or_default()
    };
    let mut flows = Vec::with_capacity(rows.len());
    let mut listed = Vec::with_capacity(rows.len());
    for f in rows {
        let value = match Currency::parse(&f.currency) {
            Ok(c) => {
                flows.push(Flow {
                    date: f.booking_date,
                    currency: c,
                    amount: f.signed_amount,
                });
                match book.conversion(c, currency, f.booking_date) {
                    Ok(conv) => Some(conv.apply(f.signed_amount)),
                    Err(e) => {
                        reasons.note(e.to_string());
                        None
                    }
                }
            }
            Err(_) => {
                reasons.note(format!(
                    "a flow in '{}' is not in a known currency",
                    f.currency
                ));
                None
            }
        };
        listed.push(FlowLine {
            date: f.booking_date,
            account_id: f.account_id,
            custodian: custodian(f.account_id),
            kind: f.kind,
            amount: f.signed_amount,
            currency: f.currency,
            value,
            counterparty: f.counterparty,
            description: f.description,
        });
    }
    (flows, listed)
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

    fn account() -> AccountRow {
        AccountRow {
            id: Uuid::from_u128(1),
            connection_id: Uuid::from_u128(2),
            custodian: "bank_a".into(),
            client_id: None,
            client_reference: None,
            client_name: None,
            client_source: None,
            bank_account_id: "A1".into(),
            iban: None,
            currency: "EUR".into(),
            kind: "custody".into(),
        }
    }

    fn closing(d: u32, currency: &str, amount: &str) -> ClosingPoint {
        ClosingPoint {
            account_id: Uuid::from_u128(1),
            as_of: day(d),
            currency: currency.to_owned(),
            amount: dec(amount),
        }
    }

    fn deposit(d: u32, currency: &str, amount: &str) -> FlowRow {
        FlowRow {
            id: Uuid::from_u128(u128::from(d)),
            account_id: Uuid::from_u128(1),
            booking_date: day(d),
            kind: "deposit".into(),
            signed_amount: dec(amount),
            currency: currency.to_owned(),
            counterparty: None,
            description: None,
        }
    }

    fn book() -> RateBook {
        let mut book = RateBook::new(3);
        book.add(EurRate {
            currency: currency("USD"),
            date: day(2),
            per_eur: dec("1.25"),
            source: RateSource::Ecb,
        })
        .expect("a positive rate");
        book
    }

    #[test]
    fn a_period_must_end_after_it_starts_and_be_at_most_ten_years_long() {
        assert_eq!(
            Period::new(day(3), day(3)).map_err(|e| e.to_string()),
            Err("from (2026-03-03) must be before to (2026-03-03)".to_owned())
        );
        let long = day(2) + chrono::Duration::days(MAX_DAYS + 1);
        assert_eq!(
            Period::new(day(2), long).map_err(|e| e.to_string()),
            Err("the period is longer than 3660 days: ask for shorter ones".to_owned())
        );
        let longest = day(2) + chrono::Duration::days(MAX_DAYS);
        assert!(Period::new(day(2), longest).is_ok());
    }

    #[test]
    fn a_deposit_is_a_flow_not_a_return() {
        // 100 EUR at the end of the 2nd, 100.01 on the 3rd (+0.01 %), a 50 EUR deposit on the
        // 4th and nothing else (150.01).
        let read = Read {
            sums: Vec::new(),
            closings: vec![
                closing(2, "EUR", "100"),
                closing(3, "EUR", "100.01"),
                closing(4, "EUR", "150.01"),
            ],
            flows: vec![deposit(4, "EUR", "50")],
        };
        let period = Period::new(day(2), day(4)).expect("a period");
        let p = compute(&book(), &[account()], read, period, Currency::EUR).expect("measured");
        assert_eq!(p.reasons, Vec::<String>::new());
        assert_eq!(
            (p.start_value, p.end_value, p.net_flows),
            (Some(dec("100")), Some(dec("150.01")), Some(dec("50")))
        );
        let twr = p.time_weighted.expect("a time-weighted return");
        assert_eq!(twr.cumulative, dec("0.0001"));
        assert_eq!((twr.cumulative_percent, twr.days), (dec("0.01"), 2));
        // 100 (1 + r)^(2/365) + 50 = 150.01: r = 1.0001^182.5 - 1 = 1.84 % a year.
        let mwr = p.money_weighted.expect("a money-weighted return");
        assert_eq!(mwr.annual_percent, dec("1.84"));
        let daily: Vec<_> = p.daily.iter().map(|d| (d.date, d.value, d.flow)).collect();
        assert_eq!(
            daily,
            [
                (day(2), dec("100"), dec("0")),
                (day(3), dec("100.01"), dec("0")),
                (day(4), dec("150.01"), dec("50")),
            ]
        );
        assert_eq!(p.flows[0].custodian, "bank_a");
    }

    #[test]
    fn a_flow_without_a_rate_leaves_the_net_flows_unknown_with_the_reason() {
        let read = Read {
            sums: Vec::new(),
            closings: vec![closing(2, "EUR", "100"), closing(3, "XYZ", "1")],
            flows: vec![deposit(3, "AED", "10"), deposit(3, "USD", "12.5")],
        };
        let period = Period::new(day(2), day(3)).expect("a period");
        let p = compute(&book(), &[account()], read, period, Currency::EUR).expect("measured");
        let values: Vec<_> = p.flows.iter().map(|f| f.value).collect();
        assert_eq!(values, [None, Some(dec("10"))]);
        assert_eq!(p.net_flows, None);
        assert_eq!(p.time_weighted, None);
        assert_eq!(p.money_weighted, None);
        assert_eq!(p.daily, []);
        assert_eq!(
            p.reasons[0],
            "a balance in 'XYZ' is not in a known currency"
        );
        assert_eq!(p.reasons[1], "no AED rate on or before 2026-03-03");
        assert!(
            p.reasons[2].starts_with("the period cannot be valued: "),
            "{:?}",
            p.reasons
        );
    }

    #[test]
    fn percents_round_half_to_even_to_basis_points() {
        assert_eq!(percent(dec("0.01235")), dec("1.24"));
        assert_eq!(percent(dec("0.01245")), dec("1.24"));
        assert_eq!(percent(dec("0.012451")), dec("1.25"));
        assert_eq!(percent(dec("-0.00005")), dec("-0.00"));
    }
}
