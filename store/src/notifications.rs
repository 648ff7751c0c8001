//! E-mail notifications (migration 0022): a user's subscription to event types, the types
//! their roles allow, and the notifications the event fan-out queued for the mailers, claimed
//! under a lease and marked sent or retried.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::{Result, Store, TenantId, TenantTx};

/// The event types any of `roles` may receive by e-mail, sorted.
pub async fn allowed_types(tx: &mut TenantTx, roles: &[String]) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT DISTINCT type FROM event_type_roles WHERE role = ANY($1) ORDER BY type",
        roles
    )
    .fetch_all(tx.conn())
    .await?)
}

/// The user's subscribed event types (empty when never set).
pub async fn subscription(tx: &mut TenantTx, user: Uuid) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT event_types FROM notification_subscriptions WHERE user_id = $1",
        user
    )
    .fetch_optional(tx.conn())
    .await?
    .unwrap_or_default())
}

/// Sets the user's subscribed event types (already checked against its roles).
pub async fn subscribe(tx: &mut TenantTx, user: Uuid, types: &[String]) -> Result<()> {
    sqlx::query!(
        "INSERT INTO notification_subscriptions (tenant_id, user_id, event_types)
         VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET event_types = EXCLUDED.event_types,
            updated_at = now()",
        tx.tenant().0,
        user,
        types
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A notification leased to a mailer, with its address and event.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedEmail {
    pub notification_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub urgent: bool,
    pub attempts: i32,
    pub event_id: Uuid,
    pub event_type: String,
    pub payload: Value,
    pub occurred_at: DateTime<Utc>,
    pub tenant_name: String,
}

impl Store {
    /// Leases the notifications due at `at` (urgent ones, and the others created at or before
    /// `digest_cutoff`) to `owner`, across tenants (the `claim_email_notifications` function),
    /// grouped by user.
    pub async fn claim_email_notifications(
        &self,
        owner: &str,
        at: DateTime<Utc>,
        digest_cutoff: DateTime<Utc>,
        lease_secs: i32,
        max: i32,
    ) -> Result<Vec<ClaimedEmail>> {
        Ok(sqlx::query_as!(
            ClaimedEmail,
            r#"SELECT notification_id AS "notification_id!", tenant_id AS "tenant_id!",
                user_id AS "user_id!", email AS "email!", urgent AS "urgent!",
                attempts AS "attempts!", event_id AS "event_id!", event_type AS "event_type!",
                payload AS "payload!", occurred_at AS "occurred_at!", tenant_name AS "tenant_name!"
             FROM claim_email_notifications($1, $2, $3, $4, $5)"#,
            owner,
            at,
            digest_cutoff,
            lease_secs,
            max
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Records what became of the notifications of one e-mail leased to `owner`: sent, retried at
/// `retry_at`, or (no retry left) failed with the error.
pub async fn record(
    store: &Store,
    tenant: TenantId,
    ids: &[Uuid],
    owner: &str,
    at: DateTime<Utc>,
    outcome: Result<(), (String, Option<DateTime<Utc>>)>,
) -> Result<u64> {
    let mut tx = store.tenant_tx(tenant).await?;
    let (status, next, error, sent_at) = match &outcome {
        Ok(()) => ("sent", at, None, Some(at)),
        Err((e, Some(retry))) => ("pending", *retry, Some(e.clone()), None),
        Err((e, None)) => ("failed", at, Some(e.clone()), None),
    };
    let n = sqlx::query!(
        "UPDATE email_notifications SET status = $3, attempts = attempts + 1,
            next_attempt_at = $4, last_error = $5, sent_at = $6, lease_owner = NULL,
            lease_expires_at = NULL
         WHERE id = ANY($1) AND lease_owner = $2",
        ids,
        owner,
        status,
        next,
        error,
        sent_at
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n)
}
