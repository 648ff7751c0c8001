//! The API's read cache: pages are served from memory only while nothing changed, to the
//! callers allowed to see them, and only while PostgreSQL's change feed is followed.
//!
//! These tests give cached pages an hour to live, so that only the change feed (or the API's
//! own writes) can make a page go: a test that passed because a page expired would prove
//! nothing.

use std::time::{Duration, Instant};

use eam_store::TenantId;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

use crate::kit::{EnvOptions, TestEnv, small_params};
use crate::metrics::{Scrape, scrape, scrape_until};

const DEADLINE: Duration = Duration::from_secs(20);

async fn env_with_long_lived_pages(seed: u64) -> TestEnv {
    let env = TestEnv::start_with(
        small_params(seed),
        EnvOptions {
            read_cache: eam_api::read_cache::ReadCacheSettings {
                max_bytes: 16 << 20,
                ttl: Duration::from_secs(3600),
            },
            ..EnvOptions::default()
        },
    )
    .await;
    scrape_until(&env, "the read cache follows the change feed", |s| {
        s.count("eam_read_cache_live", &[]) == 1.0
    })
    .await;
    env
}

fn lookups(s: &Scrape, result: &str) -> f64 {
    s.count("eam_read_cache_lookups_total", &[("result", result)])
}

/// A synced tenant: staff token and its custody accounts (id, client id), in the API's order.
async fn synced_tenant(env: &TestEnv, name: &str) -> (TenantId, String, Vec<(String, String)>) {
    let tenant = env.tenant(name).await;
    let staff = env.token(tenant, &["tenant_admin", "ops", "advisor"]);
    let connection = env
        .create_connection(&staff, &env.connection_body(tenant))
        .await;
    let job = env.sync_and_wait(&staff, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let accounts = env.get("/accounts", &staff).await;
    let custody: Vec<(String, String)> = accounts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "custody")
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["client"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(!custody.is_empty(), "{accounts}");
    (tenant, staff, custody)
}

fn quantities(holdings: &Value) -> Vec<Decimal> {
    holdings["holdings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["quantity"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// GETs `path` until `done` holds for its answer, or panics at the deadline.
async fn get_until(env: &TestEnv, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let page = env.get(path, token).await;
        if done(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "{path} never changed: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_is_served_from_memory_until_postgres_announces_a_change_to_its_tenant() {
    let env = env_with_long_lived_pages(71).await;
    let (a, a_staff, a_accounts) = synced_tenant(&env, "Cache A").await;
    let (_b, b_staff, b_accounts) = synced_tenant(&env, "Cache B").await;
    let a_path = format!("/holdings?account_id={}", a_accounts[0].0);
    let b_path = format!("/holdings?account_id={}", b_accounts[0].0);

    let a_page = env.get(&a_path, &a_staff).await;
    let b_page = env.get(&b_path, &b_staff).await;
    let before = scrape(&env).await;
    assert_eq!(env.get(&a_path, &a_staff).await, a_page);
    assert_eq!(env.get(&b_path, &b_staff).await, b_page);
    let after = scrape(&env).await;
    assert_eq!(lookups(&after, "hit") - lookups(&before, "hit"), 2.0);
    assert_eq!(lookups(&after, "miss"), lookups(&before, "miss"));
    assert!(after.count("eam_read_cache_bytes", &[]) > 0.0);

    // A write in tenant A's scope, by another connection than the API's (as a worker's load
    // would be): the API learns of it only from PostgreSQL.
    let account = Uuid::parse_str(&a_accounts[0].0).unwrap();
    let mut tx = env.store.tenant_tx(a).await.unwrap();
    let changed = sqlx::query("UPDATE positions SET quantity = quantity + 1 WHERE account_id = $1")
        .bind(account)
        .execute(tx.conn())
        .await
        .unwrap()
        .rows_affected();
    assert!(changed > 0);
    tx.commit().await.unwrap();
    let expected: Vec<Decimal> = quantities(&a_page)
        .iter()
        .map(|q| q + Decimal::ONE)
        .collect();
    let a_new = get_until(&env, &a_path, &a_staff, |p| quantities(p) == expected).await;
    assert_eq!(a_new["holdings"].as_array().unwrap().len(), expected.len());

    // Tenant B's page was not dropped: still answered from memory.
    let before = scrape(&env).await;
    assert_eq!(env.get(&b_path, &b_staff).await, b_page);
    let after = scrape(&env).await;
    assert_eq!(lookups(&after, "hit") - lookups(&before, "hit"), 1.0);

    // A write with no tenant scope (the owner, at psql) may concern anyone: every page goes.
    let mut owner = sqlx::PgConnection::connect(&env.db.owner_url)
        .await
        .unwrap();
    let account = Uuid::parse_str(&b_accounts[0].0).unwrap();
    sqlx::query("UPDATE positions SET quantity = quantity * 2 WHERE account_id = $1")
        .bind(account)
        .execute(&mut owner)
        .await
        .unwrap();
    let expected: Vec<Decimal> = quantities(&b_page)
        .iter()
        .map(|q| q * Decimal::TWO)
        .collect();
    get_until(&env, &b_path, &b_staff, |p| quantities(p) == expected).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_page_of_one_client_is_never_served_to_another_client() {
    let env = env_with_long_lived_pages(72).await;
    let (tenant, staff, accounts) = synced_tenant(&env, "Cache clients").await;
    let (theirs, their_client) = accounts.last().unwrap().clone();
    let (_, my_client) = accounts
        .iter()
        .find(|(_, c)| *c != their_client)
        .expect("two clients with custody accounts")
        .clone();
    let client_token = |client: &str| {
        env.issuer
            .sign(&eam_auth::TokenRequest {
                subject: format!("client-user-{client}"),
                tenant_id: tenant.0,
                roles: vec!["client".into()],
                client_id: Some(Uuid::parse_str(client).unwrap()),
                ttl: Duration::from_secs(600),
                mfa_at: None,
            })
            .unwrap()
    };
    for path in [
        format!("/holdings?account_id={theirs}"),
        format!("/balances?account_id={theirs}"),
        format!("/transactions?account_id={theirs}&limit=5"),
    ] {
        // The advisor's reads cache the page (the second one is a hit).
        let page = env.get(&path, &staff).await;
        let before = scrape(&env).await;
        assert_eq!(env.get(&path, &staff).await, page);
        let after = scrape(&env).await;
        assert_eq!(
            lookups(&after, "hit") - lookups(&before, "hit"),
            1.0,
            "{path}"
        );

        // Another client's user: 404, exactly as when PostgreSQL answers.
        let (status, refused, _) = env
            .call(Method::GET, &path, Some(&client_token(&my_client)), None)
            .await;
        assert_eq!(status, 404, "{path}: {refused}");
        assert_eq!(
            refused["detail"],
            format!("account {theirs} not found"),
            "{refused}"
        );
        // The account's own client: the same page.
        assert_eq!(env.get(&path, &client_token(&their_client)).await, page);
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_through_the_api_is_read_back_at_once() {
    let env = env_with_long_lived_pages(73).await;
    let (_, staff, accounts) = synced_tenant(&env, "Cache writes").await;
    let client = accounts[0].1.clone();
    let listed = env.get("/accounts", &staff).await;
    let before = scrape(&env).await;
    assert_eq!(env.get("/accounts", &staff).await, listed);
    assert_eq!(
        lookups(&scrape(&env).await, "hit") - lookups(&before, "hit"),
        1.0
    );

    let (status, changed, _) = env
        .call(
            Method::PATCH,
            &format!("/clients/{client}"),
            Some(&staff),
            Some(&json!({"name": "Renamed Client"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    // No waiting: the API dropped its pages before it answered the change.
    let relisted = env.get("/accounts", &staff).await;
    let names: Vec<&Value> = relisted
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["client"]["id"] == client.as_str())
        .map(|a| &a["client"]["name"])
        .collect();
    assert!(!names.is_empty());
    assert!(names.iter().all(|n| *n == "Renamed Client"), "{relisted}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_change_feed_is_lost_nothing_is_served_from_memory() {
    let env = env_with_long_lived_pages(74).await;
    let (tenant, staff, accounts) = synced_tenant(&env, "Cache feed").await;
    let path = format!("/holdings?account_id={}", accounts[0].0);
    let page = env.get(&path, &staff).await;
    assert_eq!(env.get(&path, &staff).await, page);

    // Cut the feed's connection, as a database restart or a network fault would.
    let mut owner = sqlx::PgConnection::connect(&env.db.owner_url)
        .await
        .unwrap();
    let feed_pids = "SELECT pid FROM pg_stat_activity
        WHERE application_name = $1 AND datname = current_database()";
    let old: Vec<i32> = sqlx::query_scalar(feed_pids)
        .bind(eam_store::changes::APPLICATION_NAME)
        .fetch_all(&mut owner)
        .await
        .unwrap();
    assert_eq!(old.len(), 1, "one feed connection: {old:?}");
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(old[0])
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert!(terminated);

    // The API subscribes again on a new connection; the page cached before is gone (anything
    // may have changed while no one listened), so the next read goes to PostgreSQL.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now: Vec<i32> = sqlx::query_scalar(feed_pids)
            .bind(eam_store::changes::APPLICATION_NAME)
            .fetch_all(&mut owner)
            .await
            .unwrap();
        let live = scrape(&env).await.count("eam_read_cache_live", &[]) == 1.0;
        if live && now.len() == 1 && now[0] != old[0] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the feed never came back: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = scrape(&env).await;
    assert_eq!(env.get(&path, &staff).await, page);
    let after = scrape(&env).await;
    assert_eq!(lookups(&after, "miss") - lookups(&before, "miss"), 1.0);
    assert_eq!(lookups(&after, "hit"), lookups(&before, "hit"));

    // And the new subscription announces changes like the first.
    let account = Uuid::parse_str(&accounts[0].0).unwrap();
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    sqlx::query("UPDATE positions SET quantity = quantity + 3 WHERE account_id = $1")
        .bind(account)
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let expected: Vec<Decimal> = quantities(&page)
        .iter()
        .map(|q| q + Decimal::from(3))
        .collect();
    get_until(&env, &path, &staff, |p| quantities(p) == expected).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holdings_pages_at_their_edges_read_alike_from_postgres_and_from_memory() {
    let env = env_with_long_lived_pages(75).await;
    let (_, staff, custody) = synced_tenant(&env, "Cache edges").await;
    let accounts = env.get("/accounts", &staff).await;
    let cash = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "cash")
        .expect("a cash account")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let custody = &custody[0].0;
    let end = crate::kit::end_date();
    let cases = [
        // No position at all: no date, nothing held.
        (format!("/holdings?account_id={cash}"), Value::Null, 0),
        // A date before any snapshot: that date, nothing held.
        (
            format!("/holdings?account_id={custody}&as_of=1999-12-31"),
            json!("1999-12-31"),
            0,
        ),
        // The latest snapshot, by default and by its date.
        (
            format!("/holdings?account_id={custody}"),
            json!(end.to_string()),
            usize::MAX,
        ),
        (
            format!("/holdings?account_id={custody}&as_of={end}"),
            json!(end.to_string()),
            usize::MAX,
        ),
    ];
    let mut latest: Option<Value> = None;
    for (path, as_of, held) in cases {
        let page = env.get(&path, &staff).await;
        assert_eq!(page["as_of"], as_of, "{path}: {page}");
        let holdings = page["holdings"].as_array().unwrap();
        if held == 0 {
            assert!(holdings.is_empty(), "{path}: {page}");
        } else {
            assert!(!holdings.is_empty(), "{path}");
            match &latest {
                Some(first) => assert_eq!(&page["holdings"], first, "{path}"),
                None => latest = Some(page["holdings"].clone()),
            }
        }
        // The same page again, from memory.
        let before = scrape(&env).await;
        assert_eq!(env.get(&path, &staff).await, page, "{path}");
        assert_eq!(
            lookups(&scrape(&env).await, "hit") - lookups(&before, "hit"),
            1.0
        );
    }
    // An account that does not exist: 404, never cached.
    let missing = format!("/holdings?account_id={}", Uuid::new_v4());
    for _ in 0..2 {
        let (status, body, _) = env.call(Method::GET, &missing, Some(&staff), None).await;
        assert_eq!(status, 404, "{body}");
    }
    env.finish().await;
}

/// A GET with `If-None-Match` and the answer's `ETag`: 304 without a body.
async fn conditional_get(
    env: &TestEnv,
    path: &str,
    token: &str,
    etag: Option<&str>,
) -> (u16, String, String) {
    let mut req = env
        .http
        .get(format!("{}{path}", env.api))
        .bearer_auth(token);
    if let Some(tag) = etag {
        req = req.header("if-none-match", tag);
    }
    let answer = req.send().await.expect("request");
    let status = answer.status().as_u16();
    let tag = answer
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, tag, answer.text().await.unwrap())
}

/// Issue 21: a client polling a portfolio page downloads it again only when it changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portfolio_read_with_its_etag_is_304_until_the_page_changes() {
    let env = env_with_long_lived_pages(74).await;
    let (_, staff, accounts) = synced_tenant(&env, "Conditional reads").await;
    let client = accounts[0].1.clone();
    let path = format!("/holdings?account_id={}", accounts[0].0);
    let (status, tag, body) = conditional_get(&env, &path, &staff, None).await;
    assert_eq!(status, 200);
    assert!(tag.starts_with('"') && tag.len() == 34, "{tag}");
    assert!(body.contains("positions"), "{body}");
    // Served from PostgreSQL or from memory, the same bytes have the same tag.
    let (status, again, body_again) = conditional_get(&env, &path, &staff, None).await;
    assert_eq!((status, &again, &body_again), (200, &tag, &body));
    let (status, same, empty) = conditional_get(&env, &path, &staff, Some(&tag)).await;
    assert_eq!(
        (status, same.as_str(), empty.as_str()),
        (304, tag.as_str(), "")
    );
    // In a list, in its weak form: still 304; another tag: the page.
    let listed = format!("\"0123\", W/{tag}");
    assert_eq!(
        conditional_get(&env, &path, &staff, Some(&listed)).await.0,
        304
    );
    assert_eq!(
        conditional_get(&env, &path, &staff, Some("\"0123\""))
            .await
            .0,
        200
    );

    // The accounts list names the client: renamed, the page and its tag change.
    let (status, list_tag, list) = conditional_get(&env, "/accounts", &staff, None).await;
    assert_eq!(status, 200);
    // Compressed as the client accepts, with a tag of that encoding's own.
    let gzipped = env
        .http
        .get(format!("{}/accounts", env.api))
        .bearer_auth(&staff)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let gzip_tag = gzipped.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(gzip_tag, list_tag);
    let bytes = gzipped.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(
        bytes.len() * 3 < list.len(),
        "{} of {}",
        bytes.len(),
        list.len()
    );
    let (status, changed, _) = env
        .call(
            Method::PATCH,
            &format!("/clients/{client}"),
            Some(&staff),
            Some(&json!({"name": "Renamed for the tag"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let (status, new_tag, page) = conditional_get(&env, "/accounts", &staff, Some(&list_tag)).await;
    assert_eq!(status, 200);
    assert_ne!(new_tag, list_tag);
    assert!(page.contains("Renamed for the tag"));
    env.finish().await;
}
