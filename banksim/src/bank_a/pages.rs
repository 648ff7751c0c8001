//! bank_a documents: pure functions from the dataset and a request's parameters to a page.
//!
//! The HTTP layer only extracts parameters and serializes what these return, so a test can
//! walk every page the server would serve without a network. Paging is by offset into a
//! stable order (the dataset never changes while served), wrapped in an opaque cursor that
//! also names its listing: a cursor taken from one account's transactions is refused on
//! another's instead of silently skipping records. Values are written exactly as the
//! normalizer's bank_a parser reads them: decimals as strings, dates as `YYYY-MM-DD`, enum
//! spellings as the dataset holds them.

use std::ops::Range;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dataset::{Dataset, SimAccount, SimBalance, SimPosition, SimSecurity, SimTransaction};
use crate::error::ApiError;

/// Items per page when the request names no limit.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest page a request may ask for.
pub const MAX_LIMIT: usize = 1000;

/// The query parameters of the `/v1` endpoints, as received; empty values count as absent.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Params {
    pub(crate) cursor: Option<String>,
    pub(crate) limit: Option<String>,
    pub(crate) as_of: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
}

/// The value of a query parameter, with an empty value counted as absent.
pub(crate) fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

#[derive(Debug, Serialize)]
pub(crate) struct AccountsPage<'a> {
    pub(crate) accounts: Vec<WireAccount<'a>>,
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireAccount<'a> {
    account_id: &'a str,
    iban: Option<&'a str>,
    currency: &'a str,
    kind: &'a str,
    client_reference: &'a str,
    client_name: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct PositionsPage<'a> {
    pub(crate) account_id: &'a str,
    pub(crate) as_of: String,
    pub(crate) positions: Vec<WirePosition<'a>>,
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireSecurity<'a> {
    isin: Option<&'a str>,
    bank_security_id: &'a str,
    valor: Option<&'a str>,
    name: &'a str,
    asset_class: &'a str,
    currency: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct WirePosition<'a> {
    security: WireSecurity<'a>,
    quantity: String,
    quantity_type: &'a str,
    price: String,
    price_type: &'a str,
    price_currency: &'a str,
    market_value: String,
    accrued_interest: Option<String>,
    cost: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct BalancesDocument<'a> {
    pub(crate) account_id: &'a str,
    pub(crate) balances: Vec<WireBalance>,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireBalance {
    currency: &'static str,
    kind: &'static str,
    amount: String,
    as_of: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct TransactionsPage<'a> {
    pub(crate) account_id: &'a str,
    pub(crate) transactions: Vec<WireTransaction<'a>>,
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireSecurityRef<'a> {
    isin: Option<&'a str>,
    bank_security_id: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireTransaction<'a> {
    transaction_id: &'a str,
    booking_date: String,
    value_date: Option<String>,
    trade_date: Option<String>,
    settlement_date: Option<String>,
    #[serde(rename = "type")]
    kind: &'a str,
    bank_code: &'a str,
    amount: String,
    direction: &'a str,
    currency: &'a str,
    security: Option<WireSecurityRef<'a>>,
    quantity: Option<String>,
    price: Option<String>,
    fees: Option<String>,
    status: &'a str,
    counterparty: Option<&'a str>,
    description: Option<&'a str>,
}

fn decimal(value: Decimal) -> String {
    value.to_string()
}

fn date(value: NaiveDate) -> String {
    value.format("%Y-%m-%d").to_string()
}

fn wire_security(s: &SimSecurity) -> WireSecurity<'_> {
    WireSecurity {
        isin: s.isin.as_deref(),
        bank_security_id: &s.bank_security_id,
        valor: s.valor.as_deref(),
        name: &s.name,
        asset_class: s.asset_class,
        currency: s.currency,
    }
}

/// A position on the wire; `security` is the dataset's own copy of `p.security`, borrowed
/// for as long as the page lives (the position itself is computed per request).
fn wire_position<'a>(p: &SimPosition, security: &'a SimSecurity) -> WirePosition<'a> {
    WirePosition {
        security: wire_security(security),
        quantity: decimal(p.quantity),
        quantity_type: p.quantity_type,
        price: decimal(p.price),
        price_type: p.price_type,
        price_currency: p.price_currency,
        market_value: decimal(p.market_value),
        accrued_interest: p.accrued_interest.map(decimal),
        cost: decimal(p.cost),
    }
}

fn wire_balance(b: &SimBalance) -> WireBalance {
    WireBalance {
        currency: b.currency,
        kind: b.kind,
        amount: decimal(b.amount),
        as_of: date(b.as_of),
    }
}

fn wire_transaction(t: &SimTransaction) -> WireTransaction<'_> {
    WireTransaction {
        transaction_id: &t.transaction_id,
        booking_date: date(t.booking_date),
        value_date: t.value_date.map(date),
        trade_date: t.trade_date.map(date),
        settlement_date: t.settlement_date.map(date),
        kind: t.kind,
        bank_code: t.bank_code,
        amount: decimal(t.amount),
        direction: t.direction,
        currency: t.currency,
        security: t.security.as_deref().map(|s| WireSecurityRef {
            isin: s.isin.as_deref(),
            bank_security_id: &s.bank_security_id,
        }),
        quantity: t.quantity.map(decimal),
        price: t.price.map(decimal),
        fees: t.fees.map(decimal),
        status: t.status,
        counterparty: t.counterparty.as_deref(),
        description: t.description.as_deref(),
    }
}

/// `GET /v1/accounts`: the bank's accounts in id order.
pub(crate) fn accounts<'a>(
    dataset: &'a Dataset,
    params: &Params,
) -> Result<AccountsPage<'a>, ApiError> {
    let (window, next_cursor) = page("accounts", params, dataset.accounts.len())?;
    let accounts = dataset.accounts[window]
        .iter()
        .map(|a| WireAccount {
            account_id: &a.account_id,
            iban: a.iban.as_deref(),
            currency: a.currency,
            kind: a.kind,
            client_reference: &a.client_reference,
            client_name: &a.client_name,
        })
        .collect();
    Ok(AccountsPage {
        accounts,
        next_cursor,
    })
}

/// `GET /v1/accounts/{id}/positions`: holdings as of `as_of` (default: the end date).
pub(crate) fn positions<'a>(
    dataset: &'a Dataset,
    account_id: &str,
    params: &Params,
) -> Result<PositionsPage<'a>, ApiError> {
    let account = find_account(dataset, account_id)?;
    let end_date = dataset.params.end_date;
    let as_of = match present(&params.as_of) {
        Some(v) => parse_date("as_of", v)?,
        None => end_date,
    };
    if as_of > end_date {
        return Err(ApiError::BadRequest(format!(
            "as_of {as_of} is after the last business day {end_date}"
        )));
    }
    let holdings = dataset.positions_as_of(&account.account_id, as_of);
    let listing = format!("positions/{}/{as_of}", account.account_id);
    let (window, next_cursor) = page(&listing, params, holdings.len())?;
    let positions = holdings[window]
        .iter()
        .filter_map(|p| {
            let security = dataset.securities.get(p.security.index)?;
            Some(wire_position(p, security))
        })
        .collect();
    Ok(PositionsPage {
        account_id: &account.account_id,
        as_of: date(as_of),
        positions,
        next_cursor,
    })
}

/// `GET /v1/accounts/{id}/balances`: opening, closing and available, at the end of `as_of`
/// (default: the end date).
pub(crate) fn balances<'a>(
    dataset: &'a Dataset,
    account_id: &str,
    params: &Params,
) -> Result<BalancesDocument<'a>, ApiError> {
    let account = find_account(dataset, account_id)?;
    let end_date = dataset.params.end_date;
    let as_of = match present(&params.as_of) {
        Some(v) => parse_date("as_of", v)?,
        None => end_date,
    };
    if as_of > end_date {
        return Err(ApiError::BadRequest(format!(
            "as_of {as_of} is after the last business day {end_date}"
        )));
    }
    let balances = dataset
        .balances_as_of(&account.account_id, as_of)
        .iter()
        .map(wire_balance)
        .collect();
    Ok(BalancesDocument {
        account_id: &account.account_id,
        balances,
    })
}

/// `GET /v1/accounts/{id}/transactions`: booked and pending transactions with a booking date
/// in `[from, to]`, by booking date then id.
pub(crate) fn transactions<'a>(
    dataset: &'a Dataset,
    account_id: &str,
    params: &Params,
) -> Result<TransactionsPage<'a>, ApiError> {
    let account = find_account(dataset, account_id)?;
    let from = present(&params.from)
        .map(|v| parse_date("from", v))
        .transpose()?;
    let to = present(&params.to)
        .map(|v| parse_date("to", v))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::BadRequest(format!(
            "from ({from}) is after to ({to})"
        )));
    }
    let selected = dataset.transactions_between(account, from, to);
    let listing = format!(
        "transactions/{}/{}/{}",
        account.account_id,
        from.map(date).unwrap_or_default(),
        to.map(date).unwrap_or_default()
    );
    let (window, next_cursor) = page(&listing, params, selected.len())?;
    let transactions = account.transactions[selected][window]
        .iter()
        .map(wire_transaction)
        .collect();
    Ok(TransactionsPage {
        account_id: &account.account_id,
        transactions,
        next_cursor,
    })
}

fn find_account<'a>(dataset: &'a Dataset, account_id: &str) -> Result<&'a SimAccount, ApiError> {
    dataset
        .account(account_id)
        .ok_or_else(|| ApiError::UnknownAccount(account_id.to_owned()))
}

fn parse_date(name: &str, value: &str) -> Result<NaiveDate, ApiError> {
    let bad = || ApiError::BadRequest(format!("{name} '{value}' is not a date (YYYY-MM-DD)"));
    if value.len() != 10 {
        return Err(bad());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| bad())
}

/// The slice of a listing of `total` items that a request's cursor and limit select, and the
/// cursor of the next page when there is one.
fn page(
    listing: &str,
    params: &Params,
    total: usize,
) -> Result<(Range<usize>, Option<String>), ApiError> {
    window(
        listing,
        present(&params.cursor),
        present(&params.limit),
        total,
    )
}

/// The window of a listing of `total` items that a cursor (from this listing) and a limit
/// (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]) select, and the next page's cursor.
/// Every paged listing of the simulator pages this way, so the duplicate-page fault can
/// rewind any of its cursors.
pub(crate) fn window(
    listing: &str,
    cursor: Option<&str>,
    limit: Option<&str>,
    total: usize,
) -> Result<(Range<usize>, Option<String>), ApiError> {
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "limit '{v}' must be a whole number from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    let offset = match cursor {
        None => 0,
        Some(cursor) => decode_cursor(listing, cursor)
            .filter(|&offset| offset <= total)
            .ok_or_else(|| {
                ApiError::BadRequest(format!("cursor '{cursor}' is not valid for this listing"))
            })?,
    };
    let end = offset.saturating_add(limit).min(total);
    let next = (end < total).then(|| encode_cursor(listing, end));
    Ok((offset..end, next))
}

/// A short fingerprint of a listing, so a cursor only works where it was issued.
fn fingerprint(listing: &str) -> String {
    hex::encode(&Sha256::digest(listing.as_bytes())[..6])
}

fn encode_cursor(listing: &str, offset: usize) -> String {
    hex::encode(format!("{offset}:{}", fingerprint(listing)))
}

fn decode_cursor(listing: &str, cursor: &str) -> Option<usize> {
    let (offset, print) = split_cursor(cursor)?;
    (print == fingerprint(listing)).then_some(offset)
}

fn split_cursor(cursor: &str) -> Option<(usize, String)> {
    let text = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    let (offset, print) = text.split_once(':')?;
    Some((offset.parse().ok()?, print.to_owned()))
}

/// The cursor of the (at most) `limit` items before `cursor` in the same listing, and how
/// many items that page has; None for an undecodable cursor or one at the start.
///
/// Used by the duplicate-page fault, which must not know the listing: the fingerprint is
/// carried over from the given cursor, so the result is valid wherever `cursor` was.
pub(crate) fn rewind_cursor(cursor: &str, limit: usize) -> Option<(String, usize)> {
    let (offset, print) = split_cursor(cursor)?;
    let start = offset.saturating_sub(limit);
    (start < offset).then(|| (hex::encode(format!("{start}:{print}")), offset - start))
}

#[cfg(test)]
mod tests;
