//! Portfolio reads: accounts, holdings, balances, transactions.
//!
//! A client user sees only accounts of its own client; an account outside the caller's scope
//! (another client, another tenant) answers 404, exactly like an id that does not exist, so
//! ids of other firms cannot even be probed.

use crate::decimal::Dec;
use chrono::NaiveDate;
use eam_metrics::ReadCacheResult;
use eam_model::domain::Currency;
use eam_store::read::{self, AccountRow, HoldingRow, TransactionQuery, TransactionRow};
use eam_store::{AccountId, TenantTx};
use poem_openapi::param::Query;
use poem_openapi::types::ToJSON;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use crate::caller::{BearerToken, Caller};
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::read_cache::{CachedJson, Lookup, Page, ReadKey};
use crate::routes::{decode_cursor, next_cursor, page_limit};
use crate::state::ApiState;

pub struct PortfolioApi(pub ApiState);

/// The end client an account belongs to.
#[derive(Object)]
struct ClientRef {
    id: Uuid,
    reference: Option<String>,
    name: Option<String>,
}

/// A bank account.
#[derive(Object)]
struct Account {
    id: Uuid,
    connection_id: Uuid,
    custodian: String,
    bank_account_id: String,
    iban: Option<String>,
    currency: String,
    /// True when the currency is a withdrawn ISO 4217 code (DEM, FRF, ...): the bank stated
    /// the amounts in a currency that no longer circulates (see `Currency::is_historic`).
    historic_currency: bool,
    /// `cash` or `custody`.
    kind: String,
    client: Option<ClientRef>,
    /// Where the client comes from: `manual` (assigned by a person), `bank` (the bank names
    /// it), `rule` (the connection's assignment rules) or `unassigned`.
    assignment: String,
}

impl From<AccountRow> for Account {
    fn from(a: AccountRow) -> Self {
        Account {
            id: a.id,
            connection_id: a.connection_id,
            custodian: a.custodian,
            bank_account_id: a.bank_account_id,
            iban: a.iban,
            historic_currency: historic(&a.currency),
            currency: a.currency,
            kind: a.kind,
            assignment: a.client_source.unwrap_or_else(|| "unassigned".to_owned()),
            client: a.client_id.map(|id| ClientRef {
                id,
                reference: a.client_reference,
                name: a.client_name,
            }),
        }
    }
}

/// Where a number came from.
#[derive(Object)]
struct Source {
    format: String,
    document: String,
    position: i32,
    run_id: Option<Uuid>,
}

#[derive(Object)]
struct Security {
    id: Uuid,
    isin: Option<String>,
    /// An ISIN as the bank wrote it when it fails its check digit: kept for matching by
    /// hand, never a key (the security is then identified by `bank_security_id`).
    raw_isin: Option<String>,
    bank_security_id: Option<String>,
    valor: Option<String>,
    name: String,
    asset_class: String,
    currency: Option<String>,
}

/// One position.
#[derive(Object)]
struct Holding {
    security: Security,
    quantity: Dec,
    /// `units` or `face_amount`.
    quantity_type: String,
    price: Option<Dec>,
    /// `amount` or `percent` (of face amount).
    price_type: String,
    price_currency: Option<String>,
    /// True when the price currency (in which the position's values are) is a withdrawn
    /// ISO 4217 code (DEM, FRF, ...).
    historic_currency: bool,
    market_value: Option<Dec>,
    accrued_interest: Option<Dec>,
    cost: Option<Dec>,
    source: Source,
}

#[derive(Object)]
struct Holdings {
    account_id: Uuid,
    /// The date of the snapshot; absent when the account has no positions.
    as_of: Option<NaiveDate>,
    holdings: Vec<Holding>,
}

#[derive(Object)]
struct Balance {
    currency: String,
    /// True when the currency is a withdrawn ISO 4217 code (DEM, FRF, ...): the bank stated
    /// the amounts in a currency that no longer circulates (see `Currency::is_historic`).
    historic_currency: bool,
    /// `opening`, `closing`, `available` or `forward`.
    kind: String,
    as_of: NaiveDate,
    amount: Dec,
}

#[derive(Object)]
struct Balances {
    account_id: Uuid,
    balances: Vec<Balance>,
}

#[derive(Object)]
struct Transaction {
    id: Uuid,
    bank_reference: Option<String>,
    booking_date: NaiveDate,
    value_date: Option<NaiveDate>,
    trade_date: Option<NaiveDate>,
    settlement_date: Option<NaiveDate>,
    #[oai(rename = "type")]
    kind: String,
    bank_code: Option<String>,
    amount: Dec,
    /// `debit` or `credit`.
    direction: String,
    /// Credits positive, debits negative.
    signed_amount: Dec,
    currency: String,
    /// True when the currency is a withdrawn ISO 4217 code (DEM, FRF, ...): the bank stated
    /// the amounts in a currency that no longer circulates (see `Currency::is_historic`).
    historic_currency: bool,
    security_id: Option<Uuid>,
    isin: Option<String>,
    bank_security_id: Option<String>,
    quantity: Option<Dec>,
    price: Option<Dec>,
    fees: Option<Dec>,
    /// `booked` or `pending`.
    status: String,
    counterparty: Option<String>,
    description: Option<String>,
    source: Source,
}

#[derive(Object)]
struct TransactionPage {
    account_id: Uuid,
    transactions: Vec<Transaction>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// Whether a stored currency code is a withdrawn ISO 4217 one. Derived from the code each time
/// rather than stored beside it: the code says it already, and the list of withdrawn codes is
/// the model's.
fn historic(code: &str) -> bool {
    Currency::parse(code).is_ok_and(|c| c.is_historic())
}

/// Loads an account the caller may read, or 404.
async fn scoped_account(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<AccountRow, ApiError> {
    caller.client_scope()?;
    let account = read::account(tx, AccountId(id))
        .await
        .map_err(|e| match e {
            eam_store::StoreError::NotFound => {
                ApiError::not_found(format!("account {id} not found"))
            }
            other => other.into(),
        })?;
    caller.require_client(account.client_id, "account", id)?;
    Ok(account)
}

fn holdings_page(account_id: Uuid, as_of: Option<NaiveDate>, rows: Vec<HoldingRow>) -> Holdings {
    let holdings = rows
        .into_iter()
        .map(|h| Holding {
            security: Security {
                id: h.security_id,
                isin: h.isin,
                raw_isin: h.raw_isin,
                bank_security_id: h.bank_security_id,
                valor: h.valor,
                name: h.security_name,
                asset_class: h.asset_class,
                currency: h.security_currency,
            },
            quantity: Dec(h.quantity),
            quantity_type: h.quantity_type,
            price: h.price.map(Dec),
            price_type: h.price_type,
            historic_currency: h.price_currency.as_deref().is_some_and(historic),
            price_currency: h.price_currency,
            market_value: h.market_value.map(Dec),
            accrued_interest: h.accrued_interest.map(Dec),
            cost: h.cost.map(Dec),
            source: Source {
                format: h.source_format,
                document: h.source_document,
                position: h.source_position,
                run_id: Some(h.last_changed_run),
            },
        })
        .collect();
    Holdings {
        account_id,
        as_of,
        holdings,
    }
}

fn transaction(t: TransactionRow) -> Transaction {
    Transaction {
        id: t.id,
        bank_reference: t.bank_reference,
        booking_date: t.booking_date,
        value_date: t.value_date,
        trade_date: t.trade_date,
        settlement_date: t.settlement_date,
        kind: t.r#type,
        bank_code: t.bank_code,
        amount: Dec(t.amount),
        direction: t.direction,
        signed_amount: Dec(t.signed_amount),
        historic_currency: historic(&t.currency),
        currency: t.currency,
        security_id: t.security_id,
        isin: t.isin,
        bank_security_id: t.bank_security_id,
        quantity: t.quantity.map(Dec),
        price: t.price.map(Dec),
        fees: t.fees.map(Dec),
        status: t.status,
        counterparty: t.counterparty,
        description: t.description,
        source: Source {
            format: t.source_format,
            document: t.source_document,
            position: t.source_position,
            run_id: None,
        },
    }
}

impl PortfolioApi {
    /// The page `key` of the caller's tenant: from the read cache, or read by `read` in a
    /// transaction scoped to the caller (and then kept, unless a change raced the read).
    /// `read` returns the account's client for a page of one account.
    async fn page<T: ToJSON>(
        &self,
        caller: &Caller,
        key: ReadKey,
        read: impl AsyncFnOnce(&mut TenantTx) -> Result<(Option<Uuid>, T), ApiError>,
    ) -> Result<Page, ApiError> {
        let cache = &self.0.read_cache;
        let ticket = match cache.lookup(caller.tenant, &key) {
            Lookup::Hit(page) => {
                self.0.metrics.count_read_cache(ReadCacheResult::Hit);
                return Ok(page);
            }
            Lookup::Miss(ticket) => {
                self.0.metrics.count_read_cache(if ticket.is_some() {
                    ReadCacheResult::Miss
                } else {
                    ReadCacheResult::Off
                });
                ticket
            }
        };
        let mut tx = caller.tx(&self.0).await?;
        let (account_client, value) = read(&mut tx).await?;
        drop(tx);
        let page = Page {
            account_client,
            body: CachedJson::new(&value).into_bytes(),
        };
        if let Some(ticket) = ticket {
            cache.store(ticket, caller.tenant, key, page.clone());
        }
        Ok(page)
    }
}

#[OpenApi(tag = "crate::Tag::Portfolio")]
impl PortfolioApi {
    /// Accounts the caller may see.
    #[oai(path = "/accounts", method = "get", operation_id = "list_accounts")]
    async fn accounts(&self, token: BearerToken) -> Result<CachedJson<Vec<Account>>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadPortfolio).await?;
        let scope = caller.client_scope()?;
        let key = ReadKey::Accounts { client: scope };
        let page = self
            .page(&caller, key, async |tx| {
                let rows = read::accounts(tx, scope).await?;
                Ok((
                    None,
                    rows.into_iter().map(Account::from).collect::<Vec<_>>(),
                ))
            })
            .await?;
        Ok(CachedJson::from_bytes(page.body))
    }

    /// Positions of an account on a date (default: the latest snapshot).
    #[oai(path = "/holdings", method = "get", operation_id = "get_holdings")]
    async fn holdings(
        &self,
        token: BearerToken,
        account_id: Query<Uuid>,
        as_of: Query<Option<NaiveDate>>,
    ) -> Result<CachedJson<Holdings>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadPortfolio).await?;
        let key = ReadKey::Holdings {
            account: account_id.0,
            as_of: as_of.0,
        };
        let page = self
            .page(&caller, key, async |tx| {
                let account = scoped_account(tx, &caller, account_id.0).await?;
                let (as_of, rows) = read::holdings(tx, AccountId(account.id), as_of.0).await?;
                Ok((account.client_id, holdings_page(account.id, as_of, rows)))
            })
            .await?;
        caller.require_client(page.account_client, "account", account_id.0)?;
        Ok(CachedJson::from_bytes(page.body))
    }

    /// Cash balances of an account.
    #[oai(path = "/balances", method = "get", operation_id = "list_balances")]
    async fn balances(
        &self,
        token: BearerToken,
        account_id: Query<Uuid>,
    ) -> Result<CachedJson<Balances>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadPortfolio).await?;
        let key = ReadKey::Balances {
            account: account_id.0,
        };
        let page = self
            .page(&caller, key, async |tx| {
                let account = scoped_account(tx, &caller, account_id.0).await?;
                let rows = read::balances(tx, AccountId(account.id)).await?;
                let balances = Balances {
                    account_id: account.id,
                    balances: rows
                        .into_iter()
                        .map(|b| Balance {
                            historic_currency: historic(&b.currency),
                            currency: b.currency,
                            kind: b.kind,
                            as_of: b.as_of,
                            amount: Dec(b.amount),
                        })
                        .collect(),
                };
                Ok((account.client_id, balances))
            })
            .await?;
        caller.require_client(page.account_client, "account", account_id.0)?;
        Ok(CachedJson::from_bytes(page.body))
    }

    /// Transactions of an account by booking date (inclusive range), oldest first, paged.
    #[oai(
        path = "/transactions",
        method = "get",
        operation_id = "list_transactions"
    )]
    async fn transactions(
        &self,
        token: BearerToken,
        account_id: Query<Uuid>,
        from: Query<Option<NaiveDate>>,
        to: Query<Option<NaiveDate>>,
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 100).
        limit: Query<Option<u32>>,
    ) -> Result<CachedJson<TransactionPage>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadPortfolio).await?;
        let limit = page_limit(limit.0, 100)?;
        if let (Some(f), Some(t)) = (from.0, to.0)
            && f > t
        {
            return Err(ApiError::bad_request("from must not be after to"));
        }
        let after = decode_cursor(cursor.0.as_deref())?;
        let key = ReadKey::Transactions {
            account: account_id.0,
            from: from.0,
            to: to.0,
            after,
            limit,
        };
        let page = self
            .page(&caller, key, async |tx| {
                let account = scoped_account(tx, &caller, account_id.0).await?;
                let q = TransactionQuery {
                    account: AccountId(account.id),
                    from: from.0,
                    to: to.0,
                    after,
                    limit: limit + 1,
                };
                let mut rows = read::transactions(tx, &q).await?;
                let next_cursor = next_cursor(&mut rows, limit, |r| (r.booking_date, r.id));
                let page = TransactionPage {
                    account_id: account.id,
                    transactions: rows.into_iter().map(transaction).collect(),
                    next_cursor,
                };
                Ok((account.client_id, page))
            })
            .await?;
        caller.require_client(page.account_client, "account", account_id.0)?;
        Ok(CachedJson::from_bytes(page.body))
    }
}
