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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::*;

    fn client(reporting: Option<&str>) -> ClientRow {
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
        ClientRow {
            id: Uuid::from_u128(1),
            reference: "C-1".into(),
            name: "A client".into(),
            reporting_currency: reporting.map(str::to_owned),
            kyc_status: "approved".into(),
            accounts: 0,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn a_client_reports_in_the_currency_asked_else_its_own_else_eur() {
        let chf = Currency::parse("CHF").unwrap();
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(
            client_currency(&client(Some("CHF")), Some(usd)).unwrap(),
            usd
        );
        assert_eq!(client_currency(&client(Some("CHF")), None).unwrap(), chf);
        assert_eq!(client_currency(&client(None), None).unwrap(), Currency::EUR);
    }

    #[test]
    fn a_code_that_is_not_iso_4217_is_named_in_the_error() {
        assert_eq!(
            client_currency(&client(Some("chf")), None)
                .unwrap_err()
                .to_string(),
            "currency: 'chf' is not an ISO 4217 currency"
        );
    }
}
