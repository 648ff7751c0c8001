//! The tenant's events and webhook endpoints: tenant admins register URLs for event types, get
//! the signing secret once (and again on each rotation), read each endpoint's delivery log
//! and send a delivery again. The deliveries themselves are the workers' (`eam_worker::webhooks`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use eam_store::webhooks::{self, Delivery, Endpoint, EndpointChange, Event, NewEndpoint};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::AuditContext;
use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::{ApiError, not_found};
use crate::routes::page_limit;
use crate::state::ApiState;

pub struct WebhooksApi(pub ApiState);

/// The event types an endpoint may ask for.
pub const EVENT_TYPES: &[&str] = &[
    "sync.succeeded",
    "sync.succeeded_with_breaks",
    "sync.failed",
    "sync.dead",
    "connection.paused",
    "connection.resumed",
    "certificate.expiring",
    "break.opened",
    "report.ready",
    "portfolio.updated",
    "webhook.endpoint_disabled",
];

/// Hours a rotated-out secret keeps signing, by default.
const DEFAULT_OVERLAP_HOURS: u32 = 24;

fn default_true() -> bool {
    true
}

/// A webhook endpoint to register.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct CreateEndpoint {
    /// Where to POST the events: http(s), a public address (unless the platform allows
    /// private ones).
    #[oai(validator(max_length = 2048))]
    url: String,
    /// Event types to receive (see `EVENT_TYPES` in the docs: `sync.failed`, `sync.dead`,
    /// `sync.succeeded_with_breaks`, `sync.succeeded`, `connection.paused`,
    /// `connection.resumed`, `certificate.expiring`, `break.opened`, `report.ready`, `portfolio.updated`,
    /// `webhook.endpoint_disabled`).
    event_types: Vec<String>,
    #[oai(validator(max_length = 500))]
    description: Option<String>,
    #[oai(default = "default_true")]
    enabled: bool,
}

/// What to change of an endpoint (absent fields stay). Enabling an endpoint the platform
/// disabled sends its pending deliveries again.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct ChangeEndpoint {
    #[oai(validator(max_length = 2048))]
    url: Option<String>,
    event_types: Option<Vec<String>>,
    #[oai(validator(max_length = 500))]
    description: Option<String>,
    enabled: Option<bool>,
}

/// How long the secret being replaced keeps signing.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct Rotate {
    /// 0 to 168 hours; default 24. During the overlap every message carries both signatures.
    overlap_hours: Option<u32>,
}

/// A webhook endpoint.
#[derive(Object)]
struct EndpointView {
    id: Uuid,
    url: String,
    description: Option<String>,
    event_types: Vec<String>,
    enabled: bool,
    /// Why the platform disabled it (every delivery failing for too long).
    disabled_reason: Option<String>,
    /// Since when every delivery has failed; null after a success.
    failing_since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    created_by: Option<String>,
    updated_at: DateTime<Utc>,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        EndpointView {
            id: e.id,
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since,
            created_at: e.created_at,
            created_by: e.created_by,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(Object)]
struct EndpointWithSecret {
    endpoint: EndpointView,
    /// `whsec_` + base64 key: verify `webhook-signature` with it (Standard Webhooks). Not
    /// shown again; rotate to get a new one.
    secret: String,
}

/// One attempt of a delivery.
#[derive(Object)]
struct AttemptView {
    attempt: i32,
    attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; null when no answer came.
    status_code: Option<i32>,
    latency_ms: i32,
    error: Option<String>,
}

/// One event's delivery to the endpoint, with its attempts.
#[derive(Object)]
struct DeliveryView {
    id: Uuid,
    event_id: Uuid,
    event_type: String,
    /// `pending` (to send, now or after a back-off), `succeeded`, or `failed` (given up).
    status: String,
    attempts: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    last_latency_ms: Option<i32>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    log: Vec<AttemptView>,
}

#[derive(Object)]
struct DeliveryPage {
    deliveries: Vec<DeliveryView>,
}

/// One event.
#[derive(Object)]
struct EventView {
    id: Uuid,
    /// Pass as `after` to read on.
    seq: i64,
    #[oai(rename = "type")]
    event_type: String,
    subject: String,
    occurred_at: DateTime<Utc>,
    data: Value,
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        EventView {
            id: e.id,
            seq: e.seq,
            event_type: e.event_type,
            subject: e.subject,
            occurred_at: e.occurred_at,
            data: e.payload,
        }
    }
}

#[derive(Object)]
struct EventPage {
    events: Vec<EventView>,
}

#[derive(ApiResponse)]
enum Created {
    #[oai(status = 201)]
    Created(Json<EndpointWithSecret>),
}

#[derive(ApiResponse)]
enum Gone {
    /// The endpoint, its secrets and its delivery log are gone.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
enum Redelivered {
    /// Queued to be sent again at once.
    #[oai(status = 202)]
    Queued,
}

fn event_types(types: &[String]) -> Result<Vec<String>, ApiError> {
    if types.is_empty() {
        return Err(ApiError::unprocessable(
            "event_types: name at least one event type",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(ApiError::unprocessable(format!(
                "event_types: '{t}' is not an event type (one of {})",
                EVENT_TYPES.join(", ")
            )));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

impl WebhooksApi {
    async fn check_url(&self, url: &str) -> Result<String, ApiError> {
        self.0
            .egress
            .check_webhook_url(url)
            .await
            .map(|u| u.to_string())
            .map_err(|e| ApiError::unprocessable(format!("url: {e}")))
    }
}

#[OpenApi(tag = "crate::Tag::Webhooks")]
impl WebhooksApi {
    /// Registers a webhook endpoint and answers its signing secret, this once. The URL's host
    /// must resolve to public addresses only (loopback, link-local and private ranges are
    /// refused unless the platform allows them). Audited.
    #[oai(path = "/webhooks", method = "post")]
    async fn create(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<CreateEndpoint>,
    ) -> Result<Created, ApiError> {
        let caller = self.0.caller(&token, Action::ManageWebhooks).await?;
        caller.require_step_up(&self.0.step_up, "registering a webhook endpoint")?;
        let body = body.0;
        let types = event_types(&body.event_types)?;
        let url = self.check_url(&body.url).await?;
        let secret = new_secret();
        let mut tx = caller.tx(&self.0).await?;
        let endpoint = webhooks::create(
            &mut tx,
            &NewEndpoint {
                url,
                description: body.description,
                event_types: types,
                enabled: body.enabled,
                created_by: caller.subject.clone(),
            },
            &secret,
        )
        .await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "webhook.created",
                format!("webhook:{}", endpoint.id),
                json!({"url": endpoint.url, "event_types": endpoint.event_types,
                       "enabled": endpoint.enabled}),
            )
            .await?;
        tx.commit().await?;
        Ok(Created::Created(Json(EndpointWithSecret {
            endpoint: endpoint.into(),
            secret,
        })))
    }

    /// The tenant's webhook endpoints (never their secrets).
    #[oai(path = "/webhooks", method = "get")]
    async fn list(&self, token: BearerToken) -> Result<Json<Vec<EndpointView>>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadWebhooks).await?;
        Ok(Json(
            webhooks::list(&mut tx)
                .await?
                .into_iter()
                .map(EndpointView::from)
                .collect(),
        ))
    }

    /// One webhook endpoint.
    #[oai(path = "/webhooks/:id", method = "get")]
    async fn get(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Json<EndpointView>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadWebhooks).await?;
        let endpoint = webhooks::get(&mut tx, id.0)
            .await
            .map_err(not_found("webhook endpoint", id.0))?;
        Ok(Json(endpoint.into()))
    }

    /// Changes an endpoint's URL, event types, description or switch. Audited.
    #[oai(path = "/webhooks/:id", method = "patch")]
    async fn change(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<ChangeEndpoint>,
    ) -> Result<Json<EndpointView>, ApiError> {
        let caller = self.0.caller(&token, Action::ManageWebhooks).await?;
        caller.require_step_up(&self.0.step_up, "changing a webhook endpoint")?;
        let body = body.0;
        let types = body.event_types.as_deref().map(event_types).transpose()?;
        let url = match &body.url {
            Some(u) => Some(self.check_url(u).await?),
            None => None,
        };
        let change = EndpointChange {
            url,
            description: body.description.map(Some),
            event_types: types,
            enabled: body.enabled,
        };
        let mut tx = caller.tx(&self.0).await?;
        let endpoint = webhooks::update(&mut tx, id.0, &change)
            .await
            .map_err(not_found("webhook endpoint", id.0))?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "webhook.changed",
                format!("webhook:{}", endpoint.id),
                json!({"url": change.url, "event_types": change.event_types,
                       "enabled": change.enabled}),
            )
            .await?;
        tx.commit().await?;
        Ok(Json(endpoint.into()))
    }

    /// Deletes an endpoint, its secrets and its delivery log. Audited.
    #[oai(path = "/webhooks/:id", method = "delete")]
    async fn delete(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Gone, ApiError> {
        let caller = self.0.caller(&token, Action::ManageWebhooks).await?;
        caller.require_step_up(&self.0.step_up, "deleting a webhook endpoint")?;
        let mut tx = caller.tx(&self.0).await?;
        if !webhooks::delete(&mut tx, id.0).await? {
            return Err(ApiError::not_found(format!(
                "webhook endpoint {} not found",
                id.0
            )));
        }
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "webhook.deleted",
                format!("webhook:{}", id.0),
                json!({}),
            )
            .await?;
        tx.commit().await?;
        Ok(Gone::Deleted)
    }

    /// Replaces the endpoint's signing secret and answers the new one, this once; the old one
    /// keeps signing (both signatures on every message) for `overlap_hours`. Audited.
    #[oai(path = "/webhooks/:id/rotate-secret", method = "post")]
    async fn rotate(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<Rotate>,
    ) -> Result<Json<EndpointWithSecret>, ApiError> {
        let overlap = body.0.overlap_hours.unwrap_or(DEFAULT_OVERLAP_HOURS);
        if overlap > 168 {
            return Err(ApiError::unprocessable(
                "overlap_hours: at most 168 (a week)",
            ));
        }
        let caller = self.0.caller(&token, Action::ManageWebhooks).await?;
        caller.require_step_up(&self.0.step_up, "rotating a webhook secret")?;
        let mut tx = caller.tx(&self.0).await?;
        let secret = new_secret();
        let until = Utc::now() + chrono::Duration::hours(i64::from(overlap));
        webhooks::rotate_secret(&mut tx, id.0, &secret, until)
            .await
            .map_err(not_found("webhook endpoint", id.0))?;
        let endpoint = webhooks::get(&mut tx, id.0).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "webhook.secret_rotated",
                format!("webhook:{}", id.0),
                json!({"overlap_hours": overlap}),
            )
            .await?;
        tx.commit().await?;
        Ok(Json(EndpointWithSecret {
            endpoint: endpoint.into(),
            secret,
        }))
    }

    /// The endpoint's deliveries, newest first, each with its attempts (status code, latency,
    /// error).
    #[oai(path = "/webhooks/:id/deliveries", method = "get")]
    async fn deliveries(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
        /// `pending`, `succeeded` or `failed`.
        status: Query<Option<String>>,
        limit: Query<Option<u32>>,
    ) -> Result<Json<DeliveryPage>, ApiError> {
        let limit = page_limit(limit.0, 100)?;
        if let Some(s) = status.0.as_deref()
            && !matches!(s, "pending" | "succeeded" | "failed")
        {
            return Err(ApiError::bad_request(format!(
                "status: '{s}' is not pending, succeeded or failed"
            )));
        }
        let (_, mut tx) = self.0.begin(&token, Action::ReadWebhooks).await?;
        webhooks::get(&mut tx, id.0)
            .await
            .map_err(not_found("webhook endpoint", id.0))?;
        let rows: Vec<Delivery> =
            webhooks::deliveries(&mut tx, id.0, status.0.as_deref(), limit).await?;
        let ids: Vec<Uuid> = rows.iter().map(|d| d.id).collect();
        let mut logs: HashMap<Uuid, Vec<AttemptView>> = HashMap::new();
        for a in webhooks::attempts(&mut tx, &ids).await? {
            logs.entry(a.delivery_id).or_default().push(AttemptView {
                attempt: a.attempt,
                attempted_at: a.attempted_at,
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                error: a.error,
            });
        }
        let deliveries = rows
            .into_iter()
            .map(|d| DeliveryView {
                log: logs.remove(&d.id).unwrap_or_default(),
                next_attempt_at: (d.status == "pending").then_some(d.next_attempt_at),
                id: d.id,
                event_id: d.event_id,
                event_type: d.event_type,
                status: d.status,
                attempts: d.attempts,
                last_status_code: d.last_status_code,
                last_error: d.last_error,
                last_latency_ms: d.last_latency_ms,
                created_at: d.created_at,
                delivered_at: d.delivered_at,
            })
            .collect();
        Ok(Json(DeliveryPage { deliveries }))
    }

    /// Sends a delivery again at once (same event, same `webhook-id`), whatever became of it.
    /// Audited.
    #[oai(
        path = "/webhooks/:id/deliveries/:delivery_id/redeliver",
        method = "post"
    )]
    async fn redeliver(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        delivery_id: Path<Uuid>,
    ) -> Result<Redelivered, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ManageWebhooks).await?;
        webhooks::redeliver(&mut tx, id.0, delivery_id.0, Utc::now())
            .await
            .map_err(not_found("delivery", delivery_id.0))?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "webhook.redelivered",
                format!("webhook:{}", id.0),
                json!({"delivery_id": delivery_id.0}),
            )
            .await?;
        tx.commit().await?;
        Ok(Redelivered::Queued)
    }

    /// The tenant's events, oldest first after `after` (a `seq`), optionally of one type: what
    /// the webhooks carry, for reading back or catching up.
    #[oai(path = "/events", method = "get")]
    async fn events(
        &self,
        token: BearerToken,
        after: Query<Option<i64>>,
        #[oai(name = "type")] event_type: Query<Option<String>>,
        limit: Query<Option<u32>>,
    ) -> Result<Json<EventPage>, ApiError> {
        let limit = page_limit(limit.0, 100)?;
        let (_, mut tx) = self.0.begin(&token, Action::ReadEvents).await?;
        let events = webhooks::events(
            &mut tx,
            after.0.unwrap_or(0),
            event_type.0.as_deref(),
            limit,
        )
        .await?;
        Ok(Json(EventPage {
            events: events.into_iter().map(EventView::from).collect(),
        }))
    }
}

/// A new signing secret: `whsec_` and 32 random bytes in base64.
fn new_secret() -> String {
    use base64::Engine as _;
    use rand::Rng as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}
