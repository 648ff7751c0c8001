//! Tenants (EAM firms) and their feature modules.

use crate::{Result, Store, TenantId};

/// Creates a tenant with the given modules switched on.
pub async fn create_tenant(store: &Store, name: &str, modules: &[&str]) -> Result<TenantId> {
    let id = TenantId::new();
    let mut tx = store.tenant_tx(id).await?;
    sqlx::query!("INSERT INTO tenants (id, name) VALUES ($1, $2)", id.0, name)
        .execute(tx.conn())
        .await?;
    let modules: Vec<String> = modules.iter().map(|m| (*m).to_owned()).collect();
    sqlx::query!(
        "INSERT INTO tenant_modules (tenant_id, module) SELECT $1, m FROM UNNEST($2::text[]) AS m",
        id.0,
        &modules
    )
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// A tenant as the platform sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    pub id: uuid::Uuid,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The modules switched on.
    pub modules: Vec<String>,
}

/// Every tenant, oldest first (platform admins; a narrow database function, since the app
/// otherwise sees one tenant at a time).
pub async fn list_all(store: &Store) -> Result<Vec<TenantRow>> {
    Ok(sqlx::query_as!(
        TenantRow,
        r#"SELECT id AS "id!", name AS "name!", created_at AS "created_at!", modules AS "modules!" FROM platform_tenants()"#,
    )
    .fetch_all(store.pool())
    .await?)
}

/// The tenant of the transaction with its modules.
pub async fn get(tx: &mut crate::TenantTx) -> Result<TenantRow> {
    sqlx::query_as!(
        TenantRow,
        r#"SELECT t.id, t.name, t.created_at,
            coalesce(array_agg(m.module ORDER BY m.module) FILTER (WHERE m.enabled), '{}') AS "modules!"
         FROM tenants t LEFT JOIN tenant_modules m ON m.tenant_id = t.id
         WHERE t.id = $1 GROUP BY t.id"#,
        tx.tenant().0,
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(crate::StoreError::NotFound)
}

/// Switches modules on or off for the transaction's tenant; returns the modules before.
pub async fn set_modules(
    tx: &mut crate::TenantTx,
    changes: &[(String, bool)],
) -> Result<Vec<String>> {
    let before = get(tx).await?.modules;
    let (names, enabled): (Vec<&str>, Vec<bool>) =
        changes.iter().map(|(m, e)| (m.as_str(), *e)).unzip();
    sqlx::query!(
        "INSERT INTO tenant_modules (tenant_id, module, enabled)
         SELECT $1, u.m, u.e FROM UNNEST($2::text[], $3::bool[]) AS u(m, e)
         ON CONFLICT (tenant_id, module) DO UPDATE SET enabled = EXCLUDED.enabled",
        tx.tenant().0,
        &names as &[&str],
        &enabled
    )
    .execute(tx.conn())
    .await?;
    Ok(before)
}
