//! The record of reconciliation: the breaks a sync's checks found, and where each account's
//! chain of statements ended, both written in the sync's own transaction.
//!
//! This module records and reads; it does not decide. The worker's load step reads the chain
//! ends ([`chain_ends`]), runs the normalizer's checks over them, and hands back the breaks
//! ([`record_breaks`]) and the new ends ([`record_chain_ends`]). For positions it reads what a
//! sync's holdings are checked against: each account's latest stored snapshot before the
//! sync's first ([`positions_before`]) and the securities transactions stored over a period
//! ([`securities_transactions`]), this sync's included (the load step reads them after loading).
//! All of it happens in the load transaction: a sync that rolls back leaves neither breaks nor
//! a moved chain.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use eam_model::breaks::{Break, ChainKey, PositionSnapshot, SecuritiesTransaction, StatementEnd};
use eam_model::domain::Currency;
use eam_model::records::{
    Direction, SecurityKey, StatedBalance, TransactionStatus, TransactionType,
};
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
/// reference (bank account id or IBAN) names one of the connection's accounts, and a position
/// break to its security.
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
    let mut securities: Vec<&str> = breaks
        .iter()
        .filter_map(|b| b.security.as_ref().map(|s| s.key.as_str()))
        .collect();
    securities.sort_unstable();
    securities.dedup();
    let security_ids: BTreeMap<String, Uuid> = if securities.is_empty() {
        BTreeMap::new()
    } else {
        sqlx::query!(
            "SELECT security_key, id FROM securities WHERE tenant_id = $1 AND security_key = ANY($2)",
            tenant,
            &securities as &[&str]
        )
        .fetch_all(tx.conn())
        .await?
        .into_iter()
        .map(|r| (r.security_key, r.id))
        .collect()
    };
    sqlx::query!(
        "INSERT INTO reconciliation_breaks (id, tenant_id, run_id, connection_id, account_id,
            account_ref, currency, kind, statement_reference, statement_number, statement_date,
            expected, actual, message, source_document, security_id, security_label, period_from)
         SELECT gen_random_uuid(), $1, $2, $3, u.account_id, u.account_ref, u.currency, u.kind,
            u.reference, u.number, u.date, u.expected, u.actual, u.message, u.document,
            u.security_id, u.security_label, u.period_from
         FROM UNNEST($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[],
            $10::date[], $11::numeric[], $12::numeric[], $13::text[], $14::text[], $15::uuid[],
            $16::text[], $17::date[])
            AS u(account_id, account_ref, currency, kind, reference, number, date, expected,
                 actual, message, document, security_id, security_label, period_from)",
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
        &(breaks
            .iter()
            .map(|b| {
                b.security
                    .as_ref()
                    .and_then(|s| security_ids.get(s.key.as_str()).copied())
            })
            .collect::<Vec<_>>()) as &[Option<Uuid>],
        &(breaks
            .iter()
            .map(|b| b.security.as_ref().map(|s| s.label.as_str()))
            .collect::<Vec<_>>()) as &[Option<&str>],
        &(breaks.iter().map(|b| b.period_from).collect::<Vec<_>>()) as &[Option<NaiveDate>],
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// For each (account reference, date): the account's latest complete snapshot stored before
/// that date, with its positions (none for a snapshot that listed nothing), for the
/// connection's accounts (by bank account id). Accounts with none are absent. Positions loaded
/// before snapshots were recorded count as a snapshot of their date.
pub async fn positions_before(
    tx: &mut TenantTx,
    connection: ConnectionId,
    firsts: &[(&str, NaiveDate)],
) -> Result<BTreeMap<String, PositionSnapshot>> {
    if firsts.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows = sqlx::query!(
        r#"SELECT w.account_ref AS "account_ref!", latest.as_of AS "as_of!",
            s.security_key AS "security_key?", p.quantity AS "quantity?"
         FROM UNNEST($3::text[], $4::date[]) AS w(account_ref, before)
         JOIN accounts a
           ON a.tenant_id = $1 AND a.connection_id = $2 AND a.bank_account_id = w.account_ref
         CROSS JOIN LATERAL (
             SELECT coalesce(
                 (SELECT max(n.as_of) FROM position_snapshots n
                   WHERE n.tenant_id = $1 AND n.account_id = a.id AND n.as_of < w.before),
                 (SELECT max(q.as_of) FROM positions q
                   WHERE q.tenant_id = $1 AND q.account_id = a.id AND q.as_of < w.before)
             ) AS as_of
         ) latest
         LEFT JOIN positions p
           ON p.tenant_id = $1 AND p.account_id = a.id AND p.as_of = latest.as_of
         LEFT JOIN securities s ON s.tenant_id = $1 AND s.id = p.security_id
         WHERE latest.as_of IS NOT NULL
         ORDER BY 1, 3"#,
        tx.tenant().0,
        connection.0,
        &(firsts.iter().map(|(a, _)| *a).collect::<Vec<_>>()) as &[&str],
        &firsts.iter().map(|(_, d)| *d).collect::<Vec<_>>(),
    )
    .fetch_all(tx.conn())
    .await?;
    let mut snapshots: BTreeMap<String, PositionSnapshot> = BTreeMap::new();
    for row in rows {
        let snapshot = snapshots
            .entry(row.account_ref)
            .or_insert_with(|| PositionSnapshot {
                as_of: row.as_of,
                holdings: Vec::new(),
            });
        if let (Some(key), Some(quantity)) = (row.security_key, row.quantity) {
            snapshot.holdings.push((stored_key(&key)?, quantity));
        }
    }
    Ok(snapshots)
}

/// The stored transactions with a security and a quantity of the connection's accounts (by
/// bank account id) booked or traded in each period (after `from`, up to `to`), pending ones
/// included, in account and booking order.
pub async fn securities_transactions(
    tx: &mut TenantTx,
    connection: ConnectionId,
    periods: &[(String, NaiveDate, NaiveDate)],
) -> Result<Vec<SecuritiesTransaction>> {
    if periods.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query!(
        r#"SELECT w.account_ref AS "account_ref!", s.security_key, t.type AS kind, t.direction,
            t.status, t.quantity AS "quantity!", t.booking_date, t.trade_date
         FROM UNNEST($3::text[], $4::date[], $5::date[]) AS w(account_ref, after, up_to)
         JOIN accounts a
           ON a.tenant_id = $1 AND a.connection_id = $2 AND a.bank_account_id = w.account_ref
         JOIN transactions t ON t.tenant_id = $1 AND t.account_id = a.id
         JOIN securities s ON s.tenant_id = $1 AND s.id = t.security_id
         WHERE t.quantity IS NOT NULL
           AND ((t.booking_date > w.after AND t.booking_date <= w.up_to)
                OR (t.trade_date > w.after AND t.trade_date <= w.up_to))
         ORDER BY 1, t.booking_date, t.id"#,
        tx.tenant().0,
        connection.0,
        &(periods
            .iter()
            .map(|(a, _, _)| a.as_str())
            .collect::<Vec<_>>()) as &[&str],
        &periods.iter().map(|(_, from, _)| *from).collect::<Vec<_>>(),
        &periods.iter().map(|(_, _, to)| *to).collect::<Vec<_>>(),
    )
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|row| {
            let bad = |what: &str, value: &str| {
                StoreError::Data(format!("stored transaction: unknown {what} '{value}'"))
            };
            Ok(SecuritiesTransaction {
                account: row.account_ref,
                security: stored_key(&row.security_key)?,
                kind: TransactionType::parse(&row.kind).ok_or_else(|| bad("type", &row.kind))?,
                direction: Direction::parse(&row.direction)
                    .ok_or_else(|| bad("direction", &row.direction))?,
                status: TransactionStatus::parse(&row.status)
                    .ok_or_else(|| bad("status", &row.status))?,
                quantity: row.quantity,
                booking_date: row.booking_date,
                trade_date: row.trade_date,
            })
        })
        .collect()
}

fn stored_key(key: &str) -> Result<SecurityKey> {
    SecurityKey::parse(key)
        .ok_or_else(|| StoreError::Data(format!("stored security key '{key}' is malformed")))
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
    /// Position breaks: the security, as the break named it and as it is described now.
    pub security_id: Option<Uuid>,
    pub security_label: Option<String>,
    pub security_isin: Option<String>,
    pub security_bank_id: Option<String>,
    pub security_name: Option<String>,
    /// Position breaks: the previous snapshot's date.
    pub period_from: Option<NaiveDate>,
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
        r#"SELECT b.id, b.run_id, b.connection_id, b.account_id, b.account_ref, b.currency,
            b.kind, b.statement_reference, b.statement_number, b.statement_date, b.expected,
            b.actual, b.message, b.source_document, b.created_at, b.security_id,
            b.security_label, s.isin AS "security_isin?", s.bank_security_id AS "security_bank_id?",
            s.name AS "security_name?", b.period_from
         FROM reconciliation_breaks b
         LEFT JOIN securities s ON s.tenant_id = b.tenant_id AND s.id = b.security_id
         WHERE b.tenant_id = $1
           AND ($2::uuid IS NULL OR b.run_id = $2)
           AND ($3::uuid IS NULL OR b.account_id = $3)
           AND ($4::text IS NULL OR b.kind = $4)
           AND ($5::timestamptz IS NULL OR (b.created_at, b.id) < ($5, $6))
         ORDER BY b.created_at DESC, b.id DESC LIMIT $7"#,
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
