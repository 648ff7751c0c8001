//! Reads of the prices banks report for a tenant's securities (written by `load`).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{Result, TenantTx};

/// One price as stored, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceRow {
    pub id: Uuid,
    pub price_date: NaiveDate,
    pub price: Decimal,
    /// `amount` or `percent`.
    pub price_type: String,
    pub currency: Option<String>,
    /// `position` or `trade`.
    pub kind: String,
    pub connection_id: Uuid,
    pub custodian: String,
    /// The trade a deal price belongs to.
    pub transaction_id: Option<Uuid>,
    pub source_format: String,
    pub source_document: String,
    pub source_position: i32,
    pub run_id: Uuid,
}

/// What a prices page asks for.
#[derive(Debug, Clone)]
pub struct PriceQuery {
    pub security: Uuid,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// The keyset position of the previous page's last row (date, id).
    pub after: Option<(NaiveDate, Uuid)>,
    pub limit: i64,
}

/// Whether the caller may see the security: it exists in the tenant and, for a caller
/// confined to one client (`client_scoped`), that client holds or traded it (row-level
/// security keeps positions and transactions to that client's).
pub async fn security_visible(
    tx: &mut TenantTx,
    security: Uuid,
    client_scoped: bool,
) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (
             SELECT 1 FROM securities s WHERE s.tenant_id = $1 AND s.id = $2
               AND (NOT $3
                    OR EXISTS (SELECT 1 FROM positions p WHERE p.tenant_id = $1 AND p.security_id = $2)
                    OR EXISTS (SELECT 1 FROM transactions t WHERE t.tenant_id = $1 AND t.security_id = $2))
           ) AS "visible!""#,
        tx.tenant().0,
        security,
        client_scoped
    )
    .fetch_one(tx.conn())
    .await?)
}

/// The security's prices dated within the query's range, oldest first, then by id.
pub async fn for_security(tx: &mut TenantTx, q: &PriceQuery) -> Result<Vec<PriceRow>> {
    let (after_date, after_id) = q.after.unzip();
    Ok(sqlx::query_as!(
        PriceRow,
        r#"SELECT p.id, p.price_date, p.price, p.price_type, p.currency, p.kind, p.connection_id,
            c.custodian, p.transaction_id, p.source_format, p.source_document, p.source_position,
            p.last_changed_run AS run_id
         FROM prices p JOIN bank_connections c ON c.id = p.connection_id
         WHERE p.tenant_id = $1 AND p.security_id = $2
           AND ($3::date IS NULL OR p.price_date >= $3)
           AND ($4::date IS NULL OR p.price_date <= $4)
           AND ($5::date IS NULL OR (p.price_date, p.id) > ($5, $6))
         ORDER BY p.price_date, p.id
         LIMIT $7"#,
        tx.tenant().0,
        q.security,
        q.from,
        q.to,
        after_date,
        after_id,
        q.limit
    )
    .fetch_all(tx.conn())
    .await?)
}
