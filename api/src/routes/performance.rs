//! Performance: how an account or a client's accounts across every custodian did over a
//! period, in one currency (the client's reporting currency unless `currency=` says another).
//!
//! Every calendar day of the period is valued as `GET .../valuation?as_of=` values it
//! (`model::wealth::series`); external flows are the booked deposits, withdrawals and
//! transfers (trades, income and fees are part of the return), converted at their day's
//! rates. The time-weighted return links the daily sub-periods; the money-weighted return is
//! the XIRR of the start value, the flows and the end value (`model::wealth::performance`).
//! A day that cannot be valued makes both returns `null` with the reason: a return is never
//! computed over a gap. Exact decimals; `*_presented` figures are rounded half to even.

use chrono::{NaiveDate, Utc};
use eam_model::domain::Currency;
use eam_model::wealth::performance::{MWR_METHOD, TWR_METHOD, money_weighted, time_weighted};
use eam_model::wealth::series::{self, Closing, Flow, SnapshotValue};
use eam_model::wealth::valuation::present;
use eam_store::TenantTx;
use eam_store::read::AccountRow;
use eam_store::snapshots;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use rust_decimal::{Decimal, RoundingStrategy};
use uuid::Uuid;

use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::routes::valuation::{parse_currency, scoped_account, scoped_client};
use crate::state::ApiState;

pub struct PerformanceApi(pub ApiState);

/// The longest period one request values (ten years of days).
const MAX_DAYS: i64 = 3_660;

/// An external flow: money into (+) or out of (-) the portfolio.
#[derive(Object)]
struct FlowLine {
    date: NaiveDate,
    account_id: Uuid,
    custodian: String,
    /// `deposit`, `withdrawal` or `transfer`.
    kind: String,
    /// In the account's currency, + in, - out.
    amount: Decimal,
    currency: String,
    /// In the performance currency at the day's rates; null when it cannot be converted.
    value: Option<Decimal>,
    counterparty: Option<String>,
    description: Option<String>,
}

#[derive(Object)]
struct TimeWeightedReturn {
    /// Over the period (0.0342 = 3.42 %).
    cumulative: Decimal,
    /// In percent, rounded half to even to 2 places (basis points).
    cumulative_percent: Decimal,
    /// Per year, for periods of 365 days or more.
    annualized: Option<Decimal>,
    /// Daily sub-periods linked (those with capital invested).
    subperiods: u32,
    days: i64,
    method: String,
}

#[derive(Object)]
struct MoneyWeightedReturn {
    /// The annual internal rate of return (0.05 = 5 % a year).
    annual_rate: Decimal,
    /// In percent, rounded half to even to 2 places (basis points).
    annual_percent: Decimal,
    method: String,
}

/// The value at the end of a day, that day's flows included.
#[derive(Object)]
struct DailyValue {
    date: NaiveDate,
    value: Decimal,
    /// The day's net external flow.
    flow: Decimal,
}

#[derive(Object)]
struct Performance {
    from: NaiveDate,
    to: NaiveDate,
    currency: String,
    accounts: usize,
    /// At the end of `from`; null when a day cannot be valued.
    start_value: Option<Decimal>,
    end_value: Option<Decimal>,
    end_value_presented: Option<Decimal>,
    /// The flows' sum in the performance currency (null when one cannot be converted).
    net_flows: Option<Decimal>,
    /// Null with `reasons` when the period cannot be valued.
    time_weighted: Option<TimeWeightedReturn>,
    /// Null with `reasons` when the period cannot be valued or the flows admit no rate.
    money_weighted: Option<MoneyWeightedReturn>,
    /// Why a figure is null.
    reasons: Vec<String>,
    /// True when any rate used is stale.
    stale: bool,
    /// Booked after `from`, up to `to`.
    flows: Vec<FlowLine>,
    daily: Vec<DailyValue>,
}

fn percent(rate: Decimal) -> Decimal {
    (rate * Decimal::ONE_HUNDRED).round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

/// The period asked for: `to` defaults to today; `from` is required and before `to`.
fn period(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let to = to.unwrap_or_else(|| Utc::now().date_naive());
    let from = from.ok_or_else(|| ApiError::bad_request("from: required (YYYY-MM-DD)"))?;
    if from >= to {
        return Err(ApiError::bad_request(format!(
            "from ({from}) must be before to ({to})"
        )));
    }
    if (to - from).num_days() > MAX_DAYS {
        return Err(ApiError::bad_request(format!(
            "the period is longer than {MAX_DAYS} days: ask for shorter ones"
        )));
    }
    Ok((from, to))
}

impl PerformanceApi {
    async fn measure(
        &self,
        tx: &mut TenantTx,
        accounts: Vec<AccountRow>,
        (from, to): (NaiveDate, NaiveDate),
        currency: Currency,
    ) -> Result<Performance, ApiError> {
        let ids: Vec<Uuid> = accounts.iter().map(|a| a.id).collect();
        let book = crate::routes::fx_rates::rate_book_over(&self.0, tx.conn(), from, to).await?;
        let sums = snapshots::snapshot_sums(tx, &ids, from, to).await?;
        let closings = snapshots::closings_until(tx, &ids, to).await?;
        let flow_rows = snapshots::external_flows(tx, &ids, from, to).await?;
        let mut reasons = Vec::new();
        let mut note = |reason: String| {
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        };

        let held: Vec<SnapshotValue> = sums
            .into_iter()
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
            .collect();
        let mut cash = Vec::with_capacity(closings.len());
        for c in closings {
            match Currency::parse(&c.currency) {
                Ok(currency) => cash.push(Closing {
                    account: c.account_id,
                    date: c.as_of,
                    currency,
                    amount: c.amount,
                }),
                Err(_) => note(format!(
                    "a balance in '{}' is not in a known currency",
                    c.currency
                )),
            }
        }
        let custodian = |id: Uuid| {
            accounts
                .iter()
                .find(|a| a.id == id)
                .map(|a| a.custodian.clone())
                .unwrap_or_default()
        };
        let mut flows = Vec::with_capacity(flow_rows.len());
        let mut listed = Vec::with_capacity(flow_rows.len());
        for f in flow_rows {
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
                            note(e.to_string());
                            None
                        }
                    }
                }
                Err(_) => {
                    note(format!(
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
        let net_flows = listed.iter().map(|f| f.value).sum::<Option<Decimal>>();

        let mut answer = Performance {
            from,
            to,
            currency: currency.as_str().to_owned(),
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
        match series::daily(&held, &cash, &flows, &book, currency, from, to) {
            Err(gap) => note(format!("the period cannot be valued: {gap}")),
            Ok(series) => {
                answer.stale = series.stale;
                let (first, last) = match series.days.as_slice() {
                    [first, .., last] => (*first, *last),
                    _ => return Err(ApiError::internal("a period of one day")),
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
                            method: TWR_METHOD.to_owned(),
                        })
                    }
                    Err(e) => note(format!("time-weighted return: {e}")),
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
                            method: MWR_METHOD.to_owned(),
                        })
                    }
                    Err(e) => note(format!("money-weighted return: {e}")),
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
        answer.reasons = reasons;
        Ok(answer)
    }
}

#[OpenApi(tag = "crate::Tag::Portfolio")]
impl PerformanceApi {
    /// An account's time-weighted and money-weighted returns from the end of `from` to the
    /// end of `to` (default today), in `currency` (default: its client's reporting currency,
    /// else the account's), with its external flows and daily values.
    #[oai(path = "/accounts/:id/performance", method = "get")]
    async fn account(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
        from: Query<Option<NaiveDate>>,
        to: Query<Option<NaiveDate>>,
        currency: Query<Option<String>>,
    ) -> Result<Json<Performance>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ReadPortfolio).await?;
        let requested = currency.0.as_deref().map(parse_currency).transpose()?;
        let period = period(from.0, to.0)?;
        let (account, currency) = scoped_account(&caller, &mut tx, id.0, requested).await?;
        Ok(Json(
            self.measure(&mut tx, vec![account], period, currency)
                .await?,
        ))
    }

    /// A client's returns across every custodian from the end of `from` to the end of `to`
    /// (default today), in `currency` (default: the client's reporting currency, else EUR),
    /// with the external flows and daily values.
    #[oai(path = "/clients/:id/performance", method = "get")]
    async fn client(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
        from: Query<Option<NaiveDate>>,
        to: Query<Option<NaiveDate>>,
        currency: Query<Option<String>>,
    ) -> Result<Json<Performance>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ReadPortfolio).await?;
        let requested = currency.0.as_deref().map(parse_currency).transpose()?;
        let period = period(from.0, to.0)?;
        let (accounts, currency) = scoped_client(&caller, &mut tx, id.0, requested).await?;
        Ok(Json(
            self.measure(&mut tx, accounts, period, currency).await?,
        ))
    }
}
