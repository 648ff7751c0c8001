//! What valuations and performance read: an account's latest positions date on or before a
//! date, and the snapshots, closing balances and external flows of a period.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{AccountId, Result, TenantTx};

/// The latest date the account has positions for, on or before `on_or_before` (any date
/// when `None`); `None` when it has none.
pub async fn positions_date(
    tx: &mut TenantTx,
    account: AccountId,
    on_or_before: Option<NaiveDate>,
) -> Result<Option<NaiveDate>> {
    Ok(sqlx::query_scalar!(
        "SELECT max(as_of) FROM positions
          WHERE tenant_id = $1 AND account_id = $2 AND ($3::date IS NULL OR as_of <= $3)",
        tx.tenant().0,
        account.0,
        on_or_before
    )
    .fetch_one(tx.conn())
    .await?)
}

/// One position of a snapshot, for valuing a period.
#[derive(Debug, Clone)]
pub struct PositionPoint {
    pub account_id: Uuid,
    pub as_of: NaiveDate,
    pub security_name: String,
    pub isin: Option<String>,
    pub quantity: Decimal,
    pub price: Option<Decimal>,
    pub price_type: String,
    pub market_value: Option<Decimal>,
    pub accrued_interest: Option<Decimal>,
    /// The price currency, else the security's.
    pub currency: Option<String>,
}

/// The accounts' position snapshots from the latest one on or before `from` (each account's
/// own) up to `to`, by account and date.
pub async fn positions_over(
    tx: &mut TenantTx,
    accounts: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<PositionPoint>> {
    Ok(sqlx::query_as!(
        PositionPoint,
        r#"SELECT p.account_id, p.as_of, s.name AS security_name, s.isin, p.quantity, p.price,
                  p.price_type, p.market_value, p.accrued_interest,
                  trim(coalesce(p.price_currency, s.currency)) AS currency
             FROM positions p
             JOIN securities s ON s.id = p.security_id
            WHERE p.tenant_id = $1 AND p.account_id = ANY($2) AND p.as_of <= $4
              AND p.as_of >= coalesce(
                    (SELECT max(q.as_of) FROM positions q
                      WHERE q.tenant_id = $1 AND q.account_id = p.account_id AND q.as_of <= $3),
                    $3)
            ORDER BY p.account_id, p.as_of, p.id"#,
        tx.tenant().0,
        accounts,
        from,
        to
    )
    .fetch_all(tx.conn())
    .await?)
}

/// A closing cash balance.
#[derive(Debug, Clone)]
pub struct ClosingPoint {
    pub account_id: Uuid,
    pub as_of: NaiveDate,
    pub currency: String,
    pub amount: Decimal,
}

/// The accounts' closing balances on or before `to`.
pub async fn closings_until(
    tx: &mut TenantTx,
    accounts: &[Uuid],
    to: NaiveDate,
) -> Result<Vec<ClosingPoint>> {
    Ok(sqlx::query_as!(
        ClosingPoint,
        r#"SELECT account_id, as_of, trim(currency) AS "currency!", amount
             FROM cash_balances
            WHERE tenant_id = $1 AND account_id = ANY($2) AND kind = 'closing' AND as_of <= $3
            ORDER BY account_id, currency, as_of"#,
        tx.tenant().0,
        accounts,
        to
    )
    .fetch_all(tx.conn())
    .await?)
}

/// Transaction types that move money into or out of a portfolio: what performance treats as
/// external flows (trades, income and fees are part of the return).
pub const EXTERNAL_FLOW_TYPES: [&str; 3] = ["deposit", "withdrawal", "transfer"];

/// A booked external flow.
#[derive(Debug, Clone)]
pub struct FlowRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub booking_date: NaiveDate,
    pub kind: String,
    /// + credit (in), - debit (out).
    pub signed_amount: Decimal,
    pub currency: String,
    pub counterparty: Option<String>,
    pub description: Option<String>,
}

/// The accounts' booked external flows ([`EXTERNAL_FLOW_TYPES`]) booked after `from` and up
/// to `to`, by date.
pub async fn external_flows(
    tx: &mut TenantTx,
    accounts: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<FlowRow>> {
    let kinds = EXTERNAL_FLOW_TYPES.map(str::to_owned);
    Ok(sqlx::query_as!(
        FlowRow,
        r#"SELECT id, account_id, booking_date, type AS kind, signed_amount,
                  trim(currency) AS "currency!", counterparty, description
             FROM transactions
            WHERE tenant_id = $1 AND account_id = ANY($2) AND status = 'booked'
              AND type = ANY($3) AND booking_date > $4 AND booking_date <= $5
            ORDER BY booking_date, account_id, id"#,
        tx.tenant().0,
        accounts,
        &kinds as &[String],
        from,
        to
    )
    .fetch_all(tx.conn())
    .await?)
}
