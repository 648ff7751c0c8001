//! The record of reconciliation: the breaks a sync's checks found, and where each account's
//! chain of statements ended, both written in the sync's own transaction.
//!
//! This module records and reads; it does not decide. The worker's load step reads the chain
//! ends ([`chain_ends`]), runs the normalizer's checks over them, and hands back the breaks
//! ([`record_breaks`]) and the new ends ([`record_chain_ends`]). All of it happens in the load
//! transaction: a sync that rolls back leaves neither breaks nor a moved chain.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use eam_model::breaks::{Break, ChainKey, StatementEnd};
use eam_model::domain::Currency;
use eam_model::records::StatedBalance;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{AccountId, ConnectionId, Result, RunId, StoreError, TenantTx};

/// Where the chains of statements of these accounts ended, for the connection, locked until
/// the transaction ends so that the ends read are the ends moved.
pub async fn chain_ends(
    tx: &mut TenantTx,
    connection: ConnectionId,
    accounts: &[&str],
) -> Result<BTreeMap<ChainKey, StatementEnd>> {
    if accounts.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows = sqlx::query_as!(
        ChainRow,
        "SELECT account_ref, currency, statement_number, page_number, last_page, closing_amount,
            closing_date, reference
         FROM statement_chains
         WHERE tenant_id = $1 AND connection_id = $2 AND account_ref = ANY($3)
         FOR UPDATE",
        tx.tenant().0,
        connection.0,
        accounts as &[&str]
    )
    .fetch_all(tx.conn())
    .await?;
    let mut ends = BTreeMap::new();
    for row in rows {
        let currency = Currency::parse(row.currency.trim())
            .map_err(|e| StoreError::Data(format!("stored statement chain: {e}")))?;
        ends.insert(
            (row.account_ref, currency),
            StatementEnd {
                statement_number: row.statement_number.and_then(|n| u32::try_from(n).ok()),
                page_number: row.page_number.and_then(|n| u32::try_from(n).ok()),
                last_page: row.last_page,
                closing: StatedBalance {
                    amount: row.closing_amount,
                    date: row.closing_date,
                    intermediate: false,
                },
                reference: row.reference,
            },
        );
    }
    Ok(ends)
}

/// Records the breaks a run's checks found, each linked to its account where the account
/// reference (bank account id or IBAN) names one of the connection's accounts.
pub async fn record_breaks(
    tx: &mut TenantTx,
    connection: ConnectionId,
    run: RunId,
    breaks: &[Break],
) -> Result<()> {
    if breaks.is_empty() {
        return Ok(());
    }
    let tenant = tx.tenant().0;
    let mut accounts: Vec<&str> = breaks.iter().map(|b| b.account.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    // An IBAN that matches is never NULL: both columns of the union are non-null.
    let account_ids: BTreeMap<String, Uuid> = sqlx::query!(
        r#"SELECT a.bank_account_id AS "account_ref!", a.id AS "id!" FROM accounts a
         WHERE a.tenant_id = $1 AND a.connection_id = $2 AND a.bank_account_id = ANY($3)
         UNION ALL
         SELECT a.iban, a.id FROM accounts a
         WHERE a.tenant_id = $1 AND a.connection_id = $2 AND a.iban = ANY($3)"#,
        tenant,
        connection.0,
        &accounts as &[&str]
    )
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(|r| (r.account_ref, r.id))
    .collect();
    sqlx::query!(
        "INSERT INTO reconciliation_breaks (id, tenant_id, run_id, connection_id, account_id,
            account_ref, currency, kind, statement_reference, statement_number, statement_date,
            expected, actual, message, source_document)
         SELECT gen_random_uuid(), $1, $2, $3, u.account_id, u.account_ref, u.currency, u.kind,
            u.reference, u.number, u.date, u.expected, u.actual, u.message, u.document
         FROM UNNEST($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[],
            $10::date[], $11::numeric[], $12::numeric[], $13::text[], $14::text[])
            AS u(account_id, account_ref, currency, kind, reference, number, date, expected,
                 actual, message, document)",
        tenant,
        run.0,
        connection.0,
        &(breaks
            .iter()
            .map(|b| account_ids.get(&b.account).copied())
            .collect::<Vec<_>>()) as &[Option<Uuid>],
        &(breaks
            .iter()
            .map(|b| b.account.as_str())
            .collect::<Vec<_>>()) as &[&str],
        &(breaks
            .iter()
            .map(|b| b.currency.as_ref().map(|c| c.as_str()))
            .collect::<Vec<_>>()) as &[Option<&str>],
        &(breaks.iter().map(|b| b.kind.as_str()).collect::<Vec<_>>()) as &[&str],
        &(breaks
            .iter()
            .map(|b| b.statement_reference.as_deref())
            .collect::<Vec<_>>()) as &[Option<&str>],
        &(breaks
            .iter()
            .map(|b| b.statement_number.and_then(|n| i32::try_from(n).ok()))
            .collect::<Vec<_>>()) as &[Option<i32>],
        &(breaks.iter().map(|b| b.date).collect::<Vec<_>>()) as &[Option<NaiveDate>],
        &(breaks.iter().map(|b| b.expected).collect::<Vec<_>>()) as &[Option<Decimal>],
        &(breaks.iter().map(|b| b.actual).collect::<Vec<_>>()) as &[Option<Decimal>],
        &(breaks
            .iter()
            .map(|b| b.message.as_str())
            .collect::<Vec<_>>()) as &[&str],
        &(breaks
            .iter()
            .map(|b| b.document.as_str())
            .collect::<Vec<_>>()) as &[&str],
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Moves the chains' ends forward to where this run's statements left them.
pub async fn record_chain_ends(
    tx: &mut TenantTx,
    connection: ConnectionId,
    run: RunId,
    ends: &BTreeMap<ChainKey, StatementEnd>,
) -> Result<()> {
    if ends.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO statement_chains (tenant_id, connection_id, account_ref, currency,
            statement_number, page_number, last_page, closing_amount, closing_date, reference, last_run)
         SELECT $1, $2, u.account_ref, u.currency, u.number, u.page, u.last_page, u.amount, u.date,
            u.reference, $3
         FROM UNNEST($4::text[], $5::text[], $6::int[], $7::int[], $8::bool[], $9::numeric[],
            $10::date[], $11::text[])
            AS u(account_ref, currency, number, page, last_page, amount, date, reference)
         ON CONFLICT (tenant_id, connection_id, account_ref, currency) DO UPDATE SET
            statement_number = EXCLUDED.statement_number, page_number = EXCLUDED.page_number,
            last_page = EXCLUDED.last_page, closing_amount = EXCLUDED.closing_amount,
            closing_date = EXCLUDED.closing_date, reference = EXCLUDED.reference,
            last_run = EXCLUDED.last_run",
        tx.tenant().0,
        connection.0,
        run.0,
        &(ends.keys().map(|(a, _)| a.as_str()).collect::<Vec<_>>()) as &[&str],
        &(ends.keys().map(|(_, c)| c.as_str()).collect::<Vec<_>>()) as &[&str],
        &(ends.values().map(|e| e.statement_number.and_then(|n| i32::try_from(n).ok())).collect::<Vec<_>>()) as &[Option<i32>],
        &(ends.values().map(|e| e.page_number.and_then(|n| i32::try_from(n).ok())).collect::<Vec<_>>()) as &[Option<i32>],
        &ends.values().map(|e| e.last_page).collect::<Vec<_>>(),
        &ends.values().map(|e| e.closing.amount).collect::<Vec<_>>(),
        &ends.values().map(|e| e.closing.date).collect::<Vec<_>>(),
        &(ends.values().map(|e| e.reference.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

struct ChainRow {
    account_ref: String,
    currency: String,
    statement_number: Option<i32>,
    page_number: Option<i32>,
    last_page: bool,
    closing_amount: Decimal,
    closing_date: NaiveDate,
    reference: Option<String>,
}

/// A recorded break.
#[derive(Debug, Clone)]
pub struct BreakRow {
    pub id: Uuid,
    pub run_id: Uuid,
    pub connection_id: Uuid,
    pub account_id: Option<Uuid>,
    pub account_ref: String,
    pub currency: Option<String>,
    pub kind: String,
    pub statement_reference: Option<String>,
    pub statement_number: Option<i32>,
    pub statement_date: Option<NaiveDate>,
    pub expected: Option<Decimal>,
    pub actual: Option<Decimal>,
    pub message: String,
    pub source_document: String,
    pub created_at: DateTime<Utc>,
}

/// Which breaks to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct BreakFilter {
    pub run: Option<RunId>,
    pub account: Option<AccountId>,
    pub kind: Option<String>,
    /// The last (created_at, id) of the previous page.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// The tenant's breaks matching a filter.
pub async fn list(tx: &mut TenantTx, filter: &BreakFilter) -> Result<Vec<BreakRow>> {
    let (before_at, before_id) = filter.before.unzip();
    Ok(sqlx::query_as!(
        BreakRow,
        "SELECT id, run_id, connection_id, account_id, account_ref, currency, kind,
            statement_reference, statement_number, statement_date, expected, actual, message,
            source_document, created_at
         FROM reconciliation_breaks
         WHERE tenant_id = $1
           AND ($2::uuid IS NULL OR run_id = $2)
           AND ($3::uuid IS NULL OR account_id = $3)
           AND ($4::text IS NULL OR kind = $4)
           AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
         ORDER BY created_at DESC, id DESC LIMIT $7",
        tx.tenant().0,
        filter.run.map(|r| r.0),
        filter.account.map(|a| a.0),
        filter.kind.as_deref(),
        before_at,
        before_id,
        filter.limit
    )
    .fetch_all(tx.conn())
    .await?)
}
