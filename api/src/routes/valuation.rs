//! Valuation: what an account or a client's accounts across every custodian are worth, as of
//! a date, in one currency (the client's reporting currency unless `currency=` says another).
//!
//! The figures are `eam_wealth::valuation`'s (the reports print the same); this route decides
//! who may see which accounts, reads the parameters and answers in JSON. A figure that cannot
//! be valued or converted is `null` with the reason, and the total is then `null` too.
//! `*_presented` figures are rounded half to even to the currency's minor unit, the others are
//! exact.

use crate::decimal::Dec;
use chrono::{NaiveDate, Utc};
use eam_model::domain::Currency;
use eam_store::read::{self, AccountRow};
use eam_store::{AccountId, TenantTx};
use eam_wealth::valuation as wealth;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use crate::caller::{BearerToken, Caller};
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::state::ApiState;

pub struct ValuationApi(pub ApiState);

/// The conversion a figure used.
#[derive(Object)]
struct Fx {
    /// What 1 unit of the figure's own currency is worth in the valuation currency.
    rate: Dec,
    /// The oldest EUR rate's date.
    date: Option<NaiveDate>,
    /// The EUR rates' sources (`ecb`, `bank:<custodian>`, `euro_fixed`).
    sources: Vec<String>,
    stale: bool,
}

/// One line of a valuation: a position or a cash balance.
#[derive(Object)]
struct Line {
    account_id: Uuid,
    custodian: String,
    /// `position` or `cash`.
    kind: String,
    /// The security (positions).
    security_name: Option<String>,
    isin: Option<String>,
    asset_class: String,
    /// The date of the snapshot or balance valued.
    as_of: NaiveDate,
    quantity: Option<Dec>,
    price: Option<Dec>,
    price_type: Option<String>,
    /// The figure's own currency (price currency, or the balance's).
    local_currency: Option<String>,
    /// Value in the local currency (accrued interest included); null when it cannot be valued.
    local_value: Option<Dec>,
    /// `price`, `bank_market_value` or `balance`.
    basis: Option<String>,
    /// Value in the valuation currency; null when it cannot be valued or converted.
    value: Option<Dec>,
    fx: Option<Fx>,
    /// Why `value` is null.
    reason: Option<String>,
}

/// A share of the total.
#[derive(Object)]
struct Slice {
    key: String,
    value: Dec,
    /// Of the total, 0..1 (null when the total is).
    weight: Option<Dec>,
}

#[derive(Object)]
struct Valuation {
    as_of: NaiveDate,
    currency: String,
    /// Null when any line could not be valued or converted (see `lines[].reason`).
    total: Option<Dec>,
    total_presented: Option<Dec>,
    /// True when any rate used is stale.
    stale: bool,
    accounts: usize,
    lines: Vec<Line>,
    by_asset_class: Vec<Slice>,
    by_currency: Vec<Slice>,
    by_custodian: Vec<Slice>,
    /// How figures are rounded.
    rounding: String,
}

/// The `currency` parameter.
pub(crate) fn parse_currency(code: &str) -> Result<Currency, ApiError> {
    Ok(eam_wealth::parse_currency(code)?)
}

impl From<wealth::Fx> for Fx {
    fn from(f: wealth::Fx) -> Self {
        Fx {
            rate: Dec(f.rate),
            date: f.date,
            sources: f.sources,
            stale: f.stale,
        }
    }
}

impl From<wealth::Line> for Line {
    fn from(l: wealth::Line) -> Self {
        Line {
            account_id: l.account_id,
            custodian: l.custodian,
            kind: l.kind.as_str().to_owned(),
            security_name: l.security_name,
            isin: l.isin,
            asset_class: l.asset_class,
            as_of: l.as_of,
            quantity: l.quantity.map(Dec),
            price: l.price.map(Dec),
            price_type: l.price_type,
            local_currency: l.local_currency,
            local_value: l.local_value.map(Dec),
            basis: l.basis.map(str::to_owned),
            value: l.value.map(Dec),
            fx: l.fx.map(Fx::from),
            reason: l.reason,
        }
    }
}

impl From<wealth::Slice> for Slice {
    fn from(s: wealth::Slice) -> Self {
        Slice {
            key: s.key,
            value: Dec(s.value),
            weight: s.weight.map(Dec),
        }
    }
}

fn slices(s: Vec<wealth::Slice>) -> Vec<Slice> {
    s.into_iter().map(Slice::from).collect()
}

impl From<wealth::Valuation> for Valuation {
    fn from(v: wealth::Valuation) -> Self {
        Valuation {
            as_of: v.as_of,
            currency: v.currency.as_str().to_owned(),
            total: v.total.map(Dec),
            total_presented: v.total_presented.map(Dec),
            stale: v.stale,
            accounts: v.accounts,
            lines: v.lines.into_iter().map(Line::from).collect(),
            by_asset_class: slices(v.by_asset_class),
            by_currency: slices(v.by_currency),
            by_custodian: slices(v.by_custodian),
            rounding: v.rounding.to_owned(),
        }
    }
}

impl ValuationApi {
    async fn value(
        &self,
        tx: &mut TenantTx,
        accounts: &[AccountRow],
        as_of: NaiveDate,
        currency: Currency,
    ) -> Result<Valuation, ApiError> {
        let valued = wealth::value(tx, accounts, as_of, currency, self.0.fx_stale_after).await?;
        Ok(valued.into())
    }
}

/// An account the caller may read (404 otherwise, also for another client's) and the currency
/// its figures are in.
pub(crate) async fn scoped_account(
    caller: &Caller,
    tx: &mut TenantTx,
    id: Uuid,
    requested: Option<Currency>,
) -> Result<(AccountRow, Currency), ApiError> {
    let account = read::account(tx, AccountId(id))
        .await
        .map_err(crate::problem::not_found("account", id))?;
    caller.require_client(account.client_id, "account", id)?;
    let currency = eam_wealth::account_currency(tx, &account, requested).await?;
    Ok((account, currency))
}

/// A client the caller may read (404 otherwise), its accounts at every custodian, and the
/// currency its figures are in: the one asked for, else its reporting currency, else EUR.
pub(crate) async fn scoped_client(
    caller: &Caller,
    tx: &mut TenantTx,
    id: Uuid,
    requested: Option<Currency>,
) -> Result<(Vec<AccountRow>, Currency), ApiError> {
    caller.require_client(Some(id), "client", id)?;
    let client = eam_store::clients::get(tx, id)
        .await
        .map_err(crate::problem::not_found("client", id))?;
    let currency = eam_wealth::client_currency(&client, requested)?;
    Ok((read::accounts(tx, Some(id)).await?, currency))
}

#[OpenApi(tag = "crate::Tag::Portfolio")]
impl ValuationApi {
    /// An account's valuation as of `as_of` (default today: its latest snapshot), in
    /// `currency` (default: its client's reporting currency, else the account's).
    #[oai(
        path = "/accounts/:id/valuation",
        method = "get",
        operation_id = "account_valuation"
    )]
    async fn account(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
        as_of: Query<Option<NaiveDate>>,
        currency: Query<Option<String>>,
    ) -> Result<Json<Valuation>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ReadPortfolio).await?;
        let requested = currency.0.as_deref().map(parse_currency).transpose()?;
        let (account, currency) = scoped_account(&caller, &mut tx, id.0, requested).await?;
        let as_of = as_of.0.unwrap_or_else(|| Utc::now().date_naive());
        Ok(Json(
            self.value(&mut tx, &[account], as_of, currency).await?,
        ))
    }

    /// A client's consolidated valuation across every custodian as of `as_of` (default
    /// today), in `currency` (default: the client's reporting currency, else EUR).
    #[oai(
        path = "/clients/:id/valuation",
        method = "get",
        operation_id = "client_valuation"
    )]
    async fn client(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
        as_of: Query<Option<NaiveDate>>,
        currency: Query<Option<String>>,
    ) -> Result<Json<Valuation>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ReadPortfolio).await?;
        let requested = currency.0.as_deref().map(parse_currency).transpose()?;
        let (accounts, currency) = scoped_client(&caller, &mut tx, id.0, requested).await?;
        let as_of = as_of.0.unwrap_or_else(|| Utc::now().date_naive());
        Ok(Json(self.value(&mut tx, &accounts, as_of, currency).await?))
    }
}
