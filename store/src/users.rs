//! The users a tenant admin manages: who, by IdP subject, with which roles, enabled or not.
//!
//! The identity provider authenticates; the tenant decides. A registered user's roles and
//! client come from here and replace the token's claims, and a disabled user is refused even
//! with a valid token. A subject the tenant never registered keeps the roles its token
//! carries (how the first tenant admin gets in).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, StoreError, TenantTx};

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: Uuid,
    pub subject: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub client_id: Option<Uuid>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The user registered for a subject, if any.
pub async fn by_subject(tx: &mut TenantTx, subject: &str) -> Result<Option<UserRow>> {
    Ok(sqlx::query_as!(
        UserRow,
        "SELECT id, subject, email, roles, client_id, disabled, created_at, updated_at
         FROM users WHERE tenant_id = $1 AND subject = $2",
        tx.tenant().0,
        subject
    )
    .fetch_optional(tx.conn())
    .await?)
}

/// The tenant's users, by subject.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<UserRow>> {
    Ok(sqlx::query_as!(
        UserRow,
        "SELECT id, subject, email, roles, client_id, disabled, created_at, updated_at
         FROM users WHERE tenant_id = $1 ORDER BY subject",
        tx.tenant().0
    )
    .fetch_all(tx.conn())
    .await?)
}

/// One user of the tenant.
pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<UserRow> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, subject, email, roles, client_id, disabled, created_at, updated_at
         FROM users WHERE tenant_id = $1 AND id = $2",
        tx.tenant().0,
        id
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(StoreError::NotFound)
}

/// A user to register.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub subject: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub client_id: Option<Uuid>,
}

/// Registers a user; a subject or email already registered is a conflict, an unknown client
/// a data error.
pub async fn create(tx: &mut TenantTx, new: &NewUser) -> Result<UserRow> {
    check_client(tx, new.client_id).await?;
    let inserted = sqlx::query_as!(
        UserRow,
        "INSERT INTO users (id, tenant_id, subject, email, roles, client_id)
         VALUES (gen_random_uuid(), $1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING
         RETURNING id, subject, email, roles, client_id, disabled, created_at, updated_at",
        tx.tenant().0,
        &new.subject,
        new.email.as_deref(),
        &new.roles,
        new.client_id
    )
    .fetch_optional(tx.conn())
    .await?;
    inserted.ok_or_else(|| {
        StoreError::Conflict(format!(
            "a user with subject '{}' or this email is already registered",
            new.subject
        ))
    })
}

/// A change to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub email: Option<Option<String>>,
    pub roles: Option<Vec<String>>,
    pub client_id: Option<Option<Uuid>>,
    pub disabled: Option<bool>,
}

/// Changes a user and returns it before and after.
pub async fn update(
    tx: &mut TenantTx,
    id: Uuid,
    change: &UserChange,
) -> Result<(UserRow, UserRow)> {
    let before = get(tx, id).await?;
    if let Some(client) = change.client_id {
        check_client(tx, client).await?;
    }
    let after = sqlx::query_as!(
        UserRow,
        "UPDATE users SET
            email = CASE WHEN $3 THEN $4 ELSE email END,
            roles = coalesce($5, roles),
            client_id = CASE WHEN $6 THEN $7 ELSE client_id END,
            disabled = coalesce($8, disabled),
            updated_at = now()
         WHERE tenant_id = $1 AND id = $2
         RETURNING id, subject, email, roles, client_id, disabled, created_at, updated_at",
        tx.tenant().0,
        id,
        change.email.is_some(),
        change.email.clone().flatten(),
        change.roles.as_deref() as Option<&[String]>,
        change.client_id.is_some(),
        change.client_id.flatten(),
        change.disabled
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("this email is already registered".into())
        }
        _ => StoreError::Database(e),
    })?;
    Ok((before, after))
}

async fn check_client(tx: &mut TenantTx, client: Option<Uuid>) -> Result<()> {
    let Some(client) = client else { return Ok(()) };
    let exists: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM clients WHERE tenant_id = $1 AND id = $2) AS "exists!""#,
        tx.tenant().0,
        client
    )
    .fetch_one(tx.conn())
    .await?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::Data(format!("client {client} does not exist")))
    }
}

/// How many enabled registered users of the tenant hold the `tenant_admin` role.
pub async fn enabled_admins(tx: &mut TenantTx) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM users WHERE NOT disabled AND 'tenant_admin' = ANY (roles)"#
    )
    .fetch_one(tx.conn())
    .await?)
}
