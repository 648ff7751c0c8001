//! Tenants (EAM firms) and their feature modules.

use crate::{Result, Store, TenantId};

/// Creates a tenant with the given modules switched on.
pub async fn create_tenant(store: &Store, name: &str, modules: &[&str]) -> Result<TenantId> {
    let id = TenantId::new();
    let mut tx = store.tenant_tx(id).await?;
    sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, $2)")
        .bind(id.0)
        .bind(name)
        .execute(tx.conn())
        .await?;
    let modules: Vec<String> = modules.iter().map(|m| (*m).to_owned()).collect();
    sqlx::query(
        "INSERT INTO tenant_modules (tenant_id, module) SELECT $1, m FROM UNNEST($2::text[]) AS m",
    )
    .bind(id.0)
    .bind(&modules)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(id)
}
