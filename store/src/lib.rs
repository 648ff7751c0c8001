//! Persistence: the connection pool, tenant-scoped transactions, the run state machine, the
//! idempotent load of canonical records and the read queries.
//!
//! The only way to reach tenant data is [`Store::tenant_tx`]: a transaction that sets
//! `app.tenant_id` before anything else, so PostgreSQL row-level security (the second lock)
//! agrees with what the code asked for (the first). Functions take `&mut TenantTx` so a reader
//! sees what is atomic. The app connects as a role without BYPASSRLS; migrations run as the
//! owner.
//!
//! SQL is checked at compile time: every statement is a `sqlx::query!` / `query_as!` /
//! `query_scalar!` against the schema the migrations build, read from the offline data
//! committed in `.sqlx/` (`.cargo/config.toml` sets `SQLX_OFFLINE=true`, so a build needs no
//! database). After changing a query or a migration, `make sqlx-prepare` rewrites `.sqlx/`;
//! `make sqlx-check` (in `.ci/run`) fails while it is stale. The shared column lists
//! (`select_run!`, `select_connection!`, ...) are `macro_rules!` that expand to one checked
//! query per tail. Column aliases ending in `!` (`AS "count!"`) tell the macros a value is
//! never NULL where PostgreSQL cannot prove it (aggregates, set-returning functions); `?`
//! (`AS "client_name?"`) that it may be, where the macros' inference misses an outer join.
//! Arrays of borrowed strings bound to `text[]` are written `&v as &[&str]`: the macros expect
//! `&[String]` there, and `as` is sqlx's override of a parameter's Rust type (the statement is
//! still checked; that argument's Rust type is not).
//!
//! One statement stays dynamic, behind `sqlx::AssertSqlSafe`: the `BEGIN; SELECT set_config(..)`
//! of [`Store::scoped_tx`], a simple-protocol batch that opens the transaction and sets the
//! tenant and client in one round trip. The simple protocol takes no bind parameters, so the
//! two ids are formatted into the text; they are UUIDs formatted by the code, never caller
//! text, and a prepared statement would cost the extra round trip this saves.

pub mod approvals;
pub mod archive;
pub mod assignments;
pub mod audit;
pub mod breakers;
pub mod certificate_warnings;
pub mod changes;
pub mod clients;
pub mod connections;
pub mod custodian_limit;
pub mod custodians;
pub mod documents;
pub mod fx_rates;
pub mod gauges;
pub mod idempotency;
pub mod load;
pub mod market_data_runs;
pub mod notifications;
pub mod portfolio_changes;
pub mod prices;
pub mod read;
pub mod reconciliation;
pub mod report_schedules;
pub mod reports;
pub mod resources;
pub mod runs;
pub mod schedules;
pub mod snapshots;
pub mod tasks;
pub mod tenants;
pub mod users;
pub mod webhooks;

use std::str::FromStr;

pub use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

pub use eam_model::ids::{self, AccountId, ClientId, ConnectionId, RunId, TenantId};

/// The embedded migrations (`migrations/` at the workspace root).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("a run cannot go from {from} to {to}")]
    InvalidTransition { from: String, to: String },
    #[error("data error: {0}")]
    Data(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// True when retrying later can succeed: the database is unreachable, restarting or
    /// overloaded, or the transaction lost a serialization race or a deadlock. Such errors are
    /// the network's or the moment's, never the data's.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_),
            ) => true,
            StoreError::Database(sqlx::Error::Database(e)) => e.code().is_some_and(|code| {
                // 08: connection exception; 57P01-03: admin/crash shutdown, cannot connect now;
                // 53300: too many connections; 40001/40P01: serialization failure, deadlock.
                code.starts_with("08")
                    || matches!(
                        &*code,
                        "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
                    )
            }),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The app's handle on PostgreSQL.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// The keys the audit chain is written and verified with (none: unkeyed SHA-256).
    audit_keys: std::sync::Arc<audit::AuditKeys>,
}

/// An error that says the connection is gone (not the statement wrong): lost socket, or the
/// server ending the session (shutdown, restart, terminated backend).
fn is_dead_connection(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| matches!(c.as_ref(), "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// How to connect as the app role.
#[derive(Debug, Clone)]
pub struct AppDb<'a> {
    /// The owner URL (host, port, database are taken from it).
    pub owner_url: &'a str,
    pub app_user: &'a str,
    pub app_password: &'a str,
    pub max_connections: u32,
}

impl Store {
    /// Connects as the app role (same host and database as the owner URL, other credentials).
    pub async fn connect(db: AppDb<'_>) -> Result<Self> {
        let mut opts = PgConnectOptions::from_str(db.owner_url)?.username(db.app_user);
        opts = if db.app_password.is_empty() {
            opts
        } else {
            opts.password(db.app_password)
        };
        // One connection first: a wrong host, port, database or password fails at once with
        // its own error, rather than as the pool's timeout ten seconds later.
        sqlx::Connection::close(
            <sqlx::PgConnection as sqlx::Connection>::connect_with(&opts).await?,
        )
        .await?;
        let pool = PgPoolOptions::new()
            .max_connections(db.max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            // No round trip to test a connection before handing it out (sqlx already tests it
            // when it comes back): `scoped_tx` retries a connection found dead on first use,
            // and elsewhere a dead one fails one call, like any lost connection.
            .test_before_acquire(false)
            .connect_with(opts)
            .await?;
        Ok(Store::from_pool(pool))
    }

    /// Wraps an existing pool (which must connect as a role subject to RLS).
    pub fn from_pool(pool: PgPool) -> Self {
        Store {
            pool,
            audit_keys: Default::default(),
        }
    }

    /// The same store, writing and verifying audit entries with these keys.
    pub fn with_audit_keys(self, keys: audit::AuditKeys) -> Self {
        Store {
            audit_keys: std::sync::Arc::new(keys),
            ..self
        }
    }

    /// The keys audit entries are written and verified with.
    pub fn audit_keys(&self) -> &audit::AuditKeys {
        &self.audit_keys
    }

    /// Opens a transaction with the tenant set for row-level security.
    pub async fn tenant_tx(&self, tenant: TenantId) -> Result<TenantTx> {
        self.scoped_tx(tenant, None).await
    }

    /// Opens a transaction for one tenant and, for a client user, one client: PostgreSQL
    /// then hides every other client's accounts and what hangs off them (a restrictive policy
    /// on top of the tenant's).
    pub async fn scoped_tx(&self, tenant: TenantId, client: Option<ClientId>) -> Result<TenantTx> {
        // BEGIN and the settings in one round trip (a simple query of two statements). Both
        // values are UUIDs formatted here, never caller text.
        let begin = format!(
            "BEGIN; SELECT set_config('app.tenant_id', '{}', true), set_config('app.client_id', '{}', true)",
            tenant.0,
            client.map(|c| c.0.to_string()).unwrap_or_default()
        );
        // A pooled connection that died while idle (the server restarted) fails here, first:
        // it is dropped and the next one tried, at most once per pooled connection.
        let mut dead = 0;
        loop {
            match self
                .pool
                .begin_with(sqlx::AssertSqlSafe(begin.clone()))
                .await
            {
                Ok(tx) => {
                    return Ok(TenantTx {
                        tx,
                        tenant,
                        audit_keys: self.audit_keys.clone(),
                    });
                }
                Err(e) if is_dead_connection(&e) && dead < self.pool.size() => dead += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether a tenant exists (through a narrow function: the app sees one tenant at a time).
    pub async fn tenant_exists(&self, tenant: TenantId) -> Result<bool> {
        Ok(
            sqlx::query_scalar!(r#"SELECT tenant_exists($1) AS "exists!""#, tenant.0)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Claims up to `max` runs of any tenant that are due for a push to the queue (see the
    /// `claim_due_runs` function in the migrations): the one cross-tenant read of the app, and
    /// it yields only ids. Each claimed run is marked pushed, so concurrent dispatchers split
    /// the work instead of pushing a run twice.
    pub async fn claim_due_runs(
        &self,
        stale_after: std::time::Duration,
        max: u32,
    ) -> Result<Vec<runs::DueRun>> {
        let stale_after = i32::try_from(stale_after.as_secs()).unwrap_or(i32::MAX);
        let max = i32::try_from(max).unwrap_or(i32::MAX);
        Ok(sqlx::query_as!(
            runs::DueRun,
            r#"SELECT run_id AS "run_id!", tenant_id AS "tenant_id!", connection_id AS "connection_id!",
                status AS "status!", enqueue_count AS "enqueue_count!"
             FROM claim_due_runs($1, $2)"#,
            stale_after,
            max,
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The pool, for the platform-level queries of this crate (never tenant data).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One connection for platform-wide reads (`fx_rates`) by a caller without a tenant
    /// transaction; one that has a transaction reads on it instead (`TenantTx::conn`).
    pub async fn platform_connection(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    /// Every tenant's connections whose last sync read a client certificate, with its expiry,
    /// soonest first (see the `client_certificate_expiries` function in the migrations): for
    /// platform metrics; it yields ids and dates only.
    pub async fn client_certificate_expiries(&self) -> Result<Vec<connections::CertificateExpiry>> {
        Ok(sqlx::query_as!(
            connections::CertificateExpiry,
            r#"SELECT tenant_id AS "tenant_id!", connection_id AS "connection_id!", custodian AS "custodian!",
                expires_at AS "expires_at!"
             FROM client_certificate_expiries()"#,
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Checks the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query!("SELECT 1 AS one")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    /// Checks that every migration embedded in this binary is applied, unchanged, and none
    /// failed (readiness). Migrations newer than the binary are fine: during a rolling
    /// deployment old processes keep serving a schema their successors already migrated.
    pub async fn migrations_current(&self) -> Result<MigrationState> {
        let applied: Vec<(i64, bool, Vec<u8>)> =
            sqlx::query!("SELECT version, success, checksum FROM _sqlx_migrations")
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| (r.version, r.success, r.checksum))
                .collect();
        Ok(migration_state(&applied))
    }
}

/// How the database's migrations compare with the ones embedded in the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationState {
    Current,
    /// Embedded migrations not applied yet (run `eam migrate`).
    Pending(Vec<i64>),
    /// Migrations whose last run failed (sqlx leaves them marked so).
    Failed(Vec<i64>),
    /// Migrations applied from a different file than the one embedded now.
    Changed(Vec<i64>),
}

impl std::fmt::Display for MigrationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        match self {
            MigrationState::Current => f.write_str("every migration is applied"),
            MigrationState::Pending(v) => write!(f, "migrations not applied: {}", list(v)),
            MigrationState::Failed(v) => write!(f, "migrations that failed: {}", list(v)),
            MigrationState::Changed(v) => {
                write!(f, "migrations changed since applied: {}", list(v))
            }
        }
    }
}

/// Compares `(version, success, checksum)` rows of `_sqlx_migrations` with [`MIGRATOR`].
fn migration_state(applied: &[(i64, bool, Vec<u8>)]) -> MigrationState {
    let by_version: std::collections::HashMap<i64, (bool, &[u8])> = applied
        .iter()
        .map(|(v, ok, sum)| (*v, (*ok, sum.as_slice())))
        .collect();
    let (mut pending, mut failed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for m in MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
    {
        match by_version.get(&m.version) {
            None => pending.push(m.version),
            Some((false, _)) => failed.push(m.version),
            Some((true, sum)) if *sum != &*m.checksum => changed.push(m.version),
            Some(_) => {}
        }
    }
    if !failed.is_empty() {
        MigrationState::Failed(failed)
    } else if !pending.is_empty() {
        MigrationState::Pending(pending)
    } else if !changed.is_empty() {
        MigrationState::Changed(changed)
    } else {
        MigrationState::Current
    }
}

/// Runs the migrations as the owner.
pub async fn migrate(owner_url: &str) -> Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(owner_url)
        .await?;
    MIGRATOR.run(&pool).await?;
    pool.close().await;
    Ok(())
}

/// A transaction bound to one tenant.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: TenantId,
    audit_keys: std::sync::Arc<audit::AuditKeys>,
}

impl TenantTx {
    /// The tenant this transaction is scoped to.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// The underlying connection, for queries.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The keys audit entries are written with.
    pub fn audit_keys(&self) -> &audit::AuditKeys {
        &self.audit_keys
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied() -> Vec<(i64, bool, Vec<u8>)> {
        MIGRATOR
            .iter()
            .map(|m| (m.version, true, m.checksum.to_vec()))
            .collect()
    }

    #[test]
    fn migrations_are_current_only_when_each_embedded_one_applied_unchanged() {
        assert_eq!(migration_state(&applied()), MigrationState::Current);
        let last = MIGRATOR
            .iter()
            .map(|m| m.version)
            .max()
            .expect("migrations");

        let mut rows = applied();
        rows.retain(|(v, _, _)| *v != last);
        assert_eq!(migration_state(&rows), MigrationState::Pending(vec![last]));

        let mut rows = applied();
        rows.iter_mut().find(|(v, _, _)| *v == last).expect("row").1 = false;
        assert_eq!(migration_state(&rows), MigrationState::Failed(vec![last]));

        let mut rows = applied();
        rows.iter_mut().find(|(v, _, _)| *v == last).expect("row").2 = vec![0];
        assert_eq!(migration_state(&rows), MigrationState::Changed(vec![last]));

        // A newer schema than the binary (a rolling deployment) is still current for it.
        let mut rows = applied();
        rows.push((last + 1, true, vec![1]));
        assert_eq!(migration_state(&rows), MigrationState::Current);
    }
}
