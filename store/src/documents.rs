//! The index of archived raw documents: which run fetched what, when, in which format, and
//! where its bytes are (see [`crate::archive`]). Append-only for the app.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{ConnectionId, Result, RunId, StoreError, TenantTx};

/// A document an attempt fetched and archived, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDocument {
    pub connection: ConnectionId,
    pub run: RunId,
    pub attempt: i32,
    /// Its place in the attempt's fetch, from 0.
    pub seq: i32,
    pub name: String,
    /// `accounts`, `positions`, `balances`, `transactions` or `file`.
    pub kind: String,
    pub account_ref: Option<String>,
    pub page: i32,
    pub file_id: Option<String>,
    pub format: String,
    pub size: i64,
    pub sha256: String,
    pub storage_key: String,
    pub fetched_at: DateTime<Utc>,
}

/// A recorded document.
#[derive(Debug, Clone)]
pub struct Document {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub run_id: Uuid,
    pub attempt: i32,
    pub seq: i32,
    pub name: String,
    pub kind: String,
    pub account_ref: Option<String>,
    pub page: i32,
    pub file_id: Option<String>,
    pub format: String,
    pub size: i64,
    pub sha256: String,
    pub storage_key: String,
    pub fetched_at: DateTime<Utc>,
}

macro_rules! select_document {
    ($tail:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Document,
            "SELECT id, connection_id, run_id, attempt, seq, name, kind, account_ref, page, file_id,
                format, size, sha256, storage_key, fetched_at
             FROM documents "
                + $tail
            $(, $arg)*
        )
    };
}

/// Records documents in the caller's transaction (the run's load, or its failure). Recording
/// the same attempt's documents again adds nothing. Returns how many rows were added.
pub async fn record(tx: &mut TenantTx, documents: &[NewDocument]) -> Result<u64> {
    if documents.is_empty() {
        return Ok(0);
    }
    let tenant = tx.tenant().0;
    let col = |f: fn(&NewDocument) -> String| documents.iter().map(f).collect::<Vec<_>>();
    let opt = |f: fn(&NewDocument) -> Option<String>| documents.iter().map(f).collect::<Vec<_>>();
    let int = |f: fn(&NewDocument) -> i32| documents.iter().map(f).collect::<Vec<_>>();
    // Time-ordered ids in fetch order, so "newest first" lists a run's pages in reverse order.
    let ids: Vec<Uuid> = documents.iter().map(|_| Uuid::now_v7()).collect();
    let inserted = sqlx::query!(
        "INSERT INTO documents (id, tenant_id, connection_id, run_id, attempt, seq, name, kind,
            account_ref, page, file_id, format, size, sha256, storage_key, fetched_at)
         SELECT u.id, $1, u.connection_id, u.run_id, u.attempt, u.seq, u.name, u.kind,
            u.account_ref, u.page, u.file_id, u.format, u.size, u.sha256, u.storage_key, u.fetched_at
         FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::int[], $6::int[], $7::text[],
            $8::text[], $9::text[], $10::int[], $11::text[], $12::text[], $13::bigint[],
            $14::text[], $15::text[], $16::timestamptz[])
            AS u(id, connection_id, run_id, attempt, seq, name, kind, account_ref, page, file_id,
                 format, size, sha256, storage_key, fetched_at)
         ON CONFLICT (run_id, attempt, seq) DO NOTHING",
        tenant,
        &ids,
        &documents.iter().map(|d| d.connection.0).collect::<Vec<_>>(),
        &documents.iter().map(|d| d.run.0).collect::<Vec<_>>(),
        &int(|d| d.attempt),
        &int(|d| d.seq),
        &col(|d| d.name.clone()),
        &col(|d| d.kind.clone()),
        &(opt(|d| d.account_ref.clone())) as &[Option<String>],
        &int(|d| d.page),
        &(opt(|d| d.file_id.clone())) as &[Option<String>],
        &col(|d| d.format.clone()),
        &documents.iter().map(|d| d.size).collect::<Vec<_>>(),
        &col(|d| d.sha256.clone()),
        &col(|d| d.storage_key.clone()),
        &documents.iter().map(|d| d.fetched_at).collect::<Vec<_>>(),
    )
    .execute(tx.conn())
    .await?;
    Ok(inserted.rows_affected())
}

/// A filter over the document list, newest first, with keyset pagination on the id.
#[derive(Debug, Clone, Default)]
pub struct DocumentFilter {
    pub run: Option<RunId>,
    pub connection: Option<ConnectionId>,
    /// Only documents older than this one (the previous page's last id).
    pub before: Option<Uuid>,
    pub limit: i64,
}

/// The tenant's documents matching a filter, newest first.
pub async fn list(tx: &mut TenantTx, filter: &DocumentFilter) -> Result<Vec<Document>> {
    Ok(select_document!(
        "WHERE ($1::uuid IS NULL OR run_id = $1)
           AND ($2::uuid IS NULL OR connection_id = $2)
           AND ($3::uuid IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
        filter.run.map(|r| r.0),
        filter.connection.map(|c| c.0),
        filter.before,
        filter.limit
    )
    .fetch_all(tx.conn())
    .await?)
}

/// One document of the tenant.
pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<Document> {
    select_document!("WHERE id = $1", id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// What a run fetched, in fetch order: the documents of its last attempt that recorded any
/// (an earlier attempt's fetch was superseded by the later one).
pub async fn of_run(tx: &mut TenantTx, run: RunId) -> Result<Vec<Document>> {
    Ok(select_document!(
        "WHERE run_id = $1
           AND attempt = (SELECT max(attempt) FROM documents WHERE run_id = $1)
         ORDER BY seq",
        run.0
    )
    .fetch_all(tx.conn())
    .await?)
}
