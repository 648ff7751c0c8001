//! The audit log: who did what, to what, when and from where. Append-only and chained.
//!
//! The app role may only INSERT and SELECT (no UPDATE or DELETE grant). Each entry carries the
//! hash of the tenant's previous entry, and its own hash covers that and every field, so an
//! edited or deleted entry breaks the chain from there on ([`verify`]). Entries of one tenant
//! are serialised by a transaction-level advisory lock, so two concurrent actions cannot both
//! chain to the same predecessor.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Result, TenantTx};

/// The previous hash of a tenant's first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A sensitive action to record.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// The subject of the caller's token, or `system:<component>`.
    pub actor: String,
    /// e.g. `connection.created`, `sync.triggered`, `job.retried`.
    pub action: String,
    /// What it was done to, e.g. `connection:<id>`.
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub source_addr: Option<String>,
    pub details: Value,
}

/// A stored entry.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub source_addr: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Appends an entry for the transaction's tenant, chained to its previous entry. It commits
/// with the action it records, or not at all.
pub async fn record(tx: &mut TenantTx, entry: &AuditEntry) -> Result<i64> {
    let tenant = tx.tenant();
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('audit:' || $1::uuid::text, 0))",
        tenant.0
    )
    .execute(tx.conn())
    .await?;
    let prev: Option<String> = sqlx::query_scalar!(
        "SELECT hash FROM audit_log WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1",
        tenant.0
    )
    .fetch_optional(tx.conn())
    .await?;
    let prev = prev.unwrap_or_else(|| GENESIS.to_owned());
    // PostgreSQL keeps microseconds: hash exactly what is stored.
    let at = Utc::now().trunc_subsecs(6);
    let hash = entry_hash(
        &prev,
        &tenant.0.to_string(),
        at,
        &entry.actor,
        &entry.action,
        entry.target.as_deref(),
        entry.request_id.as_deref(),
        entry.source_addr.as_deref(),
        &entry.details,
    );
    let id: i64 = sqlx::query_scalar!(
        "INSERT INTO audit_log (tenant_id, at, actor, action, target, request_id, source_addr,
            details, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        tenant.0,
        at,
        &entry.actor,
        &entry.action,
        entry.target.as_deref(),
        entry.request_id.as_deref(),
        entry.source_addr.as_deref(),
        &entry.details,
        &prev,
        &hash
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// The tenant's entries, oldest first, optionally only one action.
pub async fn list(tx: &mut TenantTx, action: Option<&str>, limit: i64) -> Result<Vec<AuditRow>> {
    Ok(sqlx::query_as!(
        AuditRow,
        "SELECT id, at, actor, action, target, request_id, source_addr, details, prev_hash, hash
         FROM audit_log WHERE tenant_id = $1 AND ($2::text IS NULL OR action = $2)
         ORDER BY id LIMIT $3",
        tx.tenant().0,
        action,
        limit
    )
    .fetch_all(tx.conn())
    .await?)
}

/// Which audit entries to read, oldest first from a cursor.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Entries after this id (the cursor of the previous page).
    pub after: Option<i64>,
    pub limit: i64,
}

/// The tenant's entries matching a filter, oldest first.
pub async fn search(tx: &mut TenantTx, f: &AuditFilter) -> Result<Vec<AuditRow>> {
    Ok(sqlx::query_as!(
        AuditRow,
        "SELECT id, at, actor, action, target, request_id, source_addr, details, prev_hash, hash
         FROM audit_log WHERE tenant_id = $1
           AND ($2::text IS NULL OR action = $2)
           AND ($3::text IS NULL OR actor = $3)
           AND ($4::text IS NULL OR target = $4)
           AND ($5::timestamptz IS NULL OR at >= $5)
           AND ($6::timestamptz IS NULL OR at < $6)
           AND ($7::bigint IS NULL OR id > $7)
         ORDER BY id LIMIT $8",
        tx.tenant().0,
        f.action.as_deref(),
        f.actor.as_deref(),
        f.target.as_deref(),
        f.since,
        f.until,
        f.after,
        f.limit
    )
    .fetch_all(tx.conn())
    .await?)
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub entries: u64,
    /// The id of the first entry whose hash or link does not match, and why.
    pub first_break: Option<(i64, String)>,
}

/// Recomputes the tenant's chain from the first entry.
pub async fn verify(tx: &mut TenantTx) -> Result<Verification> {
    let tenant = tx.tenant().0.to_string();
    let rows = list(tx, None, i64::MAX).await?;
    let mut prev = GENESIS.to_owned();
    for (n, row) in rows.iter().enumerate() {
        if row.prev_hash != prev {
            return Ok(Verification {
                entries: n as u64,
                first_break: Some((row.id, "does not link to the entry before it".into())),
            });
        }
        let expected = entry_hash(
            &prev,
            &tenant,
            row.at,
            &row.actor,
            &row.action,
            row.target.as_deref(),
            row.request_id.as_deref(),
            row.source_addr.as_deref(),
            &row.details,
        );
        if expected != row.hash {
            return Ok(Verification {
                entries: n as u64,
                first_break: Some((row.id, "its content does not match its hash".into())),
            });
        }
        prev = row.hash.clone();
    }
    Ok(Verification {
        entries: rows.len() as u64,
        first_break: None,
    })
}

/// SHA-256 over the previous hash and every field, each length-prefixed so that no two
/// different entries hash the same bytes. `details` is hashed in serde_json's canonical form
/// (keys sorted), which survives the round trip through jsonb.
#[allow(clippy::too_many_arguments)]
fn entry_hash(
    prev: &str,
    tenant: &str,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: Option<&str>,
    request_id: Option<&str>,
    source_addr: Option<&str>,
    details: &Value,
) -> String {
    let mut h = Sha256::new();
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let details = details.to_string();
    for field in [
        Some(prev),
        Some(tenant),
        Some(at.as_str()),
        Some(actor),
        Some(action),
        target,
        request_id,
        source_addr,
        Some(details.as_str()),
    ] {
        match field {
            Some(f) => {
                h.update([1u8]);
                h.update((f.len() as u64).to_le_bytes());
                h.update(f.as_bytes());
            }
            None => h.update([0u8]),
        }
    }
    hex::encode(h.finalize())
}
