//! Bank connections: which bank, where, and references to the secrets to reach it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::{ConnectionId, Result, StoreError, TenantTx};

/// A new connection as ops describe it. Secret fields are references, never values.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub custodian: String,
    pub name: String,
    /// The connection's own URL, only where its custodian allows one (else the registry's).
    pub base_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_ref: Option<String>,
    pub client_cert_ref: Option<String>,
    pub client_key_ref: Option<String>,
    /// Daily position snapshots asked for besides the current one (dated banks).
    pub position_history_days: i32,
}

/// A stored bank connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub custodian: String,
    pub protocol: String,
    pub name: String,
    /// Where the worker connects: the connection's own URL where its custodian allows one,
    /// else the registry's; empty while the registry has none.
    pub base_url: String,
    /// The connection's own URL, as the tenant gave it (None: the registry's).
    pub own_base_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_ref: Option<String>,
    pub client_cert_ref: Option<String>,
    pub client_key_ref: Option<String>,
    /// The registry's (platform) reference to the CA of the custodian's server.
    pub ca_cert_ref: Option<String>,
    /// The registry's URL for the custodian.
    pub registry_base_url: Option<String>,
    /// Whether the custodian lets connections give their own URL, and on which hosts.
    pub tenant_urls: bool,
    pub allowed_hosts: Vec<String>,
    /// False while paused (by ops, or after too many consecutive failed runs).
    pub enabled: bool,
    pub cursor: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub consecutive_failures: i32,
    pub paused_at: Option<DateTime<Utc>>,
    pub paused_reason: Option<String>,
    /// Daily position snapshots asked for besides the current one (dated banks; 0: none).
    pub position_history_days: i32,
}

/// The connection query with a tail (WHERE / ORDER BY) appended at compile time.
macro_rules! select_connection {
    ($tail:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Connection,
            r#"SELECT c.id, c.tenant_id, c.custodian, k.protocol, c.name,
        COALESCE(CASE WHEN k.tenant_urls THEN c.base_url END, k.base_url, '') AS "base_url!",
        c.base_url AS own_base_url, c.client_id,
        c.client_secret_ref, c.client_cert_ref, c.client_key_ref, k.ca_cert_ref,
        k.base_url AS registry_base_url, k.tenant_urls, k.allowed_hosts, c.enabled, c.cursor,
        c.created_at, c.updated_at, c.consecutive_failures, c.paused_at, c.paused_reason,
        c.position_history_days
    FROM bank_connections c JOIN custodians k ON k.code = c.custodian "#
                + $tail
            $(, $arg)*
        )
    };
}

/// Creates a connection; an unknown custodian is a conflict error.
pub async fn create(tx: &mut TenantTx, new: &NewConnection) -> Result<Connection> {
    let id = ConnectionId::new();
    let tenant = tx.tenant();
    let inserted = sqlx::query!(
        "INSERT INTO bank_connections (id, tenant_id, custodian, name, base_url, client_id,
            client_secret_ref, client_cert_ref, client_key_ref, position_history_days)
         SELECT $1, $2, code, $4, $5, $6, $7, $8, $9, $10 FROM custodians WHERE code = $3",
        id.0,
        tenant.0,
        &new.custodian,
        &new.name,
        new.base_url.as_deref(),
        new.client_id.as_deref(),
        new.client_secret_ref.as_deref(),
        new.client_cert_ref.as_deref(),
        new.client_key_ref.as_deref(),
        new.position_history_days
    )
    .execute(tx.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "unknown custodian '{}'",
            new.custodian
        )));
    }
    get(tx, id).await
}

/// One connection of the transaction's tenant.
pub async fn get(tx: &mut TenantTx, id: ConnectionId) -> Result<Connection> {
    select_connection!("WHERE c.id = $1", id.0)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// Locks a connection row for the rest of the transaction (one sync loads at a time).
pub async fn lock(tx: &mut TenantTx, id: ConnectionId) -> Result<Connection> {
    select_connection!("WHERE c.id = $1 FOR UPDATE OF c", id.0)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// All connections of the tenant, oldest first.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<Connection>> {
    Ok(select_connection!("ORDER BY c.created_at, c.id")
        .fetch_all(tx.conn())
        .await?)
}

/// Moves the connection's cursor (inside the load transaction).
pub async fn set_cursor(tx: &mut TenantTx, id: ConnectionId, cursor: &Value) -> Result<()> {
    sqlx::query!(
        "UPDATE bank_connections SET cursor = $2, updated_at = now() WHERE id = $1",
        id.0,
        cursor
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records a run's outcome on its connection, in the run's final transaction: a success
/// resets the failure count; a failed or dead run counts, and the `pause_after`-th failure in
/// a row pauses the connection (it is then neither scheduled nor synced until ops resume it).
/// Returns true when this outcome paused the connection.
pub async fn record_outcome(
    tx: &mut TenantTx,
    id: ConnectionId,
    succeeded: bool,
    pause_after: u32,
    last_error: Option<&str>,
) -> Result<bool> {
    if succeeded {
        sqlx::query!(
            "UPDATE bank_connections SET consecutive_failures = 0 WHERE id = $1",
            id.0
        )
        .execute(tx.conn())
        .await?;
        return Ok(false);
    }
    let pause_after = i32::try_from(pause_after).unwrap_or(i32::MAX);
    let paused: Option<bool> = sqlx::query_scalar!(
        r#"WITH before AS (SELECT enabled FROM bank_connections WHERE id = $1 FOR UPDATE),
              trips AS (SELECT b.enabled AND $2 > 0 AND c.consecutive_failures + 1 >= $2 AS pause
                        FROM before b, bank_connections c WHERE c.id = $1)
         UPDATE bank_connections SET
            consecutive_failures = consecutive_failures + 1,
            enabled = enabled AND NOT (SELECT pause FROM trips),
            paused_at = CASE WHEN (SELECT pause FROM trips) THEN now() ELSE paused_at END,
            paused_reason = CASE WHEN (SELECT pause FROM trips)
                THEN format('paused after %s consecutive failed runs; last error: %s',
                            consecutive_failures + 1, coalesce($3, 'unknown'))
                ELSE paused_reason END,
            updated_at = now()
         WHERE id = $1
         RETURNING (SELECT pause FROM trips) AS "pause!""#,
        id.0,
        pause_after,
        last_error
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(paused.unwrap_or(false))
}

/// Pauses a connection (ops): it is neither scheduled nor synced until resumed.
pub async fn pause(tx: &mut TenantTx, id: ConnectionId, reason: &str) -> Result<Connection> {
    let updated = sqlx::query!(
        "UPDATE bank_connections SET enabled = false, paused_at = now(), paused_reason = $2,
            updated_at = now()
         WHERE id = $1 AND enabled",
        id.0,
        reason
    )
    .execute(tx.conn())
    .await?;
    let connection = get(tx, id).await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::Conflict(
            "the connection is already paused".into(),
        ));
    }
    Ok(connection)
}

/// Resumes a paused connection and forgets its failure streak.
pub async fn resume(tx: &mut TenantTx, id: ConnectionId) -> Result<Connection> {
    let updated = sqlx::query!(
        "UPDATE bank_connections SET enabled = true, paused_at = NULL, paused_reason = NULL,
            consecutive_failures = 0, updated_at = now()
         WHERE id = $1 AND NOT enabled",
        id.0
    )
    .execute(tx.conn())
    .await?;
    let connection = get(tx, id).await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::Conflict("the connection is not paused".into()));
    }
    Ok(connection)
}

/// A change to a connection's description; `None` leaves a field as it is, `Some(None)`
/// clears an optional reference.
#[derive(Debug, Clone, Default)]
pub struct ConnectionChange {
    pub name: Option<String>,
    /// The connection's own URL (`Some(None)`: back to the registry's).
    pub base_url: Option<Option<String>>,
    pub client_id: Option<Option<String>>,
    pub client_secret_ref: Option<Option<String>>,
    pub client_cert_ref: Option<Option<String>>,
    pub client_key_ref: Option<Option<String>>,
    pub position_history_days: Option<i32>,
}

/// Changes a connection; returns it before and after.
pub async fn update(
    tx: &mut TenantTx,
    id: ConnectionId,
    change: &ConnectionChange,
) -> Result<(Connection, Connection)> {
    let before = lock(tx, id).await?;
    let pick = |c: &Option<Option<String>>, old: &Option<String>| match c {
        Some(v) => v.clone(),
        None => old.clone(),
    };
    sqlx::query!(
        "UPDATE bank_connections SET name = $2, base_url = $3, client_id = $4,
            client_secret_ref = $5, client_cert_ref = $6, client_key_ref = $7,
            position_history_days = $8, updated_at = now()
         WHERE id = $1",
        id.0,
        change.name.as_ref().unwrap_or(&before.name),
        pick(&change.base_url, &before.own_base_url),
        pick(&change.client_id, &before.client_id),
        pick(&change.client_secret_ref, &before.client_secret_ref),
        pick(&change.client_cert_ref, &before.client_cert_ref),
        pick(&change.client_key_ref, &before.client_key_ref),
        change
            .position_history_days
            .unwrap_or(before.position_history_days)
    )
    .execute(tx.conn())
    .await?;
    let after = get(tx, id).await?;
    Ok((before, after))
}

/// Deletes a connection that never synced; one with sync history is a conflict (its runs
/// and data are history: pause it instead).
pub async fn delete(tx: &mut TenantTx, id: ConnectionId) -> Result<Connection> {
    let connection = lock(tx, id).await?;
    let runs: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM sync_runs WHERE connection_id = $1"#,
        id.0
    )
    .fetch_one(tx.conn())
    .await?;
    if runs > 0 {
        return Err(StoreError::Conflict(format!(
            "the connection has {runs} sync run(s) of history: pause it instead"
        )));
    }
    // Its rules go with it: they name its accounts, which it never loaded.
    sqlx::query!(
        "DELETE FROM account_assignment_rules WHERE tenant_id = $1 AND connection_id = $2",
        tx.tenant().0,
        id.0
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!("DELETE FROM bank_connections WHERE id = $1", id.0)
        .execute(tx.conn())
        .await?;
    Ok(connection)
}

/// Records the notAfter of the client certificate a sync just used (or None when it used
/// none), for the platform's certificate metrics ([`crate::Store::client_certificate_expiries`]).
pub async fn record_certificate_expiry(
    tx: &mut TenantTx,
    id: ConnectionId,
    expires_at: Option<DateTime<Utc>>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE bank_connections SET client_cert_expires_at = $2
         WHERE id = $1 AND client_cert_expires_at IS DISTINCT FROM $2",
        id.0,
        expires_at
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A connection's client certificate expiry as its last sync read it (any tenant).
#[derive(Debug, Clone)]
pub struct CertificateExpiry {
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    pub custodian: String,
    pub expires_at: DateTime<Utc>,
}
