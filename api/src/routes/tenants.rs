//! Tenants and their modules: the platform admins' view of every firm.

use chrono::{DateTime, Utc};
use eam_store::TenantId;
use eam_store::tenants::{self, TenantRow};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditContext;
use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::state::ApiState;

pub struct TenantsApi(pub ApiState);

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

#[derive(ApiResponse)]
enum CreatedTenant {
    #[oai(status = 201)]
    Created(Json<Tenant>),
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

#[OpenApi(tag = "crate::Tag::Admin")]
impl TenantsApi {
    /// Every tenant of the platform (platform admins).
    #[oai(path = "/tenants", method = "get", operation_id = "list_tenants")]
    async fn tenants(&self, token: BearerToken) -> Result<Json<Vec<Tenant>>, ApiError> {
        self.0.caller(&token, Action::ReadTenants).await?;
        let rows = tenants::list_all(&self.0.store).await?;
        Ok(Json(rows.into_iter().map(Tenant::from).collect()))
    }

    /// Creates a tenant with its modules (platform admins).
    #[oai(path = "/tenants", method = "post", operation_id = "create_tenant")]
    async fn create_tenant(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<NewTenant>,
    ) -> Result<CreatedTenant, ApiError> {
        let caller = self.0.caller(&token, Action::ManageTenants).await?;
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
    #[oai(
        path = "/tenants/:id/modules",
        method = "put",
        operation_id = "set_tenant_modules"
    )]
    async fn set_modules(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<ModuleChanges>,
    ) -> Result<Json<Tenant>, ApiError> {
        let caller = self.0.caller(&token, Action::ManageTenants).await?;
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
}
