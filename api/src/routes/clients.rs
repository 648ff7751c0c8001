//! The tenant's end clients (tenant admins and advisors; a client user reads its own).

use chrono::{DateTime, Utc};
use eam_model::domain::Currency;
use eam_store::TenantTx;
use eam_store::clients::{self, ClientFields, ClientRow};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::json;
use uuid::Uuid;

use crate::approvals::{Gated, PendingApproval, Request, Sensitive, gate, sensitive};
use crate::audit::AuditContext;
use crate::caller::{BearerToken, Caller};
use crate::permissions::Action;
use crate::problem::{ApiError, not_found};
use crate::state::ApiState;

pub struct ClientsApi(pub ApiState);

/// An end client of the firm.
#[derive(Object)]
struct Client {
    id: Uuid,
    /// The firm's own reference (unique in the tenant).
    reference: String,
    name: String,
    /// ISO 4217 currency portfolios are valued in.
    reporting_currency: Option<String>,
    /// `pending`, `verified`, `expired` or `rejected`.
    kyc_status: String,
    /// Bank accounts linked to the client.
    accounts: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ClientRow> for Client {
    fn from(c: ClientRow) -> Self {
        Client {
            id: c.id,
            reference: c.reference,
            name: c.name,
            reporting_currency: c.reporting_currency,
            kyc_status: c.kyc_status,
            accounts: c.accounts,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct ClientBody {
    #[oai(validator(min_length = 1, max_length = 100))]
    reference: Option<String>,
    #[oai(validator(min_length = 1, max_length = 200))]
    name: Option<String>,
    reporting_currency: Option<String>,
    kyc_status: Option<String>,
}

#[derive(ApiResponse)]
enum CreatedClient {
    #[oai(status = 201)]
    Created(Json<Client>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
    /// Waits for another user's approval (`Location`: the approval); nothing changed yet.
    #[oai(status = 202)]
    Pending(Json<PendingApproval>, #[oai(header = "Location")] String),
}

fn check_client_fields(body: &ClientBody) -> Result<(), ApiError> {
    if let Some(c) = &body.reporting_currency {
        Currency::parse(c)
            .map_err(|e| ApiError::unprocessable(format!("reporting_currency: {e}")))?;
    }
    if let Some(k) = &body.kyc_status
        && !matches!(k.as_str(), "pending" | "verified" | "expired" | "rejected")
    {
        return Err(ApiError::unprocessable(format!(
            "kyc_status: '{k}' is not pending, verified, expired or rejected"
        )));
    }
    Ok(())
}

#[OpenApi(tag = "crate::Tag::Admin")]
impl ClientsApi {
    /// The tenant's clients (a client user sees only its own).
    #[oai(path = "/clients", method = "get", operation_id = "list_clients")]
    async fn clients(&self, token: BearerToken) -> Result<Json<Vec<Client>>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadClients).await?;
        Ok(Json(
            clients::list(&mut tx)
                .await?
                .into_iter()
                .map(Client::from)
                .collect(),
        ))
    }

    /// Creates a client.
    #[oai(path = "/clients", method = "post", operation_id = "create_client")]
    async fn create_client(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<ClientBody>,
    ) -> Result<CreatedClient, ApiError> {
        let caller = self.0.caller(&token, Action::ManageClients).await?;
        let body = body.0;
        check_client_fields(&body)?;
        if body.reference.is_none() || body.name.is_none() {
            return Err(ApiError::unprocessable("reference and name are required"));
        }
        let mut tx = caller.tx(&self.0).await?;
        let client = clients::create(
            &mut tx,
            &ClientFields {
                reference: body.reference,
                name: body.name,
                reporting_currency: body.reporting_currency.map(Some),
                kyc_status: body.kyc_status,
            },
        )
        .await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "client.created",
                format!("client:{}", client.id),
                json!({ "reference": client.reference }),
            )
            .await?;
        tx.commit().await?;
        Ok(CreatedClient::Created(Json(client.into())))
    }

    /// One client.
    #[oai(path = "/clients/:id", method = "get", operation_id = "get_client")]
    async fn client(&self, token: BearerToken, id: Path<Uuid>) -> Result<Json<Client>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadClients).await?;
        let client = clients::get(&mut tx, id.0)
            .await
            .map_err(not_found("client", id.0))?;
        Ok(Json(client.into()))
    }

    /// Changes a client's reference, name, reporting currency or KYC status.
    #[oai(
        path = "/clients/:id",
        method = "patch",
        operation_id = "change_client"
    )]
    async fn change_client(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<ClientBody>,
    ) -> Result<Json<Client>, ApiError> {
        let caller = self.0.caller(&token, Action::ManageClients).await?;
        let body = body.0;
        check_client_fields(&body)?;
        let mut tx = caller.tx(&self.0).await?;
        let (before, after) = clients::update(
            &mut tx,
            id.0,
            &ClientFields {
                reference: body.reference,
                name: body.name,
                reporting_currency: body.reporting_currency.map(Some),
                kyc_status: body.kyc_status,
            },
        )
        .await
        .map_err(not_found("client", id.0))?;
        AuditContext::new(&caller, req)
            .record(&mut tx, "client.changed", format!("client:{}", id.0), json!({
                "before": { "reference": before.reference, "name": before.name,
                    "reporting_currency": before.reporting_currency, "kyc_status": before.kyc_status },
                "after": { "reference": after.reference, "name": after.name,
                    "reporting_currency": after.reporting_currency, "kyc_status": after.kyc_status },
            }))
            .await?;
        tx.commit().await?;
        Ok(Json(after.into()))
    }

    /// Deletes a client without accounts or users (409 otherwise). Needs a recent second
    /// factor; where the tenant's policy asks for four eyes, answers 202 with the pending
    /// approval (the client stays until another user approves it).
    #[oai(
        path = "/clients/:id",
        method = "delete",
        operation_id = "delete_client"
    )]
    async fn delete_client(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let state = &self.0;
        let (_, gated) = sensitive(
            state,
            req,
            &token,
            Action::ManageClients,
            Some("deleting a client"),
            async |c, a, tx| delete(state, c, a, tx, id.0).await,
        )
        .await?;
        Ok(match gated {
            Gated::Done(()) => Deleted::NoContent,
            Gated::Pending(p) => {
                let location = p.location();
                Deleted::Pending(Json(p), location)
            }
        })
    }
}

/// `DELETE /clients/{id}` in the caller's transaction (the approval's, when approved).
pub(crate) async fn delete(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    id: Uuid,
) -> Result<Gated<()>, ApiError> {
    let current = clients::get(tx, id)
        .await
        .map_err(not_found("client", id))?;
    let request = Request {
        what: Sensitive::ClientDeletion,
        target: format!("client:{id}"),
        summary: format!("delete client {} ({})", current.reference, current.name),
        params: json!({ "id": id }),
    };
    if let Some(p) = gate(state, caller, tx, audit, request, false).await? {
        return Ok(Gated::Pending(p));
    }
    let client = clients::delete(tx, id)
        .await
        .map_err(not_found("client", id))?;
    audit
        .record(
            tx,
            "client.deleted",
            format!("client:{id}"),
            json!({ "reference": client.reference }),
        )
        .await?;
    Ok(Gated::Done(()))
}
