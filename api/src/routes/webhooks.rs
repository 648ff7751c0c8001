//! The tenant's events and webhook endpoints: tenant admins register URLs for event types, get
//! the signing secret once (and again on each rotation), read each endpoint's delivery log
//! and send a delivery again. The deliveries themselves are the workers' (`eam_worker::webhooks`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use eam_store::TenantTx;
use eam_store::webhooks::{self, Delivery, Endpoint, EndpointChange, Event, NewEndpoint};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::approvals::{Approvable, Gated, PendingApproval, Request, Sensitive, gate, sensitive};
use crate::audit::AuditContext;
use crate::caller::{BearerToken, Caller};
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
    "approval.requested",
    "breaker.opened",
    "breaker.closed",
    "delivery.late",
];

/// Hours a rotated-out secret keeps signing, by default.
const DEFAULT_OVERLAP_HOURS: u32 = 24;

fn default_true() -> bool {
    true
}

/// A webhook endpoint to register.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct CreateEndpoint {
    /// Where to POST the events: http(s), a public address (unless the platform allows
    /// private ones).
    #[oai(validator(max_length = 2048))]
    url: String,
    /// Event types to receive (see `EVENT_TYPES` in the docs: `sync.failed`, `sync.dead`,
    /// `sync.succeeded_with_breaks`, `sync.succeeded`, `connection.paused`,
    /// `connection.resumed`, `certificate.expiring`, `break.opened`, `report.ready`, `portfolio.updated`,
    /// `webhook.endpoint_disabled`, `approval.requested`, `breaker.opened`, `breaker.closed`, `delivery.late`).
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
pub(crate) struct ChangeEndpoint {
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
pub(crate) struct Rotate {
    /// 0 to 168 hours; default 24. During the overlap every message carries both signatures.
    overlap_hours: Option<u32>,
}

/// A webhook endpoint.
#[derive(Object)]
pub(crate) struct EndpointView {
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
pub(crate) struct EndpointWithSecret {
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
    /// Waits for another tenant admin's approval (`Location`: the approval); nothing
    /// changed yet.
    #[oai(status = 202)]
    Pending(Json<PendingApproval>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
enum Gone {
    /// The endpoint, its secrets and its delivery log are gone.
    #[oai(status = 204)]
    Deleted,
    /// Waits for another tenant admin's approval (`Location`: the approval); nothing
    /// changed yet.
    #[oai(status = 202)]
    Pending(Json<PendingApproval>, #[oai(header = "Location")] String),
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

async fn check_url(state: &ApiState, url: &str) -> Result<String, ApiError> {
    state
        .egress
        .check_webhook_url(url)
        .await
        .map(|u| u.to_string())
        .map_err(|e| ApiError::unprocessable(format!("url: {e}")))
}

#[OpenApi(tag = "crate::Tag::Webhooks")]
impl WebhooksApi {
    /// Registers a webhook endpoint and answers its signing secret, this once. The URL's host
    /// must resolve to public addresses only (loopback, link-local and private ranges are
    /// refused unless the platform allows them). Audited. Needs a recent second factor;
    /// where the tenant's policy asks for four eyes, answers 202 with the pending approval
    /// (the approver's answer then carries the secret).
    #[oai(path = "/webhooks", method = "post", operation_id = "create_webhook")]
    async fn create(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<CreateEndpoint>,
    ) -> Result<Created, ApiError> {
        let state = &self.0;
        Ok(
            match sensitive(
                state,
                req,
                &token,
                Action::ManageWebhooks,
                Some("registering a webhook endpoint"),
                async |c, a, tx| create(state, c, a, tx, body.0).await,
            )
            .await?
            .1
            {
                Gated::Done(e) => Created::Created(Json(e)),
                Gated::Pending(p) => {
                    let location = p.location();
                    Created::Pending(Json(p), location)
                }
            },
        )
    }

    /// The tenant's webhook endpoints (never their secrets).
    #[oai(path = "/webhooks", method = "get", operation_id = "list_webhooks")]
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
    #[oai(path = "/webhooks/:id", method = "get", operation_id = "get_webhook")]
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

    /// Changes an endpoint's URL, event types, description or switch. Audited. Needs a recent
    /// second factor; where the tenant's policy asks for four eyes, answers 202 with the
    /// pending approval.
    #[oai(
        path = "/webhooks/:id",
        method = "patch",
        operation_id = "change_webhook"
    )]
    async fn change(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<ChangeEndpoint>,
    ) -> Result<Approvable<EndpointView>, ApiError> {
        let state = &self.0;
        Ok(sensitive(
            state,
            req,
            &token,
            Action::ManageWebhooks,
            Some("changing a webhook endpoint"),
            async |c, a, tx| change(state, c, a, tx, id.0, body.0).await,
        )
        .await?
        .1
        .into())
    }

    /// Deletes an endpoint, its secrets and its delivery log. Audited. Needs a recent second
    /// factor; where the tenant's policy asks for four eyes, answers 202 with the pending
    /// approval.
    #[oai(
        path = "/webhooks/:id",
        method = "delete",
        operation_id = "delete_webhook"
    )]
    async fn delete(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Gone, ApiError> {
        let state = &self.0;
        Ok(
            match sensitive(
                state,
                req,
                &token,
                Action::ManageWebhooks,
                Some("deleting a webhook endpoint"),
                async |c, a, tx| delete(state, c, a, tx, id.0).await,
            )
            .await?
            .1
            {
                Gated::Done(()) => Gone::Deleted,
                Gated::Pending(p) => {
                    let location = p.location();
                    Gone::Pending(Json(p), location)
                }
            },
        )
    }

    /// Replaces the endpoint's signing secret and answers the new one, this once; the old one
    /// keeps signing (both signatures on every message) for `overlap_hours`. Audited. Needs a
    /// recent second factor; where the tenant's policy asks for four eyes, answers 202 with
    /// the pending approval (the approver's answer then carries the secret).
    #[oai(
        path = "/webhooks/:id/rotate-secret",
        method = "post",
        operation_id = "rotate_webhook_secret"
    )]
    async fn rotate(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<Rotate>,
    ) -> Result<Approvable<EndpointWithSecret>, ApiError> {
        let state = &self.0;
        Ok(sensitive(
            state,
            req,
            &token,
            Action::ManageWebhooks,
            Some("rotating a webhook secret"),
            async |c, a, tx| rotate(state, c, a, tx, id.0, body.0).await,
        )
        .await?
        .1
        .into())
    }

    /// The endpoint's deliveries, newest first, each with its attempts (status code, latency,
    /// error).
    #[oai(
        path = "/webhooks/:id/deliveries",
        method = "get",
        operation_id = "list_webhook_deliveries"
    )]
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
        method = "post",
        operation_id = "redeliver_webhook_delivery"
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
    #[oai(path = "/events", method = "get", operation_id = "list_events")]
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

/// `POST /webhooks` in the caller's transaction (the approval's, when approved).
pub(crate) async fn create(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    body: CreateEndpoint,
) -> Result<Gated<EndpointWithSecret>, ApiError> {
    let types = event_types(&body.event_types)?;
    let url = check_url(state, &body.url).await?;
    let request = Request {
        what: Sensitive::WebhookChange,
        target: "webhooks".into(),
        summary: format!("register webhook endpoint {url} for {}", types.join(", ")),
        params: json!({ "op": "create", "body": body.to_json() }),
    };
    if let Some(p) = gate(state, caller, tx, audit, request, false).await? {
        return Ok(Gated::Pending(p));
    }
    let secret = new_secret();
    let endpoint = webhooks::create(
        tx,
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
    audit
        .record(
            tx,
            "webhook.created",
            format!("webhook:{}", endpoint.id),
            json!({"url": endpoint.url, "event_types": endpoint.event_types,
                   "enabled": endpoint.enabled}),
        )
        .await?;
    Ok(Gated::Done(EndpointWithSecret {
        endpoint: endpoint.into(),
        secret,
    }))
}

/// `PATCH /webhooks/{id}` in the caller's transaction (the approval's, when approved).
pub(crate) async fn change(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    id: Uuid,
    body: ChangeEndpoint,
) -> Result<Gated<EndpointView>, ApiError> {
    let types = body.event_types.as_deref().map(event_types).transpose()?;
    let url = match &body.url {
        Some(u) => Some(check_url(state, u).await?),
        None => None,
    };
    let current = webhooks::get(tx, id)
        .await
        .map_err(not_found("webhook endpoint", id))?;
    let request = Request {
        what: Sensitive::WebhookChange,
        target: format!("webhook:{id}"),
        summary: format!("change webhook endpoint {}", current.url),
        params: json!({ "op": "change", "id": id, "body": body.to_json() }),
    };
    if let Some(p) = gate(state, caller, tx, audit, request, false).await? {
        return Ok(Gated::Pending(p));
    }
    let change = EndpointChange {
        url,
        description: body.description.map(Some),
        event_types: types,
        enabled: body.enabled,
    };
    let endpoint = webhooks::update(tx, id, &change)
        .await
        .map_err(not_found("webhook endpoint", id))?;
    audit
        .record(
            tx,
            "webhook.changed",
            format!("webhook:{}", endpoint.id),
            json!({"url": change.url, "event_types": change.event_types,
                   "enabled": change.enabled}),
        )
        .await?;
    Ok(Gated::Done(endpoint.into()))
}

/// `DELETE /webhooks/{id}` in the caller's transaction (the approval's, when approved).
pub(crate) async fn delete(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    id: Uuid,
) -> Result<Gated<()>, ApiError> {
    let current = webhooks::get(tx, id)
        .await
        .map_err(not_found("webhook endpoint", id))?;
    let request = Request {
        what: Sensitive::WebhookChange,
        target: format!("webhook:{id}"),
        summary: format!("delete webhook endpoint {}", current.url),
        params: json!({ "op": "delete", "id": id }),
    };
    if let Some(p) = gate(state, caller, tx, audit, request, false).await? {
        return Ok(Gated::Pending(p));
    }
    if !webhooks::delete(tx, id).await? {
        return Err(ApiError::not_found(format!(
            "webhook endpoint {id} not found"
        )));
    }
    audit
        .record(tx, "webhook.deleted", format!("webhook:{id}"), json!({}))
        .await?;
    Ok(Gated::Done(()))
}

/// `POST /webhooks/{id}/rotate-secret` in the caller's transaction (the approval's, when
/// approved).
pub(crate) async fn rotate(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    id: Uuid,
    body: Rotate,
) -> Result<Gated<EndpointWithSecret>, ApiError> {
    let overlap = body.overlap_hours.unwrap_or(DEFAULT_OVERLAP_HOURS);
    if overlap > 168 {
        return Err(ApiError::unprocessable(
            "overlap_hours: at most 168 (a week)",
        ));
    }
    let current = webhooks::get(tx, id)
        .await
        .map_err(not_found("webhook endpoint", id))?;
    let request = Request {
        what: Sensitive::WebhookChange,
        target: format!("webhook:{id}"),
        summary: format!(
            "rotate the signing secret of webhook endpoint {} ({overlap} h overlap)",
            current.url
        ),
        params: json!({ "op": "rotate", "id": id, "body": body.to_json() }),
    };
    if let Some(p) = gate(state, caller, tx, audit, request, false).await? {
        return Ok(Gated::Pending(p));
    }
    let secret = new_secret();
    let until = Utc::now() + chrono::Duration::hours(i64::from(overlap));
    webhooks::rotate_secret(tx, id, &secret, until)
        .await
        .map_err(not_found("webhook endpoint", id))?;
    let endpoint = webhooks::get(tx, id).await?;
    audit
        .record(
            tx,
            "webhook.secret_rotated",
            format!("webhook:{id}"),
            json!({"overlap_hours": overlap}),
        )
        .await?;
    Ok(Gated::Done(EndpointWithSecret {
        endpoint: endpoint.into(),
        secret,
    }))
}
