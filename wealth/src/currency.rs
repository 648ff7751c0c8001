//! Which currency a portfolio's figures are in when the caller names none: a client's reporting
//! currency, else EUR; an account's client's reporting currency, else the account's own.

use eam_model::domain::Currency;
use eam_store::TenantTx;
use eam_store::clients::ClientRow;
use eam_store::read::AccountRow;

use crate::WealthError;

/// An ISO 4217 code, or [`WealthError::Currency`] naming it.
pub fn parse_currency(code: &str) -> Result<Currency, WealthError> {
    Currency::parse(code).map_err(|_| WealthError::Currency(code.to_owned()))
}

/// The currency a client's figures are in: `requested`, else its reporting currency, else EUR.
pub fn client_currency(
    client: &ClientRow,
    requested: Option<Currency>,
) -> Result<Currency, WealthError> {
    match requested {
        Some(c) => Ok(c),
        None => parse_currency(client.reporting_currency.as_deref().unwrap_or("EUR")),
    }
}

/// The currency an account's figures are in: `requested`, else its client's reporting
/// currency, else the account's own (a read of the client when nothing is requested).
pub async fn account_currency(
    tx: &mut TenantTx,
    account: &AccountRow,
    requested: Option<Currency>,
) -> Result<Currency, WealthError> {
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
