//! Client certificates of bank connections: when each expires, and which are at risk, so ops
//! replace one before a night's syncs fail on it.
//!
//! The certificate is read through the secret provider from the connection's reference, as
//! the worker will read it (so a rotation in the secrets manager shows here within the
//! provider's cache TTL). Only its expiry is shown; nothing read from a secret is returned.

use chrono::{DateTime, Utc};
use eam_model::CertificateStatus;
use eam_store::ConnectionId;
use eam_store::StoreError;
use eam_store::connections::{self, Connection};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::state::ApiState;

pub struct CertificatesApi(pub ApiState);

/// A connection's client certificate, as far as its expiry goes.
#[derive(Object)]
struct ClientCertificate {
    connection_id: Uuid,
    connection_name: String,
    custodian: String,
    /// Where the certificate is read from (a reference, never the certificate).
    client_cert_ref: Option<String>,
    /// `ok`; `expiring` (within `certificates.warning_days`); `expired`; `unreadable` (the
    /// reference cannot be resolved, or is not a certificate); `none` (the connection presents
    /// no client certificate).
    status: String,
    /// The certificate's notAfter.
    not_after: Option<DateTime<Utc>>,
    /// Whole days until notAfter (negative once expired).
    days_left: Option<i64>,
    /// True when expiring, expired or unreadable: a sync is about to fail, or already does.
    at_risk: bool,
    /// Why the certificate cannot be read.
    detail: Option<String>,
}

/// The tenant's client certificates.
#[derive(Object)]
struct CertificateList {
    /// A certificate expiring within this many days is at risk.
    warning_days: u32,
    /// At-risk certificates first (unreadable ones first among them), then by expiry, soonest
    /// first.
    certificates: Vec<ClientCertificate>,
}

/// Reads a connection's client certificate and judges it against the warning period.
async fn inspect(
    state: &ApiState,
    connection: Connection,
    now: DateTime<Utc>,
) -> ClientCertificate {
    let mut view = ClientCertificate {
        connection_id: connection.id,
        connection_name: connection.name,
        custodian: connection.custodian,
        client_cert_ref: connection.client_cert_ref.clone(),
        status: CertificateStatus::None.as_str().into(),
        not_after: None,
        days_left: None,
        at_risk: false,
        detail: None,
    };
    let Some(reference) = connection.client_cert_ref else {
        return view;
    };
    let read = match state
        .secrets
        .resolve_tenant(connection.tenant_id, &reference)
        .await
    {
        Ok(pem) => eam_model::certificate::not_after(&pem).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let status = match read {
        Ok(not_after) => {
            view.not_after = Some(not_after);
            view.days_left = Some((not_after - now).num_days());
            CertificateStatus::of(not_after, now, state.certificate_warning_days)
        }
        Err(detail) => {
            view.detail = Some(detail);
            CertificateStatus::Unreadable
        }
    };
    view.status = status.as_str().into();
    view.at_risk = status.at_risk();
    view
}

#[OpenApi(tag = "crate::Tag::Connections")]
impl CertificatesApi {
    /// The client certificates of the tenant's connections with their expiry; `at_risk=true`
    /// lists only those expired, unreadable or expiring within `certificates.warning_days`.
    #[oai(
        path = "/certificates",
        method = "get",
        operation_id = "list_certificates"
    )]
    async fn list(
        &self,
        token: BearerToken,
        /// Only certificates at risk.
        at_risk: Query<Option<bool>>,
    ) -> Result<Json<CertificateList>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadConnections).await?;
        let all = {
            let mut tx = caller.tx(&self.0).await?;
            connections::list(&mut tx).await?
        };
        let now = Utc::now();
        let mut certificates = Vec::with_capacity(all.len());
        for connection in all {
            let view = inspect(&self.0, connection, now).await;
            if at_risk.0 != Some(true) || view.at_risk {
                certificates.push(view);
            }
        }
        certificates.sort_by_key(|c| (!c.at_risk, c.not_after.is_some(), c.not_after));
        Ok(Json(CertificateList {
            warning_days: self.0.certificate_warning_days,
            certificates,
        }))
    }

    /// One connection's client certificate and its expiry.
    #[oai(
        path = "/connections/:id/certificate",
        method = "get",
        operation_id = "get_certificate"
    )]
    async fn get(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Json<ClientCertificate>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadConnections).await?;
        let connection = {
            let mut tx = caller.tx(&self.0).await?;
            connections::get(&mut tx, ConnectionId(id.0))
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => {
                        ApiError::not_found(format!("connection {} not found", id.0))
                    }
                    other => other.into(),
                })?
        };
        Ok(Json(inspect(&self.0, connection, Utc::now()).await))
    }
}
