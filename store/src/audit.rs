//! The audit log: who did what, to what, when and from where. Append-only, chained, keyed and
//! anchored outside the database.
//!
//! The app role may only INSERT and SELECT (no UPDATE or DELETE grant). Each entry has its
//! place in the tenant's log (`seq` 1, 2, 3 …) and carries the hash of the previous entry; its
//! own hash covers that and every field, so an edited or deleted entry breaks the chain from
//! there on ([`verify`]). The hash is an HMAC-SHA256 with a key the database never holds
//! (`audit.key_ref`, [`AuditKeys`]): whoever can write the table cannot recompute it. What a
//! chain cannot show by itself — its newest entries deleted, or the whole log rewritten by
//! someone holding the key — the published heads do: workers write the tenant's newest
//! (seq, hash), signed, to the archive ([`publish_heads`]; S3 with object lock in production),
//! and [`verify`] holds the log against every head ever published. Entries of one tenant are
//! serialised by a transaction-level advisory lock, so two concurrent actions cannot both
//! chain to the same predecessor.

use aws_lc_rs::{constant_time, hmac};
use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::archive::{Archive, ArchiveError};
use crate::{Result, Store, StoreError, TenantId, TenantTx};

/// The previous hash of a tenant's first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The shortest key accepted: HMAC-SHA256 wants 32 bytes of entropy.
const MIN_KEY_BYTES: usize = 32;

/// One key of the chain's HMAC, named by its fingerprint (never by its value).
#[derive(Clone)]
pub struct AuditKey {
    id: String,
    key: hmac::Key,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({})", self.id)
    }
}

impl AuditKey {
    /// A key from secret bytes as the secret provider returns them (a file's final newline is
    /// not part of it).
    pub fn new(secret: &[u8]) -> std::result::Result<AuditKey, String> {
        let end = secret
            .iter()
            .rposition(|b| !matches!(b, b'\n' | b'\r'))
            .map_or(0, |i| i + 1);
        let secret = &secret[..end];
        if secret.len() < MIN_KEY_BYTES {
            return Err(format!(
                "an audit key must be at least {MIN_KEY_BYTES} bytes; this one has {}",
                secret.len()
            ));
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let id = hex::encode(&hmac::sign(&key, b"eam audit key id").as_ref()[..8]);
        Ok(AuditKey { id, key })
    }

    /// The key's fingerprint, stored with each entry it keyed.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn sign(&self, message: &[u8]) -> String {
        hex::encode(hmac::sign(&self.key, message))
    }

    fn verifies(&self, message: &[u8], hex_tag: &str) -> bool {
        match hex::decode(hex_tag) {
            Ok(tag) => hmac::verify(&self.key, message, &tag).is_ok(),
            Err(_) => false,
        }
    }
}

/// The key new entries and heads are written with, and the retired ones older entries still
/// verify with. None configured: entries are chained with plain SHA-256 (development only).
#[derive(Debug, Clone, Default)]
pub struct AuditKeys {
    current: Option<AuditKey>,
    retired: Vec<AuditKey>,
}

impl AuditKeys {
    pub fn new(current: AuditKey, retired: Vec<AuditKey>) -> AuditKeys {
        AuditKeys {
            current: Some(current),
            retired,
        }
    }

    /// The key new entries get.
    pub fn current(&self) -> Option<&AuditKey> {
        self.current.as_ref()
    }

    fn find(&self, id: &str) -> Option<&AuditKey> {
        self.current
            .iter()
            .chain(&self.retired)
            .find(|k| k.id == id)
    }

    /// The hash a stored entry must have: keyed with the key it names, or plain SHA-256 for an
    /// entry written without one. Err: it names a key that is not configured.
    pub fn entry_hash(
        &self,
        tenant: TenantId,
        row: &AuditRow,
    ) -> std::result::Result<String, String> {
        let fields = EntryFields {
            prev: &row.prev_hash,
            tenant,
            seq: row.seq,
            at: row.at,
            actor: &row.actor,
            action: &row.action,
            target: row.target.as_deref(),
            request_id: row.request_id.as_deref(),
            source_addr: row.source_addr.as_deref(),
            details: &row.details,
        };
        match &row.key_id {
            None => Ok(fields.unkeyed_hash()),
            Some(id) => match self.find(id) {
                Some(key) => Ok(fields.keyed_hash(key)),
                None => Err(format!(
                    "it is keyed with key {id}, which is not configured (audit.key_ref, \
                     audit.retired_key_refs)"
                )),
            },
        }
    }
}

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
    /// Its place in the tenant's log: 1, 2, 3 … without gaps.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub source_addr: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
    /// The fingerprint of the key its hash is keyed with; None: plain SHA-256.
    pub key_id: Option<String>,
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
    let (seq, prev) = match newest_entry(tx).await? {
        Some(last) => (last.seq + 1, last.hash),
        None => (1, GENESIS.to_owned()),
    };
    // PostgreSQL keeps microseconds: hash exactly what is stored.
    let at = Utc::now().trunc_subsecs(6);
    let fields = EntryFields {
        prev: &prev,
        tenant,
        seq,
        at,
        actor: &entry.actor,
        action: &entry.action,
        target: entry.target.as_deref(),
        request_id: entry.request_id.as_deref(),
        source_addr: entry.source_addr.as_deref(),
        details: &entry.details,
    };
    let key = tx.audit_keys().current().cloned();
    let hash = match &key {
        Some(key) => fields.keyed_hash(key),
        None => fields.unkeyed_hash(),
    };
    let id: i64 = sqlx::query_scalar!(
        "INSERT INTO audit_log (tenant_id, seq, at, actor, action, target, request_id,
            source_addr, details, prev_hash, hash, key_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        tenant.0,
        seq,
        at,
        &entry.actor,
        &entry.action,
        entry.target.as_deref(),
        entry.request_id.as_deref(),
        entry.source_addr.as_deref(),
        &entry.details,
        &prev,
        &hash,
        key.as_ref().map(AuditKey::id),
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// The newest entry of the transaction's tenant: what the next entry chains to and what a
/// head publishes.
struct Newest {
    id: i64,
    seq: i64,
    at: DateTime<Utc>,
    hash: String,
}

async fn newest_entry(tx: &mut TenantTx) -> Result<Option<Newest>> {
    Ok(sqlx::query_as!(
        Newest,
        "SELECT id, seq, at, hash FROM audit_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
        tx.tenant().0
    )
    .fetch_optional(tx.conn())
    .await?)
}

/// The tenant's entries, oldest first, optionally only one action.
pub async fn list(tx: &mut TenantTx, action: Option<&str>, limit: i64) -> Result<Vec<AuditRow>> {
    Ok(sqlx::query_as!(
        AuditRow,
        "SELECT id, seq, at, actor, action, target, request_id, source_addr, details, prev_hash,
            hash, key_id
         FROM audit_log WHERE tenant_id = $1 AND ($2::text IS NULL OR action = $2)
         ORDER BY seq LIMIT $3",
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
        "SELECT id, seq, at, actor, action, target, request_id, source_addr, details, prev_hash,
            hash, key_id
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

/// A head: the tenant's newest entry at a moment, as published to the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub tenant: Uuid,
    pub seq: i64,
    pub entry_id: i64,
    pub entry_at: DateTime<Utc>,
    pub hash: String,
    pub published_at: DateTime<Utc>,
    /// The key that signed it; None: unsigned (no key configured).
    pub key_id: Option<String>,
    pub signature: Option<String>,
}

impl Head {
    /// What the signature covers: every field, one per line (none can hold a newline).
    fn message(&self) -> String {
        let micros = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        format!(
            "eam-audit-head/1\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.tenant,
            self.seq,
            self.entry_id,
            micros(self.entry_at),
            self.hash,
            micros(self.published_at),
            self.key_id.as_deref().unwrap_or("-")
        )
    }

    /// Where a tenant's head of a sequence number lives in the archive.
    pub fn object_key(tenant: TenantId, seq: i64) -> String {
        format!("{}/{seq:020}.json", Head::prefix(tenant))
    }

    fn prefix(tenant: TenantId) -> String {
        format!("tenants/{tenant}/audit-heads")
    }
}

/// Why heads could not be published or read.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The log is shorter than a head already published: entries were deleted. Nothing is
    /// published over it.
    #[error(
        "the audit log of tenant {tenant} ends at entry {newest}, but its head of entry \
         {published} was published: entries were deleted; not publishing (eam audit verify)"
    )]
    Behind {
        tenant: TenantId,
        newest: i64,
        published: i64,
    },
}

impl From<sqlx::Error> for AnchorError {
    fn from(e: sqlx::Error) -> Self {
        AnchorError::Store(e.into())
    }
}

/// Publishes the tenant's newest entry as a head unless that entry was published already.
/// The head is in the archive before its record in `audit_heads` commits; two workers at once
/// publish it once (the second waits on the first's row, then finds it).
pub async fn publish_head(
    store: &Store,
    archive: &Archive,
    tenant: TenantId,
) -> std::result::Result<Option<Head>, AnchorError> {
    let mut tx = store.tenant_tx(tenant).await?;
    let newest = newest_entry(&mut tx).await?;
    let published = sqlx::query_scalar!(
        "SELECT max(seq) FROM audit_heads WHERE tenant_id = $1",
        tenant.0
    )
    .fetch_one(tx.conn())
    .await?;
    let newest_seq = newest.as_ref().map_or(0, |n| n.seq);
    if let Some(published) = published.filter(|p| *p > newest_seq) {
        return Err(AnchorError::Behind {
            tenant,
            newest: newest_seq,
            published,
        });
    }
    let Some(newest) = newest else {
        return Ok(None);
    };
    let published_at = Utc::now().trunc_subsecs(6);
    let object_key = Head::object_key(tenant, newest.seq);
    let claimed = sqlx::query!(
        "INSERT INTO audit_heads (tenant_id, seq, entry_id, hash, object_key, published_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        tenant.0,
        newest.seq,
        newest.id,
        &newest.hash,
        &object_key,
        published_at
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(None);
    }
    let key = store.audit_keys().current();
    let mut head = Head {
        tenant: tenant.0,
        seq: newest.seq,
        entry_id: newest.id,
        entry_at: newest.at,
        hash: newest.hash,
        published_at,
        key_id: key.map(|k| k.id().to_owned()),
        signature: None,
    };
    head.signature = key.map(|k| k.sign(head.message().as_bytes()));
    let body = serde_json::to_vec_pretty(&head).map_err(|e| StoreError::Data(e.to_string()))?;
    archive.put_named(&object_key, Bytes::from(body)).await?;
    tx.commit().await?;
    Ok(Some(head))
}

/// Publishes a head for every tenant whose log grew since its last one; answers how many.
/// A tenant that fails does not stop the others; the first error is returned after them all.
pub async fn publish_heads(
    store: &Store,
    archive: &Archive,
) -> std::result::Result<u32, AnchorError> {
    let mut published = 0;
    let mut first_error = None;
    for tenant in crate::tenants::list_all(store).await? {
        match publish_head(store, archive, TenantId(tenant.id)).await {
            Ok(Some(_)) => published += 1,
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(published),
        Some(e) => Err(e),
    }
}

/// A head as read back from the archive: its object key, and the head or why it cannot be read.
pub type PublishedHead = (String, std::result::Result<Head, String>);

/// Every head ever published for a tenant, oldest first.
pub async fn published_heads(
    archive: &Archive,
    tenant: TenantId,
) -> std::result::Result<Vec<PublishedHead>, ArchiveError> {
    let mut heads = Vec::new();
    for key in archive.list_named(&Head::prefix(tenant)).await? {
        let body = archive.get_named(&key).await?;
        let head = serde_json::from_slice::<Head>(&body).map_err(|e| format!("not a head: {e}"));
        heads.push((key, head));
    }
    Ok(heads)
}

/// Where the log stops being what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The place in the log (seq) where it breaks.
    pub seq: i64,
    /// The entry found there, if any.
    pub id: Option<i64>,
    pub why: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Entries whose chain verifies, from the first.
    pub entries: u64,
    /// Of those, how many were written before a key was configured (plain SHA-256).
    pub unkeyed: u64,
    /// Published heads the log matches.
    pub heads_matched: u64,
    /// The newest head the log matches.
    pub newest_head: Option<Head>,
    /// Entries after the newest head: not anchored yet (a deletion among them is not seen).
    pub unanchored: u64,
    pub first_break: Option<Break>,
}

/// Recomputes the tenant's chain from the first entry, then holds it against every head
/// published for it: a head naming an entry the log no longer has is a truncation, one
/// whose hash differs is a rewrite, each after the head's time.
pub async fn verify(tx: &mut TenantTx, heads: &[PublishedHead]) -> Result<Verification> {
    let tenant = tx.tenant();
    let rows = list(tx, None, i64::MAX).await?;
    let keys = tx.audit_keys().clone();
    let chain_break = walk_chain(&keys, tenant, &rows);
    let intact = chain_break.as_ref().map_or(rows.len(), |(n, _)| *n);
    let unkeyed = rows[..intact].iter().filter(|r| r.key_id.is_none()).count() as u64;
    let mut v = Verification {
        entries: intact as u64,
        unkeyed,
        heads_matched: 0,
        newest_head: None,
        unanchored: 0,
        first_break: chain_break.map(|(_, b)| b),
    };
    if v.first_break.is_none() {
        v.first_break = check_heads(&keys, tenant, &rows, heads, &mut v);
    }
    v.unanchored = match &v.newest_head {
        Some(h) => (rows.len() as i64 - h.seq).max(0) as u64,
        None => rows.len() as u64,
    };
    Ok(v)
}

/// The first entry (counting from 0) where the chain breaks, and how.
fn walk_chain(keys: &AuditKeys, tenant: TenantId, rows: &[AuditRow]) -> Option<(usize, Break)> {
    let mut prev = GENESIS;
    let mut keyed_seen = false;
    for (n, row) in rows.iter().enumerate() {
        let seq = n as i64 + 1;
        let broken = |why: String| {
            Some((
                n,
                Break {
                    seq,
                    id: Some(row.id),
                    why,
                },
            ))
        };
        if row.seq != seq {
            return Some((
                n,
                Break {
                    seq,
                    id: None,
                    why: format!("entry {seq} is missing: the next one is {}", row.seq),
                },
            ));
        }
        if row.prev_hash != prev {
            return broken("it does not link to the entry before it".into());
        }
        match (&row.key_id, keyed_seen) {
            (None, true) => {
                return broken(
                    "it is not keyed although entries before it are: it was not written by \
                     this platform"
                        .into(),
                );
            }
            (Some(_), _) => keyed_seen = true,
            (None, false) => {}
        }
        match keys.entry_hash(tenant, row) {
            Ok(expected)
                if constant_time::verify_slices_are_equal(
                    expected.as_bytes(),
                    row.hash.as_bytes(),
                )
                .is_ok() => {}
            Ok(_) => return broken("its content does not match its hash".into()),
            Err(why) => return broken(why),
        }
        prev = &row.hash;
    }
    None
}

/// The first head the log does not match; counts the ones it does.
fn check_heads(
    keys: &AuditKeys,
    tenant: TenantId,
    rows: &[AuditRow],
    heads: &[PublishedHead],
    v: &mut Verification,
) -> Option<Break> {
    let newest = rows.len() as i64;
    let mut heads: Vec<&PublishedHead> = heads.iter().collect();
    heads.sort_by_key(|(_, h)| h.as_ref().map_or(i64::MAX, |h| h.seq));
    for (object, head) in heads {
        let head = match head {
            Ok(head) => head,
            Err(why) => {
                return Some(Break {
                    seq: newest,
                    id: None,
                    why: format!("published head {object} cannot be read: {why}"),
                });
            }
        };
        let at = head
            .published_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let refused = |why: String| {
            Some(Break {
                seq: head.seq,
                id: None,
                why,
            })
        };
        if head.tenant != tenant.0 || Head::object_key(tenant, head.seq) != *object {
            return refused(format!(
                "published head {object} is not this tenant's head of entry {}",
                head.seq
            ));
        }
        if let Some(id) = &head.key_id {
            let Some(key) = keys.find(id) else {
                return refused(format!(
                    "the head published at {at} is signed with key {id}, which is not \
                     configured (audit.key_ref, audit.retired_key_refs)"
                ));
            };
            let signed = head
                .signature
                .as_deref()
                .is_some_and(|s| key.verifies(head.message().as_bytes(), s));
            if !signed {
                return refused(format!(
                    "the head published at {at} ({object}) does not verify with its key: it \
                     was not written by this platform"
                ));
            }
        }
        let since = match &v.newest_head {
            Some(ok) => format!(
                "; the log matched the head published at {} (entry {})",
                ok.published_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ok.seq
            ),
            None => String::new(),
        };
        let Some(row) = usize::try_from(head.seq - 1).ok().and_then(|i| rows.get(i)) else {
            return Some(Break {
                seq: newest + 1,
                id: None,
                why: format!(
                    "the log ends at entry {newest}, but the head published at {at} names entry \
                     {}: entries {} to {} were deleted after {at}{since}",
                    head.seq,
                    newest + 1,
                    head.seq
                ),
            });
        };
        if row.hash != head.hash || row.id != head.entry_id {
            return Some(Break {
                seq: head.seq,
                id: Some(row.id),
                why: format!(
                    "entry {} is not the one the head published at {at} names (hash {} then, {} \
                     now): the log was rewritten after {at}{since}",
                    head.seq,
                    short(&head.hash),
                    short(&row.hash)
                ),
            });
        }
        v.heads_matched += 1;
        v.newest_head = Some(head.clone());
    }
    None
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// An entry's fields as its hash covers them.
struct EntryFields<'a> {
    prev: &'a str,
    tenant: TenantId,
    seq: i64,
    at: DateTime<Utc>,
    actor: &'a str,
    action: &'a str,
    target: Option<&'a str>,
    request_id: Option<&'a str>,
    source_addr: Option<&'a str>,
    details: &'a Value,
}

impl EntryFields<'_> {
    /// Each field length-prefixed, so that no two different entries give the same bytes.
    /// `details` in serde_json's canonical form (keys sorted), which survives the round trip
    /// through jsonb. A keyed entry's message also holds its place and its key.
    fn message(&self, key: Option<&AuditKey>) -> Vec<u8> {
        let tenant = self.tenant.0.to_string();
        let at = self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let details = self.details.to_string();
        let seq = self.seq.to_string();
        let mut fields = vec![
            Some(self.prev),
            Some(tenant.as_str()),
            Some(at.as_str()),
            Some(self.actor),
            Some(self.action),
            self.target,
            self.request_id,
            self.source_addr,
            Some(details.as_str()),
        ];
        if let Some(key) = key {
            fields.extend([Some(seq.as_str()), Some(key.id())]);
        }
        let mut m = Vec::with_capacity(256 + details.len());
        for field in fields {
            match field {
                Some(f) => {
                    m.push(1u8);
                    m.extend_from_slice(&(f.len() as u64).to_le_bytes());
                    m.extend_from_slice(f.as_bytes());
                }
                None => m.push(0u8),
            }
        }
        m
    }

    /// What entries written without a key have: SHA-256 (anyone can recompute it).
    fn unkeyed_hash(&self) -> String {
        hex::encode(Sha256::digest(self.message(None)))
    }

    fn keyed_hash(&self, key: &AuditKey) -> String {
        key.sign(&self.message(Some(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> AuditKey {
        AuditKey::new(&[byte; 32]).expect("32 bytes")
    }

    fn row(seq: i64, prev: &str, keys: &AuditKeys, tenant: TenantId) -> AuditRow {
        let mut r = AuditRow {
            id: seq * 10,
            seq,
            at: DateTime::from_timestamp(1_790_000_000 + seq, 123_456_000).expect("time"),
            actor: "user:ops".into(),
            action: "job.retried".into(),
            target: Some(format!("run:{seq}")),
            request_id: None,
            source_addr: Some("127.0.0.1".into()),
            details: serde_json::json!({"b": 1, "a": [seq]}),
            prev_hash: prev.to_owned(),
            hash: String::new(),
            key_id: keys.current().map(|k| k.id().to_owned()),
        };
        r.hash = keys.entry_hash(tenant, &r).expect("configured");
        r
    }

    fn chain(n: i64, keys: &AuditKeys, tenant: TenantId) -> Vec<AuditRow> {
        let mut rows: Vec<AuditRow> = Vec::new();
        for seq in 1..=n {
            let prev = rows.last().map_or(GENESIS.to_owned(), |r| r.hash.clone());
            rows.push(row(seq, &prev, keys, tenant));
        }
        rows
    }

    #[test]
    fn a_short_key_is_refused_and_a_key_is_named_by_its_fingerprint_only() {
        assert_eq!(
            AuditKey::new(b"too short\n").unwrap_err(),
            "an audit key must be at least 32 bytes; this one has 9"
        );
        let a = key(7);
        assert_eq!(a.id().len(), 16);
        assert_eq!(format!("{a:?}"), format!("AuditKey({})", a.id()));
        // A file's trailing newline is not part of the key.
        let mut with_newline = vec![7u8; 32];
        with_newline.push(b'\n');
        assert_eq!(AuditKey::new(&with_newline).unwrap().id(), a.id());
        assert_ne!(key(8).id(), a.id());
    }

    #[test]
    fn a_keyed_chain_verifies_and_breaks_where_it_was_edited_or_rekeyed() {
        let tenant = TenantId(Uuid::from_u128(1));
        let keys = AuditKeys::new(key(1), vec![]);
        let rows = chain(5, &keys, tenant);
        assert!(walk_chain(&keys, tenant, &rows).is_none());

        // An edited entry whose hash is recomputed with another key (one the forger has)
        // does not verify.
        let mut edited = rows.clone();
        edited[2].details = serde_json::json!({"edited": true});
        let forger = AuditKeys::new(key(2), vec![]);
        let mut forged = edited[2].clone();
        forged.key_id = Some(key(2).id().to_owned());
        edited[2].hash = forger.entry_hash(tenant, &forged).unwrap();
        let (n, b) = walk_chain(&keys, tenant, &edited).expect("broken");
        assert_eq!((n, b.seq, b.id), (2, 3, Some(30)));
        assert_eq!(b.why, "its content does not match its hash");

        // Rewritten in the old unkeyed format: refused after keyed entries.
        let mut unkeyed = rows.clone();
        unkeyed[3].key_id = None;
        unkeyed[3].hash = keys.entry_hash(tenant, &unkeyed[3]).unwrap();
        let (_, b) = walk_chain(&keys, tenant, &unkeyed).expect("broken");
        assert_eq!(b.seq, 4);
        assert!(b.why.starts_with("it is not keyed although"), "{}", b.why);

        // A retired key still verifies its entries; without it they name it.
        let rotated = AuditKeys::new(key(3), vec![key(1)]);
        assert!(walk_chain(&rotated, tenant, &rows).is_none());
        let forgotten = AuditKeys::new(key(3), vec![]);
        let (_, b) = walk_chain(&forgotten, tenant, &rows).expect("broken");
        assert_eq!(b.seq, 1);
        assert!(b.why.contains(key(1).id()), "{}", b.why);

        // A gap is a missing entry.
        let mut gap = rows.clone();
        gap.remove(1);
        let (_, b) = walk_chain(&keys, tenant, &gap).expect("broken");
        assert_eq!((b.seq, b.id), (2, None));
        assert_eq!(b.why, "entry 2 is missing: the next one is 3");
    }

    #[test]
    fn unkeyed_entries_from_before_the_key_keep_verifying_in_their_format() {
        let tenant = TenantId(Uuid::from_u128(2));
        let mut rows = chain(2, &AuditKeys::default(), tenant);
        // The format entries had before keys, byte for byte: SHA-256 over the nine fields.
        let mut old = Sha256::new();
        let at = rows[0]
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let details = rows[0].details.to_string();
        let tenant_text = tenant.0.to_string();
        for f in [
            Some(GENESIS),
            Some(tenant_text.as_str()),
            Some(at.as_str()),
            Some("user:ops"),
            Some("job.retried"),
            Some("run:1"),
            None,
            Some("127.0.0.1"),
            Some(details.as_str()),
        ] {
            match f {
                Some(f) => {
                    old.update([1u8]);
                    old.update((f.len() as u64).to_le_bytes());
                    old.update(f.as_bytes());
                }
                None => old.update([0u8]),
            }
        }
        assert_eq!(hex::encode(old.finalize()), rows[0].hash);
        let keys = AuditKeys::new(key(1), vec![]);
        let third = row(3, &rows[1].hash, &keys, tenant);
        rows.push(third);
        assert!(walk_chain(&keys, tenant, &rows).is_none());
    }

    fn head(keys: &AuditKeys, tenant: TenantId, row: &AuditRow, minute: i64) -> PublishedHead {
        let mut h = Head {
            tenant: tenant.0,
            seq: row.seq,
            entry_id: row.id,
            entry_at: row.at,
            hash: row.hash.clone(),
            published_at: DateTime::from_timestamp(1_790_000_000 + minute * 60, 0).expect("time"),
            key_id: keys.current().map(|k| k.id().to_owned()),
            signature: None,
        };
        h.signature = keys.current().map(|k| k.sign(h.message().as_bytes()));
        (Head::object_key(tenant, row.seq), Ok(h))
    }

    fn checked(
        keys: &AuditKeys,
        tenant: TenantId,
        rows: &[AuditRow],
        heads: &[PublishedHead],
    ) -> (Verification, Option<Break>) {
        let mut v = Verification {
            entries: rows.len() as u64,
            unkeyed: 0,
            heads_matched: 0,
            newest_head: None,
            unanchored: 0,
            first_break: None,
        };
        let b = check_heads(keys, tenant, rows, heads, &mut v);
        (v, b)
    }

    #[test]
    fn heads_catch_a_truncation_and_a_rewrite_by_someone_holding_the_key() {
        let tenant = TenantId(Uuid::from_u128(3));
        let keys = AuditKeys::new(key(1), vec![]);
        let rows = chain(6, &keys, tenant);
        let heads = vec![
            head(&keys, tenant, &rows[1], 1),
            head(&keys, tenant, &rows[4], 2),
        ];
        let (v, b) = checked(&keys, tenant, &rows, &heads);
        assert_eq!(b, None);
        assert_eq!(
            (v.heads_matched, v.newest_head.map(|h| h.seq)),
            (2, Some(5))
        );

        // The newest three deleted: the chain itself still verifies.
        let truncated = &rows[..3];
        assert!(walk_chain(&keys, tenant, truncated).is_none());
        let (v, b) = checked(&keys, tenant, truncated, &heads);
        let b = b.expect("truncation found");
        assert_eq!((b.seq, v.heads_matched), (4, 1));
        assert_eq!(
            b.why,
            "the log ends at entry 3, but the head published at 2026-09-21T14:15:20Z names entry \
             5: entries 4 to 5 were deleted after 2026-09-21T14:15:20Z; the log matched the head \
             published at 2026-09-21T14:14:20Z (entry 2)"
        );

        // Entry 4 edited and every later hash recomputed with the key itself.
        let mut rewritten = rows[..3].to_vec();
        for seq in 4..=6 {
            let mut r = row(seq, &rewritten.last().unwrap().hash, &keys, tenant);
            if seq == 4 {
                r.details = serde_json::json!({"edited": true});
                r.hash = keys.entry_hash(tenant, &r).unwrap();
            }
            rewritten.push(r);
        }
        assert!(walk_chain(&keys, tenant, &rewritten).is_none());
        let (_, b) = checked(&keys, tenant, &rewritten, &heads);
        let b = b.expect("rewrite found");
        assert_eq!((b.seq, b.id), (5, Some(50)));
        assert!(
            b.why
                .contains("the log was rewritten after 2026-09-21T14:15:20Z"),
            "{}",
            b.why
        );

        // A head forged without the key is refused.
        let mut forged = head(&AuditKeys::new(key(9), vec![]), tenant, &rows[2], 3);
        if let Ok(h) = &mut forged.1 {
            h.key_id = Some(key(1).id().to_owned());
        }
        let (_, b) = checked(&keys, tenant, &rows, &[forged]);
        assert!(
            b.expect("forged")
                .why
                .contains("does not verify with its key")
        );
    }
}
