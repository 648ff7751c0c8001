//! The tenant's audit log: append-only, hash-chained, read by tenant admins.

use chrono::{DateTime, Utc};
use eam_store::audit::{AuditFilter, AuditRow};
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::routes::page_limit;
use crate::state::ApiState;

pub struct AuditApi(pub ApiState);

/// One entry of the audit log.
#[derive(Object)]
struct AuditEntry {
    id: i64,
    /// Its place in the tenant's log: 1, 2, 3 … without gaps.
    seq: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    target: Option<String>,
    request_id: Option<String>,
    source_addr: Option<String>,
    details: serde_json::Value,
    /// The entry's hash, which the next entry's `prev_hash` repeats (`eam audit verify`).
    hash: String,
    prev_hash: String,
    /// The fingerprint of the key the hash is an HMAC with; absent: plain SHA-256 (written
    /// before `audit.key_ref` was set).
    key_id: Option<String>,
}

impl From<AuditRow> for AuditEntry {
    fn from(a: AuditRow) -> Self {
        AuditEntry {
            id: a.id,
            seq: a.seq,
            at: a.at,
            actor: a.actor,
            action: a.action,
            target: a.target,
            request_id: a.request_id,
            source_addr: a.source_addr,
            details: a.details,
            hash: a.hash,
            prev_hash: a.prev_hash,
            key_id: a.key_id,
        }
    }
}

#[derive(Object)]
struct AuditPage {
    entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (newer) entries; absent on the last page.
    next_cursor: Option<String>,
}

#[OpenApi(tag = "crate::Tag::Admin")]
impl AuditApi {
    /// The tenant's audit log, oldest first, by action, actor, target and time.
    #[oai(path = "/audit", method = "get", operation_id = "list_audit_entries")]
    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        token: BearerToken,
        action: Query<Option<String>>,
        actor: Query<Option<String>>,
        target: Query<Option<String>>,
        since: Query<Option<DateTime<Utc>>>,
        until: Query<Option<DateTime<Utc>>>,
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 100).
        limit: Query<Option<u32>>,
    ) -> Result<Json<AuditPage>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadAudit).await?;
        let limit = page_limit(limit.0, 100)?;
        let after = cursor
            .0
            .as_deref()
            .map(|c| {
                c.parse::<i64>().map_err(|_| {
                    ApiError::bad_request("cursor is not valid: pass next_cursor unchanged")
                })
            })
            .transpose()?;
        let mut tx = caller.tx(&self.0).await?;
        let mut rows = eam_store::audit::search(
            &mut tx,
            &AuditFilter {
                action: action.0,
                actor: actor.0,
                target: target.0,
                since: since.0,
                until: until.0,
                after,
                limit: limit + 1,
            },
        )
        .await?;
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(Json(AuditPage {
            entries: rows.into_iter().map(AuditEntry::from).collect(),
            next_cursor,
        }))
    }
}
