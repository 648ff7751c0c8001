//! The changes feed (migration 0024): every account, position and transaction added,
//! modified or removed, in commit order, with the current state of what still exists.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{Result, TenantTx};

/// One logged change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub entity: String,
    pub entity_id: Uuid,
    pub change: String,
    pub account_id: Uuid,
    pub client_id: Option<Uuid>,
    pub changed_at: DateTime<Utc>,
}

/// Up to `limit` changes after `seq`, in order (a client user: its own client's).
pub async fn after(tx: &mut TenantTx, seq: i64, limit: i64) -> Result<Vec<Change>> {
    Ok(sqlx::query_as!(
        Change,
        "SELECT seq, entity, entity_id, change, account_id, client_id, changed_at
         FROM portfolio_changes WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        tx.tenant().0,
        seq,
        limit
    )
    .fetch_all(tx.conn())
    .await?)
}

/// The latest change's `seq` (0 when none): a cursor that starts from now.
pub async fn latest(tx: &mut TenantTx) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT coalesce(max(seq), 0) AS "seq!" FROM portfolio_changes WHERE tenant_id = $1"#,
        tx.tenant().0
    )
    .fetch_one(tx.conn())
    .await?)
}

/// A transaction as the feed shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedTransaction {
    pub id: Uuid,
    pub account_id: Uuid,
    pub bank_reference: Option<String>,
    pub booking_date: NaiveDate,
    pub value_date: Option<NaiveDate>,
    pub kind: String,
    pub amount: Decimal,
    pub signed_amount: Decimal,
    pub currency: String,
    pub status: String,
    pub description: Option<String>,
}

pub async fn transactions(tx: &mut TenantTx, ids: &[Uuid]) -> Result<Vec<FeedTransaction>> {
    Ok(sqlx::query_as!(
        FeedTransaction,
        r#"SELECT id, account_id, bank_reference, booking_date, value_date, type AS kind, amount,
            signed_amount, currency AS "currency!", status, description
         FROM transactions WHERE id = ANY($1)"#,
        ids
    )
    .fetch_all(tx.conn())
    .await?)
}

/// A position as the feed shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPosition {
    pub id: Uuid,
    pub account_id: Uuid,
    pub security_id: Uuid,
    pub isin: Option<String>,
    pub as_of: NaiveDate,
    pub quantity: Decimal,
    pub price: Option<Decimal>,
    pub price_currency: Option<String>,
    pub market_value: Option<Decimal>,
}

pub async fn positions(tx: &mut TenantTx, ids: &[Uuid]) -> Result<Vec<FeedPosition>> {
    Ok(sqlx::query_as!(
        FeedPosition,
        "SELECT p.id, p.account_id, p.security_id, s.isin, p.as_of, p.quantity, p.price,
            p.price_currency, p.market_value
         FROM positions p JOIN securities s ON s.id = p.security_id WHERE p.id = ANY($1)",
        ids
    )
    .fetch_all(tx.conn())
    .await?)
}

/// An account as the feed shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedAccount {
    pub id: Uuid,
    pub bank_account_id: String,
    pub iban: Option<String>,
    pub currency: String,
    pub kind: String,
    pub client_id: Option<Uuid>,
}

pub async fn accounts(tx: &mut TenantTx, ids: &[Uuid]) -> Result<Vec<FeedAccount>> {
    Ok(sqlx::query_as!(
        FeedAccount,
        r#"SELECT id, bank_account_id, iban, currency AS "currency!", kind, client_id
         FROM accounts WHERE id = ANY($1)"#,
        ids
    )
    .fetch_all(tx.conn())
    .await?)
}
