//! `GET /me`: who the token says the caller is.

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::state::ApiState;

pub struct MeApi(pub ApiState);

#[derive(Object)]
struct Me {
    subject: String,
    tenant_id: Uuid,
    roles: Vec<String>,
    client_id: Option<Uuid>,
}

#[OpenApi(tag = "crate::Tag::Auth")]
impl MeApi {
    /// The caller's identity, tenant and roles.
    #[oai(path = "/me", method = "get", operation_id = "get_me")]
    async fn me(&self, token: BearerToken) -> Result<Json<Me>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadSelf).await?;
        Ok(Json(Me {
            subject: caller.subject,
            tenant_id: caller.tenant.0,
            roles: caller.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            client_id: caller.client_id,
        }))
    }
}

/// The event types the caller receives by e-mail, and those its roles allow.
#[derive(Object)]
struct Notifications {
    /// Where the e-mails go (the user's registered address); null: none are sent.
    email: Option<String>,
    event_types: Vec<String>,
    /// The types the caller's roles may subscribe to.
    available: Vec<String>,
}

/// The event types to receive by e-mail.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct Subscribe {
    /// `sync.dead` and `certificate.expiring` go out at once, the others in one digest per
    /// day; `webhook.endpoint_disabled` reaches tenant admins whether subscribed or not.
    event_types: Vec<String>,
}

pub struct NotificationsApi(pub ApiState);

impl NotificationsApi {
    /// The caller's registered user (its id and address), or 404 for a subject the tenant
    /// never registered (it has no address to write to).
    async fn user(
        &self,
        tx: &mut eam_store::TenantTx,
        subject: &str,
    ) -> Result<eam_store::users::UserRow, ApiError> {
        eam_store::users::by_subject(tx, subject)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(
                    "you are not a registered user of the tenant (POST /users registers you with an e-mail address)",
                )
            })
    }
}

#[OpenApi(tag = "crate::Tag::Auth")]
impl NotificationsApi {
    /// What the caller receives by e-mail.
    #[oai(
        path = "/me/notifications",
        method = "get",
        operation_id = "get_notifications"
    )]
    async fn get(&self, token: BearerToken) -> Result<Json<Notifications>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ReadSelf).await?;
        let user = self.user(&mut tx, &caller.subject).await?;
        let available = eam_store::notifications::allowed_types(&mut tx, &user.roles).await?;
        let event_types = eam_store::notifications::subscription(&mut tx, user.id).await?;
        Ok(Json(Notifications {
            email: user.email,
            event_types,
            available,
        }))
    }

    /// Sets the event types the caller receives by e-mail (only those its roles allow; a
    /// client user hears only of its own client). Audited.
    #[oai(
        path = "/me/notifications",
        method = "put",
        operation_id = "put_notifications"
    )]
    async fn put(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<Subscribe>,
    ) -> Result<Json<Notifications>, ApiError> {
        let (caller, mut tx) = self.0.begin(&token, Action::ReadSelf).await?;
        let user = self.user(&mut tx, &caller.subject).await?;
        let available = eam_store::notifications::allowed_types(&mut tx, &user.roles).await?;
        let mut types: Vec<String> = Vec::new();
        for t in &body.0.event_types {
            if !available.contains(t) {
                return Err(ApiError::unprocessable(format!(
                    "event_types: '{t}' is not one your roles may receive ({})",
                    available.join(", ")
                )));
            }
            if !types.contains(t) {
                types.push(t.clone());
            }
        }
        eam_store::notifications::subscribe(&mut tx, user.id, &types).await?;
        crate::audit::AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "notifications.subscribed",
                format!("user:{}", user.id),
                serde_json::json!({ "event_types": types }),
            )
            .await?;
        tx.commit().await?;
        Ok(Json(Notifications {
            email: user.email,
            event_types: types,
            available,
        }))
    }
}
