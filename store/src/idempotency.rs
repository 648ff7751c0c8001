//! Idempotency keys: the first request a caller sends with a key is recorded before it runs,
//! then its answer; a repeat of the same request within the window gets that answer again
//! instead of running twice (a retried POST never creates a second connection). Scoped to the
//! caller (tenant and token subject). See migration 0031.

use serde_json::Value;

use crate::{Result, TenantTx};

/// How long a key holds its answer.
pub const WINDOW_HOURS: i32 = 24;
/// A request in progress longer than this was abandoned (its process died): the key is free.
pub const ABANDONED_AFTER_SECS: i32 = 300;

/// A kept answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub status: u16,
    /// Header name to value (content-type, location, retry-after).
    pub headers: Value,
    pub body: Vec<u8>,
}

/// What a key says about a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// First use: the request runs; [`complete`] or [`release`] it after.
    Fresh,
    /// The same request already answered: this answer.
    Replay(Stored),
    /// The key was used for another request (method, path, query or body).
    Mismatch,
    /// The same request is running now.
    InProgress,
}

/// Claims the key for a request (commit the transaction at once, so that a concurrent
/// duplicate sees it), or says what it already holds.
pub async fn begin(
    tx: &mut TenantTx,
    subject: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Begin> {
    let tenant = tx.tenant().0;
    // Keys past the window (this caller's and everyone's in the tenant, a few rows at a time by
    // their age index) and an abandoned claim of this one.
    sqlx::query!(
        "DELETE FROM idempotency_keys
         WHERE tenant_id = $1
           AND (created_at < now() - make_interval(hours => $4)
                OR (subject = $2 AND key = $3 AND completed_at IS NULL
                    AND created_at < now() - make_interval(secs => $5)))",
        tenant,
        subject,
        key,
        WINDOW_HOURS,
        f64::from(ABANDONED_AFTER_SECS),
    )
    .execute(tx.conn())
    .await?;
    let claimed = sqlx::query!(
        "INSERT INTO idempotency_keys (tenant_id, subject, key, fingerprint)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        tenant,
        subject,
        key,
        fingerprint
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if claimed == 1 {
        return Ok(Begin::Fresh);
    }
    let held = sqlx::query!(
        "SELECT fingerprint, status, headers, body FROM idempotency_keys
         WHERE tenant_id = $1 AND subject = $2 AND key = $3",
        tenant,
        subject,
        key
    )
    .fetch_one(tx.conn())
    .await?;
    if held.fingerprint != fingerprint {
        return Ok(Begin::Mismatch);
    }
    Ok(match (held.status, held.body) {
        (Some(status), Some(body)) => Begin::Replay(Stored {
            status: u16::try_from(status).unwrap_or(500),
            headers: held.headers.unwrap_or(Value::Null),
            body,
        }),
        _ => Begin::InProgress,
    })
}

/// Keeps the answer of a request that claimed its key.
pub async fn complete(tx: &mut TenantTx, subject: &str, key: &str, answer: &Stored) -> Result<()> {
    sqlx::query!(
        "UPDATE idempotency_keys SET completed_at = now(), status = $4, headers = $5, body = $6
         WHERE tenant_id = $1 AND subject = $2 AND key = $3",
        tx.tenant().0,
        subject,
        key,
        i16::try_from(answer.status).unwrap_or(500),
        &answer.headers,
        &answer.body
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Frees the key of a request whose answer is not kept (a server error): the next try runs.
pub async fn release(tx: &mut TenantTx, subject: &str, key: &str) -> Result<()> {
    sqlx::query!(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND subject = $2 AND key = $3
           AND completed_at IS NULL",
        tx.tenant().0,
        subject,
        key
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
