//! `GET /securities/{id}/prices`: the prices banks reported for one of the tenant's
//! securities, by date, each with its type, currency and source (the custodian and
//! connection, and whether a position or a trade stated it).
//!
//! A security of another tenant answers 404, like one that does not exist; so does, for a
//! client user, a security its client neither holds nor traded (and it sees the deal prices
//! of its own client's trades only: the `prices` table's row-level security).

use crate::decimal::Dec;
use chrono::NaiveDate;
use eam_store::prices::{self, PriceQuery, PriceRow};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::routes::{decode_cursor, next_cursor, page_limit};
use crate::state::ApiState;

pub struct PricesApi(pub ApiState);

/// Where a price came from.
#[derive(Object)]
struct PriceSource {
    /// `bank:<custodian>`.
    source: String,
    custodian: String,
    connection_id: Uuid,
    /// `position` (a holding's price on its date) or `trade` (a deal price on its trade date).
    kind: String,
    /// The trade, for a deal price.
    transaction_id: Option<Uuid>,
    format: String,
    document: String,
    position: i32,
    /// The sync run that last wrote it.
    run_id: Uuid,
}

/// One price of a security.
#[derive(Object)]
struct Price {
    date: NaiveDate,
    price: Dec,
    /// `amount` (per unit, in `currency`) or `percent` (of the face amount).
    price_type: String,
    /// Null when the bank does not state it.
    currency: Option<String>,
    source: PriceSource,
}

impl From<PriceRow> for Price {
    fn from(p: PriceRow) -> Self {
        Price {
            date: p.price_date,
            price: Dec(p.price),
            price_type: p.price_type,
            currency: p.currency,
            source: PriceSource {
                source: format!("bank:{}", p.custodian),
                custodian: p.custodian,
                connection_id: p.connection_id,
                kind: p.kind,
                transaction_id: p.transaction_id,
                format: p.source_format,
                document: p.source_document,
                position: p.source_position,
                run_id: p.run_id,
            },
        }
    }
}

#[derive(Object)]
struct PricePage {
    security_id: Uuid,
    prices: Vec<Price>,
    /// Pass as `cursor` for later prices; absent on the last page.
    next_cursor: Option<String>,
}

#[OpenApi(tag = "crate::Tag::Portfolio")]
impl PricesApi {
    /// A security's prices dated from `from` to `to` (both included, both optional), oldest
    /// first, paged.
    #[oai(
        path = "/securities/:id/prices",
        method = "get",
        operation_id = "list_prices"
    )]
    async fn prices(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
        from: Query<Option<NaiveDate>>,
        to: Query<Option<NaiveDate>>,
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 500).
        limit: Query<Option<u32>>,
    ) -> Result<Json<PricePage>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadPortfolio).await?;
        let client_scoped = caller.client_scope()?.is_some();
        let limit = page_limit(limit.0, 500)?;
        if let (Some(f), Some(t)) = (from.0, to.0)
            && f > t
        {
            return Err(ApiError::bad_request("from must not be after to"));
        }
        let after = decode_cursor::<NaiveDate>(cursor.0.as_deref())?;
        let mut tx = caller.tx(&self.0).await?;
        if !prices::security_visible(&mut tx, id.0, client_scoped).await? {
            return Err(ApiError::not_found(format!("security {} not found", id.0)));
        }
        let q = PriceQuery {
            security: id.0,
            from: from.0,
            to: to.0,
            after,
            limit: limit + 1,
        };
        let mut rows = prices::for_security(&mut tx, &q).await?;
        tx.commit().await?;
        let next_cursor = next_cursor(&mut rows, limit, |r| (r.price_date, r.id));
        Ok(Json(PricePage {
            security_id: id.0,
            prices: rows.into_iter().map(Price::from).collect(),
            next_cursor,
        }))
    }
}
