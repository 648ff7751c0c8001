//! Read queries behind the API: accounts, holdings, balances, transactions.
//!
//! Every function runs inside a [`TenantTx`], so RLS restricts rows to the tenant even if a
//! predicate were forgotten; the explicit predicates are what make the indexes work.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{AccountId, Result, StoreError, TenantTx};

/// An account with its client.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub custodian: String,
    pub client_id: Option<Uuid>,
    pub client_reference: Option<String>,
    pub client_name: Option<String>,
    pub bank_account_id: String,
    pub iban: Option<String>,
    pub currency: String,
    pub kind: String,
}

macro_rules! select_account {
    ($tail:literal) => {
        concat!(
            "SELECT a.id, a.connection_id, bc.custodian, a.client_id, c.reference AS client_reference,
                c.name AS client_name, a.bank_account_id, a.iban, a.currency, a.kind
             FROM accounts a
             JOIN bank_connections bc ON bc.id = a.connection_id
             LEFT JOIN clients c ON c.id = a.client_id ",
            $tail
        )
    };
}

/// The tenant's accounts; with `client`, only that client's.
pub async fn accounts(tx: &mut TenantTx, client: Option<Uuid>) -> Result<Vec<AccountRow>> {
    Ok(sqlx::query_as::<_, AccountRow>(select_account!(
        "WHERE a.tenant_id = $1 AND ($2::uuid IS NULL OR a.client_id = $2)
         ORDER BY bc.custodian, a.bank_account_id, a.id"
    ))
    .bind(tx.tenant().0)
    .bind(client)
    .fetch_all(tx.conn())
    .await?)
}

/// One account, or `NotFound` (also when it belongs to another tenant).
pub async fn account(tx: &mut TenantTx, id: AccountId) -> Result<AccountRow> {
    sqlx::query_as::<_, AccountRow>(select_account!("WHERE a.tenant_id = $1 AND a.id = $2"))
        .bind(tx.tenant().0)
        .bind(id.0)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// A position with its security and provenance.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HoldingRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub as_of: NaiveDate,
    pub security_id: Uuid,
    pub isin: Option<String>,
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

/// One row of [`account_holdings`]: the account, the snapshot date and one position (absent
/// when there is none on that date).
#[derive(sqlx::FromRow)]
struct AccountHoldingRow {
    #[sqlx(flatten)]
    account: AccountRow,
    snapshot: Option<NaiveDate>,
    position_id: Option<Uuid>,
    security_id: Option<Uuid>,
    isin: Option<String>,
    bank_security_id: Option<String>,
    valor: Option<String>,
    security_name: Option<String>,
    asset_class: Option<String>,
    security_currency: Option<String>,
    quantity: Option<Decimal>,
    quantity_type: Option<String>,
    price: Option<Decimal>,
    price_type: Option<String>,
    price_currency: Option<String>,
    market_value: Option<Decimal>,
    accrued_interest: Option<Decimal>,
    cost: Option<Decimal>,
    source_format: Option<String>,
    source_document: Option<String>,
    source_position: Option<i32>,
    last_changed_run: Option<Uuid>,
}

impl AccountHoldingRow {
    /// The position of the row, if it has one (every column of a position is NOT NULL but
    /// the optional values, so one missing means the row has none).
    fn holding(self, as_of: NaiveDate) -> Option<HoldingRow> {
        Some(HoldingRow {
            id: self.position_id?,
            account_id: self.account.id,
            as_of,
            security_id: self.security_id?,
            isin: self.isin,
            bank_security_id: self.bank_security_id,
            valor: self.valor,
            security_name: self.security_name?,
            asset_class: self.asset_class?,
            security_currency: self.security_currency,
            quantity: self.quantity?,
            quantity_type: self.quantity_type?,
            price: self.price,
            price_type: self.price_type?,
            price_currency: self.price_currency,
            market_value: self.market_value,
            accrued_interest: self.accrued_interest,
            cost: self.cost,
            source_format: self.source_format?,
            source_document: self.source_document?,
            source_position: self.source_position?,
            last_changed_run: self.last_changed_run?,
        })
    }
}

/// An account (or `NotFound`) with its holdings on a date; without a date, on the latest date
/// it has positions for (`None` when it has none). One statement: one round trip.
pub async fn account_holdings(
    tx: &mut TenantTx,
    account: AccountId,
    as_of: Option<NaiveDate>,
) -> Result<(AccountRow, Option<NaiveDate>, Vec<HoldingRow>)> {
    let rows = sqlx::query_as::<_, AccountHoldingRow>(
        "WITH acct AS (
            SELECT a.id, a.connection_id, bc.custodian, a.client_id, c.reference AS client_reference,
                c.name AS client_name, a.bank_account_id, a.iban, a.currency, a.kind
            FROM accounts a
            JOIN bank_connections bc ON bc.id = a.connection_id
            LEFT JOIN clients c ON c.id = a.client_id
            WHERE a.tenant_id = $1 AND a.id = $2
         ), day AS (
            SELECT coalesce($3::date,
                (SELECT max(as_of) FROM positions WHERE tenant_id = $1 AND account_id = $2)) AS snapshot
         )
         SELECT acct.*, day.snapshot, h.*
         FROM acct CROSS JOIN day
         LEFT JOIN LATERAL (
            SELECT p.id AS position_id, s.id AS security_id, s.isin, s.bank_security_id, s.valor,
                s.name AS security_name, s.security_key, s.asset_class,
                s.currency AS security_currency, p.quantity, p.quantity_type, p.price, p.price_type,
                p.price_currency, p.market_value, p.accrued_interest, p.cost, p.source_format,
                p.source_document, p.source_position, p.last_changed_run
            FROM positions p JOIN securities s ON s.id = p.security_id
            WHERE p.tenant_id = $1 AND p.account_id = $2 AND p.as_of = day.snapshot
         ) h ON true
         ORDER BY h.security_name, h.security_key",
    )
    .bind(tx.tenant().0)
    .bind(account.0)
    .bind(as_of)
    .fetch_all(tx.conn())
    .await?;
    let Some(first) = rows.first() else {
        return Err(StoreError::NotFound);
    };
    let (found, snapshot) = (first.account.clone(), first.snapshot);
    let holdings = match snapshot {
        Some(date) => rows.into_iter().filter_map(|r| r.holding(date)).collect(),
        None => Vec::new(),
    };
    Ok((found, snapshot, holdings))
}

/// A cash balance.
#[derive(Debug, Clone, sqlx::FromRow)]
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
    Ok(sqlx::query_as::<_, BalanceRow>(
        "SELECT account_id, currency, kind, as_of, amount, source_document FROM cash_balances
         WHERE tenant_id = $1 AND account_id = $2
         ORDER BY as_of, currency,
            array_position(ARRAY['opening', 'closing', 'available', 'forward'], kind)",
    )
    .bind(tx.tenant().0)
    .bind(account.0)
    .fetch_all(tx.conn())
    .await?)
}

/// A transaction with its security.
#[derive(Debug, Clone, sqlx::FromRow)]
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
    Ok(sqlx::query_as::<_, TransactionRow>(
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
    )
    .bind(tx.tenant().0)
    .bind(q.account.0)
    .bind(q.from)
    .bind(q.to)
    .bind(after_date)
    .bind(after_id)
    .bind(q.limit)
    .fetch_all(tx.conn())
    .await?)
}
