//! The authenticated caller: a verified token turned into tenant, roles and client scope.

use eam_store::{TenantId, TenantTx};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use uuid::Uuid;

use crate::permissions::{self, Action, Role};
use crate::problem::ApiError;
use crate::state::ApiState;

/// OIDC access token (JWT) from the configured issuer.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT")]
pub struct BearerToken(pub Bearer);

/// Who is calling, as the token says.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: String,
    pub tenant: TenantId,
    pub roles: Vec<Role>,
    /// For client users: the only client whose data they may read.
    pub client_id: Option<Uuid>,
}

impl Caller {
    /// 403 unless a role allows the action.
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        permissions::require(&self.roles, action)
    }

    /// The client a portfolio read is limited to: `Some` for a client user (who must carry a
    /// client claim), `None` for advisors who see every client of the tenant.
    pub fn client_scope(&self) -> Result<Option<Uuid>, ApiError> {
        if self.roles.contains(&Role::Advisor) {
            return Ok(None);
        }
        match self.client_id {
            Some(c) => Ok(Some(c)),
            None => Err(ApiError::forbidden(
                "a client user's token must name its client",
            )),
        }
    }

    /// A transaction scoped to the caller's tenant.
    pub async fn tx(&self, state: &ApiState) -> Result<TenantTx, ApiError> {
        Ok(state.store.tenant_tx(self.tenant).await?)
    }
}

impl ApiState {
    /// Verifies the bearer token; any failure is a 401 that says why (never echoing the token).
    pub async fn authenticate(&self, token: &BearerToken) -> Result<Caller, ApiError> {
        let principal = self
            .verifier
            .verify(&token.0.token)
            .await
            .map_err(|e| match e {
                eam_auth::AuthError::JwksUnavailable(_) => {
                    tracing::warn!(error = %e, "identity provider keys unavailable");
                    ApiError::unavailable("the identity provider's keys are unavailable")
                }
                other => {
                    tracing::info!(reason = %other, "token refused");
                    ApiError::unauthorized(format!("token refused: {other}"))
                }
            })?;
        let roles = principal
            .roles
            .iter()
            .filter_map(|r| Role::parse(r))
            .collect();
        Ok(Caller {
            subject: principal.subject,
            tenant: TenantId(principal.tenant_id),
            roles,
            client_id: principal.client_id,
        })
    }
}
