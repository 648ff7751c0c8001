//! Four-eyes approvals: the gate every sensitive operation passes after checking its request
//! and before changing anything.
//!
//! When the tenant's policy names the action, the gate stores the request (its parameters as
//! sent, the requester, an expiry) and the operation answers 202 with the approval's id,
//! having changed nothing else. `POST /approvals/{id}/approve` by a different user who may
//! do the action (with a recent second factor) runs the same operation with the stored
//! parameters in the transaction that marks the request executed: it is done exactly once,
//! and every audit entry it writes names the approval, its requester and its approver.

use chrono::{DateTime, Utc};
use eam_store::TenantTx;
use eam_store::approvals::{self, NewApproval};
use poem_openapi::Object;
use serde_json::Value;
use uuid::Uuid;

use crate::audit::AuditContext;
pub use crate::audit::Grant;
use crate::caller::Caller;
use crate::permissions::Action;
use crate::problem::ApiError;
use crate::state::ApiState;

/// An action that can need a second pair of eyes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitive {
    /// Changing a connection's credential or certificate references.
    ConnectionCredentials,
    BulkRetry,
    Replay,
    /// Granting or revoking a role.
    Roles,
    ClientDeletion,
    /// Registering, changing, deleting a webhook endpoint or rotating its secret.
    WebhookChange,
    /// Taking an action off the tenant's approval policy (adding one needs no approval).
    Policy,
}

impl Sensitive {
    /// The actions a tenant's policy chooses among (its default: all of them). Loosening the
    /// policy itself always needs approval while it names any.
    pub const CHOICES: [Sensitive; 6] = [
        Sensitive::ConnectionCredentials,
        Sensitive::BulkRetry,
        Sensitive::Replay,
        Sensitive::Roles,
        Sensitive::ClientDeletion,
        Sensitive::WebhookChange,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Sensitive::ConnectionCredentials => "connection.credentials",
            Sensitive::BulkRetry => "jobs.bulk_retry",
            Sensitive::Replay => "jobs.replay",
            Sensitive::Roles => "users.roles",
            Sensitive::ClientDeletion => "clients.delete",
            Sensitive::WebhookChange => "webhooks.change",
            Sensitive::Policy => "approvals.policy",
        }
    }

    pub fn parse(code: &str) -> Option<Sensitive> {
        Sensitive::CHOICES
            .into_iter()
            .chain([Sensitive::Policy])
            .find(|s| s.code() == code)
    }

    /// The right whoever approves (or rejects) must have: the action's own.
    pub fn action(self) -> Action {
        match self {
            Sensitive::ConnectionCredentials => Action::ManageConnections,
            Sensitive::BulkRetry => Action::RetryJobs,
            Sensitive::Replay => Action::ReplayRuns,
            Sensitive::Roles => Action::ManageUsers,
            Sensitive::ClientDeletion => Action::ManageClients,
            Sensitive::WebhookChange => Action::ManageWebhooks,
            Sensitive::Policy => Action::ManageApprovalPolicy,
        }
    }
}

/// The answer to a request that now waits for a second user.
#[derive(Debug, Clone, Object)]
pub struct PendingApproval {
    /// Approve or reject it at `/api/v1/approvals/{approval_id}`.
    pub approval_id: Uuid,
    /// What was asked (`jobs.bulk_retry`, ...).
    pub action: String,
    /// Always `pending`.
    pub status: String,
    /// What approving it will do.
    pub summary: String,
    pub requested_by: String,
    /// After this, it can no longer be approved.
    pub expires_at: DateTime<Utc>,
}

impl PendingApproval {
    pub fn location(&self) -> String {
        format!("/api/v1/approvals/{}", self.approval_id)
    }
}

/// An operation's outcome: done, or waiting for approval.
pub enum Gated<T> {
    Done(T),
    Pending(PendingApproval),
}

/// A request for a sensitive action, as the gate stores it.
pub struct Request {
    pub what: Sensitive,
    /// What it acts on: `job:<id>`, `user:<id>`, ...
    pub target: String,
    /// One line for the approver.
    pub summary: String,
    /// Everything needed to do it later (path parameters and body, as sent).
    pub params: Value,
}

/// A sensitive operation's frame, one for all of them: the caller allowed `action`, its
/// recent second factor when `step_up` says what needs it, the audit context, `run` in the
/// caller's transaction (where [`gate`] may turn it into a request for approval), the commit.
/// Answers the caller too, for what follows the commit (pushing runs, forgetting users).
pub async fn sensitive<T>(
    state: &ApiState,
    req: &poem::Request,
    token: &crate::caller::BearerToken,
    action: Action,
    step_up: Option<&str>,
    run: impl AsyncFnOnce(&Caller, &AuditContext, &mut TenantTx) -> Result<Gated<T>, ApiError>,
) -> Result<(Caller, Gated<T>), ApiError> {
    let caller = state.caller(token, action).await?;
    if let Some(what) = step_up {
        caller.require_step_up(&state.step_up, what)?;
    }
    let audit = AuditContext::new(&caller, req);
    let mut tx = caller.tx(state).await?;
    let out = run(&caller, &audit, &mut tx).await?;
    tx.commit().await?;
    Ok((caller, out))
}

/// The actions the tenant sends for approval (every choice when it never set a policy).
pub async fn policy(tx: &mut TenantTx) -> Result<Vec<Sensitive>, ApiError> {
    Ok(match approvals::policy(tx).await? {
        None => Sensitive::CHOICES.to_vec(),
        Some(codes) => codes.iter().filter_map(|c| Sensitive::parse(c)).collect(),
    })
}

/// Lets the operation go on (`None`) when it is being executed by an approval or the
/// tenant's policy does not name it (`always`: whatever the policy); otherwise stores the
/// request, audits it, and answers what the caller gets back.
pub async fn gate(
    state: &ApiState,
    caller: &Caller,
    tx: &mut TenantTx,
    audit: &AuditContext,
    request: Request,
    always: bool,
) -> Result<Option<PendingApproval>, ApiError> {
    if audit.approval.is_some() || !(always || policy(tx).await?.contains(&request.what)) {
        return Ok(None);
    }
    let approval = approvals::request(
        tx,
        &NewApproval {
            action: request.what.code(),
            target: &request.target,
            summary: &request.summary,
            params: &request.params,
            requested_by: &caller.subject,
            request_id: audit.request_id.as_deref(),
            expires_at: Utc::now() + state.approval_expiry,
        },
    )
    .await?;
    audit
        .record(
            tx,
            "approval.requested",
            format!("approval:{}", approval.id),
            serde_json::json!({
                "action": approval.action, "target": approval.target,
                "summary": approval.summary, "params": approval.params,
                "expires_at": approval.expires_at,
            }),
        )
        .await?;
    tracing::info!(approval_id = %approval.id, action = %approval.action, requester = %caller.subject, "approval requested");
    Ok(Some(PendingApproval {
        approval_id: approval.id,
        action: approval.action,
        status: approval.status,
        summary: approval.summary,
        requested_by: approval.requested_by,
        expires_at: approval.expires_at,
    }))
}

/// The answer of an operation that may wait for approval.
#[derive(poem_openapi::ApiResponse)]
pub enum Approvable<T: poem_openapi::types::ToJSON> {
    /// Done.
    #[oai(status = 200)]
    Done(poem_openapi::payload::Json<T>),
    /// Waits for another user's approval (`Location`: the approval); nothing changed yet.
    #[oai(status = 202)]
    Pending(
        poem_openapi::payload::Json<PendingApproval>,
        #[oai(header = "Location")] String,
    ),
}

impl<T: poem_openapi::types::ToJSON> Approvable<T> {
    pub fn pending(p: PendingApproval) -> Self {
        let location = p.location();
        Approvable::Pending(poem_openapi::payload::Json(p), location)
    }
}

impl<T: poem_openapi::types::ToJSON> From<Gated<T>> for Approvable<T> {
    fn from(gated: Gated<T>) -> Self {
        match gated {
            Gated::Done(t) => Approvable::Done(poem_openapi::payload::Json(t)),
            Gated::Pending(p) => Approvable::pending(p),
        }
    }
}
