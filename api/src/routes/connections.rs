//! Bank connections: create, read, and trigger a sync.

use eam_config::secrets::SecretRef;
use eam_store::connections::{self, Connection as StoredConnection, NewConnection};
use eam_store::runs::{self, RunStatus, Transition, Trigger};
use eam_store::{ConnectionId, StoreError};
use eam_worker::SyncTask;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::state::ApiState;

pub struct ConnectionsApi(pub ApiState);

/// The custodians whose protocol the worker can sync today.
const SUPPORTED_CUSTODIANS: &[&str] = &["bank_a"];

/// A new bank connection. Secrets are given as references (`file:///path`, `env://NAME`),
/// never as values.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct NewConnectionBody {
    /// Custodian code, e.g. `bank_a`.
    custodian: String,
    #[oai(validator(min_length = 1, max_length = 200))]
    name: String,
    /// The bank's API base URL; must be https.
    base_url: String,
    /// OAuth2 client id at the bank.
    #[oai(validator(min_length = 1, max_length = 200))]
    client_id: String,
    /// Reference to the OAuth2 client secret.
    client_secret_ref: String,
    /// Reference to the PEM client certificate for mutual TLS.
    client_cert_ref: Option<String>,
    /// Reference to the PEM private key of the client certificate.
    client_key_ref: Option<String>,
    /// Reference to the PEM CA certificate that signs the bank's server certificate.
    ca_cert_ref: Option<String>,
}

/// A bank connection (secret references only, never values).
#[derive(Object)]
struct Connection {
    id: Uuid,
    custodian: String,
    protocol: String,
    name: String,
    base_url: String,
    client_id: String,
    client_secret_ref: String,
    client_cert_ref: Option<String>,
    client_key_ref: Option<String>,
    ca_cert_ref: Option<String>,
    enabled: bool,
    /// Where the next sync resumes.
    cursor: serde_json::Value,
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
            base_url: c.base_url,
            client_id: c.client_id,
            client_secret_ref: c.client_secret_ref,
            client_cert_ref: c.client_cert_ref,
            client_key_ref: c.client_key_ref,
            ca_cert_ref: c.ca_cert_ref,
            enabled: c.enabled,
            cursor: c.cursor,
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
    status: String,
}

#[derive(ApiResponse)]
enum Accepted {
    /// The sync is queued; poll `GET /jobs/{run_id}`.
    #[oai(status = 202)]
    Accepted(Json<SyncAccepted>, #[oai(header = "Location")] String),
}

fn check_reference(field: &str, value: &str) -> Result<(), ApiError> {
    SecretRef::parse(value)
        .map(|_| ())
        .map_err(|e| ApiError::unprocessable(format!("{field}: {e}")))
}

impl NewConnectionBody {
    fn validate(self) -> Result<NewConnection, ApiError> {
        if !SUPPORTED_CUSTODIANS.contains(&self.custodian.as_str()) {
            return Err(ApiError::unprocessable(format!(
                "custodian: '{}' is not supported; expected one of {SUPPORTED_CUSTODIANS:?}",
                self.custodian
            )));
        }
        if !self.base_url.starts_with("https://") || self.base_url.len() <= "https://".len() {
            return Err(ApiError::unprocessable("base_url: must be an https:// URL"));
        }
        check_reference("client_secret_ref", &self.client_secret_ref)?;
        for (field, value) in [
            ("client_cert_ref", &self.client_cert_ref),
            ("client_key_ref", &self.client_key_ref),
            ("ca_cert_ref", &self.ca_cert_ref),
        ] {
            if let Some(v) = value {
                check_reference(field, v)?;
            }
        }
        if self.client_cert_ref.is_some() != self.client_key_ref.is_some() {
            return Err(ApiError::unprocessable(
                "client_cert_ref and client_key_ref go together",
            ));
        }
        Ok(NewConnection {
            custodian: self.custodian,
            name: self.name,
            base_url: self.base_url.trim_end_matches('/').to_owned(),
            client_id: self.client_id,
            client_secret_ref: self.client_secret_ref,
            client_cert_ref: self.client_cert_ref,
            client_key_ref: self.client_key_ref,
            ca_cert_ref: self.ca_cert_ref,
        })
    }
}

fn not_found(id: Uuid) -> impl FnOnce(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::not_found(format!("connection {id} not found")),
        other => other.into(),
    }
}

#[OpenApi(tag = "crate::Tag::Connections")]
impl ConnectionsApi {
    /// Creates a bank connection.
    #[oai(path = "/connections", method = "post")]
    async fn create(
        &self,
        token: BearerToken,
        body: Json<NewConnectionBody>,
    ) -> Result<Created, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ManageConnections)?;
        let new = body.0.validate()?;
        let mut tx = caller.tx(&self.0).await?;
        let created = connections::create(&mut tx, &new).await?;
        tx.commit().await?;
        tracing::info!(connection_id = %created.id, actor = %caller.subject, "connection created");
        let location = format!("/api/v1/connections/{}", created.id);
        Ok(Created::Created(Json(created.into()), location))
    }

    /// Lists the tenant's bank connections.
    #[oai(path = "/connections", method = "get")]
    async fn list(&self, token: BearerToken) -> Result<Json<Vec<Connection>>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ReadConnections)?;
        let mut tx = caller.tx(&self.0).await?;
        Ok(Json(
            connections::list(&mut tx)
                .await?
                .into_iter()
                .map(Connection::from)
                .collect(),
        ))
    }

    /// One bank connection.
    #[oai(path = "/connections/:id", method = "get")]
    async fn get(&self, token: BearerToken, id: Path<Uuid>) -> Result<Json<Connection>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ReadConnections)?;
        let mut tx = caller.tx(&self.0).await?;
        let c = connections::get(&mut tx, ConnectionId(id.0))
            .await
            .map_err(not_found(id.0))?;
        Ok(Json(c.into()))
    }

    /// Queues a sync of the connection now; answers with the run id.
    #[oai(path = "/connections/:id/sync", method = "post")]
    async fn sync(&self, token: BearerToken, id: Path<Uuid>) -> Result<Accepted, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::TriggerSync)?;
        let connection = ConnectionId(id.0);
        let mut tx = caller.tx(&self.0).await?;
        let c = connections::get(&mut tx, connection)
            .await
            .map_err(not_found(id.0))?;
        if !c.enabled {
            return Err(ApiError::conflict(
                "the connection is paused; resume it first",
            ));
        }
        let run = runs::create(
            &mut tx,
            connection,
            Trigger::Manual,
            Some(&caller.subject),
            None,
        )
        .await?;
        // The run row is committed before the task exists, so a worker never sees a task whose
        // run it cannot find.
        tx.commit().await?;
        let task = SyncTask {
            run_id: run,
            tenant_id: caller.tenant,
            connection_id: connection,
        };
        if let Err(e) = self.0.queue.push(task).await {
            tracing::error!(run_id = %run, error = %e, "could not enqueue a sync");
            // Never a false 202: the run is cancelled with the reason, and the caller told.
            let mut tx = caller.tx(&self.0).await?;
            let t = Transition {
                error: Some((
                    "transient".into(),
                    format!("the job queue is unavailable: {e}"),
                )),
                ..Transition::to(RunStatus::Cancelled)
            };
            runs::transition(&mut tx, run, t).await?;
            tx.commit().await?;
            return Err(ApiError::unavailable(
                "the job queue is unavailable; try again shortly",
            ));
        }
        tracing::info!(run_id = %run, connection_id = %connection, actor = %caller.subject, "sync queued");
        Ok(Accepted::Accepted(
            Json(SyncAccepted {
                run_id: run.0,
                status: RunStatus::Queued.as_str().into(),
            }),
            format!("/api/v1/jobs/{run}"),
        ))
    }
}
