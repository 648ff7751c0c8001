//! The custodian registry: the banks the platform can sync, where their APIs live and which
//! CA signs their servers. Platform data (no tenant): platform admins maintain it, tenants'
//! connections pick a custodian from it.

use chrono::{DateTime, Utc};

use crate::{Result, Store, StoreError};

/// One custodian as the registry describes it.
#[derive(Debug, Clone)]
pub struct Custodian {
    pub code: String,
    pub name: String,
    /// The protocol its connections speak (`bank_a`, `bank_b`, `bank_c`).
    pub protocol: String,
    /// Where its API lives; None until a platform admin sets it (its syncs fail until then).
    pub base_url: Option<String>,
    /// A platform secret reference to the CA of its server certificate.
    pub ca_cert_ref: Option<String>,
    /// Whether a connection may give its own URL (whose host must be in `allowed_hosts`).
    pub tenant_urls: bool,
    pub allowed_hosts: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

/// The custodian query with a tail appended at compile time.
macro_rules! select_custodian {
    ($tail:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Custodian,
            "SELECT code, name, protocol, base_url, ca_cert_ref, tenant_urls, allowed_hosts,
                updated_at FROM custodians "
                + $tail
            $(, $arg)*
        )
    };
}

/// Every custodian, by code.
pub async fn list(store: &Store) -> Result<Vec<Custodian>> {
    Ok(select_custodian!("ORDER BY code")
        .fetch_all(store.pool())
        .await?)
}

/// One custodian.
pub async fn get(store: &Store, code: &str) -> Result<Custodian> {
    select_custodian!("WHERE code = $1", code)
        .fetch_optional(store.pool())
        .await?
        .ok_or(StoreError::NotFound)
}

/// Registers a custodian or replaces its description; returns it as before (None if new) and
/// after. A protocol the platform does not speak is a data error.
pub async fn put(store: &Store, c: &Custodian) -> Result<(Option<Custodian>, Custodian)> {
    let before = match get(store, &c.code).await {
        Ok(found) => Some(found),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e),
    };
    sqlx::query!(
        "INSERT INTO custodians (code, name, protocol, base_url, ca_cert_ref, tenant_urls,
            allowed_hosts, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now())
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, protocol = EXCLUDED.protocol,
            base_url = EXCLUDED.base_url, ca_cert_ref = EXCLUDED.ca_cert_ref,
            tenant_urls = EXCLUDED.tenant_urls, allowed_hosts = EXCLUDED.allowed_hosts,
            updated_at = now()",
        &c.code,
        &c.name,
        &c.protocol,
        c.base_url.as_deref(),
        c.ca_cert_ref.as_deref(),
        c.tenant_urls,
        &c.allowed_hosts
    )
    .execute(store.pool())
    .await?;
    Ok((before, get(store, &c.code).await?))
}
