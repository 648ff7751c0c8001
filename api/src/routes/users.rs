//! The tenant's registered users: who may sign in, with which roles and client (tenant admins).

use chrono::{DateTime, Utc};
use eam_store::TenantTx;
use eam_store::users::{self, NewUser, UserChange, UserRow};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::json;
use uuid::Uuid;

use crate::approvals::{Approvable, Gated, PendingApproval, Request, Sensitive, gate, sensitive};
use crate::audit::AuditContext;
use crate::caller::{BearerToken, Caller};
use crate::permissions::{Action, Role};
use crate::problem::{ApiError, not_found};
use crate::state::ApiState;

pub struct UsersApi(pub ApiState);

/// A registered user.
#[derive(Object)]
pub(crate) struct User {
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
pub(crate) struct NewUserBody {
    #[oai(validator(min_length = 1, max_length = 255))]
    subject: String,
    #[oai(validator(max_length = 320))]
    email: Option<String>,
    roles: Vec<String>,
    client_id: Option<Uuid>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct UserChangeBody {
    #[oai(validator(max_length = 320))]
    email: Option<String>,
    roles: Option<Vec<String>>,
    client_id: Option<Uuid>,
    disabled: Option<bool>,
}

#[derive(ApiResponse)]
enum CreatedUser {
    #[oai(status = 201)]
    Created(Json<User>),
    /// Waits for another tenant admin's approval (`Location`: the approval); nothing
    /// changed yet.
    #[oai(status = 202)]
    Pending(Json<PendingApproval>, #[oai(header = "Location")] String),
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

#[OpenApi(tag = "crate::Tag::Admin")]
impl UsersApi {
    /// The tenant's registered users.
    #[oai(path = "/users", method = "get", operation_id = "list_users")]
    async fn users(&self, token: BearerToken) -> Result<Json<Vec<User>>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadUsers).await?;
        Ok(Json(
            users::list(&mut tx)
                .await?
                .into_iter()
                .map(User::from)
                .collect(),
        ))
    }

    /// Registers a user by the subject of its tokens, with the roles it gets here. Granting
    /// roles needs a recent second factor, and where the tenant's policy asks for four eyes
    /// answers 202 with the pending approval (the user is registered when another tenant
    /// admin approves it).
    #[oai(path = "/users", method = "post", operation_id = "create_user")]
    async fn create_user(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<NewUserBody>,
    ) -> Result<CreatedUser, ApiError> {
        let state = &self.0;
        let (caller, gated) = sensitive(
            state,
            req,
            &token,
            Action::ManageUsers,
            (!body.0.roles.is_empty()).then_some("granting a role"),
            async |c, a, tx| create(state, c, a, tx, body.0).await,
        )
        .await?;
        Ok(match gated {
            Gated::Done(user) => {
                self.0.security.forget_tenant(caller.tenant);
                CreatedUser::Created(Json(user))
            }
            Gated::Pending(p) => {
                let location = p.location();
                CreatedUser::Pending(Json(p), location)
            }
        })
    }

    /// One registered user.
    #[oai(path = "/users/:id", method = "get", operation_id = "get_user")]
    async fn user(&self, token: BearerToken, id: Path<Uuid>) -> Result<Json<User>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadUsers).await?;
        let user = users::get(&mut tx, id.0)
            .await
            .map_err(not_found("user", id.0))?;
        Ok(Json(user.into()))
    }

    /// Changes a user's email, roles or client, or disables (enables) it. A disabled user's
    /// tokens are refused. Changing roles needs a recent second factor, and where the
    /// tenant's policy asks for four eyes answers 202 with the pending approval (nothing
    /// changes until another tenant admin approves it).
    #[oai(path = "/users/:id", method = "patch", operation_id = "change_user")]
    async fn change_user(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<UserChangeBody>,
    ) -> Result<Approvable<User>, ApiError> {
        let state = &self.0;
        let (caller, gated) = sensitive(
            state,
            req,
            &token,
            Action::ManageUsers,
            body.0
                .roles
                .is_some()
                .then_some("granting or revoking a role"),
            async |c, a, tx| change(state, c, a, tx, id.0, body.0).await,
        )
        .await?;
        Ok(match gated {
            Gated::Done(user) => {
                self.0.security.forget_tenant(caller.tenant);
                Approvable::Done(Json(user))
            }
            Gated::Pending(p) => Approvable::pending(p),
        })
    }
}

/// `POST /users` in the caller's transaction (the approval's, when approved).
pub(crate) async fn create(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    body: NewUserBody,
) -> Result<Gated<User>, ApiError> {
    check_roles(&body.roles, body.client_id)?;
    check_email(&body.email)?;
    if !body.roles.is_empty() {
        let request = Request {
            what: Sensitive::Roles,
            target: format!("user:{}", body.subject),
            summary: format!(
                "register user {} with the roles {}",
                body.subject,
                body.roles.join(", ")
            ),
            params: json!({ "body": body.to_json() }),
        };
        if let Some(p) = gate(state, caller, tx, audit, request, false).await? {
            return Ok(Gated::Pending(p));
        }
    }
    let user = users::create(
        tx,
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
    audit
        .record(
            tx,
            "user.created",
            format!("user:{}", user.id),
            json!({ "subject": user.subject, "roles": user.roles, "client_id": user.client_id }),
        )
        .await?;
    Ok(Gated::Done(user.into()))
}

/// `PATCH /users/{id}` in the caller's transaction (the approval's, when approved). Only a
/// change of the roles goes through the gate.
pub(crate) async fn change(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    id: Uuid,
    body: UserChangeBody,
) -> Result<Gated<User>, ApiError> {
    check_email(&body.email)?;
    let current = users::get(tx, id).await.map_err(not_found("user", id))?;
    if let Some(roles) = &body.roles {
        check_roles(roles, body.client_id.or(current.client_id))?;
        let mut wanted = roles.clone();
        wanted.sort();
        wanted.dedup();
        let mut held = current.roles.clone();
        held.sort();
        if wanted != held {
            let request = Request {
                what: Sensitive::Roles,
                target: format!("user:{id}"),
                summary: format!(
                    "change the roles of {} from [{}] to [{}]",
                    current.subject,
                    current.roles.join(", "),
                    roles.join(", ")
                ),
                params: json!({ "id": id, "body": body.to_json() }),
            };
            if let Some(p) = gate(state, caller, tx, audit, request, false).await? {
                return Ok(Gated::Pending(p));
            }
        }
    }
    let change = UserChange {
        email: body.email.map(Some),
        roles: body.roles,
        client_id: body.client_id.map(Some),
        disabled: body.disabled,
    };
    let (before, after) = users::update(tx, id, &change)
        .await
        .map_err(not_found("user", id))?;
    let admin = |u: &UserRow| !u.disabled && u.roles.iter().any(|r| r == "tenant_admin");
    if admin(&before) && !admin(&after) && users::enabled_admins(tx).await? == 0 {
        return Err(ApiError::conflict(format!(
            "{} is the tenant's last enabled tenant admin: give another user the role first",
            before.subject
        )));
    }
    let target = format!("user:{id}");
    if before.roles != after.roles {
        audit
            .record(
                tx,
                "user.roles_changed",
                target.clone(),
                json!({ "subject": after.subject, "before": before.roles, "after": after.roles }),
            )
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
                tx,
                action,
                target.clone(),
                json!({ "subject": after.subject }),
            )
            .await?;
    }
    if before.email != after.email || before.client_id != after.client_id {
        audit
            .record(tx, "user.changed", target,
                json!({ "subject": after.subject, "email": after.email, "client_id": after.client_id }))
            .await?;
    }
    Ok(Gated::Done(after.into()))
}
