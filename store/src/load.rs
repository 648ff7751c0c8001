//! The idempotent, set-based load of a normalized [`Batch`].
//!
//! Each record kind is written by its own function (`load_accounts`, `load_positions`, ...), in
//! the caller's transaction, with one statement over UNNEST-ed arrays (not a row at a time),
//! as an upsert on its natural key whose UPDATE only fires when a data column differs: so
//! loading the same statement twice writes nothing and reports every record `unchanged`.
//! References (account, security) are resolved to ids before the dependent rows are written,
//! and a reference that resolves to nothing is a data error rather than a silently dropped row.
//! The caller runs this inside the same transaction that moves the cursor and finishes the run.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use eam_model::records::{Batch, SecurityDetail, TransactionType};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ConnectionId, Result, RunId, StoreError, TenantTx};

/// Inserted / updated / unchanged counts of one record kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl KindCounts {
    fn from_returned(total: usize, inserted_flags: &[bool]) -> Self {
        let inserted = inserted_flags.iter().filter(|i| **i).count() as u64;
        let written = inserted_flags.len() as u64;
        KindCounts {
            inserted,
            updated: written - inserted,
            unchanged: total as u64 - written,
        }
    }
}

/// What a load did, per record kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadCounts {
    pub clients: KindCounts,
    pub accounts: KindCounts,
    pub securities: KindCounts,
    pub positions: KindCounts,
    /// Positions removed because a complete snapshot no longer lists them.
    pub positions_closed: u64,
    pub balances: KindCounts,
    pub transactions: KindCounts,
    /// Prices of securities from positions and trades (runs recorded before issue 16 have
    /// none).
    #[serde(default)]
    pub prices: KindCounts,
    /// Exchange rates the documents state (`bank_fx_rates`).
    #[serde(default)]
    pub rates: KindCounts,
}

impl LoadCounts {
    /// Records inserted plus updated, over all kinds.
    pub fn changed(&self) -> u64 {
        [
            self.clients,
            self.accounts,
            self.securities,
            self.positions,
            self.balances,
            self.transactions,
            self.prices,
            self.rates,
        ]
        .iter()
        .map(|k| k.inserted + k.updated)
        .sum::<u64>()
            + self.positions_closed
    }
}

/// Loads a batch for one connection and run: each record kind in turn, references resolved
/// once the records they name are written. `replay_of` is set when the batch re-loads an
/// earlier run's documents (see [`set_replay_limit`]).
pub async fn load_batch(
    tx: &mut TenantTx,
    connection: ConnectionId,
    run: RunId,
    batch: &Batch,
    replay_of: Option<RunId>,
) -> Result<LoadCounts> {
    let securities = load_securities(tx, run, batch).await?;
    load_batch_after_securities(tx, connection, run, batch, replay_of, securities).await
}

/// [`load_batch`] for a batch whose securities [`load_securities`] already wrote (in a
/// transaction of their own, committed first: see there), with what that counted.
pub async fn load_batch_after_securities(
    tx: &mut TenantTx,
    connection: ConnectionId,
    run: RunId,
    batch: &Batch,
    replay_of: Option<RunId>,
    securities: KindCounts,
) -> Result<LoadCounts> {
    set_replay_limit(tx, replay_of).await?;
    let clients = load_clients(tx, batch).await?;
    let accounts = load_accounts(tx, connection, run, batch).await?;
    let refs = References::resolve(tx, connection, batch).await?;
    let (positions, held) = load_positions(tx, run, batch, &refs).await?;
    let positions_closed = close_unlisted_positions(tx, batch, &refs, &held).await?;
    record_snapshots(tx, run, batch, &refs).await?;
    let balances = load_balances(tx, run, batch, &refs).await?;
    let transactions = load_transactions(tx, run, batch, &refs).await?;
    let prices = load_prices(tx, connection, run, batch, &refs).await?;
    let rates = load_rates(tx, run, batch, &refs).await?;
    Ok(LoadCounts {
        clients,
        accounts,
        securities,
        positions,
        positions_closed,
        balances,
        transactions,
        prices,
        rates,
    })
}

/// A replay re-loads an old run's documents: it may fill in and correct what that run (or an
/// older one) wrote, never what a newer run wrote since. Run ids are UUIDv7, ordered by time,
/// so "newer" is a comparison; every upsert of this module checks it through this setting
/// (empty: not a replay, no limit).
async fn set_replay_limit(tx: &mut TenantTx, replay_of: Option<RunId>) -> Result<()> {
    sqlx::query!(
        "SELECT set_config('app.replay_upto', $1, true)",
        replay_of.map(|r| r.0.to_string()).unwrap_or_default()
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(())
}

/// Clients named by the bank: created when new, never renamed by a sync (the firm owns them).
/// Clients and securities are shared by the tenant's connections: rows are written in key
/// order so that two concurrent loads lock them in the same order and cannot deadlock.
async fn load_clients(tx: &mut TenantTx, batch: &Batch) -> Result<KindCounts> {
    let mut client_refs: BTreeMap<&str, &str> = BTreeMap::new();
    for a in &batch.accounts {
        if let Some(c) = &a.client {
            client_refs
                .entry(c.reference.as_str())
                .or_insert(c.name.as_str());
        }
    }
    let (refs, names): (Vec<&str>, Vec<&str>) = client_refs.iter().map(|(r, n)| (*r, *n)).unzip();
    let tenant = tx.tenant().0;
    let flags: Vec<bool> = sqlx::query_scalar!(
        r#"INSERT INTO clients (id, tenant_id, reference, name)
         SELECT gen_random_uuid(), $1, r, n FROM UNNEST($2::text[], $3::text[]) AS u(r, n)
         ON CONFLICT (tenant_id, reference) DO NOTHING
         RETURNING true AS "inserted!""#,
        tenant,
        &refs as &[&str],
        &names as &[&str]
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(KindCounts::from_returned(refs.len(), &flags))
}

/// The connection's accounts, last occurrence of a bank account id winning, linked to their
/// clients: a manual assignment stands, else the bank's client, else the connection's first
/// matching rule (`assignments`).
async fn load_accounts(
    tx: &mut TenantTx,
    connection: ConnectionId,
    run: RunId,
    batch: &Batch,
) -> Result<KindCounts> {
    let accounts = dedup_last(&batch.accounts, |a| a.bank_account_id.clone());
    let tenant = tx.tenant().0;
    let flags: Vec<bool> = sqlx::query_scalar!(
        r#"INSERT INTO accounts AS t (id, tenant_id, connection_id, client_id, client_source,
            bank_client_ref, bank_account_id, iban, currency, kind, source_format,
            source_document, source_position, first_seen_run, last_changed_run)
         SELECT gen_random_uuid(), $1, $2, coalesce(c.id, r.client), CASE WHEN c.id IS NOT NULL
            THEN 'bank' WHEN r.client IS NOT NULL THEN 'rule' END, u.client_ref,
            u.bank_account_id, u.iban, u.currency, u.kind, u.format, u.document, u.position, $3, $3
         FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[])
            AS u(bank_account_id, iban, currency, kind, client_ref, format, document, position)
         LEFT JOIN clients c ON c.tenant_id = $1 AND c.reference = u.client_ref
         CROSS JOIN LATERAL (SELECT account_client_by_rule($1, $2, u.bank_account_id, u.iban)
            AS client) r
         ON CONFLICT (tenant_id, connection_id, bank_account_id) DO UPDATE SET
            -- A person's assignment stands whatever the bank or the rules say.
            client_id = CASE WHEN t.client_source = 'manual' THEN t.client_id
                ELSE EXCLUDED.client_id END,
            client_source = CASE WHEN t.client_source = 'manual' THEN t.client_source
                ELSE EXCLUDED.client_source END,
            bank_client_ref = EXCLUDED.bank_client_ref, iban = EXCLUDED.iban,
            currency = EXCLUDED.currency, kind = EXCLUDED.kind,
            source_format = EXCLUDED.source_format, source_document = EXCLUDED.source_document,
            source_position = EXCLUDED.source_position, last_changed_run = EXCLUDED.last_changed_run
         WHERE (t.client_id, t.client_source, t.bank_client_ref, t.iban, t.currency, t.kind)
            IS DISTINCT FROM (
                CASE WHEN t.client_source = 'manual' THEN t.client_id ELSE EXCLUDED.client_id END,
                CASE WHEN t.client_source = 'manual' THEN t.client_source
                    ELSE EXCLUDED.client_source END,
                EXCLUDED.bank_client_ref, EXCLUDED.iban, EXCLUDED.currency, EXCLUDED.kind)
           AND (nullif(current_setting('app.replay_upto', true), '') IS NULL
                OR t.last_changed_run <= nullif(current_setting('app.replay_upto', true), '')::uuid)
         RETURNING (xmax = 0) AS "inserted!""#,
        tenant,
        connection.0,
        run.0,
        &(accounts.iter().map(|a| a.bank_account_id.as_str()).collect::<Vec<_>>()) as &[&str],
        &(accounts.iter().map(|a| a.iban.as_ref().map(|i| i.as_str())).collect::<Vec<_>>()) as &[Option<&str>],
        &(accounts.iter().map(|a| a.currency.as_str()).collect::<Vec<_>>()) as &[&str],
        &(accounts.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>()) as &[&str],
        &(accounts.iter().map(|a| a.client.as_ref().map(|c| c.reference.as_str())).collect::<Vec<_>>()) as &[Option<&str>],
        &(accounts.iter().map(|a| a.provenance.format.as_str()).collect::<Vec<_>>()) as &[&str],
        &(accounts.iter().map(|a| a.provenance.document.as_str()).collect::<Vec<_>>()) as &[&str],
        &accounts.iter().map(|a| position(a.provenance.position)).collect::<Vec<_>>(),
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(KindCounts::from_returned(accounts.len(), &flags))
}

/// Securities, in key order (see [`load_clients`]): full descriptions upsert, mere references
/// only fill gaps.
///
/// Securities are the tenant's reference data, shared by every connection that reports them:
/// a sync may write them in a short transaction of their own before its load, so that another
/// connection's sync of the same tenant, upserting the same securities, does not wait for the
/// whole of this one's load to commit (a first sync of two statement banks of one tenant at
/// once waited 29 s, `bench/statements.sh`). Upserts only add what was missing, so a security
/// a failed sync leaves behind is one its retry writes the same.
pub async fn load_securities(tx: &mut TenantTx, run: RunId, batch: &Batch) -> Result<KindCounts> {
    let mut securities = dedup_last(&batch.securities, |s| s.key.clone());
    securities.sort_by(|a, b| a.key.cmp(&b.key));
    let (full, referenced): (Vec<_>, Vec<_>) = securities
        .into_iter()
        .partition(|s| s.detail == SecurityDetail::Full);
    let tenant = tx.tenant().0;
    let flags: Vec<bool> = sqlx::query_scalar!(
        r#"INSERT INTO securities AS t (id, tenant_id, security_key, isin, bank_security_id, valor, wkn, cusip,
            name, asset_class, currency, raw_isin, first_seen_run, last_changed_run)
         SELECT gen_random_uuid(), $1, u.key, u.isin, u.bank_id, u.valor, u.wkn, u.cusip, u.name, u.class,
            u.currency, u.raw_isin, $2, $2
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
            $10::text[], $11::text[], $12::text[])
            AS u(key, isin, bank_id, valor, wkn, cusip, name, class, currency, raw_isin)
         ON CONFLICT (tenant_id, security_key) DO UPDATE SET
            isin = coalesce(t.isin, EXCLUDED.isin),
            raw_isin = coalesce(t.raw_isin, EXCLUDED.raw_isin),
            bank_security_id = coalesce(t.bank_security_id, EXCLUDED.bank_security_id),
            valor = coalesce(t.valor, EXCLUDED.valor), wkn = coalesce(t.wkn, EXCLUDED.wkn),
            cusip = coalesce(t.cusip, EXCLUDED.cusip),
            name = CASE WHEN t.described THEN t.name ELSE EXCLUDED.name END,
            asset_class = CASE WHEN t.described THEN t.asset_class ELSE EXCLUDED.asset_class END,
            currency = coalesce(t.currency, EXCLUDED.currency),
            described = true,
            last_changed_run = EXCLUDED.last_changed_run
         -- A security is shared by every custodian that reports it, and each describes it its
         -- own way: the first full description stands and later ones only fill its gaps, so
         -- two banks' spellings of a name never flip it back and forth.
         WHERE (t.isin IS NULL AND EXCLUDED.isin IS NOT NULL)
            OR (t.bank_security_id IS NULL AND EXCLUDED.bank_security_id IS NOT NULL)
            OR (t.valor IS NULL AND EXCLUDED.valor IS NOT NULL)
            OR (t.wkn IS NULL AND EXCLUDED.wkn IS NOT NULL)
            OR (t.cusip IS NULL AND EXCLUDED.cusip IS NOT NULL)
            OR NOT t.described
            OR (t.currency IS NULL AND EXCLUDED.currency IS NOT NULL)
            OR (t.raw_isin IS NULL AND EXCLUDED.raw_isin IS NOT NULL)
         -- (No replay guard: this only fills gaps, which a replay may do too.)
         RETURNING (xmax = 0) AS "inserted!""#,
        tenant,
        run.0,
        &(full.iter().map(|s| s.key.as_str()).collect::<Vec<_>>()) as &[&str],
        &(full.iter().map(|s| s.isin.as_ref().map(|i| i.as_str())).collect::<Vec<_>>()) as &[Option<&str>],
        &(full.iter().map(|s| s.bank_security_id.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
        &(full.iter().map(|s| s.valor.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
        &(full.iter().map(|s| s.wkn.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
        &(full.iter().map(|s| s.cusip.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
        &(full.iter().map(|s| s.name.as_str()).collect::<Vec<_>>()) as &[&str],
        &(full.iter().map(|s| s.asset_class.as_str()).collect::<Vec<_>>()) as &[&str],
        &(full.iter().map(|s| s.currency.as_ref().map(|c| c.as_str())).collect::<Vec<_>>()) as &[Option<&str>],
        &(full.iter().map(|s| s.raw_isin.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
    )
    .fetch_all(tx.conn())
    .await?;
    let mut counts = KindCounts::from_returned(full.len(), &flags);
    let flags: Vec<bool> = sqlx::query_scalar!(
        r#"INSERT INTO securities (id, tenant_id, security_key, isin, bank_security_id, name, asset_class,
            described, raw_isin, first_seen_run, last_changed_run)
         SELECT gen_random_uuid(), $1, u.key, u.isin, u.bank_id, u.name, 'other', false, u.raw_isin, $2, $2
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
            AS u(key, isin, bank_id, name, raw_isin)
         ON CONFLICT (tenant_id, security_key) DO NOTHING
         RETURNING true AS "inserted!""#,
        tenant,
        run.0,
        &(referenced.iter().map(|s| s.key.as_str()).collect::<Vec<_>>()) as &[&str],
        &(referenced.iter().map(|s| s.isin.as_ref().map(|i| i.as_str())).collect::<Vec<_>>()) as &[Option<&str>],
        &(referenced.iter().map(|s| s.bank_security_id.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
        &(referenced.iter().map(|s| s.name.as_str()).collect::<Vec<_>>()) as &[&str],
        &(referenced.iter().map(|s| s.raw_isin.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
    )
    .fetch_all(tx.conn())
    .await?;
    let more = KindCounts::from_returned(referenced.len(), &flags);
    counts.inserted += more.inserted;
    counts.unchanged += more.unchanged;
    Ok(counts)
}

/// The keys of the positions a batch holds, as loaded: what a complete snapshot keeps.
struct HeldPositions {
    accounts: Vec<Uuid>,
    securities: Vec<Uuid>,
    dates: Vec<NaiveDate>,
}

/// Positions, last occurrence of (account, security, date) winning. Returns their keys for
/// [`close_unlisted_positions`].
async fn load_positions(
    tx: &mut TenantTx,
    run: RunId,
    batch: &Batch,
    refs: &References,
) -> Result<(KindCounts, HeldPositions)> {
    let positions = dedup_last(&batch.positions, |p| {
        (p.account.clone(), p.security.clone(), p.as_of)
    });
    let held = HeldPositions {
        accounts: positions
            .iter()
            .map(|p| refs.account(&p.account))
            .collect::<Result<Vec<Uuid>>>()?,
        securities: positions
            .iter()
            .map(|p| refs.security(p.security.as_str()))
            .collect::<Result<Vec<Uuid>>>()?,
        dates: positions.iter().map(|p| p.as_of).collect(),
    };
    let tenant = tx.tenant().0;
    let flags: Vec<bool> = sqlx::query_scalar!(
        r#"INSERT INTO positions AS t (id, tenant_id, account_id, security_id, as_of, quantity, quantity_type,
            price, price_type, price_currency, market_value, accrued_interest, cost,
            source_format, source_document, source_position, first_seen_run, last_changed_run)
         SELECT gen_random_uuid(), $1, u.account_id, u.security_id, u.as_of, u.quantity, u.quantity_type,
            u.price, u.price_type, u.price_currency, u.market_value, u.accrued_interest, u.cost,
            u.format, u.document, u.position, $2, $2
         FROM UNNEST($3::uuid[], $4::uuid[], $5::date[], $6::numeric[], $7::text[], $8::numeric[], $9::text[],
            $10::text[], $11::numeric[], $12::numeric[], $13::numeric[], $14::text[], $15::text[], $16::int[])
            AS u(account_id, security_id, as_of, quantity, quantity_type, price, price_type, price_currency,
                 market_value, accrued_interest, cost, format, document, position)
         ON CONFLICT (tenant_id, account_id, security_id, as_of) DO UPDATE SET
            quantity = EXCLUDED.quantity, quantity_type = EXCLUDED.quantity_type, price = EXCLUDED.price,
            price_type = EXCLUDED.price_type, price_currency = EXCLUDED.price_currency,
            market_value = EXCLUDED.market_value, accrued_interest = EXCLUDED.accrued_interest,
            cost = EXCLUDED.cost, source_format = EXCLUDED.source_format,
            source_document = EXCLUDED.source_document, source_position = EXCLUDED.source_position,
            last_changed_run = EXCLUDED.last_changed_run
         WHERE (t.quantity, t.quantity_type, t.price, t.price_type, t.price_currency, t.market_value,
                t.accrued_interest, t.cost)
            IS DISTINCT FROM (EXCLUDED.quantity, EXCLUDED.quantity_type, EXCLUDED.price, EXCLUDED.price_type,
                EXCLUDED.price_currency, EXCLUDED.market_value, EXCLUDED.accrued_interest, EXCLUDED.cost)
           AND (nullif(current_setting('app.replay_upto', true), '') IS NULL
                OR t.last_changed_run <= nullif(current_setting('app.replay_upto', true), '')::uuid)
         RETURNING (xmax = 0) AS "inserted!""#,
        tenant,
        run.0,
        &held.accounts,
        &held.securities,
        &held.dates,
        &positions.iter().map(|p| p.quantity).collect::<Vec<Decimal>>(),
        &(positions.iter().map(|p| p.quantity_type.as_str()).collect::<Vec<_>>()) as &[&str],
        &(positions.iter().map(|p| p.price).collect::<Vec<Option<Decimal>>>()) as &[Option<Decimal>],
        &(positions.iter().map(|p| p.price_type.as_str()).collect::<Vec<_>>()) as &[&str],
        &(positions.iter().map(|p| p.price_currency.as_ref().map(|c| c.as_str())).collect::<Vec<_>>()) as &[Option<&str>],
        &(positions.iter().map(|p| p.market_value).collect::<Vec<Option<Decimal>>>()) as &[Option<Decimal>],
        &(positions.iter().map(|p| p.accrued_interest).collect::<Vec<Option<Decimal>>>()) as &[Option<Decimal>],
        &(positions.iter().map(|p| p.cost).collect::<Vec<Option<Decimal>>>()) as &[Option<Decimal>],
        &(positions.iter().map(|p| p.provenance.format.as_str()).collect::<Vec<_>>()) as &[&str],
        &(positions.iter().map(|p| p.provenance.document.as_str()).collect::<Vec<_>>()) as &[&str],
        &positions.iter().map(|p| position(p.provenance.position)).collect::<Vec<_>>(),
    )
    .fetch_all(tx.conn())
    .await?;
    Ok((KindCounts::from_returned(positions.len(), &flags), held))
}

/// A complete snapshot closes the positions of its account and date that it does not list.
/// Returns how many it closed.
async fn close_unlisted_positions(
    tx: &mut TenantTx,
    batch: &Batch,
    refs: &References,
    held: &HeldPositions,
) -> Result<u64> {
    if batch.complete_snapshots.is_empty() {
        return Ok(0);
    }
    let snap_accounts = batch
        .complete_snapshots
        .iter()
        .map(|s| refs.account(&s.account))
        .collect::<Result<Vec<Uuid>>>()?;
    let snap_dates: Vec<NaiveDate> = batch.complete_snapshots.iter().map(|s| s.as_of).collect();
    // A set difference (hashed or sorted), not a correlated NOT EXISTS: the planner runs that
    // one as a nested loop over the listed keys for every held position, which took minutes
    // for 50,000 positions (bench/ingest.sh).
    let closed = sqlx::query!(
        "WITH gone AS (
             SELECT p.account_id, p.security_id, p.as_of
               FROM positions p
               JOIN UNNEST($2::uuid[], $3::date[]) AS s(account_id, as_of)
                 ON p.account_id = s.account_id AND p.as_of = s.as_of
              WHERE p.tenant_id = $1
             EXCEPT
             SELECT * FROM UNNEST($4::uuid[], $5::uuid[], $6::date[])
         )
         DELETE FROM positions p
         USING gone g
         WHERE p.tenant_id = $1 AND p.account_id = g.account_id
           AND p.security_id = g.security_id AND p.as_of = g.as_of
           AND (nullif(current_setting('app.replay_upto', true), '') IS NULL
                OR p.last_changed_run <= nullif(current_setting('app.replay_upto', true), '')::uuid)",
        tx.tenant().0,
        &snap_accounts,
        &snap_dates,
        &held.accounts,
        &held.securities,
        &held.dates,
    )
    .execute(tx.conn())
    .await?;
    Ok(closed.rows_affected())
}

/// Records which complete snapshots loaded (account and date), those that list nothing
/// included: what the position check of a later sync follows on from.
async fn record_snapshots(
    tx: &mut TenantTx,
    run: RunId,
    batch: &Batch,
    refs: &References,
) -> Result<()> {
    if batch.complete_snapshots.is_empty() {
        return Ok(());
    }
    let accounts = batch
        .complete_snapshots
        .iter()
        .map(|s| refs.account(&s.account))
        .collect::<Result<Vec<Uuid>>>()?;
    let dates: Vec<NaiveDate> = batch.complete_snapshots.iter().map(|s| s.as_of).collect();
    sqlx::query!(
        "INSERT INTO position_snapshots (tenant_id, account_id, as_of, first_seen_run)
         SELECT $1, u.account_id, u.as_of, $2
         FROM UNNEST($3::uuid[], $4::date[]) AS u(account_id, as_of)
         ON CONFLICT (tenant_id, account_id, as_of) DO NOTHING",
        tx.tenant().0,
        run.0,
        &accounts,
        &dates,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Cash balances, last occurrence of (account, currency, kind, date) winning.
async fn load_balances(
    tx: &mut TenantTx,
    run: RunId,
    batch: &Batch,
    refs: &References,
) -> Result<KindCounts> {
    let balances = dedup_last(&batch.balances, |b| {
        (b.account.clone(), b.currency, b.kind, b.as_of)
    });
    let tenant = tx.tenant().0;
    let flags: Vec<bool> = sqlx::query_scalar!(
        r#"INSERT INTO cash_balances AS t (id, tenant_id, account_id, currency, kind, as_of, amount,
            source_format, source_document, source_position, first_seen_run, last_changed_run)
         SELECT gen_random_uuid(), $1, u.account_id, u.currency, u.kind, u.as_of, u.amount,
            u.format, u.document, u.position, $2, $2
         FROM UNNEST($3::uuid[], $4::text[], $5::text[], $6::date[], $7::numeric[], $8::text[], $9::text[],
            $10::int[]) AS u(account_id, currency, kind, as_of, amount, format, document, position)
         ON CONFLICT (tenant_id, account_id, currency, kind, as_of) DO UPDATE SET
            amount = EXCLUDED.amount, source_format = EXCLUDED.source_format,
            source_document = EXCLUDED.source_document, source_position = EXCLUDED.source_position,
            last_changed_run = EXCLUDED.last_changed_run
         WHERE t.amount IS DISTINCT FROM EXCLUDED.amount
           AND (nullif(current_setting('app.replay_upto', true), '') IS NULL
                OR t.last_changed_run <= nullif(current_setting('app.replay_upto', true), '')::uuid)
         RETURNING (xmax = 0) AS "inserted!""#,
        tenant,
        run.0,
        &balances.iter().map(|b| refs.account(&b.account)).collect::<Result<Vec<Uuid>>>()?,
        &(balances.iter().map(|b| b.currency.as_str()).collect::<Vec<_>>()) as &[&str],
        &(balances.iter().map(|b| b.kind.as_str()).collect::<Vec<_>>()) as &[&str],
        &balances.iter().map(|b| b.as_of).collect::<Vec<_>>(),
        &balances.iter().map(|b| b.amount).collect::<Vec<Decimal>>(),
        &(balances.iter().map(|b| b.provenance.format.as_str()).collect::<Vec<_>>()) as &[&str],
        &(balances.iter().map(|b| b.provenance.document.as_str()).collect::<Vec<_>>()) as &[&str],
        &balances.iter().map(|b| position(b.provenance.position)).collect::<Vec<_>>(),
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(KindCounts::from_returned(balances.len(), &flags))
}

/// Transactions, last occurrence of (account, natural key) winning.
async fn load_transactions(
    tx: &mut TenantTx,
    run: RunId,
    batch: &Batch,
    refs: &References,
) -> Result<KindCounts> {
    let txs = dedup_last(&batch.transactions, |t| {
        (t.account.clone(), t.natural_key.clone())
    });
    let tx_securities = txs
        .iter()
        .map(|t| {
            t.security
                .as_ref()
                .map(|k| refs.security(k.as_str()))
                .transpose()
        })
        .collect::<Result<Vec<Option<Uuid>>>>()?;
    let tenant = tx.tenant().0;
    let flags: Vec<bool> = sqlx::query_scalar!(
        r#"INSERT INTO transactions AS t (id, tenant_id, account_id, natural_key, bank_reference, booking_date,
            value_date, trade_date, settlement_date, type, bank_code, amount, direction, signed_amount,
            currency, security_id, quantity, price, fees, status, reversal, counterparty, description,
            source_format, source_document, source_position, first_seen_run, last_changed_run)
         SELECT gen_random_uuid(), $1, u.account_id, u.natural_key, u.bank_reference, u.booking_date,
            u.value_date, u.trade_date, u.settlement_date, u.type, u.bank_code, u.amount, u.direction,
            CASE u.direction WHEN 'credit' THEN u.amount ELSE -u.amount END,
            u.currency, u.security_id, u.quantity, u.price, u.fees, u.status, u.reversal, u.counterparty,
            u.description, u.format, u.document, u.position, $2, $2
         FROM UNNEST($3::uuid[], $4::text[], $5::text[], $6::date[], $7::date[], $8::date[], $9::date[],
            $10::text[], $11::text[], $12::numeric[], $13::text[], $14::text[], $15::uuid[], $16::numeric[],
            $17::numeric[], $18::numeric[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[],
            $24::int[], $25::bool[])
            AS u(account_id, natural_key, bank_reference, booking_date, value_date, trade_date,
                 settlement_date, type, bank_code, amount, direction, currency, security_id, quantity,
                 price, fees, status, counterparty, description, format, document, position, reversal)
         ON CONFLICT (tenant_id, account_id, natural_key) DO UPDATE SET
            bank_reference = EXCLUDED.bank_reference, booking_date = EXCLUDED.booking_date,
            value_date = EXCLUDED.value_date, trade_date = EXCLUDED.trade_date,
            settlement_date = EXCLUDED.settlement_date, type = EXCLUDED.type, bank_code = EXCLUDED.bank_code,
            amount = EXCLUDED.amount, direction = EXCLUDED.direction, signed_amount = EXCLUDED.signed_amount,
            currency = EXCLUDED.currency, security_id = EXCLUDED.security_id, quantity = EXCLUDED.quantity,
            price = EXCLUDED.price, fees = EXCLUDED.fees, status = EXCLUDED.status,
            reversal = EXCLUDED.reversal, counterparty = EXCLUDED.counterparty, description = EXCLUDED.description,
            source_format = EXCLUDED.source_format, source_document = EXCLUDED.source_document,
            source_position = EXCLUDED.source_position, last_changed_run = EXCLUDED.last_changed_run
         WHERE (t.bank_reference, t.booking_date, t.value_date, t.trade_date, t.settlement_date, t.type,
                t.bank_code, t.amount, t.direction, t.currency, t.security_id, t.quantity, t.price, t.fees,
                t.status, t.reversal, t.counterparty, t.description)
            IS DISTINCT FROM (EXCLUDED.bank_reference, EXCLUDED.booking_date, EXCLUDED.value_date,
                EXCLUDED.trade_date, EXCLUDED.settlement_date, EXCLUDED.type, EXCLUDED.bank_code,
                EXCLUDED.amount, EXCLUDED.direction, EXCLUDED.currency, EXCLUDED.security_id,
                EXCLUDED.quantity, EXCLUDED.price, EXCLUDED.fees, EXCLUDED.status, EXCLUDED.reversal,
                EXCLUDED.counterparty, EXCLUDED.description)
           AND (nullif(current_setting('app.replay_upto', true), '') IS NULL
                OR t.last_changed_run <= nullif(current_setting('app.replay_upto', true), '')::uuid)
         RETURNING (xmax = 0) AS "inserted!""#,
        tenant,
        run.0,
        &txs.iter().map(|t| refs.account(&t.account)).collect::<Result<Vec<Uuid>>>()?,
        &(txs.iter().map(|t| t.natural_key.as_str()).collect::<Vec<_>>()) as &[&str],
        &(txs.iter().map(|t| t.bank_reference.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
        &txs.iter().map(|t| t.booking_date).collect::<Vec<_>>(),
        &(txs.iter().map(|t| t.value_date).collect::<Vec<_>>()) as &[Option<NaiveDate>],
        &(txs.iter().map(|t| t.trade_date).collect::<Vec<_>>()) as &[Option<NaiveDate>],
        &(txs.iter().map(|t| t.settlement_date).collect::<Vec<_>>()) as &[Option<NaiveDate>],
        &(txs.iter().map(|t| t.kind.as_str()).collect::<Vec<_>>()) as &[&str],
        &(txs.iter().map(|t| t.bank_code.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
        &txs.iter().map(|t| t.amount).collect::<Vec<Decimal>>(),
        &(txs.iter().map(|t| t.direction.as_str()).collect::<Vec<_>>()) as &[&str],
        &(txs.iter().map(|t| t.currency.as_str()).collect::<Vec<_>>()) as &[&str],
        &tx_securities as &[Option<Uuid>],
        &(txs.iter().map(|t| t.quantity).collect::<Vec<Option<Decimal>>>()) as &[Option<Decimal>],
        &(txs.iter().map(|t| t.price).collect::<Vec<Option<Decimal>>>()) as &[Option<Decimal>],
        &(txs.iter().map(|t| t.fees).collect::<Vec<Option<Decimal>>>()) as &[Option<Decimal>],
        &(txs.iter().map(|t| t.status.as_str()).collect::<Vec<_>>()) as &[&str],
        &(txs.iter().map(|t| t.counterparty.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
        &(txs.iter().map(|t| t.description.as_deref()).collect::<Vec<_>>()) as &[Option<&str>],
        &(txs.iter().map(|t| t.provenance.format.as_str()).collect::<Vec<_>>()) as &[&str],
        &(txs.iter().map(|t| t.provenance.document.as_str()).collect::<Vec<_>>()) as &[&str],
        &txs.iter().map(|t| position(t.provenance.position)).collect::<Vec<_>>(),
        &txs.iter().map(|t| t.reversal).collect::<Vec<_>>(),
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(KindCounts::from_returned(txs.len(), &flags))
}

/// Prices of securities as the bank reports them, with their source (the connection) and
/// kind: each position's price on its date (one per connection, security and date: the last
/// account's wins, as a bank prices a security once a day), and each trade's deal price on
/// its trade date (one per transaction). Set-based like the rest: one upsert per kind that
/// writes nothing when nothing changed.
async fn load_prices(
    tx: &mut TenantTx,
    connection: ConnectionId,
    run: RunId,
    batch: &Batch,
    refs: &References,
) -> Result<KindCounts> {
    let mut counts = load_position_prices(tx, connection, run, batch, refs).await?;
    let trades = load_trade_prices(tx, connection, run, batch, refs).await?;
    counts.inserted += trades.inserted;
    counts.updated += trades.updated;
    counts.unchanged += trades.unchanged;
    Ok(counts)
}

/// The exchange rates the batch's documents state, one per account, pair and date (the last
/// one stated wins, as for positions).
async fn load_rates(
    tx: &mut TenantTx,
    run: RunId,
    batch: &Batch,
    refs: &References,
) -> Result<KindCounts> {
    let rates = dedup_last(&batch.rates, |r| {
        (r.account.clone(), r.base, r.quote, r.date)
    });
    if rates.is_empty() {
        return Ok(KindCounts::default());
    }
    let tenant = tx.tenant().0;
    let flags: Vec<bool> = sqlx::query_scalar!(
        r#"INSERT INTO bank_fx_rates AS t (tenant_id, account_id, base, quote, rate_date, rate,
            source_format, source_document, source_position, first_seen_run, last_changed_run)
         SELECT $1, u.account_id, u.base, u.quote, u.rate_date, u.rate, u.format, u.document,
            u.position, $2, $2
         FROM UNNEST($3::uuid[], $4::text[], $5::text[], $6::date[], $7::numeric[], $8::text[],
            $9::text[], $10::int[])
            AS u(account_id, base, quote, rate_date, rate, format, document, position)
         ON CONFLICT (tenant_id, account_id, base, quote, rate_date) DO UPDATE SET
            rate = EXCLUDED.rate, source_format = EXCLUDED.source_format,
            source_document = EXCLUDED.source_document,
            source_position = EXCLUDED.source_position, last_changed_run = EXCLUDED.last_changed_run
         WHERE t.rate <> EXCLUDED.rate
           AND (nullif(current_setting('app.replay_upto', true), '') IS NULL
                OR t.last_changed_run <= nullif(current_setting('app.replay_upto', true), '')::uuid)
         RETURNING (xmax = 0) AS "inserted!""#,
        tenant,
        run.0,
        &rates
            .iter()
            .map(|r| refs.account(&r.account))
            .collect::<Result<Vec<Uuid>>>()?,
        &(rates.iter().map(|r| r.base.as_str()).collect::<Vec<_>>()) as &[&str],
        &(rates.iter().map(|r| r.quote.as_str()).collect::<Vec<_>>()) as &[&str],
        &rates.iter().map(|r| r.date).collect::<Vec<_>>(),
        &rates.iter().map(|r| r.rate).collect::<Vec<Decimal>>(),
        &(rates
            .iter()
            .map(|r| r.provenance.format.as_str())
            .collect::<Vec<_>>()) as &[&str],
        &(rates
            .iter()
            .map(|r| r.provenance.document.as_str())
            .collect::<Vec<_>>()) as &[&str],
        &rates
            .iter()
            .map(|r| position(r.provenance.position))
            .collect::<Vec<_>>(),
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(KindCounts::from_returned(rates.len(), &flags))
}

/// The prices of the batch's positions that state one.
async fn load_position_prices(
    tx: &mut TenantTx,
    connection: ConnectionId,
    run: RunId,
    batch: &Batch,
    refs: &References,
) -> Result<KindCounts> {
    let priced: Vec<_> = batch
        .positions
        .iter()
        .filter(|p| p.price.is_some())
        .collect();
    let prices = dedup_last(&priced, |p| (p.security.clone(), p.as_of));
    let tenant = tx.tenant().0;
    let flags: Vec<bool> = sqlx::query_scalar!(
        r#"INSERT INTO prices AS t (id, tenant_id, security_id, price_date, connection_id, kind, price,
            price_type, currency, source_format, source_document, source_position, first_seen_run,
            last_changed_run)
         SELECT gen_random_uuid(), $1, u.security_id, u.price_date, $2, 'position', u.price,
            u.price_type, u.currency, u.format, u.document, u.position, $3, $3
         FROM UNNEST($4::uuid[], $5::date[], $6::numeric[], $7::text[], $8::text[], $9::text[],
            $10::text[], $11::int[])
            AS u(security_id, price_date, price, price_type, currency, format, document, position)
         ON CONFLICT (tenant_id, connection_id, security_id, price_date) WHERE kind = 'position'
         DO UPDATE SET
            price = EXCLUDED.price, price_type = EXCLUDED.price_type, currency = EXCLUDED.currency,
            source_format = EXCLUDED.source_format, source_document = EXCLUDED.source_document,
            source_position = EXCLUDED.source_position, last_changed_run = EXCLUDED.last_changed_run
         WHERE (t.price, t.price_type, t.currency)
            IS DISTINCT FROM (EXCLUDED.price, EXCLUDED.price_type, EXCLUDED.currency)
           AND (nullif(current_setting('app.replay_upto', true), '') IS NULL
                OR t.last_changed_run <= nullif(current_setting('app.replay_upto', true), '')::uuid)
         RETURNING (xmax = 0) AS "inserted!""#,
        tenant,
        connection.0,
        run.0,
        &prices.iter().map(|p| refs.security(p.security.as_str())).collect::<Result<Vec<Uuid>>>()?,
        &prices.iter().map(|p| p.as_of).collect::<Vec<_>>(),
        &prices.iter().map(|p| p.price.unwrap_or_default()).collect::<Vec<Decimal>>(),
        &(prices.iter().map(|p| p.price_type.as_str()).collect::<Vec<_>>()) as &[&str],
        &(prices.iter().map(|p| p.price_currency.as_ref().map(|c| c.as_str())).collect::<Vec<_>>()) as &[Option<&str>],
        &(prices.iter().map(|p| p.provenance.format.as_str()).collect::<Vec<_>>()) as &[&str],
        &(prices.iter().map(|p| p.provenance.document.as_str()).collect::<Vec<_>>()) as &[&str],
        &prices.iter().map(|p| position(p.provenance.position)).collect::<Vec<_>>(),
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(KindCounts::from_returned(prices.len(), &flags))
}

/// The deal prices of the batch's trades: buys and sells of a security with a price, not
/// reversals, on their trade date (else their booking date), in the trade's currency. A
/// transaction does not say whether its price is per unit or a percentage of face amount
/// (bank_a's JSON has no field for it): its own quantity, price and amount tell
/// (`Transaction::implied_price_type`); where they cannot, the type the security's positions
/// are priced in, else percent for a bond and an amount for anything else.
async fn load_trade_prices(
    tx: &mut TenantTx,
    connection: ConnectionId,
    run: RunId,
    batch: &Batch,
    refs: &References,
) -> Result<KindCounts> {
    let trades: Vec<_> = batch
        .transactions
        .iter()
        .filter(|t| {
            matches!(t.kind, TransactionType::Buy | TransactionType::Sell)
                && !t.reversal
                && t.price.is_some()
                && t.security.is_some()
        })
        .collect();
    let trades = dedup_last(&trades, |t| (t.account.clone(), t.natural_key.clone()));
    let tenant = tx.tenant().0;
    let flags: Vec<bool> = sqlx::query_scalar!(
        r#"INSERT INTO prices AS t (id, tenant_id, security_id, price_date, connection_id, kind,
            transaction_id, price, price_type, currency, source_format, source_document,
            source_position, first_seen_run, last_changed_run)
         SELECT gen_random_uuid(), $1, tr.security_id, u.price_date, $2, 'trade', tr.id, u.price,
            coalesce(u.price_type, quoted.price_type,
                     CASE s.asset_class WHEN 'bond' THEN 'percent' ELSE 'amount' END),
            u.currency, u.format, u.document, u.position, $3, $3
         FROM UNNEST($4::uuid[], $5::text[], $6::date[], $7::numeric[], $8::text[], $9::text[],
            $10::text[], $11::int[], $12::text[])
            AS u(account_id, natural_key, price_date, price, currency, format, document, position,
                 price_type)
         JOIN transactions tr
           ON tr.tenant_id = $1 AND tr.account_id = u.account_id AND tr.natural_key = u.natural_key
         JOIN securities s ON s.id = tr.security_id
         LEFT JOIN LATERAL (
             SELECT p.price_type FROM prices p
              WHERE p.tenant_id = $1 AND p.security_id = tr.security_id AND p.kind = 'position'
              ORDER BY p.price_date DESC LIMIT 1
         ) quoted ON true
         ON CONFLICT (tenant_id, transaction_id) WHERE kind = 'trade'
         DO UPDATE SET
            security_id = EXCLUDED.security_id, price_date = EXCLUDED.price_date,
            price = EXCLUDED.price, price_type = EXCLUDED.price_type, currency = EXCLUDED.currency,
            source_format = EXCLUDED.source_format, source_document = EXCLUDED.source_document,
            source_position = EXCLUDED.source_position, last_changed_run = EXCLUDED.last_changed_run
         WHERE (t.security_id, t.price_date, t.price, t.price_type, t.currency)
            IS DISTINCT FROM (EXCLUDED.security_id, EXCLUDED.price_date, EXCLUDED.price,
                EXCLUDED.price_type, EXCLUDED.currency)
           AND (nullif(current_setting('app.replay_upto', true), '') IS NULL
                OR t.last_changed_run <= nullif(current_setting('app.replay_upto', true), '')::uuid)
         RETURNING (xmax = 0) AS "inserted!""#,
        tenant,
        connection.0,
        run.0,
        &trades
            .iter()
            .map(|t| refs.account(&t.account))
            .collect::<Result<Vec<Uuid>>>()?,
        &(trades
            .iter()
            .map(|t| t.natural_key.as_str())
            .collect::<Vec<_>>()) as &[&str],
        &trades
            .iter()
            .map(|t| t.trade_date.unwrap_or(t.booking_date))
            .collect::<Vec<_>>(),
        &trades
            .iter()
            .map(|t| t.price.unwrap_or_default())
            .collect::<Vec<Decimal>>(),
        &(trades
            .iter()
            .map(|t| t.currency.as_str())
            .collect::<Vec<_>>()) as &[&str],
        &(trades
            .iter()
            .map(|t| t.provenance.format.as_str())
            .collect::<Vec<_>>()) as &[&str],
        &(trades
            .iter()
            .map(|t| t.provenance.document.as_str())
            .collect::<Vec<_>>()) as &[&str],
        &trades
            .iter()
            .map(|t| position(t.provenance.position))
            .collect::<Vec<_>>(),
        &(trades
            .iter()
            .map(|t| t.implied_price_type().map(|p| p.as_str()))
            .collect::<Vec<_>>()) as &[Option<&str>],
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(KindCounts::from_returned(trades.len(), &flags))
}

/// Keeps the last record of each key, in first-seen order (a page served twice loads once).
fn dedup_last<T, K: std::hash::Hash + Eq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut index: HashMap<K, usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<&T> = Vec::with_capacity(items.len());
    for item in items {
        match index.entry(key(item)) {
            std::collections::hash_map::Entry::Occupied(e) => out[*e.get()] = item,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(item);
            }
        }
    }
    out
}

fn position(p: u32) -> i32 {
    i32::try_from(p).unwrap_or(i32::MAX)
}

/// The database ids of the accounts and securities a batch's records refer to, resolved once
/// accounts and securities are loaded; a reference that resolves to nothing is a data error.
struct References {
    accounts: HashMap<String, Uuid>,
    securities: HashMap<String, Uuid>,
}

impl References {
    async fn resolve(
        tx: &mut TenantTx,
        connection: ConnectionId,
        batch: &Batch,
    ) -> Result<References> {
        Ok(References {
            accounts: resolve_accounts(tx, connection, batch).await?,
            securities: resolve_securities(tx, batch).await?,
        })
    }

    fn account(&self, reference: &str) -> Result<Uuid> {
        self.accounts.get(reference).copied().ok_or_else(|| {
            StoreError::Data(format!("a record refers to unknown account '{reference}'"))
        })
    }

    fn security(&self, key: &str) -> Result<Uuid> {
        self.securities
            .get(key)
            .copied()
            .ok_or_else(|| StoreError::Data(format!("a record refers to unknown security '{key}'")))
    }
}

async fn resolve_accounts(
    tx: &mut TenantTx,
    connection: ConnectionId,
    batch: &Batch,
) -> Result<HashMap<String, Uuid>> {
    let mut refs: Vec<&str> = batch
        .positions
        .iter()
        .map(|p| p.account.as_str())
        .chain(batch.balances.iter().map(|b| b.account.as_str()))
        .chain(batch.transactions.iter().map(|t| t.account.as_str()))
        .chain(batch.complete_snapshots.iter().map(|s| s.account.as_str()))
        .chain(batch.rates.iter().map(|r| r.account.as_str()))
        .collect();
    refs.sort_unstable();
    refs.dedup();
    let rows = sqlx::query!(
        "SELECT bank_account_id, id FROM accounts
         WHERE tenant_id = $1 AND connection_id = $2 AND bank_account_id = ANY($3)",
        tx.tenant().0,
        connection.0,
        &refs as &[&str]
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.bank_account_id, r.id))
        .collect())
}

async fn resolve_securities(tx: &mut TenantTx, batch: &Batch) -> Result<HashMap<String, Uuid>> {
    let mut keys: Vec<&str> = batch
        .positions
        .iter()
        .map(|p| p.security.as_str())
        .chain(
            batch
                .transactions
                .iter()
                .filter_map(|t| t.security.as_ref().map(|s| s.as_str())),
        )
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let rows = sqlx::query!(
        "SELECT security_key, id FROM securities WHERE tenant_id = $1 AND security_key = ANY($2)",
        tx.tenant().0,
        &keys as &[&str]
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(|r| (r.security_key, r.id)).collect())
}
