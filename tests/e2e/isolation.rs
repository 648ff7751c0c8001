//! Tenant isolation, proven below the API: PostgreSQL row-level security as the app role.

use eam_store::TenantId;
use reqwest::Method;

use crate::kit::{TestEnv, small_params};

const TENANT_TABLES: &[&str] = &[
    "tenant_modules",
    "clients",
    "users",
    "bank_connections",
    "sync_runs",
    "accounts",
    "securities",
    "positions",
    "cash_balances",
    "transactions",
];

async fn count(store: &eam_store::Store, tenant: TenantId, sql: &'static str) -> i64 {
    let mut tx = store.tenant_tx(tenant).await.unwrap();
    sqlx::query_scalar(sql)
        .bind(tenant.0)
        .fetch_one(tx.conn())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_role_with_tenant_a_set_sees_none_of_tenant_b_rows() {
    let env = TestEnv::start(small_params(11)).await;
    let a = env.tenant("Firm A").await;
    let b = env.tenant("Firm B").await;
    for tenant in [a, b] {
        let token = env.token(tenant, &["ops", "advisor", "support"]);
        let connection = env
            .create_connection(&token, &env.connection_body(tenant))
            .await;
        let job = env.sync_and_wait(&token, &connection).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }

    // The app role really is subject to RLS.
    let mut tx = env.store.tenant_tx(a).await.unwrap();
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(tx.conn())
            .await
            .unwrap();
    assert!(!superuser && !bypass, "the app role must not bypass RLS");
    drop(tx);

    for table in TENANT_TABLES {
        let own = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table} WHERE tenant_id = $1"));
        let foreign = sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id <> $1"
        ));
        let mut tx = env.store.tenant_tx(a).await.unwrap();
        let own: i64 = sqlx::query_scalar(own)
            .bind(a.0)
            .fetch_one(tx.conn())
            .await
            .unwrap();
        let foreign: i64 = sqlx::query_scalar(foreign)
            .bind(a.0)
            .fetch_one(tx.conn())
            .await
            .unwrap();
        drop(tx);
        // users has no rows yet in either tenant; every other table has rows of both.
        if *table != "users" {
            assert!(own > 0, "{table}: tenant A has rows");
        }
        assert_eq!(
            foreign, 0,
            "{table}: tenant B's rows are invisible to tenant A"
        );

        // The owner (superuser) sees both tenants, so the rows really exist.
        let mut owner = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.owner_url)
            .await
            .unwrap();
        let all = sqlx::AssertSqlSafe(format!("SELECT count(DISTINCT tenant_id) FROM {table}"));
        let tenants: i64 = sqlx::query_scalar(all).fetch_one(&mut owner).await.unwrap();
        if *table != "users" {
            assert_eq!(tenants, 2, "{table}: both tenants have rows");
        }
    }
    let visible: i64 = count(&env.store, a, "SELECT count(*) FROM tenants WHERE id <> $1").await;
    assert_eq!(visible, 0, "tenants: only one's own row");

    // Writes cannot cross either: an UPDATE as tenant A touches none of B's rows.
    let mut tx = env.store.tenant_tx(a).await.unwrap();
    let touched = sqlx::query("UPDATE accounts SET iban = iban WHERE tenant_id = $1")
        .bind(b.0)
        .execute(tx.conn())
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(touched, 0);
    let inserted = sqlx::query(
        "INSERT INTO clients (id, tenant_id, reference, name) VALUES (gen_random_uuid(), $1, 'X', 'X')",
    )
    .bind(b.0)
    .execute(tx.conn())
    .await;
    assert!(
        inserted.is_err(),
        "RLS WITH CHECK refuses a row for another tenant"
    );
    drop(tx);

    // With no tenant set, nothing is visible at all.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&env.db.owner_url)
                .unwrap()
                .username("eam_app"),
        )
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "no tenant set: no row visible");
    pool.close().await;

    // And through the API: tenant A's advisor asking for tenant B's account gets 404.
    let mut tx = env.store.tenant_tx(b).await.unwrap();
    let b_account: uuid::Uuid = sqlx::query_scalar("SELECT id FROM accounts LIMIT 1")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    drop(tx);
    let token_a = env.token(a, &["advisor"]);
    for path in [
        format!("/holdings?account_id={b_account}"),
        format!("/balances?account_id={b_account}"),
        format!("/transactions?account_id={b_account}"),
    ] {
        let (status, body, _) = env.call(Method::GET, &path, Some(&token_a), None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    env.finish().await;
}
