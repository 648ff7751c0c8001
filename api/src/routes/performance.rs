//! Performance: how an account or a client's accounts across every custodian did over a
//! period, in one currency (the client's reporting currency unless `currency=` says another).
//!
//! The figures are `eam_wealth::performance`'s (the reports print the same): every day valued
//! as `GET .../valuation?as_of=` values it, external flows (deposits, withdrawals, transfers)
//! apart from the return, the time-weighted and money-weighted returns. This route decides who
//! may see which accounts, reads the parameters and answers in JSON. A day that cannot be
//! valued makes both returns `null` with the reason. Exact decimals; `*_presented` figures are
//! rounded half to even.

use crate::decimal::Dec;
use chrono::{NaiveDate, Utc};
use eam_model::domain::Currency;
use eam_store::TenantTx;
use eam_store::read::AccountRow;
use eam_wealth::performance::{self as wealth, Period};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::routes::valuation::{parse_currency, scoped_account, scoped_client};
use crate::state::ApiState;

pub struct PerformanceApi(pub ApiState);

/// An external flow: money into (+) or out of (-) the portfolio.
#[derive(Object)]
struct FlowLine {
    date: NaiveDate,
    account_id: Uuid,
    custodian: String,
    /// `deposit`, `withdrawal` or `transfer`.
    kind: String,
    /// In the account's currency, + in, - out.
    amount: Dec,
    currency: String,
    /// In the performance currency at the day's rates; null when it cannot be converted.
    value: Option<Dec>,
    counterparty: Option<String>,
    description: Option<String>,
}

#[derive(Object)]
struct TimeWeightedReturn {
    /// Over the period (0.0342 = 3.42 %).
    cumulative: Dec,
    /// In percent, rounded half to even to 2 places (basis points).
    cumulative_percent: Dec,
    /// Per year, for periods of 365 days or more.
    annualized: Option<Dec>,
    /// Daily sub-periods linked (those with capital invested).
    subperiods: u32,
    days: i64,
    method: String,
}

#[derive(Object)]
struct MoneyWeightedReturn {
    /// The annual internal rate of return (0.05 = 5 % a year).
    annual_rate: Dec,
    /// In percent, rounded half to even to 2 places (basis points).
    annual_percent: Dec,
    method: String,
}

/// The value at the end of a day, that day's flows included.
#[derive(Object)]
struct DailyValue {
    date: NaiveDate,
    value: Dec,
    /// The day's net external flow.
    flow: Dec,
}

#[derive(Object)]
struct Performance {
    from: NaiveDate,
    to: NaiveDate,
    currency: String,
    accounts: usize,
    /// At the end of `from`; null when a day cannot be valued.
    start_value: Option<Dec>,
    end_value: Option<Dec>,
    end_value_presented: Option<Dec>,
    /// The flows' sum in the performance currency (null when one cannot be converted).
    net_flows: Option<Dec>,
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

/// The period asked for: `to` defaults to today; `from` is required and before `to`, at most
/// `eam_wealth::MAX_DAYS` earlier.
fn period(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Period, ApiError> {
    let to = to.unwrap_or_else(|| Utc::now().date_naive());
    let from = from.ok_or_else(|| ApiError::bad_request("from: required (YYYY-MM-DD)"))?;
    Ok(Period::new(from, to)?)
}

impl From<wealth::FlowLine> for FlowLine {
    fn from(f: wealth::FlowLine) -> Self {
        FlowLine {
            date: f.date,
            account_id: f.account_id,
            custodian: f.custodian,
            kind: f.kind,
            amount: Dec(f.amount),
            currency: f.currency,
            value: f.value.map(Dec),
            counterparty: f.counterparty,
            description: f.description,
        }
    }
}

impl From<wealth::TimeWeightedReturn> for TimeWeightedReturn {
    fn from(t: wealth::TimeWeightedReturn) -> Self {
        TimeWeightedReturn {
            cumulative: Dec(t.cumulative),
            cumulative_percent: Dec(t.cumulative_percent),
            annualized: t.annualized.map(Dec),
            subperiods: t.subperiods,
            days: t.days,
            method: t.method.to_owned(),
        }
    }
}

impl From<wealth::MoneyWeightedReturn> for MoneyWeightedReturn {
    fn from(m: wealth::MoneyWeightedReturn) -> Self {
        MoneyWeightedReturn {
            annual_rate: Dec(m.annual_rate),
            annual_percent: Dec(m.annual_percent),
            method: m.method.to_owned(),
        }
    }
}

impl From<wealth::DailyValue> for DailyValue {
    fn from(d: wealth::DailyValue) -> Self {
        DailyValue {
            date: d.date,
            value: Dec(d.value),
            flow: Dec(d.flow),
        }
    }
}

impl From<wealth::Performance> for Performance {
    fn from(p: wealth::Performance) -> Self {
        Performance {
            from: p.from,
            to: p.to,
            currency: p.currency.as_str().to_owned(),
            accounts: p.accounts,
            start_value: p.start_value.map(Dec),
            end_value: p.end_value.map(Dec),
            end_value_presented: p.end_value_presented.map(Dec),
            net_flows: p.net_flows.map(Dec),
            time_weighted: p.time_weighted.map(TimeWeightedReturn::from),
            money_weighted: p.money_weighted.map(MoneyWeightedReturn::from),
            reasons: p.reasons,
            stale: p.stale,
            flows: p.flows.into_iter().map(FlowLine::from).collect(),
            daily: p.daily.into_iter().map(DailyValue::from).collect(),
        }
    }
}

impl PerformanceApi {
    async fn measure(
        &self,
        tx: &mut TenantTx,
        accounts: &[AccountRow],
        period: Period,
        currency: Currency,
    ) -> Result<Performance, ApiError> {
        let measured =
            wealth::measure(tx, accounts, period, currency, self.0.fx_stale_after).await?;
        Ok(measured.into())
    }
}

#[OpenApi(tag = "crate::Tag::Portfolio")]
impl PerformanceApi {
    /// An account's time-weighted and money-weighted returns from the end of `from` to the
    /// end of `to` (default today), in `currency` (default: its client's reporting currency,
    /// else the account's), with its external flows and daily values.
    #[oai(
        path = "/accounts/:id/performance",
        method = "get",
        operation_id = "account_performance"
    )]
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
            self.measure(&mut tx, &[account], period, currency).await?,
        ))
    }

    /// A client's returns across every custodian from the end of `from` to the end of `to`
    /// (default today), in `currency` (default: the client's reporting currency, else EUR),
    /// with the external flows and daily values.
    #[oai(
        path = "/clients/:id/performance",
        method = "get",
        operation_id = "client_performance"
    )]
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
            self.measure(&mut tx, &accounts, period, currency).await?,
        ))
    }
}
