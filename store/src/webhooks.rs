//! Events and webhooks (migration 0021): the tenant's events (written by triggers on the
//! changes that cause them, so an event exists if and only if its change committed), its
//! webhook endpoints with their signing secrets, and the deliveries the workers claim under a
//! lease and record attempt by attempt.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::{Result, Store, StoreError, TenantId, TenantTx};

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Uuid,
    pub seq: i64,
    pub event_type: String,
    pub subject: String,
    pub payload: Value,
    pub occurred_at: DateTime<Utc>,
}

/// The tenant's events after `after_seq`, oldest first, optionally of one type.
pub async fn events(
    tx: &mut TenantTx,
    after_seq: i64,
    event_type: Option<&str>,
    limit: i64,
) -> Result<Vec<Event>> {
    Ok(sqlx::query_as!(
        Event,
        r#"SELECT id, seq, type AS event_type, subject, payload, occurred_at FROM events
         WHERE tenant_id = $1 AND seq > $2 AND ($3::text IS NULL OR type = $3)
         ORDER BY seq LIMIT $4"#,
        tx.tenant().0,
        after_seq,
        event_type,
        limit
    )
    .fetch_all(tx.conn())
    .await?)
}

/// A webhook endpoint (its secrets are never read back through it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! select_endpoint {
    ($tail:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Endpoint,
            r#"SELECT id, url, description, event_types, enabled, disabled_reason, failing_since,
                created_at, created_by, updated_at
             FROM webhook_endpoints "# + $tail
            $(, $arg)*,
        )
    };
}

/// An endpoint to create (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub created_by: String,
}

/// Creates an endpoint with its first signing secret.
pub async fn create(tx: &mut TenantTx, new: &NewEndpoint, secret: &str) -> Result<Endpoint> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, enabled,
            created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        tx.tenant().0,
        new.url,
        new.description,
        &new.event_types,
        new.enabled,
        new.created_by
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "INSERT INTO webhook_secrets (id, tenant_id, endpoint_id, secret) VALUES ($1, $2, $3, $4)",
        Uuid::now_v7(),
        tx.tenant().0,
        id,
        secret
    )
    .execute(tx.conn())
    .await?;
    get(tx, id).await
}

/// The endpoint with this id, or [`StoreError::NotFound`].
pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<Endpoint> {
    select_endpoint!("WHERE id = $1", id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// The tenant's endpoints, oldest first.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<Endpoint>> {
    Ok(select_endpoint!("ORDER BY created_at, id")
        .fetch_all(tx.conn())
        .await?)
}

/// What to change of an endpoint; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// Changes an endpoint. Enabling it clears why the platform disabled it and its failure
/// streak, so its pending deliveries go out again.
pub async fn update(tx: &mut TenantTx, id: Uuid, c: &EndpointChange) -> Result<Endpoint> {
    let updated = sqlx::query!(
        "UPDATE webhook_endpoints SET url = coalesce($2, url),
            description = CASE WHEN $3 THEN $4 ELSE description END,
            event_types = coalesce($5, event_types), enabled = coalesce($6, enabled),
            disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END,
            failing_since = CASE WHEN $6 THEN NULL ELSE failing_since END,
            updated_at = now()
         WHERE id = $1",
        id,
        c.url,
        c.description.is_some(),
        c.description.clone().flatten(),
        c.event_types.as_deref(),
        c.enabled
    )
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    get(tx, id).await
}

/// Deletes an endpoint with its secrets and delivery log; false when it does not exist.
pub async fn delete(tx: &mut TenantTx, id: Uuid) -> Result<bool> {
    Ok(
        sqlx::query!("DELETE FROM webhook_endpoints WHERE id = $1", id)
            .execute(tx.conn())
            .await?
            .rows_affected()
            > 0,
    )
}

/// Makes `secret` the endpoint's current secret; the previous current one keeps signing until
/// `overlap_until`. Secrets already expiring are left to expire.
pub async fn rotate_secret(
    tx: &mut TenantTx,
    id: Uuid,
    secret: &str,
    overlap_until: DateTime<Utc>,
) -> Result<()> {
    get(tx, id).await?;
    sqlx::query!(
        "UPDATE webhook_secrets SET expires_at = $2 WHERE endpoint_id = $1 AND expires_at IS NULL",
        id,
        overlap_until
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "INSERT INTO webhook_secrets (id, tenant_id, endpoint_id, secret) VALUES ($1, $2, $3, $4)",
        Uuid::now_v7(),
        tx.tenant().0,
        id,
        secret
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One delivery of an event to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

/// An endpoint's deliveries, newest first, optionally of one status.
pub async fn deliveries(
    tx: &mut TenantTx,
    endpoint: Uuid,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as!(
        Delivery,
        r#"SELECT d.id, d.endpoint_id, d.event_id, e.type AS event_type, d.status, d.attempts,
            d.next_attempt_at, d.last_status_code, d.last_error, d.last_latency_ms, d.created_at,
            d.delivered_at
         FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2)
         ORDER BY d.created_at DESC, d.id DESC LIMIT $3"#,
        endpoint,
        status,
        limit
    )
    .fetch_all(tx.conn())
    .await?)
}

/// The attempts of these deliveries, in order.
pub async fn attempts(tx: &mut TenantTx, deliveries: &[Uuid]) -> Result<Vec<Attempt>> {
    Ok(sqlx::query_as!(
        Attempt,
        "SELECT delivery_id, attempt, attempted_at, status_code, latency_ms, error
         FROM webhook_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt",
        deliveries
    )
    .fetch_all(tx.conn())
    .await?)
}

/// Sends a delivery again now (whatever became of it), keeping its log; a delivery of another
/// endpoint is [`StoreError::NotFound`].
pub async fn redeliver(
    tx: &mut TenantTx,
    endpoint: Uuid,
    delivery: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    let updated = sqlx::query!(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3,
            lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND endpoint_id = $2",
        delivery,
        endpoint,
        now
    )
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    sqlx::query!("SELECT pg_notify('eam_webhooks', '')")
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A delivery leased to a deliverer, with what sending it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub delivery_id: Uuid,
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub url: String,
    pub event_id: Uuid,
    pub event_type: String,
    pub payload: Value,
    pub occurred_at: DateTime<Utc>,
    /// Attempts made before this one.
    pub attempts: i32,
    /// The secrets that sign it: the current one first, then one still in its overlap.
    pub secrets: Vec<String>,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub next: NextStep,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(DateTime<Utc>),
    GiveUp,
}

/// Records an attempt of a delivery leased to `owner` (an attempt whose lease was lost is not
/// recorded: another deliverer has it). A failure starts or extends the endpoint's failure
/// streak; a streak of `disable_after` disables the endpoint (reason given) and emits
/// `webhook.endpoint_disabled`. Returns whether the endpoint was disabled now.
pub async fn record_attempt(
    store: &Store,
    tenant: TenantId,
    claimed: &ClaimedDelivery,
    owner: &str,
    record: &AttemptRecord,
    disable_after: chrono::Duration,
) -> Result<bool> {
    let mut tx = store.tenant_tx(tenant).await?;
    let (status, next_at, delivered_at) = match record.next {
        // Delivered when the receiver's answer came.
        NextStep::Delivered => {
            let answered =
                record.attempted_at + chrono::Duration::milliseconds(i64::from(record.latency_ms));
            ("succeeded", record.attempted_at, Some(answered))
        }
        NextStep::RetryAt(at) => ("pending", at, None),
        NextStep::GiveUp => ("failed", record.attempted_at, None),
    };
    let updated = sqlx::query!(
        "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1,
            next_attempt_at = $4, delivered_at = $5, last_status_code = $6, last_error = $7,
            last_latency_ms = $8, lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND lease_owner = $2
         RETURNING attempts",
        claimed.delivery_id,
        owner,
        status,
        next_at,
        delivered_at,
        record.status_code,
        record.error,
        record.latency_ms
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(attempt) = updated else {
        return Ok(false);
    };
    sqlx::query!(
        "INSERT INTO webhook_attempts (tenant_id, delivery_id, attempt, attempted_at, status_code,
            latency_ms, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        tenant.0,
        claimed.delivery_id,
        attempt.attempts,
        record.attempted_at,
        record.status_code,
        record.latency_ms,
        record.error
    )
    .execute(tx.conn())
    .await?;
    let mut disabled = false;
    if record.next == NextStep::Delivered {
        sqlx::query!(
            "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1",
            claimed.endpoint_id
        )
        .execute(tx.conn())
        .await?;
    } else {
        let since: Option<DateTime<Utc>> = sqlx::query_scalar!(
            "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, $2)
             WHERE id = $1 RETURNING failing_since",
            claimed.endpoint_id,
            record.attempted_at
        )
        .fetch_optional(tx.conn())
        .await?
        .flatten();
        if let Some(since) = since
            && record.attempted_at - since >= disable_after
        {
            let reason = format!(
                "every delivery failed since {} ({} or longer); last: {}",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                humanize(disable_after),
                record
                    .error
                    .clone()
                    .or(record.status_code.map(|c| format!("HTTP {c}")))
                    .unwrap_or_default()
            );
            let changed = sqlx::query!(
                "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2,
                    updated_at = now()
                 WHERE id = $1 AND enabled",
                claimed.endpoint_id,
                reason
            )
            .execute(tx.conn())
            .await?;
            if changed.rows_affected() > 0 {
                sqlx::query!(
                    "SELECT emit_event($1, 'webhook.endpoint_disabled', 'webhook:' || $2::uuid,
                        jsonb_build_object('endpoint_id', $2::uuid, 'url', $3::text,
                            'failing_since', $4::timestamptz, 'reason', $5::text))",
                    tenant.0,
                    claimed.endpoint_id,
                    claimed.url,
                    since,
                    reason
                )
                .fetch_one(tx.conn())
                .await?;
                disabled = true;
            }
        }
    }
    tx.commit().await?;
    Ok(disabled)
}

fn humanize(d: chrono::Duration) -> String {
    if d.num_hours() >= 48 && d.num_hours() % 24 == 0 {
        format!("{} days", d.num_days())
    } else if d.num_minutes() >= 120 && d.num_minutes() % 60 == 0 {
        format!("{} hours", d.num_hours())
    } else {
        format!("{} seconds", d.num_seconds())
    }
}

/// Wake-ups of the deliverers: a notification on `eam_webhooks` whenever an event gets a
/// delivery or a delivery is sent again by hand.
pub struct Wakeups(sqlx::postgres::PgListener);

impl Wakeups {
    pub async fn subscribe(store: &Store) -> Result<Wakeups> {
        let mut listener = sqlx::postgres::PgListener::connect_with(store.pool()).await?;
        listener.listen("eam_webhooks").await?;
        Ok(Wakeups(listener))
    }

    /// The next wake-up (an error: the connection was lost and is re-established on the next
    /// call; wake-ups meanwhile are lost, which the deliverers' polling covers).
    pub async fn next(&mut self) -> Result<()> {
        self.0.recv().await?;
        Ok(())
    }
}

impl Store {
    /// Leases up to `max` deliveries due at `at` to `owner` for `lease_secs`, across tenants
    /// (the `claim_webhook_deliveries` database function).
    pub async fn claim_webhook_deliveries(
        &self,
        owner: &str,
        at: DateTime<Utc>,
        lease_secs: i32,
        max: i32,
    ) -> Result<Vec<ClaimedDelivery>> {
        Ok(sqlx::query_as!(
            ClaimedDelivery,
            r#"SELECT delivery_id AS "delivery_id!", tenant_id AS "tenant_id!",
                endpoint_id AS "endpoint_id!", url AS "url!", event_id AS "event_id!",
                event_type AS "event_type!", payload AS "payload!", occurred_at AS "occurred_at!",
                attempts AS "attempts!", secrets AS "secrets!"
             FROM claim_webhook_deliveries($1, $2, $3, $4)"#,
            owner,
            at,
            lease_secs,
            max
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
