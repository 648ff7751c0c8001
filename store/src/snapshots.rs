//! What valuations and performance read: the accounts' snapshots and closing balances as of a
//! date, and the snapshots, closing balances and external flows of a period.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{Result, TenantTx};

/// What an account's snapshot of a date holds in one currency, summed by PostgreSQL exactly as
/// `model::wealth::valuation::Holding::value` values each position (quantity x price, a
/// percent price on the face amount / 100, the bank's market value without a price, plus
/// accrued interest).
#[derive(Debug, Clone)]
pub struct SnapshotSum {
    pub account_id: Uuid,
    pub as_of: NaiveDate,
    /// The price currency, else the security's.
    pub currency: Option<String>,
    /// Of the positions that can be valued.
    pub value: Decimal,
    /// How many positions have neither price nor market value, and one's name.
    pub unpriced: i64,
    pub unpriced_name: Option<String>,
}

/// The accounts' position snapshots from the latest one on or before `from` (each account's
/// own) up to `to`, summed per account, date and currency.
pub async fn snapshot_sums(
    tx: &mut TenantTx,
    accounts: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<SnapshotSum>> {
    Ok(sqlx::query_as!(
        SnapshotSum,
        // MATERIALIZED: each account's first day is looked up once, not once per position
        // row (which the planner does when it inlines the CTE into the join condition).
        r#"WITH first_day AS MATERIALIZED (
              SELECT a.id AS account_id,
                     coalesce((SELECT q.as_of FROM positions q
                                WHERE q.tenant_id = $1 AND q.account_id = a.id AND q.as_of <= $3
                                ORDER BY q.as_of DESC LIMIT 1), $3) AS as_of
                FROM unnest($2::uuid[]) AS a(id)
           )
           SELECT p.account_id, p.as_of,
                  trim(coalesce(p.price_currency, s.currency)) AS currency,
                  coalesce(sum(CASE WHEN p.price IS NULL THEN p.market_value
                                    WHEN p.price_type = 'percent' THEN p.quantity * p.price * 0.01
                                    ELSE p.quantity * p.price END
                               + coalesce(p.accrued_interest, 0)), 0) AS "value!",
                  count(*) FILTER (WHERE p.price IS NULL AND p.market_value IS NULL)
                      AS "unpriced!",
                  min(s.name) FILTER (WHERE p.price IS NULL AND p.market_value IS NULL)
                      AS unpriced_name
             FROM first_day f
             JOIN positions p ON p.tenant_id = $1 AND p.account_id = f.account_id
                             AND p.as_of >= f.as_of AND p.as_of <= $4
             JOIN securities s ON s.id = p.security_id
            GROUP BY p.account_id, p.as_of, trim(coalesce(p.price_currency, s.currency))
            ORDER BY 1, 2, 3"#,
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

/// A position of an account's latest snapshot on or before a date, for its valuation.
#[derive(Debug, Clone)]
pub struct PositionLine {
    pub account_id: Uuid,
    pub as_of: NaiveDate,
    pub security_name: String,
    pub isin: Option<String>,
    pub asset_class: String,
    pub quantity: Decimal,
    pub price: Option<Decimal>,
    pub price_type: String,
    pub market_value: Option<Decimal>,
    pub accrued_interest: Option<Decimal>,
    pub price_currency: Option<String>,
    pub security_currency: Option<String>,
}

/// Each account's latest position snapshot on or before `as_of`, in one statement, by
/// account and security name.
pub async fn positions_as_of(
    tx: &mut TenantTx,
    accounts: &[Uuid],
    as_of: NaiveDate,
) -> Result<Vec<PositionLine>> {
    Ok(sqlx::query_as!(
        PositionLine,
        r#"WITH latest AS MATERIALIZED (
              SELECT a.id AS account_id,
                     (SELECT q.as_of FROM positions q
                       WHERE q.tenant_id = $1 AND q.account_id = a.id AND q.as_of <= $3
                       ORDER BY q.as_of DESC LIMIT 1) AS as_of
                FROM unnest($2::uuid[]) AS a(id)
           )
           SELECT p.account_id, p.as_of, s.name AS security_name, s.isin, s.asset_class,
                  p.quantity, p.price, p.price_type, p.market_value, p.accrued_interest,
                  trim(p.price_currency) AS price_currency,
                  trim(s.currency) AS security_currency
             FROM latest l
             JOIN positions p ON p.tenant_id = $1 AND p.account_id = l.account_id
                             AND p.as_of = l.as_of
             JOIN securities s ON s.id = p.security_id
            ORDER BY p.account_id, s.name, p.id"#,
        tx.tenant().0,
        accounts,
        as_of
    )
    .fetch_all(tx.conn())
    .await?)
}

/// Each account's latest closing balance per currency on or before `as_of`.
pub async fn closings_as_of(
    tx: &mut TenantTx,
    accounts: &[Uuid],
    as_of: NaiveDate,
) -> Result<Vec<ClosingPoint>> {
    Ok(sqlx::query_as!(
        ClosingPoint,
        r#"SELECT DISTINCT ON (account_id, currency)
                  account_id, as_of, trim(currency) AS "currency!", amount
             FROM cash_balances
            WHERE tenant_id = $1 AND account_id = ANY($2) AND kind = 'closing' AND as_of <= $3
            ORDER BY account_id, currency, as_of DESC"#,
        tx.tenant().0,
        accounts,
        as_of
    )
    .fetch_all(tx.conn())
    .await?)
}
