//! The custodian registry: the banks the platform syncs, where their APIs live and which CA
//! signs their servers. Platform admins maintain it; every tenant's ops read it to pick a
//! custodian for a connection. A tenant never says where a bank lives (see issue 23 in the
//! README's security notes): the registry does, so a connection cannot send a tenant's
//! credentials, or the platform's, anywhere else.

use chrono::{DateTime, Utc};
use eam_config::egress;
use eam_model::Protocol;
use eam_store::custodians::{self, Custodian as StoredCustodian};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::json;

use crate::audit::AuditContext;
use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::state::ApiState;

pub struct CustodiansApi(pub ApiState);

/// A custodian of the registry.
#[derive(Object)]
struct Custodian {
    code: String,
    name: String,
    /// `bank_a` (REST JSON, OAuth2), `bank_b` (SWIFT FIN files) or `bank_c` (ISO 20022 files).
    protocol: String,
    /// Where its API lives; null until a platform admin sets it.
    base_url: Option<String>,
    /// A platform secret reference to the CA certificate of its server.
    ca_cert_ref: Option<String>,
    /// Whether a connection may give its own URL, on one of `allowed_hosts`.
    tenant_urls: bool,
    /// Hosts a connection's own URL may name: exact names, or `*.example.com`.
    allowed_hosts: Vec<String>,
    updated_at: DateTime<Utc>,
}

impl From<StoredCustodian> for Custodian {
    fn from(c: StoredCustodian) -> Self {
        Custodian {
            code: c.code,
            name: c.name,
            protocol: c.protocol,
            base_url: c.base_url,
            ca_cert_ref: c.ca_cert_ref,
            tenant_urls: c.tenant_urls,
            allowed_hosts: c.allowed_hosts,
            updated_at: c.updated_at,
        }
    }
}

/// A custodian as a platform admin registers it.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct CustodianBody {
    #[oai(validator(min_length = 1, max_length = 200))]
    name: String,
    protocol: String,
    /// The https URL of its API (public addresses only, unless the platform allows private
    /// ones).
    base_url: String,
    /// A reference to the CA certificate of its server (any scheme: a platform secret).
    ca_cert_ref: Option<String>,
    #[oai(default)]
    tenant_urls: bool,
    #[oai(default, validator(max_items = 100))]
    allowed_hosts: Vec<String>,
}

/// A registry code: what connections and metrics name the custodian by.
fn check_code(code: &str) -> Result<(), ApiError> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "code: 1 to 64 characters of a-z, 0-9, '_' and '-'",
        ))
    }
}

/// A host pattern: a DNS name, or `*.` and a DNS name with at least two labels.
fn check_host_pattern(pattern: &str) -> Result<(), ApiError> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if labels_ok && (!pattern.starts_with("*.") || name.contains('.')) {
        Ok(())
    } else {
        Err(ApiError::unprocessable(format!(
            "allowed_hosts: '{pattern}' is not a host name or '*.domain'"
        )))
    }
}

#[OpenApi(tag = "crate::Tag::Admin")]
impl CustodiansApi {
    /// The custodian registry: every bank a connection can pick.
    #[oai(path = "/custodians", method = "get", operation_id = "list_custodians")]
    async fn list(&self, token: BearerToken) -> Result<Json<Vec<Custodian>>, ApiError> {
        self.0.caller(&token, Action::ReadCustodians).await?;
        let rows = custodians::list(&self.0.store).await?;
        Ok(Json(rows.into_iter().map(Custodian::from).collect()))
    }

    /// Registers a custodian or replaces its entry (platform admins). Its connections use the
    /// new address and CA from their next sync; audited in the admin's tenant's log.
    #[oai(
        path = "/custodians/:code",
        method = "put",
        operation_id = "put_custodian"
    )]
    async fn put(
        &self,
        req: &poem::Request,
        token: BearerToken,
        code: Path<String>,
        body: Json<CustodianBody>,
    ) -> Result<Json<Custodian>, ApiError> {
        let caller = self.0.caller(&token, Action::ManageCustodians).await?;
        let body = body.0;
        check_code(&code.0)?;
        if Protocol::parse(&body.protocol).is_none() {
            let known: Vec<&str> = Protocol::ALL.iter().map(|p| p.as_str()).collect();
            return Err(ApiError::unprocessable(format!(
                "protocol: '{}' is not one the platform speaks; expected one of {known:?}",
                body.protocol
            )));
        }
        let base_url = body.base_url.trim_end_matches('/').to_owned();
        self.0
            .egress
            .check_url(&base_url)
            .await
            .map_err(|e| ApiError::unprocessable(format!("base_url: {e}")))?;
        if let Some(r) = &body.ca_cert_ref {
            eam_config::SecretRef::parse(r)
                .map_err(|e| ApiError::unprocessable(format!("ca_cert_ref: {e}")))?;
        }
        let mut allowed_hosts = Vec::with_capacity(body.allowed_hosts.len());
        for host in &body.allowed_hosts {
            check_host_pattern(host)?;
            allowed_hosts.push(host.to_ascii_lowercase());
        }
        if body.tenant_urls && allowed_hosts.is_empty() {
            return Err(ApiError::unprocessable(
                "allowed_hosts: a custodian that allows connections' own URLs needs the hosts they may name",
            ));
        }
        let entry = StoredCustodian {
            code: code.0.clone(),
            name: body.name,
            protocol: body.protocol,
            base_url: Some(base_url),
            ca_cert_ref: body.ca_cert_ref,
            tenant_urls: body.tenant_urls,
            allowed_hosts,
            updated_at: Utc::now(),
        };
        let (before, after) = custodians::put(&self.0.store, &entry).await?;
        let describe = |c: &StoredCustodian| {
            json!({ "name": c.name, "protocol": c.protocol, "base_url": c.base_url,
                "ca_cert_ref": c.ca_cert_ref, "tenant_urls": c.tenant_urls,
                "allowed_hosts": c.allowed_hosts })
        };
        let mut tx = caller.tx(&self.0).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                if before.is_some() {
                    "custodian.changed"
                } else {
                    "custodian.registered"
                },
                format!("custodian:{}", code.0),
                json!({ "before": before.as_ref().map(describe), "after": describe(&after) }),
            )
            .await?;
        tx.commit().await?;
        tracing::info!(custodian = %code.0, actor = %caller.subject, host = ?egress::host_of(after.base_url.as_deref().unwrap_or_default()), "custodian registry entry set");
        Ok(Json(after.into()))
    }
}
