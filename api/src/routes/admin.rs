//! Administration: tenants and their modules (platform admins), users (tenant admins), the
//! tenant's clients, and its audit log.

use chrono::{DateTime, Utc};
use eam_model::domain::Currency;
use eam_store::TenantId;
use eam_store::audit::{AuditFilter, AuditRow};
use eam_store::clients::{self, ClientFields, ClientRow};
use eam_store::tenants::{self, TenantRow};
use eam_store::users::{self, NewUser, UserChange, UserRow};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditContext;
use crate::caller::BearerToken;
use crate::permissions::{Action, Role};
use crate::problem::ApiError;
use crate::routes::page_limit;
use crate::state::ApiState;

pub struct AdminApi(pub ApiState);

/// The feature modules a tenant can have switched on.
pub const MODULES: &[&str] = &["bank_sync", "reports"];

/// A tenant (one EAM firm).
#[derive(Object)]
struct Tenant {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
    /// Switched-on modules.
    modules: Vec<String>,
}

impl From<TenantRow> for Tenant {
    fn from(t: TenantRow) -> Self {
        Tenant {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
            modules: t.modules,
        }
    }
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct NewTenant {
    #[oai(validator(min_length = 1, max_length = 200))]
    name: String,
    /// Modules to switch on, e.g. `bank_sync`.
    #[oai(default)]
    modules: Vec<String>,
}

/// Modules to switch on (`true`) or off (`false`); others stay as they are.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct ModuleChanges {
    modules: std::collections::BTreeMap<String, bool>,
}

/// A registered user.
#[derive(Object)]
struct User {
    id: Uuid,
    /// The subject (`sub`) of the user's tokens at the identity provider.
    subject: String,
    email: Option<String>,
    /// These replace the roles of the user's tokens.
    roles: Vec<String>,
    /// For client users: their client.
    client_id: Option<Uuid>,
    /// A disabled user's tokens are refused.
    disabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        User {
            id: u.id,
            subject: u.subject,
            email: u.email,
            roles: u.roles,
            client_id: u.client_id,
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct NewUserBody {
    #[oai(validator(min_length = 1, max_length = 255))]
    subject: String,
    #[oai(validator(max_length = 320))]
    email: Option<String>,
    roles: Vec<String>,
    client_id: Option<Uuid>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct UserChangeBody {
    #[oai(validator(max_length = 320))]
    email: Option<String>,
    roles: Option<Vec<String>>,
    client_id: Option<Uuid>,
    disabled: Option<bool>,
}

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

/// One entry of the audit log.
#[derive(Object)]
struct AuditEntry {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    target: Option<String>,
    request_id: Option<String>,
    source_addr: Option<String>,
    details: serde_json::Value,
    /// The entry's hash, which the next entry's `prev_hash` repeats (`eam audit verify`).
    hash: String,
    prev_hash: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(a: AuditRow) -> Self {
        AuditEntry {
            id: a.id,
            at: a.at,
            actor: a.actor,
            action: a.action,
            target: a.target,
            request_id: a.request_id,
            source_addr: a.source_addr,
            details: a.details,
            hash: a.hash,
            prev_hash: a.prev_hash,
        }
    }
}

#[derive(Object)]
struct AuditPage {
    entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (newer) entries; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(ApiResponse)]
enum CreatedTenant {
    #[oai(status = 201)]
    Created(Json<Tenant>),
}

#[derive(ApiResponse)]
enum CreatedUser {
    #[oai(status = 201)]
    Created(Json<User>),
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
}

fn check_modules<'a>(names: impl IntoIterator<Item = &'a String>) -> Result<(), ApiError> {
    for m in names {
        if !MODULES.contains(&m.as_str()) {
            return Err(ApiError::unprocessable(format!(
                "modules: unknown module '{m}'; expected one of {MODULES:?}"
            )));
        }
    }
    Ok(())
}

/// Roles a tenant admin may give: any but platform_admin, and `client` only with a client.
fn check_roles(roles: &[String], client: Option<Uuid>) -> Result<(), ApiError> {
    for r in roles {
        match Role::parse(r) {
            None => {
                return Err(ApiError::unprocessable(format!(
                    "roles: unknown role '{r}'"
                )));
            }
            Some(Role::PlatformAdmin) => {
                return Err(ApiError::unprocessable(
                    "roles: platform_admin is granted by the identity provider, not by a tenant",
                ));
            }
            Some(Role::Client) if client.is_none() => {
                return Err(ApiError::unprocessable(
                    "client_id: a client user needs its client",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn check_email(email: &Option<String>) -> Result<(), ApiError> {
    match email {
        Some(e) if !e.contains('@') || e.starts_with('@') || e.ends_with('@') => Err(
            ApiError::unprocessable(format!("email: '{e}' is not an email address")),
        ),
        _ => Ok(()),
    }
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

fn not_found(what: &'static str, id: Uuid) -> impl FnOnce(eam_store::StoreError) -> ApiError {
    move |e| match e {
        eam_store::StoreError::NotFound => ApiError::not_found(format!("{what} {id} not found")),
        eam_store::StoreError::Data(m) => ApiError::unprocessable(m),
        other => other.into(),
    }
}

#[OpenApi(tag = "crate::Tag::Admin")]
impl AdminApi {
    /// Every tenant of the platform (platform admins).
    #[oai(path = "/tenants", method = "get")]
    async fn tenants(&self, token: BearerToken) -> Result<Json<Vec<Tenant>>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ReadTenants)?;
        let rows = tenants::list_all(&self.0.store).await?;
        Ok(Json(rows.into_iter().map(Tenant::from).collect()))
    }

    /// Creates a tenant with its modules (platform admins).
    #[oai(path = "/tenants", method = "post")]
    async fn create_tenant(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<NewTenant>,
    ) -> Result<CreatedTenant, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ManageTenants)?;
        check_modules(&body.0.modules)?;
        let modules: Vec<&str> = body.0.modules.iter().map(String::as_str).collect();
        let id = tenants::create_tenant(&self.0.store, &body.0.name, &modules).await?;
        let mut tx = self.0.store.tenant_tx(id).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "tenant.created",
                format!("tenant:{id}"),
                json!({ "name": body.0.name, "modules": body.0.modules, "by_tenant": caller.tenant }),
            )
            .await?;
        let created = tenants::get(&mut tx).await?;
        tx.commit().await?;
        Ok(CreatedTenant::Created(Json(created.into())))
    }

    /// Switches a tenant's modules on or off (platform admins). A tenant without `bank_sync`
    /// gets 403 on bank connections.
    #[oai(path = "/tenants/:id/modules", method = "put")]
    async fn set_modules(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<ModuleChanges>,
    ) -> Result<Json<Tenant>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ManageTenants)?;
        check_modules(body.0.modules.keys())?;
        let tenant = TenantId(id.0);
        if !self.0.store.tenant_exists(tenant).await? {
            return Err(ApiError::not_found(format!("tenant {} not found", id.0)));
        }
        let mut tx = self.0.store.tenant_tx(tenant).await?;
        let changes: Vec<(String, bool)> = body.0.modules.into_iter().collect();
        let before = tenants::set_modules(&mut tx, &changes).await?;
        let after = tenants::get(&mut tx).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "tenant.modules_changed",
                format!("tenant:{}", id.0),
                json!({ "before": before, "after": after.modules }),
            )
            .await?;
        tx.commit().await?;
        self.0.security.forget_tenant(tenant);
        Ok(Json(after.into()))
    }

    /// The tenant's registered users.
    #[oai(path = "/users", method = "get")]
    async fn users(&self, token: BearerToken) -> Result<Json<Vec<User>>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ReadUsers)?;
        let mut tx = caller.tx(&self.0).await?;
        Ok(Json(
            users::list(&mut tx)
                .await?
                .into_iter()
                .map(User::from)
                .collect(),
        ))
    }

    /// Registers a user by the subject of its tokens, with the roles it gets here.
    #[oai(path = "/users", method = "post")]
    async fn create_user(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<NewUserBody>,
    ) -> Result<CreatedUser, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ManageUsers)?;
        let body = body.0;
        check_roles(&body.roles, body.client_id)?;
        check_email(&body.email)?;
        let mut tx = caller.tx(&self.0).await?;
        let user = users::create(
            &mut tx,
            &NewUser {
                subject: body.subject,
                email: body.email,
                roles: body.roles,
                client_id: body.client_id,
            },
        )
        .await
        .map_err(|e| match e {
            eam_store::StoreError::Data(m) => ApiError::unprocessable(format!("client_id: {m}")),
            other => other.into(),
        })?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "user.created",
                format!("user:{}", user.id),
                json!({ "subject": user.subject, "roles": user.roles, "client_id": user.client_id }),
            )
            .await?;
        tx.commit().await?;
        self.0.security.forget_tenant(caller.tenant);
        Ok(CreatedUser::Created(Json(user.into())))
    }

    /// One registered user.
    #[oai(path = "/users/:id", method = "get")]
    async fn user(&self, token: BearerToken, id: Path<Uuid>) -> Result<Json<User>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ReadUsers)?;
        let mut tx = caller.tx(&self.0).await?;
        let user = users::get(&mut tx, id.0)
            .await
            .map_err(not_found("user", id.0))?;
        Ok(Json(user.into()))
    }

    /// Changes a user's email, roles or client, or disables (enables) it. A disabled user's
    /// tokens are refused.
    #[oai(path = "/users/:id", method = "patch")]
    async fn change_user(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<UserChangeBody>,
    ) -> Result<Json<User>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ManageUsers)?;
        let body = body.0;
        check_email(&body.email)?;
        let mut tx = caller.tx(&self.0).await?;
        let current = users::get(&mut tx, id.0)
            .await
            .map_err(not_found("user", id.0))?;
        if let Some(roles) = &body.roles {
            check_roles(roles, body.client_id.or(current.client_id))?;
        }
        let change = UserChange {
            email: body.email.map(Some),
            roles: body.roles,
            client_id: body.client_id.map(Some),
            disabled: body.disabled,
        };
        let (before, after) = users::update(&mut tx, id.0, &change)
            .await
            .map_err(not_found("user", id.0))?;
        let audit = AuditContext::new(&caller, req);
        let target = format!("user:{}", id.0);
        if before.roles != after.roles {
            audit
                .record(&mut tx, "user.roles_changed", target.clone(),
                    json!({ "subject": after.subject, "before": before.roles, "after": after.roles }))
                .await?;
        }
        if before.disabled != after.disabled {
            let action = if after.disabled {
                "user.disabled"
            } else {
                "user.enabled"
            };
            audit
                .record(
                    &mut tx,
                    action,
                    target.clone(),
                    json!({ "subject": after.subject }),
                )
                .await?;
        }
        if before.email != after.email || before.client_id != after.client_id {
            audit
                .record(&mut tx, "user.changed", target,
                    json!({ "subject": after.subject, "email": after.email, "client_id": after.client_id }))
                .await?;
        }
        tx.commit().await?;
        self.0.security.forget_tenant(caller.tenant);
        Ok(Json(after.into()))
    }

    /// The tenant's clients (a client user sees only its own).
    #[oai(path = "/clients", method = "get")]
    async fn clients(&self, token: BearerToken) -> Result<Json<Vec<Client>>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ReadClients)?;
        let mut tx = caller.tx(&self.0).await?;
        Ok(Json(
            clients::list(&mut tx)
                .await?
                .into_iter()
                .map(Client::from)
                .collect(),
        ))
    }

    /// Creates a client.
    #[oai(path = "/clients", method = "post")]
    async fn create_client(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<ClientBody>,
    ) -> Result<CreatedClient, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ManageClients)?;
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
    #[oai(path = "/clients/:id", method = "get")]
    async fn client(&self, token: BearerToken, id: Path<Uuid>) -> Result<Json<Client>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ReadClients)?;
        let mut tx = caller.tx(&self.0).await?;
        let client = clients::get(&mut tx, id.0)
            .await
            .map_err(not_found("client", id.0))?;
        Ok(Json(client.into()))
    }

    /// Changes a client's reference, name, reporting currency or KYC status.
    #[oai(path = "/clients/:id", method = "patch")]
    async fn change_client(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<ClientBody>,
    ) -> Result<Json<Client>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ManageClients)?;
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

    /// Deletes a client without accounts or users (409 otherwise).
    #[oai(path = "/clients/:id", method = "delete")]
    async fn delete_client(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ManageClients)?;
        let mut tx = caller.tx(&self.0).await?;
        let client = clients::delete(&mut tx, id.0)
            .await
            .map_err(not_found("client", id.0))?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "client.deleted",
                format!("client:{}", id.0),
                json!({ "reference": client.reference }),
            )
            .await?;
        tx.commit().await?;
        Ok(Deleted::NoContent)
    }

    /// The tenant's audit log, oldest first, by action, actor, target and time.
    #[oai(path = "/audit", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        token: BearerToken,
        action: Query<Option<String>>,
        actor: Query<Option<String>>,
        target: Query<Option<String>>,
        since: Query<Option<DateTime<Utc>>>,
        until: Query<Option<DateTime<Utc>>>,
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 100).
        limit: Query<Option<u32>>,
    ) -> Result<Json<AuditPage>, ApiError> {
        let caller = self.0.authenticate(&token).await?;
        caller.require(Action::ReadAudit)?;
        let limit = page_limit(limit.0, 100)?;
        let after = cursor
            .0
            .as_deref()
            .map(|c| {
                c.parse::<i64>().map_err(|_| {
                    ApiError::bad_request("cursor is not valid: pass next_cursor unchanged")
                })
            })
            .transpose()?;
        let mut tx = caller.tx(&self.0).await?;
        let mut rows = eam_store::audit::search(
            &mut tx,
            &AuditFilter {
                action: action.0,
                actor: actor.0,
                target: target.0,
                since: since.0,
                until: until.0,
                after,
                limit: limit + 1,
            },
        )
        .await?;
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(Json(AuditPage {
            entries: rows.into_iter().map(AuditEntry::from).collect(),
            next_cursor,
        }))
    }
}
