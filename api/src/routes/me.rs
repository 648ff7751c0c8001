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
    #[oai(path = "/me", method = "get")]
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
