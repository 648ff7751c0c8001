//! Valuation: what an account or a client's accounts across every custodian are worth, as of
//! a date, in one currency (the client's reporting currency unless `currency=` says another).
//!
//! Positions are valued in their price currency (`model::wealth::valuation`), cash at its
//! latest closing balance on or before the date; each figure is converted through EUR with the
//! rates of `GET /fx-rates` and carries the rate, its date and source. A figure that cannot be
//! valued or converted is `null` with the reason, and the total is then `null` too: a partial
//! sum is never presented as the whole. Decimal throughout; `*_presented` figures are rounded
//! half to even to the currency's minor unit, the others are exact.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use eam_model::domain::Currency;
use eam_model::records::PriceType;
use eam_model::wealth::fx::RateBook;
use eam_model::wealth::valuation::{Holding, present};
use eam_store::read::{self, AccountRow};
use eam_store::snapshots::{ClosingPoint, PositionLine};
use eam_store::{AccountId, TenantTx};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use rust_decimal::Decimal;
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
    rate: Decimal,
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
    quantity: Option<Decimal>,
    price: Option<Decimal>,
    price_type: Option<String>,
    /// The figure's own currency (price currency, or the balance's).
    local_currency: Option<String>,
    /// Value in the local currency (accrued interest included); null when it cannot be valued.
    local_value: Option<Decimal>,
    /// `price`, `bank_market_value` or `balance`.
    basis: Option<String>,
    /// Value in the valuation currency; null when it cannot be valued or converted.
    value: Option<Decimal>,
    fx: Option<Fx>,
    /// Why `value` is null.
    reason: Option<String>,
}

/// A share of the total.
#[derive(Object)]
struct Slice {
    key: String,
    value: Decimal,
    /// Of the total, 0..1 (null when the total is).
    weight: Option<Decimal>,
}

#[derive(Object)]
struct Valuation {
    as_of: NaiveDate,
    currency: String,
    /// Null when any line could not be valued or converted (see `lines[].reason`).
    total: Option<Decimal>,
    total_presented: Option<Decimal>,
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

pub(crate) fn parse_currency(code: &str) -> Result<Currency, ApiError> {
    Currency::parse(code).map_err(|_| {
        ApiError::bad_request(format!("currency: '{code}' is not an ISO 4217 currency"))
    })
}

impl ValuationApi {
    async fn value(
        &self,
        tx: &mut TenantTx,
        accounts: Vec<AccountRow>,
        as_of: NaiveDate,
        currency: Currency,
    ) -> Result<Valuation, ApiError> {
        let book = crate::routes::fx_rates::rate_book(&self.0, tx.conn(), as_of).await?;
        let ids: Vec<Uuid> = accounts.iter().map(|a| a.id).collect();
        // Two statements whatever the number of accounts: each one's latest snapshot and
        // latest closing balance per currency on or before the date.
        let positions = eam_store::snapshots::positions_as_of(tx, &ids, as_of).await?;
        let closings = eam_store::snapshots::closings_as_of(tx, &ids, as_of).await?;
        let mut lines = Vec::with_capacity(positions.len() + closings.len());
        let count = accounts.len();
        for account in &accounts {
            value_account(
                &book,
                account,
                positions.iter().filter(|p| p.account_id == account.id),
                closings.iter().filter(|c| c.account_id == account.id),
                (as_of, currency),
                &mut lines,
            );
        }
        let complete = lines.iter().all(|l| l.value.is_some());
        let total = complete.then(|| lines.iter().filter_map(|l| l.value).sum::<Decimal>());
        let slices = |key: &dyn Fn(&Line) -> String| -> Vec<Slice> {
            let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
            for l in &lines {
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
        };
        let by_asset_class = slices(&|l| l.asset_class.clone());
        let by_currency = slices(&|l| l.local_currency.clone().unwrap_or_default());
        let by_custodian = slices(&|l| l.custodian.clone());
        Ok(Valuation {
            as_of,
            currency: currency.as_str().to_owned(),
            total,
            total_presented: total.map(|t| present(t, currency)),
            stale: lines.iter().any(|l| l.fx.as_ref().is_some_and(|f| f.stale)),
            accounts: count,
            lines,
            by_asset_class,
            by_currency,
            by_custodian,
            rounding:
                "figures exact; *_presented rounded half to even to the currency's minor unit"
                    .into(),
        })
    }
}

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
            kind: "position".into(),
            security_name: Some(p.security_name.clone()),
            isin: p.isin.clone(),
            asset_class: p.asset_class.clone(),
            as_of: p.as_of,
            quantity: Some(p.quantity),
            price: p.price,
            price_type: Some(p.price_type.clone()),
            local_currency,
            local_value,
            basis: valued.map(|v| v.basis.as_str().to_owned()),
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
            kind: "cash".into(),
            security_name: None,
            isin: None,
            asset_class: "cash".into(),
            as_of: c.as_of,
            quantity: None,
            price: None,
            price_type: None,
            local_currency: Some(c.currency.clone()),
            local_value: Some(c.amount),
            basis: Some("balance".into()),
            value,
            fx,
            reason,
        });
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
    let currency = account_currency(tx, &account, requested).await?;
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
    let currency = match requested {
        Some(c) => c,
        None => parse_currency(client.reporting_currency.as_deref().unwrap_or("EUR"))?,
    };
    Ok((read::accounts(tx, Some(id)).await?, currency))
}

/// The currency an account's figures are in: the one asked for, else its client's reporting
/// currency, else the account's own.
pub(crate) async fn account_currency(
    tx: &mut TenantTx,
    account: &AccountRow,
    requested: Option<Currency>,
) -> Result<Currency, ApiError> {
    if let Some(c) = requested {
        return Ok(c);
    }
    let reporting = match account.client_id {
        Some(client) => {
            eam_store::clients::get(tx, client)
                .await?
                .reporting_currency
        }
        None => None,
    };
    parse_currency(reporting.as_deref().unwrap_or(account.currency.trim()))
}

#[OpenApi(tag = "crate::Tag::Portfolio")]
impl ValuationApi {
    /// An account's valuation as of `as_of` (default today: its latest snapshot), in
    /// `currency` (default: its client's reporting currency, else the account's).
    #[oai(path = "/accounts/:id/valuation", method = "get")]
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
            self.value(&mut tx, vec![account], as_of, currency).await?,
        ))
    }

    /// A client's consolidated valuation across every custodian as of `as_of` (default
    /// today), in `currency` (default: the client's reporting currency, else EUR).
    #[oai(path = "/clients/:id/valuation", method = "get")]
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
        Ok(Json(self.value(&mut tx, accounts, as_of, currency).await?))
    }
}
