//! Reconciliation breaks: the data-quality checks of a sync's statements, recorded in the
//! sync's own transaction.
//!
//! The checks are the normalizer's (pure, `eam_normalizer::reconcile`); this module feeds them
//! the end of each account's chain of statements from the previous syncs, records the breaks
//! they find, and moves the chain ends forward, all in the load transaction: a sync that rolls
//! back leaves neither breaks nor a moved chain.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use eam_normalizer::domain::Currency;
use eam_normalizer::model::{StatedBalance, StatementSummary};
use eam_normalizer::reconcile::{self, ChainKey, StatementEnd};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{AccountId, ConnectionId, Result, RunId, StoreError, TenantTx};

/// Checks the statements of a sync against each other and the previous syncs' chain ends,
/// records the breaks, and returns how many there were.
pub async fn check_and_record(
    tx: &mut TenantTx,
    connection: ConnectionId,
    run: RunId,
    statements: &[StatementSummary],
) -> Result<u64> {
    check_and_record_with(tx, connection, run, statements, true).await
}

/// Checks the statements of a replay (documents fetched by an earlier run) against each other
/// only, and records the breaks. The chains are left alone: they have moved on since those
/// statements were fetched, and a replay must not move them back.
pub async fn check_and_record_replay(
    tx: &mut TenantTx,
    connection: ConnectionId,
    run: RunId,
    statements: &[StatementSummary],
) -> Result<u64> {
    check_and_record_with(tx, connection, run, statements, false).await
}

async fn check_and_record_with(
    tx: &mut TenantTx,
    connection: ConnectionId,
    run: RunId,
    statements: &[StatementSummary],
    chained: bool,
) -> Result<u64> {
    if statements.is_empty() {
        return Ok(0);
    }
    let tenant = tx.tenant().0;
    let mut accounts: Vec<&str> = statements.iter().map(|s| s.account.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let rows: Vec<ChainRow> = sqlx::query_as(
        "SELECT account_ref, currency, statement_number, page_number, last_page, closing_amount,
            closing_date, reference
         FROM statement_chains
         WHERE tenant_id = $1 AND connection_id = $2 AND account_ref = ANY($3)
         FOR UPDATE",
    )
    .bind(tenant)
    .bind(connection.0)
    .bind(&accounts)
    .fetch_all(tx.conn())
    .await?;
    let mut previous = BTreeMap::new();
    for row in rows.into_iter().filter(|_| chained) {
        let currency = Currency::parse(row.currency.trim())
            .map_err(|e| StoreError::Data(format!("stored statement chain: {e}")))?;
        previous.insert(
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
    let (breaks, ends) = reconcile::check(statements, &previous);

    if !breaks.is_empty() {
        let account_ids: BTreeMap<String, Uuid> = sqlx::query_as(
            "SELECT a.bank_account_id, a.id FROM accounts a
             WHERE a.tenant_id = $1 AND a.connection_id = $2 AND a.bank_account_id = ANY($3)
             UNION ALL
             SELECT a.iban, a.id FROM accounts a
             WHERE a.tenant_id = $1 AND a.connection_id = $2 AND a.iban = ANY($3)",
        )
        .bind(tenant)
        .bind(connection.0)
        .bind(&accounts)
        .fetch_all(tx.conn())
        .await?
        .into_iter()
        .collect();
        sqlx::query(
            "INSERT INTO reconciliation_breaks (id, tenant_id, run_id, connection_id, account_id,
                account_ref, currency, kind, statement_reference, statement_number, statement_date,
                expected, actual, message, source_document)
             SELECT gen_random_uuid(), $1, $2, $3, u.account_id, u.account_ref, u.currency, u.kind,
                u.reference, u.number, u.date, u.expected, u.actual, u.message, u.document
             FROM UNNEST($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[],
                $10::date[], $11::numeric[], $12::numeric[], $13::text[], $14::text[])
                AS u(account_id, account_ref, currency, kind, reference, number, date, expected,
                     actual, message, document)",
        )
        .bind(tenant)
        .bind(run.0)
        .bind(connection.0)
        .bind(
            breaks
                .iter()
                .map(|b| account_ids.get(&b.account).copied())
                .collect::<Vec<_>>(),
        )
        .bind(
            breaks
                .iter()
                .map(|b| b.account.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            breaks
                .iter()
                .map(|b| b.currency.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(breaks.iter().map(|b| b.kind.as_str()).collect::<Vec<_>>())
        .bind(
            breaks
                .iter()
                .map(|b| b.statement_reference.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            breaks
                .iter()
                .map(|b| b.statement_number.and_then(|n| i32::try_from(n).ok()))
                .collect::<Vec<_>>(),
        )
        .bind(breaks.iter().map(|b| b.date).collect::<Vec<_>>())
        .bind(breaks.iter().map(|b| b.expected).collect::<Vec<_>>())
        .bind(breaks.iter().map(|b| b.actual).collect::<Vec<_>>())
        .bind(
            breaks
                .iter()
                .map(|b| b.message.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            breaks
                .iter()
                .map(|b| b.document.as_str())
                .collect::<Vec<_>>(),
        )
        .execute(tx.conn())
        .await?;
    }

    if !chained {
        return Ok(breaks.len() as u64);
    }
    let ends: Vec<(ChainKey, StatementEnd)> = ends.into_iter().collect();
    sqlx::query(
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
    )
    .bind(tenant)
    .bind(connection.0)
    .bind(run.0)
    .bind(ends.iter().map(|((a, _), _)| a.as_str()).collect::<Vec<_>>())
    .bind(ends.iter().map(|((_, c), _)| c.as_str()).collect::<Vec<_>>())
    .bind(ends.iter().map(|(_, e)| e.statement_number.and_then(|n| i32::try_from(n).ok())).collect::<Vec<_>>())
    .bind(ends.iter().map(|(_, e)| e.page_number.and_then(|n| i32::try_from(n).ok())).collect::<Vec<_>>())
    .bind(ends.iter().map(|(_, e)| e.last_page).collect::<Vec<_>>())
    .bind(ends.iter().map(|(_, e)| e.closing.amount).collect::<Vec<_>>())
    .bind(ends.iter().map(|(_, e)| e.closing.date).collect::<Vec<_>>())
    .bind(ends.iter().map(|(_, e)| e.reference.as_deref()).collect::<Vec<_>>())
    .execute(tx.conn())
    .await?;
    Ok(breaks.len() as u64)
}

#[derive(sqlx::FromRow)]
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
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BreakRow {
    pub id: Uuid,
    pub run_id: Uuid,
    pub connection_id: Uuid,
    pub account_id: Option<Uuid>,
    pub account_ref: String,
    pub currency: String,
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
    Ok(sqlx::query_as::<_, BreakRow>(
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
    )
    .bind(tx.tenant().0)
    .bind(filter.run.map(|r| r.0))
    .bind(filter.account.map(|a| a.0))
    .bind(filter.kind.as_deref())
    .bind(before_at)
    .bind(before_id)
    .bind(filter.limit)
    .fetch_all(tx.conn())
    .await?)
}
