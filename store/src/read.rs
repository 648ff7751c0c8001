//! Read queries behind the API: accounts, holdings, balances, transactions.
//!
//! Every function runs inside a [`TenantTx`], so RLS restricts rows to the tenant even if a
//! predicate were forgotten; the explicit predicates are what make the indexes work.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{AccountId, Result, StoreError, TenantTx};

/// An account with its client.
#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub custodian: String,
    pub client_id: Option<Uuid>,
    pub client_reference: Option<String>,
    pub client_name: Option<String>,
    /// `manual`, `bank` or `rule`; None when the account has no client.
    pub client_source: Option<String>,
    pub bank_account_id: String,
    pub iban: Option<String>,
    pub currency: String,
    pub kind: String,
}

macro_rules! select_account {
    ($tail:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            AccountRow,
            // `?`: the client's columns are NULL for an account without a client (the macros
            // take them for NOT NULL columns of `clients` and would fail to decode at run time).
            r#"SELECT a.id, a.connection_id, bc.custodian, a.client_id,
                c.reference AS "client_reference?", c.name AS "client_name?", a.client_source,
                a.bank_account_id,
                a.iban, a.currency, a.kind
             FROM accounts a
             JOIN bank_connections bc ON bc.id = a.connection_id
             LEFT JOIN clients c ON c.id = a.client_id "#
                + $tail
            $(, $arg)*
        )
    };
}

/// The tenant's accounts; with `client`, only that client's.
pub async fn accounts(tx: &mut TenantTx, client: Option<Uuid>) -> Result<Vec<AccountRow>> {
    Ok(select_account!(
        "WHERE a.tenant_id = $1 AND ($2::uuid IS NULL OR a.client_id = $2)
         ORDER BY bc.custodian, a.bank_account_id, a.id",
        tx.tenant().0,
        client
    )
    .fetch_all(tx.conn())
    .await?)
}

/// One account, or `NotFound` (also when it belongs to another tenant).
pub async fn account(tx: &mut TenantTx, id: AccountId) -> Result<AccountRow> {
    select_account!("WHERE a.tenant_id = $1 AND a.id = $2", tx.tenant().0, id.0)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// A position with its security and provenance.
#[derive(Debug, Clone)]
pub struct HoldingRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub as_of: NaiveDate,
    pub security_id: Uuid,
    pub isin: Option<String>,
    /// An ISIN the bank wrote that fails its check digit (the security is keyed by the
    /// bank's id instead).
    pub raw_isin: Option<String>,
    pub bank_security_id: Option<String>,
    pub valor: Option<String>,
    pub security_name: String,
    pub asset_class: String,
    pub security_currency: Option<String>,
    pub quantity: Decimal,
    pub quantity_type: String,
    pub price: Option<Decimal>,
    pub price_type: String,
    pub price_currency: Option<String>,
    pub market_value: Option<Decimal>,
    pub accrued_interest: Option<Decimal>,
    pub cost: Option<Decimal>,
    pub source_format: String,
    pub source_document: String,
    pub source_position: i32,
    pub last_changed_run: Uuid,
}

/// Holdings of an account on a date; without a date, on the latest date it has positions for.
pub async fn holdings(
    tx: &mut TenantTx,
    account: AccountId,
    as_of: Option<NaiveDate>,
) -> Result<(Option<NaiveDate>, Vec<HoldingRow>)> {
    let tenant = tx.tenant().0;
    let as_of = match as_of {
        Some(d) => Some(d),
        None => {
            sqlx::query_scalar!(
                "SELECT max(as_of) FROM positions WHERE tenant_id = $1 AND account_id = $2",
                tenant,
                account.0
            )
            .fetch_one(tx.conn())
            .await?
        }
    };
    let Some(date) = as_of else {
        return Ok((None, Vec::new()));
    };
    let rows = sqlx::query_as!(
        HoldingRow,
        "SELECT p.id, p.account_id, p.as_of, s.id AS security_id, s.isin, s.raw_isin, s.bank_security_id, s.valor,
            s.name AS security_name, s.asset_class, s.currency AS security_currency, p.quantity,
            p.quantity_type, p.price, p.price_type, p.price_currency, p.market_value, p.accrued_interest,
            p.cost, p.source_format, p.source_document, p.source_position, p.last_changed_run
         FROM positions p JOIN securities s ON s.id = p.security_id
         WHERE p.tenant_id = $1 AND p.account_id = $2 AND p.as_of = $3
         ORDER BY s.name, s.security_key",
        tenant,
        account.0,
        date,
    )
    .fetch_all(tx.conn())
    .await?;
    Ok((Some(date), rows))
}

/// A cash balance.
#[derive(Debug, Clone)]
pub struct BalanceRow {
    pub account_id: Uuid,
    pub currency: String,
    pub kind: String,
    pub as_of: NaiveDate,
    pub amount: Decimal,
    pub source_document: String,
}

/// Cash balances of an account, oldest first.
pub async fn balances(tx: &mut TenantTx, account: AccountId) -> Result<Vec<BalanceRow>> {
    Ok(sqlx::query_as!(
        BalanceRow,
        "SELECT account_id, currency, kind, as_of, amount, source_document FROM cash_balances
         WHERE tenant_id = $1 AND account_id = $2
         ORDER BY as_of, currency,
            array_position(ARRAY['opening', 'closing', 'available', 'forward'], kind)",
        tx.tenant().0,
        account.0
    )
    .fetch_all(tx.conn())
    .await?)
}

/// A transaction with its security.
#[derive(Debug, Clone)]
pub struct TransactionRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub bank_reference: Option<String>,
    pub booking_date: NaiveDate,
    pub value_date: Option<NaiveDate>,
    pub trade_date: Option<NaiveDate>,
    pub settlement_date: Option<NaiveDate>,
    pub r#type: String,
    pub bank_code: Option<String>,
    pub amount: Decimal,
    pub direction: String,
    pub signed_amount: Decimal,
    pub currency: String,
    pub security_id: Option<Uuid>,
    pub isin: Option<String>,
    pub bank_security_id: Option<String>,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub fees: Option<Decimal>,
    pub status: String,
    pub counterparty: Option<String>,
    pub description: Option<String>,
    pub source_format: String,
    pub source_document: String,
    pub source_position: i32,
}

/// A page of transactions: booking date range (inclusive), after a keyset cursor.
#[derive(Debug, Clone)]
pub struct TransactionQuery {
    pub account: AccountId,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// The last (booking_date, id) of the previous page.
    pub after: Option<(NaiveDate, Uuid)>,
    pub limit: i64,
}

/// Transactions ordered by (booking_date, id).
pub async fn transactions(tx: &mut TenantTx, q: &TransactionQuery) -> Result<Vec<TransactionRow>> {
    let (after_date, after_id) = q.after.unzip();
    Ok(sqlx::query_as!(
        TransactionRow,
        "SELECT t.id, t.account_id, t.bank_reference, t.booking_date, t.value_date, t.trade_date,
            t.settlement_date, t.type, t.bank_code, t.amount, t.direction, t.signed_amount, t.currency,
            t.security_id, s.isin, s.bank_security_id, t.quantity, t.price, t.fees, t.status,
            t.counterparty, t.description, t.source_format, t.source_document, t.source_position
         FROM transactions t LEFT JOIN securities s ON s.id = t.security_id
         WHERE t.tenant_id = $1 AND t.account_id = $2
           AND ($3::date IS NULL OR t.booking_date >= $3)
           AND ($4::date IS NULL OR t.booking_date <= $4)
           AND ($5::date IS NULL OR (t.booking_date, t.id) > ($5, $6))
         ORDER BY t.booking_date, t.id
         LIMIT $7",
        tx.tenant().0,
        q.account.0,
        q.from,
        q.to,
        after_date,
        after_id,
        q.limit,
    )
    .fetch_all(tx.conn())
    .await?)
}
