//! `GET /fx-rates`: the euro reference rates a date's conversions use, against any base, with
//! each rate's date, source and staleness (the precedence of `model::wealth::fx`).

use crate::decimal::Dec;
use chrono::{NaiveDate, Utc};
use eam_model::domain::Currency;
use eam_model::wealth::fx::Leg;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use rust_decimal::Decimal;

use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::state::ApiState;

pub struct FxRatesApi(pub ApiState);

/// One EUR rate used.
#[derive(Object)]
struct RateLeg {
    currency: String,
    /// Units of `currency` per 1 EUR.
    per_eur: Dec,
    date: NaiveDate,
    /// `ecb`, `bank:<custodian>` or `euro_fixed`.
    source: String,
    stale: bool,
}

impl From<&Leg> for RateLeg {
    fn from(l: &Leg) -> Self {
        RateLeg {
            currency: l.currency.as_str().to_owned(),
            per_eur: Dec(l.per_eur),
            date: l.date,
            source: l.source.label(),
            stale: l.stale,
        }
    }
}

/// What one unit of `base` is worth in `currency` (unrounded).
#[derive(Object)]
struct FxRate {
    currency: String,
    rate: Dec,
    /// True when any EUR rate used is older than `stale_after_business_days`.
    stale: bool,
    /// The EUR rates used (cross rates go through EUR).
    legs: Vec<RateLeg>,
}

/// A currency without a usable rate, and why.
#[derive(Object)]
struct MissingRate {
    currency: String,
    reason: String,
}

#[derive(Object)]
struct FxRates {
    date: NaiveDate,
    base: String,
    stale_after_business_days: u32,
    rates: Vec<FxRate>,
    missing: Vec<MissingRate>,
}

#[OpenApi(tag = "crate::Tag::Portfolio")]
impl FxRatesApi {
    /// Exchange rates against `base` (default EUR) as of `date` (default today): for each
    /// currency with a stored rate, what 1 `base` is worth, through EUR. The ECB's rate wins
    /// over a bank's unless it is stale and the bank's is not; a stale rate is flagged, a
    /// currency without any rate is listed under `missing` with the reason.
    #[oai(path = "/fx-rates", method = "get", operation_id = "list_fx_rates")]
    async fn fx_rates(
        &self,
        token: BearerToken,
        date: Query<Option<NaiveDate>>,
        base: Query<Option<String>>,
    ) -> Result<Json<FxRates>, ApiError> {
        self.0.caller(&token, Action::ReadMarketData).await?;
        let date = date.0.unwrap_or_else(|| Utc::now().date_naive());
        let base = match base.0.as_deref() {
            None => Currency::EUR,
            Some(code) => Currency::parse(code).map_err(|_| {
                ApiError::bad_request(format!("base: '{code}' is not an ISO 4217 currency"))
            })?,
        };
        let mut conn = self.0.store.platform_connection().await?;
        // The platform's rates only: the rates banks state belong to their accounts' portfolios.
        let book = eam_wealth::platform_book(&mut conn, date, date, self.0.fx_stale_after).await?;
        // Every currency ever quoted, so one without a rate by this date is listed as missing.
        let mut currencies = eam_store::fx_rates::currencies(&mut conn).await?;
        currencies.push(Currency::EUR);
        currencies.sort();
        let mut rates = Vec::new();
        let mut missing = Vec::new();
        for currency in currencies.into_iter().filter(|c| *c != base) {
            match book.conversion(base, currency, date) {
                Ok(conv) => rates.push(FxRate {
                    currency: currency.as_str().to_owned(),
                    rate: Dec(conv.apply(Decimal::ONE)),
                    stale: conv.stale(),
                    legs: conv.legs.iter().map(RateLeg::from).collect(),
                }),
                Err(e) => missing.push(MissingRate {
                    currency: currency.as_str().to_owned(),
                    reason: e.to_string(),
                }),
            }
        }
        Ok(Json(FxRates {
            date,
            base: base.as_str().to_owned(),
            stale_after_business_days: self.0.fx_stale_after,
            rates,
            missing,
        }))
    }
}
