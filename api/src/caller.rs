//! The authenticated caller: a verified token turned into tenant, roles and client scope.

use eam_store::{ClientId, TenantId, TenantTx};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use uuid::Uuid;

use crate::permissions::{self, Action, Role};
use crate::problem::ApiError;
use crate::security;
use crate::state::ApiState;

/// OIDC access token (JWT) from the configured issuer.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT")]
pub struct BearerToken(pub Bearer);

/// Who is calling: the token's identity, with the roles and client the tenant gave it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: String,
    pub tenant: TenantId,
    pub roles: Vec<Role>,
    /// For client users: the only client whose data they may read.
    pub client_id: Option<Uuid>,
    /// The tenant's switched-on modules.
    pub modules: Vec<String>,
    /// True when the token states a second factor recent enough for sensitive actions.
    pub recent_mfa: bool,
}

impl Caller {
    /// Refuses a sensitive action without a recent second factor: 401 with
    /// `WWW-Authenticate: Bearer error="insufficient_user_authentication"` and `max_age`
    /// (RFC 9470), and a problem saying what is needed.
    pub fn require_step_up(
        &self,
        step_up: &crate::state::StepUp,
        what: &str,
    ) -> Result<(), ApiError> {
        if self.recent_mfa {
            return Ok(());
        }
        let acr = if step_up.acr_values.is_empty() {
            String::new()
        } else {
            format!(", acr_values=\"{}\"", step_up.acr_values.join(" "))
        };
        Err(ApiError::Unauthorized(
            poem_openapi::payload::Json(crate::problem::Problem::new(
                poem::http::StatusCode::UNAUTHORIZED,
                format!(
                    "{what} needs a recent second factor: a token whose amr holds mfa and whose auth_time is at most {} seconds old",
                    step_up.max_age_secs
                ),
            )
            .with_code("step_up_required")),
            format!(
                "Bearer error=\"insufficient_user_authentication\", error_description=\"A recent second factor is required\", max_age={}{acr}",
                step_up.max_age_secs
            ),
        ))
    }

    /// Who asks for a run: this caller, within the request `request_id` when there is one.
    pub fn origin<'a>(&'a self, request_id: Option<&'a str>) -> eam_store::runs::Origin<'a> {
        eam_store::runs::Origin {
            requested_by: Some(&self.subject),
            request_id,
        }
    }

    /// 403 unless a role allows the action.
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        permissions::require(&self.roles, action)
    }

    /// 403 unless the tenant has the module switched on.
    pub fn require_module(&self, module: &str) -> Result<(), ApiError> {
        if self.modules.iter().any(|m| m == module) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {module} module is not enabled for this tenant"
            )))
        }
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

    /// 404 ("`what` `id` not found", the answer for an id that does not exist) unless the
    /// caller may read data of `client` (`None`: of no client).
    pub fn require_client(
        &self,
        client: Option<Uuid>,
        what: &str,
        id: Uuid,
    ) -> Result<(), ApiError> {
        match self.client_scope()? {
            Some(own) if client != Some(own) => {
                Err(ApiError::not_found(format!("{what} {id} not found")))
            }
            _ => Ok(()),
        }
    }

    /// The client PostgreSQL confines this caller to: set for a caller whose only role is
    /// `client`, whatever the query asks.
    fn restricted_client(&self) -> Option<ClientId> {
        let client_only = !self.roles.is_empty() && self.roles.iter().all(|r| *r == Role::Client);
        // A client user without a client sees nothing: the nil id matches no row.
        client_only.then(|| ClientId(self.client_id.unwrap_or(Uuid::nil())))
    }

    /// A transaction scoped to the caller's tenant (and, for a client user, client).
    pub async fn tx(&self, state: &ApiState) -> Result<TenantTx, ApiError> {
        Ok(state
            .store
            .scoped_tx(self.tenant, self.restricted_client())
            .await?)
    }
}

impl ApiState {
    /// The first line of every operation: who calls (see [`ApiState::authenticate`]), and
    /// whether their roles allow `action` and their tenant has its module switched on.
    pub async fn caller(&self, token: &BearerToken, action: Action) -> Result<Caller, ApiError> {
        let caller = self.authenticate(token).await?;
        caller.require(action)?;
        if let Some(module) = action.module() {
            caller.require_module(module)?;
        }
        Ok(caller)
    }

    /// [`ApiState::caller`], then a transaction scoped to the caller's tenant (and, for a
    /// client user, client): the preamble of an operation on tenant data.
    pub async fn begin(
        &self,
        token: &BearerToken,
        action: Action,
    ) -> Result<(Caller, TenantTx), ApiError> {
        let caller = self.caller(token, action).await?;
        let tx = caller.tx(self).await?;
        Ok((caller, tx))
    }

    /// Verifies the bearer token, applies the tenant's say on the user (roles, client,
    /// disabled) and the rate limits. A refusal is a 401 that says why (never echoing the
    /// token), or a 429.
    pub async fn authenticate(&self, token: &BearerToken) -> Result<Caller, ApiError> {
        let principal = match self.verifier.verify(&token.0.token).await {
            Ok(p) => p,
            Err(eam_auth::AuthError::JwksUnavailable(reason)) => {
                tracing::warn!(%reason, "identity provider keys unavailable");
                return Err(ApiError::unavailable(
                    "the identity provider's keys are unavailable",
                ));
            }
            Err(other) => {
                tracing::info!(reason = %other, "token refused");
                if let Some(address) = crate::request::current().and_then(|c| c.source_addr)
                    && let Err(limited) = self.security.admit_refused(&address)
                {
                    self.metrics.count_rate_limited(limited.scope);
                    return Err(ApiError::too_many_requests(limited));
                }
                let claimed = security::unverified_tenant(&token.0.token, &self.tenant_claim);
                if let Some(tenant) = claimed {
                    self.record_refusal(TenantId(tenant), &other.to_string())
                        .await;
                }
                return Err(ApiError::unauthorized(format!("token refused: {other}")));
            }
        };
        let tenant = TenantId(principal.tenant_id);
        let view = self.tenant_view(tenant, &principal.subject).await?;
        let Some(view) = view else {
            return Err(ApiError::unauthorized("token refused: unknown tenant"));
        };
        let token_roles: Vec<Role> = principal
            .roles
            .iter()
            .filter_map(|r| Role::parse(r))
            .collect();
        let (roles, client_id) = match &view.user {
            Some(user) if user.disabled => {
                self.record_refusal(tenant, "the user is disabled").await;
                return Err(ApiError::unauthorized(
                    "token refused: the user is disabled",
                ));
            }
            // The tenant's roles replace the token's; platform administration is the
            // identity provider's alone to grant.
            Some(user) => {
                let mut roles: Vec<Role> = user
                    .roles
                    .iter()
                    .filter_map(|r| Role::parse(r))
                    .filter(|r| *r != Role::PlatformAdmin)
                    .collect();
                if token_roles.contains(&Role::PlatformAdmin) {
                    roles.push(Role::PlatformAdmin);
                }
                (roles, user.client_id)
            }
            None => (token_roles, principal.client_id),
        };
        match self.security.admit(tenant, &principal.subject) {
            Ok(allowance) => crate::request::note_allowance(allowance),
            Err(limited) => {
                self.metrics.count_rate_limited(limited.scope);
                return Err(ApiError::too_many_requests(limited));
            }
        }
        let now = chrono::Utc::now().timestamp();
        let recent_mfa =
            principal.has_recent_mfa(&self.step_up.acr_values, self.step_up.max_age_secs, now);
        Ok(Caller {
            subject: principal.subject,
            tenant,
            roles,
            client_id,
            modules: view.modules,
            recent_mfa,
        })
    }

    /// What the tenant says about a subject: its registered user (if any) and the tenant's
    /// modules; `None` when the tenant does not exist. Cached for a few seconds.
    async fn tenant_view(
        &self,
        tenant: TenantId,
        subject: &str,
    ) -> Result<Option<security::TenantView>, ApiError> {
        if let Some(view) = self.security.cached_view(tenant, subject) {
            return Ok(Some(view));
        }
        let mut tx = self.store.tenant_tx(tenant).await?;
        let modules = match eam_store::tenants::get(&mut tx).await {
            Ok(t) => t.modules,
            Err(eam_store::StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let user = eam_store::users::by_subject(&mut tx, subject).await?;
        drop(tx);
        let view = security::TenantView { user, modules };
        self.security.cache_view(tenant, subject, view.clone());
        Ok(Some(view))
    }

    /// Writes a refused token into its tenant's audit log, if the tenant exists and has not
    /// had too many such entries lately. Best effort: a failure here is logged, never raised.
    async fn record_refusal(&self, tenant: TenantId, reason: &str) {
        if !self.security.may_record_refusal(tenant) {
            return;
        }
        let recorded = async {
            if !self.store.tenant_exists(tenant).await? {
                return Ok(());
            }
            let context = crate::request::current();
            let mut tx = self.store.tenant_tx(tenant).await?;
            eam_store::audit::record(
                &mut tx,
                &eam_store::audit::AuditEntry {
                    actor: "unauthenticated".into(),
                    action: "token.refused".into(),
                    target: None,
                    request_id: context.as_ref().map(|c| c.request_id.clone()),
                    source_addr: context.and_then(|c| c.source_addr),
                    details: serde_json::json!({ "reason": reason }),
                },
            )
            .await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "could not audit a refused token");
        }
    }
}
