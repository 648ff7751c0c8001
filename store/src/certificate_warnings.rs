//! `certificate.expiring`: the workers' check of every connection's client certificate, and
//! the record that makes its event go out once per certificate and status (migration 0023).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Store, TenantId};

/// A connection's client certificate reference, as the certificate check sees it across
/// tenants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRef {
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    pub connection_name: String,
    pub custodian: String,
    pub client_cert_ref: String,
}

impl Store {
    /// Every connection that presents a client certificate, of every tenant (the
    /// `client_certificate_refs` function: references, never secrets).
    pub async fn client_certificate_refs(&self) -> Result<Vec<CertificateRef>> {
        Ok(sqlx::query_as!(
            CertificateRef,
            r#"SELECT tenant_id AS "tenant_id!", connection_id AS "connection_id!",
                connection_name AS "connection_name!", custodian AS "custodian!",
                client_cert_ref AS "client_cert_ref!"
             FROM client_certificate_refs()"#
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Emits `certificate.expiring` for a connection's certificate in `status` (`expiring` or
/// `expired`), once per certificate and status; true when it was emitted now.
pub async fn warn_certificate(
    store: &Store,
    c: &CertificateRef,
    not_after: DateTime<Utc>,
    status: &str,
    days_left: i64,
) -> Result<bool> {
    let mut tx = store.tenant_tx(TenantId(c.tenant_id)).await?;
    let new = sqlx::query_scalar!(
        "INSERT INTO certificate_warnings (tenant_id, connection_id, not_after, status)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING connection_id",
        c.tenant_id,
        c.connection_id,
        not_after,
        status
    )
    .fetch_optional(tx.conn())
    .await?;
    if new.is_none() {
        return Ok(false);
    }
    sqlx::query!(
        "SELECT emit_event($1, 'certificate.expiring', 'connection:' || $2::uuid,
            jsonb_build_object('connection_id', $2::uuid, 'connection_name', $3::text,
                'custodian', $4::text, 'client_cert_ref', $5::text, 'not_after', $6::timestamptz,
                'status', $7::text, 'days_left', $8::bigint))",
        c.tenant_id,
        c.connection_id,
        c.connection_name,
        c.custodian,
        c.client_cert_ref,
        not_after,
        status,
        days_left
    )
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(true)
}
