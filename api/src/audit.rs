//! What the API records in the audit log for a sensitive action: who (the token's subject),
//! from where (the client address), under which request id (`X-Request-Id`, when sent).

use eam_store::TenantTx;
use eam_store::audit::{self, AuditEntry};
use serde_json::Value;

use crate::caller::Caller;
use crate::problem::ApiError;

/// The approval an execution carries (see `crate::approvals`): its audit entries name it, its
/// requester and, as the actor, its approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: uuid::Uuid,
    pub requested_by: String,
}

/// The request facts every audit entry of one API call shares.
#[derive(Debug, Clone)]
pub struct AuditContext {
    pub actor: String,
    pub request_id: Option<String>,
    pub source_addr: Option<String>,
    /// Set while an approved request is executed: every entry then names the approval, its
    /// requester and (as the actor) its approver.
    pub approval: Option<Grant>,
}

impl AuditContext {
    pub fn new(caller: &Caller, req: &poem::Request) -> Self {
        // The request's context: its id (the client's or a new one) and the client's address
        // (through trusted proxies); the request itself outside one (tests of one route).
        let context = crate::request::current();
        let request_id = context.as_ref().map(|c| c.request_id.clone()).or_else(|| {
            req.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(128).collect())
        });
        let source_addr = context.and_then(|c| c.source_addr).or_else(|| {
            req.remote_addr()
                .as_socket_addr()
                .map(|a| a.ip().to_string())
        });
        AuditContext {
            actor: caller.subject.clone(),
            request_id,
            source_addr,
            approval: None,
        }
    }

    /// The context of executing an approved request: the approver is the actor.
    pub fn approved(self, grant: Grant) -> Self {
        AuditContext {
            approval: Some(grant),
            ..self
        }
    }

    /// Records `action` on `target` in the caller's transaction (it commits with the action).
    pub async fn record(
        &self,
        tx: &mut TenantTx,
        action: &str,
        target: String,
        mut details: Value,
    ) -> Result<(), ApiError> {
        if let (Some(grant), Some(map)) = (&self.approval, details.as_object_mut()) {
            map.insert(
                "approval".to_owned(),
                serde_json::json!({ "id": grant.id, "requested_by": grant.requested_by,
                                    "approved_by": self.actor }),
            );
        }
        audit::record(
            tx,
            &AuditEntry {
                actor: self.actor.clone(),
                action: action.to_owned(),
                target: Some(target),
                request_id: self.request_id.clone(),
                source_addr: self.source_addr.clone(),
                details,
            },
        )
        .await?;
        Ok(())
    }
}
