//! Which client an account belongs to: a person's assignment, or rules per connection for
//! the banks whose statements name no client (bank_b's and bank_c's files).
//!
//! Order, on every sync and at once when rules or assignments change: a manual assignment,
//! else the client the bank names, else the connection's first matching rule (lowest
//! `priority`, then the oldest). An account none of them gives a client is `unassigned` in
//! `GET /accounts`: it is listed, never left out silently.

use chrono::{DateTime, Utc};
use eam_store::assignments::{self, NewRule, RuleField, RuleRow, Scope};
use eam_store::{AccountId, ConnectionId, connections, read};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditContext;
use crate::caller::BearerToken;
use crate::permissions::Action;
use crate::problem::{ApiError, not_found};
use crate::state::ApiState;

pub struct AssignmentsApi(pub ApiState);

/// A rule: an account of the connection whose `field` matches `pattern` belongs to the client.
#[derive(Object)]
struct Rule {
    id: Uuid,
    connection_id: Uuid,
    /// `bank_account_id` or `iban`.
    field: String,
    /// `*` matches any run of characters, `?` one; everything else literally (case matters).
    pattern: String,
    client_id: Uuid,
    client_reference: String,
    /// Lower first; equal priorities apply oldest first.
    priority: i32,
    created_at: DateTime<Utc>,
}

impl From<RuleRow> for Rule {
    fn from(r: RuleRow) -> Self {
        Rule {
            id: r.id,
            connection_id: r.connection_id,
            field: r.field,
            pattern: r.pattern,
            client_id: r.client_id,
            client_reference: r.client_reference,
            priority: r.priority,
            created_at: r.created_at,
        }
    }
}

fn default_field() -> String {
    "bank_account_id".into()
}

fn default_priority() -> i32 {
    100
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct RuleBody {
    /// `bank_account_id` (default) or `iban`.
    #[oai(default = "default_field")]
    field: String,
    #[oai(validator(min_length = 1, max_length = 200))]
    pattern: String,
    client_id: Uuid,
    #[oai(
        default = "default_priority",
        validator(minimum(value = "0"), maximum(value = "10000"))
    )]
    priority: i32,
}

/// The accounts a change gave another client.
#[derive(Object)]
struct RuleChange {
    rule: Option<Rule>,
    /// Accounts of the connection whose client changed.
    accounts_changed: u64,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
struct AssignBody {
    client_id: Uuid,
}

/// An account's client and where it comes from.
#[derive(Object)]
struct Assignment {
    account_id: Uuid,
    client_id: Option<Uuid>,
    /// `manual`, `bank`, `rule` or `unassigned`.
    source: String,
}

#[derive(ApiResponse)]
enum CreatedRule {
    #[oai(status = 201)]
    Created(Json<RuleChange>),
}

/// 422 unless `client` is one of the tenant's clients (a body naming an unknown one).
async fn require_known_client(tx: &mut eam_store::TenantTx, client: Uuid) -> Result<(), ApiError> {
    match eam_store::clients::get(tx, client).await {
        Ok(_) => Ok(()),
        Err(eam_store::StoreError::NotFound) => Err(ApiError::unprocessable(format!(
            "client_id: client {client} not found"
        ))),
        Err(other) => Err(other.into()),
    }
}

impl AssignmentsApi {
    async fn assignment(
        &self,
        tx: &mut eam_store::TenantTx,
        id: Uuid,
    ) -> Result<Assignment, ApiError> {
        let a = read::account(tx, AccountId(id))
            .await
            .map_err(not_found("account", id))?;
        Ok(Assignment {
            account_id: a.id,
            client_id: a.client_id,
            source: a.client_source.unwrap_or_else(|| "unassigned".into()),
        })
    }
}

#[OpenApi(tag = "crate::Tag::Portfolio")]
impl AssignmentsApi {
    /// Assigns an account to a client by hand; it stays so whatever the bank or the rules
    /// say, until the assignment is removed. Audited.
    #[oai(
        path = "/accounts/:id/client",
        method = "put",
        operation_id = "assign_account_client"
    )]
    async fn assign(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<AssignBody>,
    ) -> Result<Json<Assignment>, ApiError> {
        let caller = self.0.caller(&token, Action::AssignAccounts).await?;
        let mut tx = caller.tx(&self.0).await?;
        let before = self.assignment(&mut tx, id.0).await?;
        require_known_client(&mut tx, body.0.client_id).await?;
        assignments::assign(&mut tx, AccountId(id.0), body.0.client_id)
            .await
            .map_err(not_found("account", id.0))?;
        let after = self.assignment(&mut tx, id.0).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "account.client_assigned",
                format!("account:{}", id.0),
                json!({
                    "client_id": after.client_id,
                    "before": { "client_id": before.client_id, "source": before.source },
                }),
            )
            .await?;
        tx.commit().await?;
        Ok(Json(after))
    }

    /// Removes an account's manual assignment: its client is again the bank's, else its
    /// connection's rules', else none. Audited.
    #[oai(
        path = "/accounts/:id/client",
        method = "delete",
        operation_id = "release_account_client"
    )]
    async fn release(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
    ) -> Result<Json<Assignment>, ApiError> {
        let caller = self.0.caller(&token, Action::AssignAccounts).await?;
        let mut tx = caller.tx(&self.0).await?;
        let before = self.assignment(&mut tx, id.0).await?;
        if before.source != "manual" {
            return Err(ApiError::conflict(format!(
                "account {} is not assigned by hand (its client comes from: {})",
                id.0, before.source
            )));
        }
        assignments::release(&mut tx, AccountId(id.0))
            .await
            .map_err(not_found("account", id.0))?;
        let after = self.assignment(&mut tx, id.0).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "account.client_released",
                format!("account:{}", id.0),
                json!({
                    "client_id": after.client_id,
                    "source": after.source,
                    "before": { "client_id": before.client_id },
                }),
            )
            .await?;
        tx.commit().await?;
        Ok(Json(after))
    }

    /// A connection's assignment rules, in the order they apply.
    #[oai(
        path = "/connections/:id/assignment-rules",
        method = "get",
        operation_id = "list_assignment_rules"
    )]
    async fn rules(&self, token: BearerToken, id: Path<Uuid>) -> Result<Json<Vec<Rule>>, ApiError> {
        let (_, mut tx) = self.0.begin(&token, Action::ReadAssignments).await?;
        connections::get(&mut tx, ConnectionId(id.0))
            .await
            .map_err(not_found("connection", id.0))?;
        Ok(Json(
            assignments::rules(&mut tx, ConnectionId(id.0))
                .await?
                .into_iter()
                .map(Rule::from)
                .collect(),
        ))
    }

    /// Adds a rule and applies the connection's rules to its accounts at once (and on every
    /// sync after). Audited.
    #[oai(
        path = "/connections/:id/assignment-rules",
        method = "post",
        operation_id = "create_assignment_rule"
    )]
    async fn create_rule(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        body: Json<RuleBody>,
    ) -> Result<CreatedRule, ApiError> {
        let caller = self.0.caller(&token, Action::AssignAccounts).await?;
        let body = body.0;
        let field = RuleField::parse(&body.field).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "field: '{}' is not bank_account_id or iban",
                body.field
            ))
        })?;
        let mut tx = caller.tx(&self.0).await?;
        let connection = ConnectionId(id.0);
        connections::get(&mut tx, connection)
            .await
            .map_err(not_found("connection", id.0))?;
        require_known_client(&mut tx, body.client_id).await?;
        let rule = assignments::create_rule(
            &mut tx,
            &NewRule {
                connection,
                field,
                pattern: &body.pattern,
                client: body.client_id,
                priority: body.priority,
            },
        )
        .await?;
        let changed = assignments::resolve(&mut tx, Scope::Connection(connection)).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "assignment_rule.created",
                format!("connection:{}", id.0),
                json!({
                    "rule_id": rule.id, "field": rule.field, "pattern": rule.pattern,
                    "client_id": rule.client_id, "priority": rule.priority,
                    "accounts_changed": changed,
                }),
            )
            .await?;
        tx.commit().await?;
        Ok(CreatedRule::Created(Json(RuleChange {
            rule: Some(rule.into()),
            accounts_changed: changed,
        })))
    }

    /// Removes a rule; the connection's accounts it assigned get their client from the
    /// remaining rules, or none. Audited.
    #[oai(
        path = "/connections/:id/assignment-rules/:rule_id",
        method = "delete",
        operation_id = "delete_assignment_rule"
    )]
    async fn delete_rule(
        &self,
        req: &poem::Request,
        token: BearerToken,
        id: Path<Uuid>,
        rule_id: Path<Uuid>,
    ) -> Result<Json<RuleChange>, ApiError> {
        let caller = self.0.caller(&token, Action::AssignAccounts).await?;
        let mut tx = caller.tx(&self.0).await?;
        let connection = ConnectionId(id.0);
        assignments::delete_rule(&mut tx, connection, rule_id.0)
            .await
            .map_err(not_found("assignment rule", rule_id.0))?;
        let changed = assignments::resolve(&mut tx, Scope::Connection(connection)).await?;
        AuditContext::new(&caller, req)
            .record(
                &mut tx,
                "assignment_rule.deleted",
                format!("connection:{}", id.0),
                json!({ "rule_id": rule_id.0, "accounts_changed": changed }),
            )
            .await?;
        tx.commit().await?;
        Ok(Json(RuleChange {
            rule: None,
            accounts_changed: changed,
        }))
    }
}
