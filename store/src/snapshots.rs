//! Which snapshot a valuation reads: an account's latest positions date on or before a date.

use chrono::NaiveDate;

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
