//! Bank connections: create, read, and trigger a sync.

use eam_config::egress;
use eam_model::{BreakerState, ErrorClass, Protocol, RunError};
use eam_store::connections::{self, Connection as StoredConnection, NewConnection};
use eam_store::custodians;
use eam_store::runs::{self, RunStatus, Transition, Trigger};
use eam_store::{ConnectionId, RunId, StoreError, TenantTx};
use serde_json::json;

use crate::audit::AuditContext;
use eam_queue::SyncTask;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use crate::approvals::{Approvable, Gated, Request, Sensitive, gate, sensitive};
use crate::caller::{BearerToken, Caller};
use crate::permissions::Action;
use crate::problem::{ApiError, not_found};
use crate::state::ApiState;

pub struct ConnectionsApi(pub ApiState);

/// A new bank connection. The custodian comes from the platform's custodian registry (`GET
/// /custodians`), which says where its API lives and which CA signs its server; the tenant
/// gives its own credentials as references inside its scope (`aws-sm://<prefix><tenant id>/...`,
/// or `file://<tenant_file_root>/<tenant id>/...` where the platform allows files; never
/// `env://`), never as values.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct NewConnectionBody {
    /// Custodian code from the registry, e.g. `bank_a`.
    custodian: String,
    #[oai(validator(min_length = 1, max_length = 200))]
    name: String,
    /// The connection's own https URL, only for a custodian whose registry entry allows
    /// per-tenant URLs (its host must be one of the entry's allowed hosts). Leave it out
    /// otherwise: the registry's URL is used.
    base_url: Option<String>,
    /// OAuth2 client id at the bank (bank_a only).
    #[oai(validator(min_length = 1, max_length = 200))]
    client_id: Option<String>,
    /// Reference to the OAuth2 client secret (bank_a) or the API key (bank_c).
    client_secret_ref: Option<String>,
    /// Reference to the PEM client certificate for mutual TLS.
    client_cert_ref: Option<String>,
    /// Reference to the PEM private key of the client certificate.
    client_key_ref: Option<String>,
    /// Not accepted (422): the bank's CA is the custodian registry's.
    #[oai(deprecated)]
    ca_cert_ref: Option<String>,
    /// Dated banks (bank_a): besides the current positions and balances, ask for those of
    /// each day of up to this many days back (after the latest snapshot already held),
    /// which past valuations and daily performance need. 0 (default): the current ones only.
    #[oai(default, validator(minimum(value = "0"), maximum(value = "366")))]
    position_history_days: i32,
}

/// A bank connection (secret references only, never values).
#[derive(Object)]
pub(crate) struct Connection {
    id: Uuid,
    custodian: String,
    protocol: String,
    name: String,
    /// Where syncs connect: the connection's own URL where allowed, else the registry's
    /// (empty while the registry has none).
    base_url: String,
    /// True when `base_url` is the connection's own, false when it is the registry's.
    own_base_url: bool,
    client_id: Option<String>,
    client_secret_ref: Option<String>,
    client_cert_ref: Option<String>,
    client_key_ref: Option<String>,
    /// False while paused.
    enabled: bool,
    /// `active` or `paused`.
    status: String,
    /// Failed runs in a row; the connection pauses at `worker.pause_after_failures`.
    consecutive_failures: i32,
    paused_at: Option<chrono::DateTime<chrono::Utc>>,
    paused_reason: Option<String>,
    /// Where the next sync resumes.
    cursor: serde_json::Value,
    /// Daily position snapshots asked for besides the current one (dated banks).
    position_history_days: i32,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<StoredConnection> for Connection {
    fn from(c: StoredConnection) -> Self {
        Connection {
            id: c.id,
            custodian: c.custodian,
            protocol: c.protocol,
            name: c.name,
            own_base_url: c.tenant_urls && c.own_base_url.is_some(),
            base_url: c.base_url,
            client_id: c.client_id,
            client_secret_ref: c.client_secret_ref,
            client_cert_ref: c.client_cert_ref,
            client_key_ref: c.client_key_ref,
            enabled: c.enabled,
            status: if c.enabled { "active" } else { "paused" }.to_owned(),
            consecutive_failures: c.consecutive_failures,
            paused_at: c.paused_at,
            paused_reason: c.paused_reason,
            cursor: c.cursor,
            position_history_days: c.position_history_days,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(ApiResponse)]
enum Created {
    /// The connection was created.
    #[oai(status = 201)]
    Created(Json<Connection>, #[oai(header = "Location")] String),
}

/// A sync accepted onto the queue.
#[derive(Object)]
struct SyncAccepted {
    run_id: Uuid,
    /// `queued`; when coalesced, the active run's status as it stands (`queued` or `running`).
    status: String,
    /// True when the connection already had a queued or running sync: this is that run.
    coalesced: bool,
}

/// Why ops pause a connection.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct PauseBody {
    #[oai(validator(min_length = 1, max_length = 500))]
    reason: String,
}

/// One worker process's breaker for an endpoint.
#[derive(Object)]
struct WorkerBreaker {
    worker_id: String,
    /// `closed`, `open` or `half_open`.
    state: String,
    consecutive_failures: i32,
    opened_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When an open breaker lets a probe through.
    open_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Requests refused without being sent while open.
    rejected_calls: i64,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// The circuit breakers of a connection's bank endpoint.
#[derive(Object)]
struct BreakerView {
    endpoint: String,
    /// `open` if any worker's breaker is open, else `half_open` if any is, else `closed`.
    state: String,
    workers: Vec<WorkerBreaker>,
}

#[derive(ApiResponse)]
enum Accepted {
    /// The sync is queued; poll `GET /jobs/{run_id}`.
    #[oai(status = 202)]
    Accepted(Json<SyncAccepted>, #[oai(header = "Location")] String),
}

/// The fields of a connection, checked as one: a custodian of the registry, what its
/// protocol needs, references inside the tenant's scope, and an own URL only where the
/// registry allows one, on an allowed host with public addresses.
struct Fields<'a> {
    tenant: Uuid,
    custodian: &'a str,
    base_url: Option<&'a str>,
    client_id: Option<&'a str>,
    client_secret_ref: Option<&'a str>,
    client_cert_ref: Option<&'a str>,
    client_key_ref: Option<&'a str>,
}

impl Fields<'_> {
    async fn check(&self, state: &ApiState) -> Result<(), ApiError> {
        let custodian = match custodians::get(&state.store, self.custodian).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                let known: Vec<String> = custodians::list(&state.store)
                    .await?
                    .into_iter()
                    .map(|c| c.code)
                    .collect();
                return Err(ApiError::unprocessable(format!(
                    "custodian: '{}' is not in the platform's custodian registry; expected one of {known:?}",
                    self.custodian
                )));
            }
            Err(e) => return Err(e.into()),
        };
        // What the protocol authenticates with, beside the client certificate.
        let needs = Protocol::parse(&custodian.protocol)
            .map(Protocol::credentials)
            .ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "custodian: {} speaks {}, which this platform does not support",
                    custodian.code, custodian.protocol
                ))
            })?;
        let (needs_client_id, needs_secret) = (needs.client_id, needs.secret);
        for (field, present, needed, what) in [
            (
                "client_id",
                self.client_id.is_some(),
                needs_client_id,
                "an OAuth2 client id",
            ),
            (
                "client_secret_ref",
                self.client_secret_ref.is_some(),
                needs_secret,
                "a secret reference",
            ),
        ] {
            if needed && !present {
                return Err(ApiError::unprocessable(format!(
                    "{field}: {} connections need {what}",
                    self.custodian
                )));
            }
            if present && !needed {
                return Err(ApiError::unprocessable(format!(
                    "{field}: {} connections do not use it",
                    self.custodian
                )));
            }
        }
        let scope = state.secrets.tenant_scope();
        for (field, value) in [
            ("client_secret_ref", self.client_secret_ref),
            ("client_cert_ref", self.client_cert_ref),
            ("client_key_ref", self.client_key_ref),
        ] {
            if let Some(v) = value {
                scope
                    .check(self.tenant, v)
                    .map_err(|e| ApiError::unprocessable(format!("{field}: {e}")))?;
            }
        }
        if self.client_cert_ref.is_some() != self.client_key_ref.is_some() {
            return Err(ApiError::unprocessable(
                "client_cert_ref and client_key_ref go together",
            ));
        }
        check_own_url(state, &custodian, self.base_url).await
    }
}

/// A connection's own URL: only where the custodian allows one, on one of its allowed hosts,
/// every address public (unless the platform allows private ones).
async fn check_own_url(
    state: &ApiState,
    custodian: &custodians::Custodian,
    url: Option<&str>,
) -> Result<(), ApiError> {
    let Some(url) = url else {
        return Ok(());
    };
    if !custodian.tenant_urls {
        return Err(ApiError::unprocessable(format!(
            "base_url: custodian {}'s address is set by the platform's custodian registry; leave base_url out",
            custodian.code
        )));
    }
    let parsed =
        egress::parse_https(url).map_err(|e| ApiError::unprocessable(format!("base_url: {e}")))?;
    let host = egress::host_of(parsed.as_str()).unwrap_or_default();
    if !egress::host_allowed(&host, &custodian.allowed_hosts) {
        return Err(ApiError::unprocessable(format!(
            "base_url: {host} is not among the hosts the custodian registry allows for {}: {:?}",
            custodian.code, custodian.allowed_hosts
        )));
    }
    state
        .egress
        .check_url(url)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::unprocessable(format!("base_url: {e}")))
}

/// A CA reference is the registry's, never a connection's.
fn refuse_ca(given: bool) -> Result<(), ApiError> {
    if given {
        return Err(ApiError::unprocessable(
            "ca_cert_ref: the bank's CA is set by the platform's custodian registry, not by a connection; leave it out",
        ));
    }
    Ok(())
}

impl NewConnectionBody {
    async fn validate(self, state: &ApiState, tenant: Uuid) -> Result<NewConnection, ApiError> {
        refuse_ca(self.ca_cert_ref.is_some())?;
        let base_url = self
            .base_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_owned());
        Fields {
            tenant,
            custodian: &self.custodian,
            base_url: base_url.as_deref(),
            client_id: self.client_id.as_deref(),
            client_secret_ref: self.client_secret_ref.as_deref(),
            client_cert_ref: self.client_cert_ref.as_deref(),
            client_key_ref: self.client_key_ref.as_deref(),
        }
        .check(state)
        .await?;
        Ok(NewConnection {
            custodian: self.custodian,
            name: self.name,
            base_url,
            client_id: self.client_id,
            client_secret_ref: self.client_secret_ref,
            client_cert_ref: self.client_cert_ref,
            client_key_ref: self.client_key_ref,
            position_history_days: self.position_history_days,
        })
    }
}

/// A change to a connection: only the fields given change; `null` clears an optional one.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct ConnectionChangeBody {
    #[oai(validator(min_length = 1, max_length = 200))]
    name: Option<String>,
    /// The connection's own URL (where its custodian allows one); `null`: the registry's.
    base_url: poem_openapi::types::MaybeUndefined<String>,
    client_id: poem_openapi::types::MaybeUndefined<String>,
    client_secret_ref: poem_openapi::types::MaybeUndefined<String>,
    client_cert_ref: poem_openapi::types::MaybeUndefined<String>,
    client_key_ref: poem_openapi::types::MaybeUndefined<String>,
    /// Not accepted (422): the bank's CA is the custodian registry's.
    #[oai(deprecated)]
    ca_cert_ref: poem_openapi::types::MaybeUndefined<String>,
    #[oai(validator(minimum(value = "0"), maximum(value = "366")))]
    position_history_days: Option<i32>,
}

fn change_of(v: poem_openapi::types::MaybeUndefined<String>) -> Option<Option<String>> {
    match v {
        poem_openapi::types::MaybeUndefined::Undefined => None,
        poem_openapi::types::MaybeUndefined::Null => Some(None),
        poem_openapi::types::MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(tag = "crate::Tag::Connections")]
impl ConnectionsApi {
    /// Creates a bank connection.
    #[oai(
        path = "/connections",
        method = "post",
        operation_id = "create_connection"
    )]
    async fn create(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<NewConnectionBody>,
    ) -> Result<Created, ApiError> {
        let caller = self.0.caller(&token, Action::ManageConnections).await?;
        let new = body.0.validate(&self.0, caller.tenant.0).await?;
        let mut tx = caller.tx(&self.0).await?;
        let created = connections::create(&mut tx, &new).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "connection.created",
                format!("connection:{}", created.id),
                json!({ "custodian": created.custodian, "base_url": created.own_base_url,
                    "client_id": created.client_id, "client_secret_ref": created.client_secret_ref,
                    "client_cert_ref": created.client_cert_ref,
                    "client_key_ref": created.client_key_ref }),
            )
            .await?;
        tx.commit().await?;
        tracing::info!(connection_id = %created.id, actor = %caller.subject, "connection created");
        let location = format!("/api/v1/connections/{}", created.id);
        Ok(Created::Created(Json(created.into()), location))
    }

    /// Lists the tenant's bank connections.
    #[oai(
        path = "/connections",
        method = "get",
        operation_id = "list_connections"
    )]
    async fn list(&self, token: BearerToken) -> Result<Json<Vec<Connection>>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadConnections).await?;
        Ok(Json(
            connections::list(&mut tx)
                .await?
                .into_iter()
                .map(Connection::from)
                .collect(),
        ))
    }

    /// One bank connection.
    #[oai(
        path = "/connections/:id",
        method = "get",
        operation_id = "get_connection"
    )]
    async fn get(&self, token: BearerToken, id: Path<Uuid>) -> Result<Json<Connection>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadConnections).await?;
        let c = connections::get(&mut tx, ConnectionId(id.0))
            .await
            .map_err(not_found("connection", id.0))?;
        Ok(Json(c.into()))
    }

    /// Queues a sync of the connection now; answers with the run id. While the connection
    /// already has a queued or running sync, that run is returned (`coalesced`) instead of a
    /// second sync.
    #[oai(
        path = "/connections/:id/sync",
        method = "post",
        operation_id = "sync_connection"
    )]
    async fn sync(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Accepted, ApiError> {
        let caller = self.0.caller(&token, Action::TriggerSync).await?;
        let connection = ConnectionId(id.0);
        let mut tx = caller.tx(&self.0).await?;
        let c = connections::get(&mut tx, connection)
            .await
            .map_err(not_found("connection", id.0))?;
        if !c.enabled {
            return Err(ApiError::conflict(format!(
                "the connection is paused ({}); resume it first",
                c.paused_reason.as_deref().unwrap_or("by ops")
            )));
        }
        let request_id = crate::request::current_id();
        let requested = runs::create(
            &mut tx,
            connection,
            Trigger::Manual,
            caller.origin(request_id.as_deref()),
            None,
        )
        .await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "sync.triggered",
                format!("connection:{connection}"),
                json!({ "run_id": requested.id, "coalesced": requested.coalesced }),
            )
            .await?;
        // A coalesced request answers the active run as it stands (running stays running).
        let status = if requested.coalesced {
            runs::get(&mut tx, requested.id).await?.status
        } else {
            RunStatus::Queued.as_str().into()
        };
        // The run row is committed before the task exists, so a worker never sees a task whose
        // run it cannot find.
        tx.commit().await?;
        if !requested.coalesced {
            enqueue(&self.0, &caller, requested.id, connection).await?;
        }
        tracing::info!(run_id = %requested.id, connection_id = %connection, actor = %caller.subject,
            coalesced = requested.coalesced, "sync queued");
        Ok(Accepted::Accepted(
            Json(SyncAccepted {
                run_id: requested.id.0,
                status,
                coalesced: requested.coalesced,
            }),
            format!("/api/v1/jobs/{}", requested.id),
        ))
    }

    /// Pauses the connection: it is neither synced nor scheduled until resumed.
    #[oai(
        path = "/connections/:id/pause",
        method = "post",
        operation_id = "pause_connection"
    )]
    async fn pause(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<PauseBody>,
    ) -> Result<Json<Connection>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ManageConnections).await?;
        let reason = format!("paused by {}: {}", caller.subject, body.0.reason);
        let c = connections::pause(&mut tx, ConnectionId(id.0), &reason)
            .await
            .map_err(not_found("connection", id.0))?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "connection.paused",
                format!("connection:{}", id.0),
                json!({ "reason": body.0.reason }),
            )
            .await?;
        tx.commit().await?;
        Ok(Json(c.into()))
    }

    /// Resumes a paused connection (paused by ops or after repeated failed runs).
    #[oai(
        path = "/connections/:id/resume",
        method = "post",
        operation_id = "resume_connection"
    )]
    async fn resume(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Json<Connection>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ManageConnections).await?;
        let c = connections::resume(&mut tx, ConnectionId(id.0))
            .await
            .map_err(not_found("connection", id.0))?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "connection.resumed",
                format!("connection:{}", id.0),
                json!({}),
            )
            .await?;
        tx.commit().await?;
        Ok(Json(c.into()))
    }

    /// Changes a connection's name, URL or secret references (values are never accepted).
    /// A change of its credential or certificate references needs a recent second factor,
    /// and where the tenant's policy asks for four eyes answers 202 with the pending approval
    /// (nothing changes until another user approves it).
    #[oai(
        path = "/connections/:id",
        method = "patch",
        operation_id = "change_connection"
    )]
    async fn change(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<ConnectionChangeBody>,
    ) -> Result<Approvable<Connection>, ApiError> {
        let state = &self.0;
        let step_up = body
            .0
            .changes_credentials()
            .then_some("changing a connection's credentials or certificate reference");
        let (_, gated) = sensitive(
            state,
            req,
            &token,
            Action::ManageConnections,
            step_up,
            async |c, a, tx| change(state, c, a, tx, ConnectionId(id.0), body.0).await,
        )
        .await?;
        Ok(gated.into())
    }

    /// Deletes a connection that never synced (409 for one with sync history: pause it).
    #[oai(
        path = "/connections/:id",
        method = "delete",
        operation_id = "delete_connection"
    )]
    async fn delete(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ManageConnections).await?;
        let deleted = connections::delete(&mut tx, ConnectionId(id.0))
            .await
            .map_err(not_found("connection", id.0))?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "connection.deleted",
                format!("connection:{}", id.0),
                json!({ "custodian": deleted.custodian, "name": deleted.name }),
            )
            .await?;
        tx.commit().await?;
        Ok(Deleted::NoContent)
    }

    /// The circuit breakers guarding the connection's bank endpoint, one per worker process,
    /// as each last reported.
    #[oai(
        path = "/connections/:id/breaker",
        method = "get",
        operation_id = "get_connection_breaker"
    )]
    async fn breaker(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Json<BreakerView>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadConnections).await?;
        let c = connections::get(&mut tx, ConnectionId(id.0))
            .await
            .map_err(not_found("connection", id.0))?;
        let endpoint = eam_model::endpoint_of(&c.base_url);
        let rows = eam_store::breakers::for_endpoint(&mut tx, &endpoint).await?;
        // The most cautious state any worker reports.
        let states: Vec<BreakerState> = rows
            .iter()
            .filter_map(|r| BreakerState::parse(&r.state))
            .collect();
        let state = [BreakerState::Open, BreakerState::HalfOpen]
            .into_iter()
            .find(|s| states.contains(s))
            .unwrap_or(BreakerState::Closed)
            .as_str();
        Ok(Json(BreakerView {
            endpoint,
            state: state.to_owned(),
            workers: rows
                .into_iter()
                .map(|r| WorkerBreaker {
                    worker_id: r.worker_id,
                    state: r.state,
                    consecutive_failures: r.consecutive_failures,
                    opened_at: r.opened_at,
                    open_until: r.open_until,
                    rejected_calls: r.rejected_calls,
                    updated_at: r.updated_at,
                })
                .collect(),
        }))
    }
}

/// Pushes the first task of a new run; if the queue cannot take it, the run is cancelled with
/// the reason and the caller gets 503: never a false 202.
pub(crate) async fn enqueue(
    state: &ApiState,
    caller: &crate::caller::Caller,
    run: RunId,
    connection: ConnectionId,
) -> Result<(), ApiError> {
    let task = SyncTask {
        run_id: run,
        tenant_id: caller.tenant,
        connection_id: connection,
    };
    // The first command after Redis came back fails on the dead connection while the
    // connection manager reconnects: one retry, on the new connection, before answering 503.
    let e = match state.queue.push(task, 1).await {
        Ok(()) => return Ok(()),
        Err(eam_queue::QueueError::Unavailable(first)) => {
            tracing::warn!(run_id = %run, error = %first, "enqueue failed; retrying once");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            match state.queue.push(task, 1).await {
                // The first push did land; only its answer was lost.
                Ok(()) | Err(eam_queue::QueueError::AlreadyQueued(_)) => return Ok(()),
                Err(e) => e,
            }
        }
        Err(e) => e,
    };
    tracing::error!(run_id = %run, error = %e, "could not enqueue a sync");
    let mut tx = caller.tx(state).await?;
    let t = Transition {
        error: Some(RunError::new(
            ErrorClass::Transient,
            format!("the job queue is unavailable: {e}"),
        )),
        ..Transition::to(RunStatus::Cancelled)
    };
    runs::transition(&mut tx, run, t).await?;
    tx.commit().await?;
    Err(ApiError::unavailable(
        "the job queue is unavailable; try again shortly",
    ))
}

impl ConnectionChangeBody {
    fn changes_credentials(&self) -> bool {
        !(self.client_secret_ref.is_undefined()
            && self.client_cert_ref.is_undefined()
            && self.client_key_ref.is_undefined())
    }
}

/// `PATCH /connections/{id}` in the caller's transaction (the approval's, when approved).
pub(crate) async fn change(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    id: ConnectionId,
    body: ConnectionChangeBody,
) -> Result<Gated<Connection>, ApiError> {
    let body_changes_credentials = body.changes_credentials();
    let body_json = body.to_json();
    refuse_ca(!body.ca_cert_ref.is_undefined())?;
    let change = eam_store::connections::ConnectionChange {
        name: body.name,
        base_url: change_of(body.base_url).map(|u| u.map(|u| u.trim_end_matches('/').to_owned())),
        client_id: change_of(body.client_id),
        client_secret_ref: change_of(body.client_secret_ref),
        client_cert_ref: change_of(body.client_cert_ref),
        client_key_ref: change_of(body.client_key_ref),
        position_history_days: body.position_history_days,
    };
    let current = connections::get(tx, id)
        .await
        .map_err(not_found("connection", id.0))?;
    let merged = |c: &Option<Option<String>>, old: &Option<String>| match c {
        Some(v) => v.clone(),
        None => old.clone(),
    };
    let (base_url, client_id, secret, cert, key) = (
        merged(&change.base_url, &current.own_base_url),
        merged(&change.client_id, &current.client_id),
        merged(&change.client_secret_ref, &current.client_secret_ref),
        merged(&change.client_cert_ref, &current.client_cert_ref),
        merged(&change.client_key_ref, &current.client_key_ref),
    );
    Fields {
        tenant: caller.tenant.0,
        custodian: &current.custodian,
        // Checked when it changes (a URL the registry no longer allows is the worker's
        // to refuse; it does not block renaming the connection).
        base_url: if change.base_url.is_some() {
            base_url.as_deref()
        } else {
            None
        },
        client_id: client_id.as_deref(),
        client_secret_ref: secret.as_deref(),
        client_cert_ref: cert.as_deref(),
        client_key_ref: key.as_deref(),
    }
    .check(state)
    .await?;
    if body_changes_credentials {
        let request = Request {
            what: Sensitive::ConnectionCredentials,
            target: format!("connection:{id}"),
            summary: format!(
                "change the credential or certificate references of connection {} ({})",
                current.name, current.custodian
            ),
            params: json!({ "id": id.0, "body": body_json }),
        };
        if let Some(p) = gate(state, caller, tx, audit, request, false).await? {
            return Ok(Gated::Pending(p));
        }
    }
    let (before, after) = connections::update(tx, id, &change).await?;
    audit
        .record(
            tx,
            "connection.changed",
            format!("connection:{id}"),
            json!({
                "before": { "name": before.name, "base_url": before.own_base_url,
                    "client_id": before.client_id, "client_secret_ref": before.client_secret_ref,
                    "client_cert_ref": before.client_cert_ref, "client_key_ref": before.client_key_ref,
                    "position_history_days": before.position_history_days },
                "after": { "name": after.name, "base_url": after.own_base_url,
                    "client_id": after.client_id, "client_secret_ref": after.client_secret_ref,
                    "client_cert_ref": after.client_cert_ref, "client_key_ref": after.client_key_ref,
                    "position_history_days": after.position_history_days },
            }),
        )
        .await?;
    Ok(Gated::Done(after.into()))
}
