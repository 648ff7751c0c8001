//! Four-eyes approvals: the requests sensitive operations stored (see `crate::approvals`),
//! their approval (which executes the request, exactly once) or rejection by a different
//! user, and the tenant's policy of which actions need one.

use chrono::{DateTime, Utc};
use eam_store::approvals::{self, Approval};
use eam_store::{ConnectionId, RunId, TenantTx};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{Object, OpenApi};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::approvals::{Approvable, Gated, Grant, Request, Sensitive, gate, policy, sensitive};
use crate::audit::AuditContext;
use crate::caller::{BearerToken, Caller};
use crate::permissions::Action;
use crate::problem::{ApiError, not_found};
use crate::routes::{clients, connections, jobs, page_limit, users, webhooks};
use crate::state::ApiState;

pub struct ApprovalsApi(pub ApiState);

/// A request for a sensitive action and what became of it.
#[derive(Object)]
struct ApprovalView {
    id: Uuid,
    /// `connection.credentials`, `jobs.bulk_retry`, `jobs.replay`, `users.roles`,
    /// `clients.delete`, `webhooks.change` or `approvals.policy`.
    action: String,
    /// What it acts on (`job:<id>`, `user:<id>`, `webhook:<id>`, ...).
    target: String,
    /// What approving it does.
    summary: String,
    /// The request as made (path parameters and body).
    params: Value,
    /// `pending`, `executed`, `rejected` or `expired`.
    status: String,
    requested_by: String,
    requested_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// Who approved (and so executed) or rejected it.
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    decision_note: Option<String>,
    /// What the execution answered (a new webhook secret only in the approver's answer).
    result: Option<Value>,
}

impl From<Approval> for ApprovalView {
    fn from(a: Approval) -> Self {
        let expired = a.status == "pending" && a.expires_at <= Utc::now();
        ApprovalView {
            id: a.id,
            action: a.action,
            target: a.target,
            summary: a.summary,
            params: a.params,
            status: if expired { "expired".into() } else { a.status },
            requested_by: a.requested_by,
            requested_at: a.requested_at,
            expires_at: a.expires_at,
            decided_by: a.decided_by,
            decided_at: a.decided_at,
            decision_note: a.decision_note,
            result: a.result,
        }
    }
}

#[derive(Object)]
struct ApprovalPage {
    approvals: Vec<ApprovalView>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct Decision {
    /// Why (required to reject).
    #[oai(validator(max_length = 4000))]
    note: Option<String>,
}

/// The tenant's approval policy.
#[derive(Object)]
struct PolicyView {
    /// The actions that wait for a second user's approval.
    actions: Vec<String>,
    /// Every action the policy can name.
    choices: Vec<String>,
    /// True while the tenant never set one (every action needs approval).
    default: bool,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct PolicyBody {
    /// The actions that need approval, among `choices`. Adding one takes effect at once;
    /// taking one off needs another tenant admin's approval.
    actions: Vec<String>,
}

/// What executing an approved request did: the answer stored, the one its approver gets
/// (with a new secret in it), and what to do once it committed.
struct Executed {
    stored: Value,
    shown: Value,
    push: Vec<(RunId, ConnectionId)>,
    forget_tenant: bool,
}

impl Executed {
    fn answer(value: Value) -> Self {
        Executed {
            stored: value.clone(),
            shown: value,
            push: Vec::new(),
            forget_tenant: false,
        }
    }

    /// An answer with a secret in it, which is not kept.
    fn secret(shown: Value) -> Self {
        let mut stored = shown.clone();
        if let Some(map) = stored.as_object_mut() {
            map.remove("secret");
        }
        Executed {
            stored,
            ..Executed::answer(shown)
        }
    }
}

fn param<T: ParseFromJSON>(params: &Value, key: &str) -> Result<T, ApiError> {
    T::parse_from_json(params.get(key).cloned()).map_err(|e| {
        ApiError::internal(format!(
            "a stored approval's {key} does not read: {}",
            e.message()
        ))
    })
}

fn done<T>(gated: Gated<T>) -> Result<T, ApiError> {
    match gated {
        Gated::Done(t) => Ok(t),
        Gated::Pending(_) => Err(ApiError::internal("an approved request asked for approval")),
    }
}

/// Executes a stored request as its approver (the gate lets `audit`'s approval through).
async fn execute(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    what: Sensitive,
    params: &Value,
) -> Result<Executed, ApiError> {
    Ok(match what {
        Sensitive::ConnectionCredentials => {
            let id = ConnectionId(param(params, "id")?);
            let body = param(params, "body")?;
            let c = done(connections::change(state, caller, audit, tx, id, body).await?)?;
            Executed::answer(c.to_json().unwrap_or_default())
        }
        Sensitive::BulkRetry => {
            let body = param(params, "body")?;
            let q = done(jobs::bulk_retry(state, caller, audit, tx, body).await?)?;
            Executed {
                push: q.runs,
                ..Executed::answer(q.answer.to_json().unwrap_or_default())
            }
        }
        Sensitive::Replay => {
            let id = RunId(param(params, "id")?);
            let q = done(jobs::replay(state, caller, audit, tx, id).await?)?;
            Executed {
                push: q.runs,
                ..Executed::answer(q.answer.to_json().unwrap_or_default())
            }
        }
        Sensitive::Roles => {
            let user = if params.get("id").is_some() {
                let id = param(params, "id")?;
                let body = param(params, "body")?;
                done(users::change(state, caller, audit, tx, id, body).await?)?
            } else {
                let body = param(params, "body")?;
                done(users::create(state, caller, audit, tx, body).await?)?
            };
            Executed {
                forget_tenant: true,
                ..Executed::answer(user.to_json().unwrap_or_default())
            }
        }
        Sensitive::ClientDeletion => {
            let id = param(params, "id")?;
            done(clients::delete(state, caller, audit, tx, id).await?)?;
            Executed::answer(json!({ "deleted": id }))
        }
        Sensitive::WebhookChange => {
            let op: String = param(params, "op")?;
            match op.as_str() {
                "create" => {
                    let body = param(params, "body")?;
                    let e = done(webhooks::create(state, caller, audit, tx, body).await?)?;
                    Executed::secret(e.to_json().unwrap_or_default())
                }
                "change" => {
                    let (id, body) = (param(params, "id")?, param(params, "body")?);
                    let e = done(webhooks::change(state, caller, audit, tx, id, body).await?)?;
                    Executed::answer(e.to_json().unwrap_or_default())
                }
                "delete" => {
                    let id = param(params, "id")?;
                    done(webhooks::delete(state, caller, audit, tx, id).await?)?;
                    Executed::answer(json!({ "deleted": id }))
                }
                "rotate" => {
                    let (id, body) = (param(params, "id")?, param(params, "body")?);
                    let e = done(webhooks::rotate(state, caller, audit, tx, id, body).await?)?;
                    Executed::secret(e.to_json().unwrap_or_default())
                }
                other => {
                    return Err(ApiError::internal(format!(
                        "a stored webhook approval has the operation '{other}'"
                    )));
                }
            }
        }
        Sensitive::Policy => {
            let body = param(params, "body")?;
            let p = done(set_policy(state, caller, audit, tx, body).await?)?;
            Executed::answer(p.to_json().unwrap_or_default())
        }
    })
}

/// The request with this id, locked, pending, and decidable by `caller`: not its requester,
/// and allowed its action (403 otherwise; 409 when it is no longer pending, committing its
/// expiry when it just expired).
async fn decidable(
    state: &ApiState,
    caller: &Caller,
    id: Uuid,
) -> Result<(TenantTx, Approval, Sensitive), ApiError> {
    let mut tx = caller.tx(state).await?;
    let approval = approvals::lock(&mut tx, id)
        .await
        .map_err(not_found("approval", id))?;
    if approval.status == "expired" && approval.decided_by.is_none() {
        let at = approval.expires_at;
        tx.commit().await?;
        return Err(ApiError::conflict(format!(
            "the request expired at {at} and can no longer be decided"
        )));
    }
    if approval.status != "pending" {
        return Err(ApiError::conflict(format!(
            "the request is already {}",
            approval.status
        )));
    }
    let what = Sensitive::parse(&approval.action).ok_or_else(|| {
        ApiError::internal(format!("unknown approval action '{}'", approval.action))
    })?;
    if approval.requested_by == caller.subject {
        return Err(ApiError::Forbidden(poem_openapi::payload::Json(
            crate::problem::Problem::new(
                poem::http::StatusCode::FORBIDDEN,
                "four eyes: a request is approved or rejected by another user than the one who made it",
            )
            .with_code("four_eyes_same_user"),
        )));
    }
    caller.require(what.action())?;
    if let Some(module) = what.action().module() {
        caller.require_module(module)?;
    }
    Ok((tx, approval, what))
}

/// `PUT /approvals/policy` in the caller's transaction (the approval's, when approved).
async fn set_policy(
    state: &ApiState,
    caller: &Caller,
    audit: &AuditContext,
    tx: &mut TenantTx,
    body: PolicyBody,
) -> Result<Gated<PolicyView>, ApiError> {
    let mut wanted = Vec::new();
    for code in &body.actions {
        match Sensitive::parse(code) {
            Some(s) if Sensitive::CHOICES.contains(&s) => {
                if !wanted.contains(&s) {
                    wanted.push(s);
                }
            }
            _ => {
                return Err(ApiError::unprocessable(format!(
                    "actions: '{code}' is not one of {}",
                    codes(&Sensitive::CHOICES).join(", ")
                )));
            }
        }
    }
    wanted.sort_by_key(|s| Sensitive::CHOICES.iter().position(|c| c == s));
    let current = policy(tx).await?;
    let dropped: Vec<Sensitive> = current
        .iter()
        .copied()
        .filter(|s| !wanted.contains(s))
        .collect();
    if !dropped.is_empty() {
        let request = Request {
            what: Sensitive::Policy,
            target: "approvals:policy".into(),
            summary: format!("stop asking for approval of {}", codes(&dropped).join(", ")),
            params: json!({ "body": body.to_json() }),
        };
        if let Some(p) = gate(state, caller, tx, audit, request, true).await? {
            return Ok(Gated::Pending(p));
        }
    }
    let after = codes(&wanted);
    approvals::set_policy(tx, &after, &caller.subject).await?;
    audit
        .record(
            tx,
            "approvals.policy_changed",
            "approvals:policy".into(),
            json!({ "before": codes(&current), "after": after }),
        )
        .await?;
    Ok(Gated::Done(PolicyView {
        actions: after,
        choices: codes(&Sensitive::CHOICES),
        default: false,
    }))
}

fn codes(actions: &[Sensitive]) -> Vec<String> {
    actions.iter().map(|s| s.code().to_owned()).collect()
}

#[OpenApi(tag = "crate::Tag::Tasks")]
impl ApprovalsApi {
    /// The tenant's four-eyes requests, newest first. `status=pending` lists those that can
    /// still be decided.
    #[oai(path = "/approvals", method = "get", operation_id = "list_approvals")]
    async fn list(
        &self,
        token: BearerToken,
        /// `pending`, `executed`, `rejected` or `expired`.
        status: Query<Option<String>>,
        limit: Query<Option<u32>>,
    ) -> Result<Json<ApprovalPage>, ApiError> {
        let limit = page_limit(limit.0, 100)?;
        if let Some(s) = status.0.as_deref()
            && !matches!(s, "pending" | "executed" | "rejected" | "expired")
        {
            return Err(ApiError::bad_request(format!(
                "status: '{s}' is not pending, executed, rejected or expired"
            )));
        }
        let (_, mut tx) = self.0.begin(&token, Action::ReadApprovals).await?;
        let approvals = approvals::list(&mut tx, status.0.as_deref(), limit)
            .await?
            .into_iter()
            .map(ApprovalView::from)
            .collect();
        Ok(Json(ApprovalPage { approvals }))
    }

    /// One request.
    #[oai(path = "/approvals/:id", method = "get", operation_id = "get_approval")]
    async fn get(
        &self,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Json<ApprovalView>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadApprovals).await?;
        let a = approvals::get(&mut tx, id.0)
            .await
            .map_err(not_found("approval", id.0))?;
        Ok(Json(a.into()))
    }

    /// Approves a pending request and executes it, exactly once, as the approver: a user
    /// other than its requester, allowed its action, with a recent second factor. The
    /// execution's audit entries name both. 409 once it is decided or expired; when the
    /// execution fails (the client got accounts meanwhile, say) nothing changes and the
    /// request stays pending.
    #[oai(
        path = "/approvals/:id/approve",
        method = "post",
        operation_id = "approve_request"
    )]
    async fn approve(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<Decision>,
    ) -> Result<Json<ApprovalView>, ApiError> {
        let caller = self.0.caller(&token, Action::ReadApprovals).await?;
        caller.require_step_up(&self.0.step_up, "approving a sensitive action")?;
        let (mut tx, approval, what) = decidable(&self.0, &caller, id.0).await?;
        let audit = AuditContext::new(&caller, req).approved(Grant {
            id: approval.id,
            requested_by: approval.requested_by.clone(),
        });
        let executed = execute(&self.0, &caller, &audit, &mut tx, what, &approval.params).await?;
        let decided = approvals::decide(
            &mut tx,
            approval.id,
            "executed",
            &caller.subject,
            body.0.note.as_deref(),
            Some(&executed.stored),
        )
        .await?;
        audit
            .record(
                &mut tx,
                "approval.approved",
                format!("approval:{}", approval.id),
                json!({ "action": approval.action, "target": approval.target }),
            )
            .await?;
        tx.commit().await?;
        tracing::info!(approval_id = %approval.id, action = %approval.action, approver = %caller.subject, "approved and executed");
        if executed.forget_tenant {
            self.0.security.forget_tenant(caller.tenant);
        }
        for (run, connection) in &executed.push {
            connections::enqueue(&self.0, &caller, *run, *connection).await?;
        }
        let mut view = ApprovalView::from(decided);
        view.result = Some(executed.shown);
        Ok(Json(view))
    }

    /// Rejects a pending request (a note saying why is required): nothing is done. By a user
    /// other than its requester, allowed its action.
    #[oai(
        path = "/approvals/:id/reject",
        method = "post",
        operation_id = "reject_request"
    )]
    async fn reject(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<Decision>,
    ) -> Result<Json<ApprovalView>, ApiError> {
        let Some(note) = body.0.note.filter(|n| !n.trim().is_empty()) else {
            return Err(ApiError::unprocessable(
                "note: say why the request is rejected",
            ));
        };
        let caller = self.0.caller(&token, Action::ReadApprovals).await?;
        let (mut tx, approval, _) = decidable(&self.0, &caller, id.0).await?;
        let decided = approvals::decide(
            &mut tx,
            approval.id,
            "rejected",
            &caller.subject,
            Some(&note),
            None,
        )
        .await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "approval.rejected",
                format!("approval:{}", approval.id),
                json!({ "action": approval.action, "target": approval.target,
                        "requested_by": approval.requested_by, "note": note }),
            )
            .await?;
        tx.commit().await?;
        Ok(Json(decided.into()))
    }

    /// Which sensitive actions wait for a second user's approval.
    #[oai(
        path = "/approvals/policy",
        method = "get",
        operation_id = "get_approval_policy"
    )]
    async fn policy(&self, token: BearerToken) -> Result<Json<PolicyView>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadApprovals).await?;
        let default = approvals::policy(&mut tx).await?.is_none();
        Ok(Json(PolicyView {
            actions: codes(&policy(&mut tx).await?),
            choices: codes(&Sensitive::CHOICES),
            default,
        }))
    }

    /// Sets which sensitive actions wait for a second user's approval. Adding actions takes
    /// effect at once; taking any off needs a recent second factor and another tenant
    /// admin's approval (202 with the pending approval).
    #[oai(
        path = "/approvals/policy",
        method = "put",
        operation_id = "set_approval_policy"
    )]
    async fn set_policy(
        &self,
        req: &poem::Request,
        token: BearerToken,
        body: Json<PolicyBody>,
    ) -> Result<Approvable<PolicyView>, ApiError> {
        let state = &self.0;
        let (_, gated) = sensitive(
            state,
            req,
            &token,
            Action::ManageApprovalPolicy,
            Some("changing the approval policy"),
            async |c, a, tx| set_policy(state, c, a, tx, body.0).await,
        )
        .await?;
        Ok(gated.into())
    }
}
