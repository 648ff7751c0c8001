//! Which client an account belongs to, when the bank does not say.
//!
//! An account's client comes from, in this order: a person's assignment (`manual`), the
//! bank's client reference (`bank`), the first matching rule of its connection (`rule`).
//! Syncs apply the same order on every load (`load::load_accounts` and the SQL function
//! `account_client_by_rule` of migration 0016); [`resolve`] applies it again when rules
//! change or a manual assignment is removed, so an answer never waits for the next sync.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{AccountId, ConnectionId, Result, StoreError, TenantTx};

/// What a rule matches its pattern against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleField {
    BankAccountId,
    Iban,
}

impl RuleField {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleField::BankAccountId => "bank_account_id",
            RuleField::Iban => "iban",
        }
    }

    pub fn parse(s: &str) -> Option<RuleField> {
        match s {
            "bank_account_id" => Some(RuleField::BankAccountId),
            "iban" => Some(RuleField::Iban),
            _ => None,
        }
    }
}

/// The SQL `LIKE` pattern of a glob (`*` any run of characters, `?` one), every other
/// character literal.
pub fn like_pattern(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A rule with its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub field: String,
    pub pattern: String,
    pub client_id: Uuid,
    pub client_reference: String,
    pub priority: i32,
    pub created_at: DateTime<Utc>,
}

/// A connection's rules, in the order they apply.
pub async fn rules(tx: &mut TenantTx, connection: ConnectionId) -> Result<Vec<RuleRow>> {
    Ok(sqlx::query_as!(
        RuleRow,
        "SELECT r.id, r.connection_id, r.field, r.pattern, r.client_id,
                c.reference AS client_reference, r.priority, r.created_at
           FROM account_assignment_rules r JOIN clients c ON c.id = r.client_id
          WHERE r.tenant_id = $1 AND r.connection_id = $2
          ORDER BY r.priority, r.created_at, r.id",
        tx.tenant().0,
        connection.0
    )
    .fetch_all(tx.conn())
    .await?)
}

/// A rule to add.
#[derive(Debug, Clone)]
pub struct NewRule<'a> {
    pub connection: ConnectionId,
    pub field: RuleField,
    pub pattern: &'a str,
    pub client: Uuid,
    pub priority: i32,
}

/// Adds a rule; `Conflict` when the connection already has one for this field and pattern.
pub async fn create_rule(tx: &mut TenantTx, rule: &NewRule<'_>) -> Result<RuleRow> {
    let id = Uuid::now_v7();
    let inserted = sqlx::query!(
        "INSERT INTO account_assignment_rules
            (id, tenant_id, connection_id, field, pattern, like_pattern, client_id, priority)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, connection_id, field, pattern) DO NOTHING",
        id,
        tx.tenant().0,
        rule.connection.0,
        rule.field.as_str(),
        rule.pattern,
        like_pattern(rule.pattern),
        rule.client,
        rule.priority
    )
    .execute(tx.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "the connection already has a rule for {} '{}'",
            rule.field.as_str(),
            rule.pattern
        )));
    }
    rules(tx, rule.connection)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(StoreError::NotFound)
}

/// Removes a rule of the connection; `NotFound` for an unknown one.
pub async fn delete_rule(tx: &mut TenantTx, connection: ConnectionId, id: Uuid) -> Result<()> {
    let deleted = sqlx::query!(
        "DELETE FROM account_assignment_rules
          WHERE tenant_id = $1 AND connection_id = $2 AND id = $3",
        tx.tenant().0,
        connection.0,
        id
    )
    .execute(tx.conn())
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Assigns an account to a client by hand: it stays so whatever the bank or the rules say,
/// until [`release`]d. `NotFound` when the account or the client is not the tenant's.
pub async fn assign(tx: &mut TenantTx, account: AccountId, client: Uuid) -> Result<()> {
    let updated = sqlx::query!(
        "UPDATE accounts a SET client_id = c.id, client_source = 'manual'
           FROM clients c
          WHERE a.tenant_id = $1 AND a.id = $2 AND c.tenant_id = $1 AND c.id = $3",
        tx.tenant().0,
        account.0,
        client
    )
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Removes an account's manual assignment: its client is again the bank's, else its rules'.
pub async fn release(tx: &mut TenantTx, account: AccountId) -> Result<()> {
    let found = sqlx::query_scalar!(
        "SELECT id FROM accounts WHERE tenant_id = $1 AND id = $2",
        tx.tenant().0,
        account.0
    )
    .fetch_optional(tx.conn())
    .await?;
    if found.is_none() {
        return Err(StoreError::NotFound);
    }
    resolve(tx, Scope::Account(account)).await?;
    Ok(())
}

/// Which accounts [`resolve`] reconsiders.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// A connection's accounts that are not assigned by hand (its rules changed).
    Connection(ConnectionId),
    /// One account, also when assigned by hand (the assignment is being removed).
    Account(AccountId),
}

/// Gives the accounts of `scope` the client the bank or the rules give them; returns how many
/// changed.
pub async fn resolve(tx: &mut TenantTx, scope: Scope) -> Result<u64> {
    let (connection, account) = match scope {
        Scope::Connection(c) => (Some(c.0), None),
        Scope::Account(a) => (None, Some(a.0)),
    };
    let updated = sqlx::query!(
        "WITH resolved AS (
            SELECT a.id, c.id AS bank_client,
                   account_client_by_rule(a.tenant_id, a.connection_id, a.bank_account_id, a.iban)
                       AS rule_client
              FROM accounts a
              LEFT JOIN clients c ON c.tenant_id = a.tenant_id AND c.reference = a.bank_client_ref
             WHERE a.tenant_id = $1
               AND ($2::uuid IS NULL OR (a.connection_id = $2
                                         AND a.client_source IS DISTINCT FROM 'manual'))
               AND ($3::uuid IS NULL OR a.id = $3)
         ), target AS (
            SELECT id, coalesce(bank_client, rule_client) AS client_id,
                   CASE WHEN bank_client IS NOT NULL THEN 'bank'
                        WHEN rule_client IS NOT NULL THEN 'rule' END AS source
              FROM resolved
         )
         UPDATE accounts a SET client_id = t.client_id, client_source = t.source
           FROM target t
          WHERE a.id = t.id
            AND (a.client_id, a.client_source) IS DISTINCT FROM (t.client_id, t.source)",
        tx.tenant().0,
        connection,
        account
    )
    .execute(tx.conn())
    .await?;
    Ok(updated.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn a_glob_becomes_a_like_pattern_with_everything_else_literal() {
        assert_eq!(like_pattern("CH93*"), "CH93%");
        assert_eq!(like_pattern("BA-00000?-1"), "BA-00000_-1");
        assert_eq!(like_pattern("100%_a\\b"), "100\\%\\_a\\\\b");
        assert_eq!(like_pattern("*"), "%");
    }
}
