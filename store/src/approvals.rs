//! Four-eyes approvals (migration 0026): a sensitive request stored with its parameters and
//! requester until a different user approves (and the action is done in that transaction),
//! rejects, or it expires; and the tenant's policy of which actions need one.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::{Result, StoreError, TenantTx};

/// One approval request.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    pub id: Uuid,
    pub action: String,
    pub target: String,
    pub summary: String,
    pub params: Value,
    pub status: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub request_id: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    pub result: Option<Value>,
}

/// A request to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval<'a> {
    pub action: &'a str,
    pub target: &'a str,
    pub summary: &'a str,
    pub params: &'a Value,
    pub requested_by: &'a str,
    pub request_id: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

macro_rules! select_approval {
    ($tail:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Approval,
            r#"SELECT id, action, target, summary, params, status, requested_by, requested_at,
                request_id, expires_at, decided_by, decided_at, decision_note, result
             FROM approvals "# + $tail
            $(, $arg)*,
        )
    };
}

/// Stores a request (its `approval.requested` event commits with it).
pub async fn request(tx: &mut TenantTx, new: &NewApproval<'_>) -> Result<Approval> {
    let id = sqlx::query_scalar!(
        "INSERT INTO approvals (tenant_id, action, target, summary, params, requested_by,
            request_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        tx.tenant().0,
        new.action,
        new.target,
        new.summary,
        new.params,
        new.requested_by,
        new.request_id,
        new.expires_at
    )
    .fetch_one(tx.conn())
    .await?;
    get(tx, id).await
}

/// The tenant's requests, newest first, by status as a reader sees it: `pending` leaves out
/// the ones past their expiry, `expired` takes them in (nobody tried to decide them, so the
/// table still says pending).
pub async fn list(tx: &mut TenantTx, status: Option<&str>, limit: i64) -> Result<Vec<Approval>> {
    Ok(select_approval!(
        "WHERE CASE $1::text
                 WHEN 'pending' THEN status = 'pending' AND expires_at > now()
                 WHEN 'expired' THEN status = 'expired'
                                     OR (status = 'pending' AND expires_at <= now())
                 ELSE $1::text IS NULL OR status = $1
               END
         ORDER BY seq DESC LIMIT $2",
        status,
        limit
    )
    .fetch_all(tx.conn())
    .await?)
}

/// The request with this id.
pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<Approval> {
    select_approval!("WHERE id = $1", id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// The request, locked until the transaction ends so that two deciders cannot both act on
/// it; a pending request past its expiry is marked expired here (and answered so).
pub async fn lock(tx: &mut TenantTx, id: Uuid) -> Result<Approval> {
    let approval = select_approval!("WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
    if approval.status == "pending" && approval.expires_at <= Utc::now() {
        sqlx::query!(
            "UPDATE approvals SET status = 'expired', decided_at = now() WHERE id = $1",
            id
        )
        .execute(tx.conn())
        .await?;
        return get(tx, id).await;
    }
    Ok(approval)
}

/// Records the decision on a locked, pending request: `executed` (with what the execution
/// answered) or `rejected`.
pub async fn decide(
    tx: &mut TenantTx,
    id: Uuid,
    status: &str,
    decided_by: &str,
    note: Option<&str>,
    result: Option<&Value>,
) -> Result<Approval> {
    let updated = sqlx::query!(
        "UPDATE approvals SET status = $2, decided_by = $3, decided_at = now(),
            decision_note = $4, result = $5
         WHERE id = $1 AND status = 'pending'",
        id,
        status,
        decided_by,
        note,
        result
    )
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        let a = get(tx, id).await?;
        return Err(StoreError::Conflict(format!("the request is {}", a.status)));
    }
    get(tx, id).await
}

/// The actions the tenant's policy sends for approval: `None` when it never set one (the
/// caller's default applies).
pub async fn policy(tx: &mut TenantTx) -> Result<Option<Vec<String>>> {
    Ok(sqlx::query_scalar!("SELECT actions FROM approval_policies")
        .fetch_optional(tx.conn())
        .await?)
}

/// Sets the tenant's policy.
pub async fn set_policy(tx: &mut TenantTx, actions: &[String], by: &str) -> Result<()> {
    sqlx::query!(
        "INSERT INTO approval_policies (tenant_id, actions, updated_by) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET actions = $2, updated_by = $3, updated_at = now()",
        tx.tenant().0,
        actions,
        by
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
