//! The end clients of a tenant: the people and companies whose money the firm manages.
//!
//! Syncs create a client when a bank names one the tenant does not know (by its reference)
//! and never rename it afterwards: the firm owns its clients' details.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, StoreError, TenantTx};

/// A client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub id: Uuid,
    pub reference: String,
    pub name: String,
    pub reporting_currency: Option<String>,
    pub kyc_status: String,
    pub accounts: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! select_client {
    ($tail:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            ClientRow,
            r#"SELECT c.id, c.reference, c.name, trim(c.reporting_currency) AS reporting_currency,
                c.kyc_status, (SELECT count(*) FROM accounts a WHERE a.client_id = c.id) AS "accounts!",
                c.created_at, c.updated_at
             FROM clients c "#
                + $tail
            $(, $arg)*,
        )
    };
}

/// The clients the transaction may see (a client user sees only its own), by reference.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<ClientRow>> {
    Ok(
        select_client!("WHERE c.tenant_id = $1 ORDER BY c.reference", tx.tenant().0)
            .fetch_all(tx.conn())
            .await?,
    )
}

/// One client, or `NotFound`.
pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<ClientRow> {
    select_client!("WHERE c.tenant_id = $1 AND c.id = $2", tx.tenant().0, id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// A client to create or the fields to change (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct ClientFields {
    pub reference: Option<String>,
    pub name: Option<String>,
    pub reporting_currency: Option<Option<String>>,
    pub kyc_status: Option<String>,
}

/// Creates a client; a reference already used is a conflict.
pub async fn create(tx: &mut TenantTx, f: &ClientFields) -> Result<ClientRow> {
    let id: Option<Uuid> = sqlx::query_scalar!(
        "INSERT INTO clients (id, tenant_id, reference, name, reporting_currency, kyc_status)
         VALUES (gen_random_uuid(), $1, $2, $3, $4, coalesce($5, 'pending'))
         ON CONFLICT (tenant_id, reference) DO NOTHING RETURNING id",
        tx.tenant().0,
        f.reference.as_deref(),
        f.name.as_deref(),
        f.reporting_currency.clone().flatten(),
        f.kyc_status.as_deref()
    )
    .fetch_optional(tx.conn())
    .await?;
    let id = id.ok_or_else(|| {
        StoreError::Conflict(format!(
            "a client with reference '{}' exists",
            f.reference.as_deref().unwrap_or_default()
        ))
    })?;
    get(tx, id).await
}

/// Changes a client; returns it before and after.
pub async fn update(
    tx: &mut TenantTx,
    id: Uuid,
    f: &ClientFields,
) -> Result<(ClientRow, ClientRow)> {
    let before = get(tx, id).await?;
    sqlx::query!(
        "UPDATE clients SET reference = coalesce($3, reference), name = coalesce($4, name),
            reporting_currency = CASE WHEN $5 THEN $6 ELSE reporting_currency END,
            kyc_status = coalesce($7, kyc_status), updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
        tx.tenant().0,
        id,
        f.reference.as_deref(),
        f.name.as_deref(),
        f.reporting_currency.is_some(),
        f.reporting_currency.clone().flatten(),
        f.kyc_status.as_deref()
    )
    .execute(tx.conn())
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("another client has this reference".into())
        }
        _ => StoreError::Database(e),
    })?;
    Ok((before, get(tx, id).await?))
}

/// Deletes a client that holds no account and no user; otherwise a conflict.
pub async fn delete(tx: &mut TenantTx, id: Uuid) -> Result<ClientRow> {
    let client = get(tx, id).await?;
    if client.accounts > 0 {
        return Err(StoreError::Conflict(format!(
            "the client holds {} account(s): it cannot be deleted",
            client.accounts
        )));
    }
    let rules = sqlx::query_scalar!(
        r#"SELECT count(*) AS "rules!" FROM account_assignment_rules
            WHERE tenant_id = $1 AND client_id = $2"#,
        tx.tenant().0,
        id
    )
    .fetch_one(tx.conn())
    .await?;
    if rules > 0 {
        return Err(StoreError::Conflict(format!(
            "{rules} account assignment rule(s) name the client: remove them first"
        )));
    }
    let deleted = sqlx::query!(
        "DELETE FROM clients c WHERE c.tenant_id = $1 AND c.id = $2
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.client_id = c.id)",
        tx.tenant().0,
        id
    )
    .execute(tx.conn())
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::Conflict(
            "client users are registered for this client: remove them first".into(),
        ));
    }
    Ok(client)
}
