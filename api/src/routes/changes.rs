//! `GET /changes`: the portfolio's changes feed for integrators, Plaid `/transactions/sync`
//! style. Every account, position and transaction added, modified or removed since a cursor,
//! in commit order, each with its current state (removed ones by id). A booking a bank
//! delivers late, with an old date, is a change after the cursor like any other: an
//! integrator never pages by date and never misses one.

use crate::decimal::Dec;
use std::collections::HashMap;

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use eam_store::portfolio_changes::{self, Change};
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Union};
use uuid::Uuid;

use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::routes::page_limit;
use crate::state::ApiState;

pub struct ChangesApi(pub ApiState);

const CURSOR_PREFIX: &str = "chg1:";

fn encode(seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{seq}"))
}

fn decode(cursor: &str) -> Result<i64, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix(CURSOR_PREFIX)?.parse::<i64>().ok())
        .filter(|seq| *seq >= 0)
        .ok_or_else(|| {
            ApiError::bad_request(
                "cursor is not valid: pass next_cursor from the previous answer unchanged",
            )
        })
}

#[derive(Object)]
struct ChangedTransaction {
    id: Uuid,
    account_id: Uuid,
    bank_reference: Option<String>,
    booking_date: NaiveDate,
    value_date: Option<NaiveDate>,
    #[oai(rename = "type")]
    kind: String,
    amount: Dec,
    signed_amount: Dec,
    currency: String,
    status: String,
    description: Option<String>,
}

#[derive(Object)]
struct ChangedPosition {
    id: Uuid,
    account_id: Uuid,
    security_id: Uuid,
    isin: Option<String>,
    as_of: NaiveDate,
    quantity: Dec,
    price: Option<Dec>,
    price_currency: Option<String>,
    market_value: Option<Dec>,
}

#[derive(Object)]
struct ChangedAccount {
    id: Uuid,
    bank_account_id: String,
    iban: Option<String>,
    currency: String,
    kind: String,
    client_id: Option<Uuid>,
}

/// The current state of what changed.
#[derive(Union)]
#[oai(one_of)]
enum Current {
    Transaction(ChangedTransaction),
    Position(ChangedPosition),
    Account(ChangedAccount),
}

/// One entity's net change within this answer.
#[derive(Object)]
struct FeedChange {
    /// `account`, `position` or `transaction`.
    entity: String,
    id: Uuid,
    /// `added`, `modified` or `removed` (an entity added and changed again within one answer
    /// is `added`; added and removed, left out).
    change: String,
    account_id: Uuid,
    client_id: Option<Uuid>,
    changed_at: DateTime<Utc>,
    /// Its state now; null when removed.
    data: Option<Current>,
}

#[derive(Object)]
struct ChangePage {
    changes: Vec<FeedChange>,
    /// Pass as `cursor` next time (always given: with no more changes, the same position).
    next_cursor: String,
    /// True when more changes wait after `next_cursor`: call again at once.
    has_more: bool,
}

/// The net change of each entity over `rows`, in the order of its last change.
fn net(rows: &[Change]) -> Vec<(&Change, &'static str)> {
    let mut first: HashMap<(&str, Uuid), &str> = HashMap::new();
    let mut last: HashMap<(&str, Uuid), usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let key = (r.entity.as_str(), r.entity_id);
        first.entry(key).or_insert(r.change.as_str());
        last.insert(key, i);
    }
    let mut order: Vec<usize> = last.values().copied().collect();
    order.sort_unstable();
    order
        .into_iter()
        .filter_map(|i| {
            let r = &rows[i];
            let began = first[&(r.entity.as_str(), r.entity_id)];
            let change = match (began, r.change.as_str()) {
                ("added", "removed") => return None,
                ("added", _) => "added",
                (_, "removed") => "removed",
                _ => "modified",
            };
            Some((r, change))
        })
        .collect()
}

#[OpenApi(tag = "crate::Tag::Portfolio")]
impl ChangesApi {
    /// The portfolio changes after `cursor` (from the beginning without one; `cursor=now`
    /// starts from the latest change without listing history): accounts, positions and
    /// transactions added, modified or removed, in commit order, each once per answer with
    /// its current state. A client user reads its own client's.
    #[oai(path = "/changes", method = "get", operation_id = "list_changes")]
    async fn changes(
        &self,
        token: BearerToken,
        cursor: Query<Option<String>>,
        limit: Query<Option<u32>>,
    ) -> Result<Json<ChangePage>, ApiError> {
        let limit = page_limit(limit.0, 500)?;
        let (_, mut tx) = self.0.begin(&token, Action::ReadPortfolio).await?;
        let after = match cursor.0.as_deref() {
            None => 0,
            Some("now") => portfolio_changes::latest(&mut tx).await?,
            Some(c) => decode(c)?,
        };
        let mut rows = portfolio_changes::after(&mut tx, after, limit + 1).await?;
        let has_more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = rows.last().map_or(after, |r| r.seq);
        let changes = net(&rows);
        let ids = |entity: &str| -> Vec<Uuid> {
            changes
                .iter()
                .filter(|(r, c)| r.entity == entity && *c != "removed")
                .map(|(r, _)| r.entity_id)
                .collect()
        };
        let (t_ids, p_ids, a_ids) = (ids("transaction"), ids("position"), ids("account"));
        let mut current: HashMap<Uuid, Current> = HashMap::new();
        for t in portfolio_changes::transactions(&mut tx, &t_ids).await? {
            current.insert(
                t.id,
                Current::Transaction(ChangedTransaction {
                    id: t.id,
                    account_id: t.account_id,
                    bank_reference: t.bank_reference,
                    booking_date: t.booking_date,
                    value_date: t.value_date,
                    kind: t.kind,
                    amount: Dec(t.amount),
                    signed_amount: Dec(t.signed_amount),
                    currency: t.currency,
                    status: t.status,
                    description: t.description,
                }),
            );
        }
        for p in portfolio_changes::positions(&mut tx, &p_ids).await? {
            current.insert(
                p.id,
                Current::Position(ChangedPosition {
                    id: p.id,
                    account_id: p.account_id,
                    security_id: p.security_id,
                    isin: p.isin,
                    as_of: p.as_of,
                    quantity: Dec(p.quantity),
                    price: p.price.map(Dec),
                    price_currency: p.price_currency,
                    market_value: p.market_value.map(Dec),
                }),
            );
        }
        for a in portfolio_changes::accounts(&mut tx, &a_ids).await? {
            current.insert(
                a.id,
                Current::Account(ChangedAccount {
                    id: a.id,
                    bank_account_id: a.bank_account_id,
                    iban: a.iban,
                    currency: a.currency,
                    kind: a.kind,
                    client_id: a.client_id,
                }),
            );
        }
        let changes = changes
            .into_iter()
            .map(|(r, change)| FeedChange {
                entity: r.entity.clone(),
                id: r.entity_id,
                change: change.to_owned(),
                account_id: r.account_id,
                client_id: r.client_id,
                changed_at: r.changed_at,
                // Removed since (a later page says so): shown as it was logged, without data.
                data: current.remove(&r.entity_id),
            })
            .collect();
        Ok(Json(ChangePage {
            changes,
            next_cursor: encode(next),
            has_more,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seq: i64, id: u128, change: &str) -> Change {
        Change {
            seq,
            entity: "transaction".into(),
            entity_id: Uuid::from_u128(id),
            change: change.into(),
            account_id: Uuid::nil(),
            client_id: None,
            changed_at: Utc::now(),
        }
    }

    #[test]
    fn each_entity_appears_once_with_its_net_change_in_the_order_of_its_last() {
        let rows = [
            change(1, 1, "added"),
            change(2, 2, "modified"),
            change(3, 1, "modified"),
            change(4, 3, "added"),
            change(5, 3, "removed"),
            change(6, 4, "modified"),
            change(7, 4, "removed"),
        ];
        let seen: Vec<(u128, &str)> = net(&rows)
            .into_iter()
            .map(|(r, c)| (r.entity_id.as_u128(), c))
            .collect();
        assert_eq!(seen, [(2, "modified"), (1, "added"), (4, "removed")]);
    }

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        assert_eq!(decode(&encode(42)).unwrap(), 42);
        assert!(decode("42").is_err());
        assert!(
            decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("chg1:-1")).is_err()
        );
    }
}
