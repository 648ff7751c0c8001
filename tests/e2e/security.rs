//! Security: who may do what, what nobody may see, and what a token must be.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use eam_api::permissions::{self, Role};
use eam_store::TenantId;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::kit::{AUDIENCE, EnvOptions, ISSUER, TestEnv, small_params};

/// A tenant with synced data, ids of each kind of object, and a registered user.
struct Firm {
    tenant: TenantId,
    staff: String,
    connection: String,
    job: String,
    /// A raw document the job archived.
    document: String,
    /// (client id, one of its accounts)
    clients: Vec<(String, String)>,
    /// A security the first client holds.
    security: String,
    user: String,
}

const STAFF: &[&str] = &["tenant_admin", "ops", "support", "advisor"];

async fn firm(env: &TestEnv, name: &str) -> Firm {
    let tenant = env.tenant(name).await;
    let staff = env.token(tenant, STAFF);
    let connection = env
        .create_connection(&staff, &env.connection_body(tenant))
        .await;
    let job = env.sync_and_wait(&staff, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let documents = env
        .get(
            &format!("/documents?run_id={}&limit=1", job["id"].as_str().unwrap()),
            &staff,
        )
        .await;
    let document = documents["documents"][0]["id"].as_str().unwrap().to_owned();
    let accounts = env.get("/accounts", &staff).await;
    let mut clients: BTreeMap<String, String> = BTreeMap::new();
    for a in accounts.as_array().unwrap() {
        clients
            .entry(a["client"]["id"].as_str().unwrap().to_owned())
            .or_insert_with(|| a["id"].as_str().unwrap().to_owned());
    }
    let first_client = clients.keys().next().unwrap().clone();
    let mut security = None;
    for a in accounts.as_array().unwrap() {
        if a["client"]["id"] != first_client.as_str() {
            continue;
        }
        let held = env
            .get(
                &format!("/holdings?account_id={}", a["id"].as_str().unwrap()),
                &staff,
            )
            .await;
        if let Some(h) = held["holdings"].as_array().unwrap().first() {
            security = Some(h["security"]["id"].as_str().unwrap().to_owned());
            break;
        }
    }
    let (code, user, _) = env
        .call(
            Method::POST,
            "/users",
            Some(&staff),
            Some(&json!({"subject": format!("target-{}", Uuid::new_v4()), "roles": ["support"]})),
        )
        .await;
    assert_eq!(code, 201, "{user}");
    Firm {
        tenant,
        staff,
        connection,
        job: job["id"].as_str().unwrap().to_owned(),
        document,
        clients: clients.into_iter().collect(),
        security: security.expect("the first client holds a security"),
        user: user["id"].as_str().unwrap().to_owned(),
    }
}

/// A report queued by the firm's staff for `client` (January 2026).
async fn report_for(env: &TestEnv, firm: &Firm, client: &str) -> String {
    let (code, report, _) = env
        .call(
            Method::POST,
            "/reports",
            Some(&firm.staff),
            Some(&report_body(client)),
        )
        .await;
    assert_eq!(code, 202, "{report}");
    report["id"].as_str().unwrap().to_owned()
}

fn report_body(client: &str) -> Value {
    json!({
        "kind": "portfolio_statement", "client_id": client,
        "from": "2026-01-01", "to": "2026-01-31", "formats": ["pdf"],
    })
}

fn webhook_body() -> Value {
    json!({"url": "http://127.0.0.1:9/hook", "event_types": ["sync.failed"]})
}

/// A webhook endpoint registered by the firm's staff.
async fn webhook_for(env: &TestEnv, firm: &Firm) -> String {
    let (code, body, _) = env
        .call(
            Method::POST,
            "/webhooks",
            Some(&firm.staff),
            Some(&webhook_body()),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    body["endpoint"]["id"].as_str().unwrap().to_owned()
}

fn report_schedule_body() -> Value {
    json!({"business_day": 2, "time": "07:00", "timezone": "Europe/Zurich"})
}

/// A token of one role; a client user is the firm's first client.
fn token_for(env: &TestEnv, firm: &Firm, role: Role) -> String {
    let client = (role == Role::Client).then(|| Uuid::parse_str(&firm.clients[0].0).unwrap());
    env.issuer
        .sign(&eam_auth::TokenRequest {
            subject: format!("matrix-{}", role.as_str()),
            tenant_id: firm.tenant.0,
            roles: vec![role.as_str().to_owned()],
            client_id: client,
            ttl: Duration::from_secs(600),
            mfa_at: Some(eam_auth::unix_now()),
        })
        .unwrap()
}

/// A concrete request for an operation of the OpenAPI document, on `firm`'s objects; objects
/// an operation deletes are made fresh for it.
async fn request_for(
    env: &TestEnv,
    firm: &Firm,
    method: &str,
    path: &str,
) -> (String, Option<Value>) {
    let account = &firm.clients[0].1;
    let client = &firm.clients[0].0;
    let unique = Uuid::new_v4().simple().to_string();
    match (method, path) {
        ("get", "/holdings" | "/balances" | "/transactions") => {
            (format!("{path}?account_id={account}"), None)
        }
        ("get", "/accounts/{id}/valuation") => (format!("/accounts/{account}/valuation"), None),
        ("get", "/clients/{id}/valuation") => (format!("/clients/{client}/valuation"), None),
        ("get", "/accounts/{id}/performance") => (
            format!("/accounts/{account}/performance?from=2026-01-01&to=2026-01-31"),
            None,
        ),
        ("get", "/clients/{id}/performance") => (
            format!("/clients/{client}/performance?from=2026-01-01&to=2026-01-31"),
            None,
        ),
        ("get", "/securities/{id}/prices") => {
            (format!("/securities/{}/prices", firm.security), None)
        }
        ("post", "/market-data/runs") => (path.into(), Some(json!({"file": "daily"}))),
        ("post", "/reports") => (path.into(), Some(report_body(client))),
        ("get", "/reports/{id}") => (
            format!("/reports/{}", report_for(env, firm, client).await),
            None,
        ),
        ("get", "/reports/{id}/files/{format}") => (
            format!("/reports/{}/files/pdf", report_for(env, firm, client).await),
            None,
        ),
        ("get", "/market-data/runs/{id}") => {
            let (code, run, _) = env
                .call(
                    Method::POST,
                    "/market-data/runs",
                    Some(&firm.staff),
                    Some(&json!({"file": "daily"})),
                )
                .await;
            assert_eq!(code, 202, "{run}");
            (
                format!("/market-data/runs/{}", run["id"].as_str().unwrap()),
                None,
            )
        }
        ("post", "/connections") => (path.into(), Some(env.connection_body(firm.tenant))),
        ("delete", "/connections/{id}") => {
            let fresh = env
                .create_connection(&firm.staff, &env.connection_body(firm.tenant))
                .await;
            (format!("/connections/{fresh}"), None)
        }
        ("patch", "/connections/{id}") => (
            format!("/connections/{}", firm.connection),
            Some(json!({"name": "Renamed"})),
        ),
        ("post", "/connections/{id}/pause") => (
            format!("/connections/{}/pause", firm.connection),
            Some(json!({"reason": "matrix"})),
        ),
        ("put", "/connections/{id}/schedule") => (
            format!("/connections/{}/schedule", firm.connection),
            Some(json!({"cron": "0 2 * * *", "timezone": "Europe/Zurich"})),
        ),
        ("delete", "/schedules/default") => {
            let (code, body, _) = env
                .call(
                    Method::PUT,
                    "/schedules/default",
                    Some(&firm.staff),
                    Some(&json!({"cron": "0 2 * * *", "timezone": "Europe/Zurich"})),
                )
                .await;
            assert_eq!(code, 200, "{body}");
            (path.into(), None)
        }
        ("get" | "delete", "/reports/schedule") => {
            let (code, body, _) = env
                .call(
                    Method::PUT,
                    "/reports/schedule",
                    Some(&firm.staff),
                    Some(&report_schedule_body()),
                )
                .await;
            assert_eq!(code, 200, "{body}");
            (path.into(), None)
        }
        ("put", "/reports/schedule") => (path.into(), Some(report_schedule_body())),
        ("post", "/webhooks") => (path.into(), Some(webhook_body())),
        ("put", "/me/notifications") => (path.into(), Some(json!({"event_types": []}))),
        ("get" | "post", p) if p.starts_with("/tasks/{id}") => (
            p.replace("{id}", &Uuid::new_v4().to_string()),
            (method == "post").then(|| {
                if p.ends_with("/assign") {
                    json!({"assignee": "someone"})
                } else {
                    json!({"text": "a note"})
                }
            }),
        ),
        ("get" | "post", p) if p.starts_with("/approvals/{id}") => (
            p.replace("{id}", &Uuid::new_v4().to_string()),
            (method == "post").then(|| json!({"note": "matrix"})),
        ),
        // The firm's policy asks for no approvals: keeping it so changes nothing.
        ("put", "/approvals/policy") => (path.into(), Some(json!({"actions": []}))),
        ("get" | "patch" | "delete", "/webhooks/{id}") => (
            format!("/webhooks/{}", webhook_for(env, firm).await),
            (method == "patch").then(|| json!({"description": "changed"})),
        ),
        ("post", "/webhooks/{id}/rotate-secret") => (
            format!("/webhooks/{}/rotate-secret", webhook_for(env, firm).await),
            Some(json!({})),
        ),
        ("get", "/webhooks/{id}/deliveries") => (
            format!("/webhooks/{}/deliveries", webhook_for(env, firm).await),
            None,
        ),
        ("post", "/webhooks/{id}/deliveries/{delivery_id}/redeliver") => (
            format!(
                "/webhooks/{}/deliveries/{}/redeliver",
                webhook_for(env, firm).await,
                Uuid::new_v4()
            ),
            None,
        ),
        ("put", "/schedules/default") => (
            path.into(),
            Some(json!({"cron": "0 2 * * *", "timezone": "Europe/Zurich"})),
        ),
        ("put", "/accounts/{id}/client") => (
            format!("/accounts/{account}/client"),
            Some(json!({ "client_id": client })),
        ),
        ("delete", "/accounts/{id}/client") => (format!("/accounts/{account}/client"), None),
        ("post", "/connections/{id}/assignment-rules") => (
            format!("/connections/{}/assignment-rules", firm.connection),
            Some(json!({ "pattern": format!("M-{unique}*"), "client_id": client })),
        ),
        ("delete", "/connections/{id}/assignment-rules/{rule_id}") => (
            format!(
                "/connections/{}/assignment-rules/{}",
                firm.connection,
                Uuid::new_v4()
            ),
            None,
        ),
        (_, p) if p.starts_with("/connections/{id}") => (p.replace("{id}", &firm.connection), None),
        ("post", "/jobs/retry") => (path.into(), Some(json!({}))),
        (_, p) if p.starts_with("/jobs/{id}") => (p.replace("{id}", &firm.job), None),
        (_, p) if p.starts_with("/documents/{id}") => (p.replace("{id}", &firm.document), None),
        ("post", "/tenants") => (path.into(), Some(json!({"name": format!("Firm {unique}")}))),
        ("put", "/tenants/{id}/modules") => (
            format!("/tenants/{}/modules", firm.tenant),
            Some(json!({"modules": {"bank_sync": true}})),
        ),
        ("post", "/users") => (
            path.into(),
            Some(json!({"subject": format!("new-{unique}"), "roles": ["advisor"]})),
        ),
        ("patch", "/users/{id}") => (
            format!("/users/{}", firm.user),
            Some(json!({"email": format!("{unique}@example.com")})),
        ),
        (_, "/users/{id}") => (format!("/users/{}", firm.user), None),
        ("post", "/clients") => (
            path.into(),
            Some(json!({"reference": format!("C-{unique}"), "name": "New client"})),
        ),
        ("delete", "/clients/{id}") => {
            let (code, fresh, _) = env
                .call(
                    Method::POST,
                    "/clients",
                    Some(&firm.staff),
                    Some(&json!({"reference": format!("D-{unique}"), "name": "To delete"})),
                )
                .await;
            assert_eq!(code, 201, "{fresh}");
            (format!("/clients/{}", fresh["id"].as_str().unwrap()), None)
        }
        ("patch", "/clients/{id}") => (
            format!("/clients/{client}"),
            Some(json!({"name": "Renamed client"})),
        ),
        (_, "/clients/{id}") => (format!("/clients/{client}"), None),
        ("put", "/custodians/{code}") => (
            format!("/custodians/matrix-{unique}"),
            Some(
                json!({"name": "Matrix bank", "protocol": "bank_b", "base_url": "https://127.0.0.1:9"}),
            ),
        ),
        (_, p) if !p.contains('{') => (p.into(), None),
        _ => panic!("no request recipe for {method} {path}: add one to the security test"),
    }
}

/// Every operation of the OpenAPI document, as (method, path template).
async fn operations(env: &TestEnv) -> Vec<(String, String)> {
    let doc: Value = env
        .http
        .get(format!("{}/openapi.json", env.api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            ops.push((method.clone(), path.clone()));
        }
    }
    ops.sort();
    ops
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.to_uppercase().as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_declares_its_action_and_refuses_exactly_the_roles_without_it() {
    let env = TestEnv::start(small_params(71)).await;
    let a = firm(&env, "Firm A").await;
    let ops = operations(&env).await;
    assert!(ops.len() >= 30, "{ops:?}");
    for (m, path) in &ops {
        assert!(
            permissions::action_of(m, path).is_some(),
            "{m} {path} declares no action in permissions::OPERATIONS"
        );
    }
    let mut checked = 0;
    for (m, path) in &ops {
        let action = permissions::action_of(m, path).unwrap();
        for role in Role::ALL {
            let token = token_for(&env, &a, role);
            let (url, body) = request_for(&env, &a, m, path).await;
            let (status, answer, _) = env.call(method(m), &url, Some(&token), body.as_ref()).await;
            if permissions::allows(role, action) {
                assert!(
                    !matches!(status, 401 | 403 | 500),
                    "{} may {m} {path}: got {status} {answer}",
                    role.as_str()
                );
            } else {
                assert_eq!(
                    status,
                    403,
                    "{} may not {m} {path}: {answer}",
                    role.as_str()
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ops.len() * Role::ALL.len());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_or_another_clients_ids_are_not_found() {
    let env = TestEnv::start(small_params(72)).await;
    let a = firm(&env, "Firm A").await;
    let b = firm(&env, "Firm B").await;
    // Tenant A's staff, with every id of tenant B.
    for (m, path) in operations(&env).await {
        if !(path.contains("{id}")
            || matches!(path.as_str(), "/holdings" | "/balances" | "/transactions"))
            || path.starts_with("/tenants/")
            || path.starts_with("/market-data/")
        {
            continue; // no id, or a platform operation across tenants by design
        }
        let (url, body) = request_for(&env, &b, &m, &path).await;
        let (status, answer, _) = env
            .call(method(&m), &url, Some(&a.staff), body.as_ref())
            .await;
        assert_eq!(status, 404, "{m} {url} with tenant B's id: {answer}");
    }
    // A client user, with the other client's ids.
    let client_user = token_for(&env, &a, Role::Client);
    let (other_client, other_account) = &a.clients[1];
    for url in [
        format!("/holdings?account_id={other_account}"),
        format!("/balances?account_id={other_account}"),
        format!("/transactions?account_id={other_account}"),
        format!("/clients/{other_client}"),
        format!("/clients/{other_client}/valuation"),
        format!("/clients/{other_client}/performance?from=2026-01-01"),
        format!("/accounts/{other_account}/valuation"),
        format!("/accounts/{other_account}/performance?from=2026-01-01"),
        format!("/reports/{}", report_for(&env, &a, other_client).await),
        format!(
            "/reports/{}/files/pdf",
            report_for(&env, &a, other_client).await
        ),
    ] {
        let (status, answer, _) = env.call(Method::GET, &url, Some(&client_user), None).await;
        assert_eq!(status, 404, "{url}: {answer}");
    }
    // Another client's reports are not listed either (row-level security).
    let listed = env
        .get(&format!("/reports?client_id={other_client}"), &client_user)
        .await;
    assert_eq!(listed["reports"], json!([]), "{listed}");
    let own = env.get("/accounts", &client_user).await;
    assert!(!own.as_array().unwrap().is_empty());
    assert!(
        own.as_array()
            .unwrap()
            .iter()
            .all(|x| x["client"]["id"] == a.clients[0].0.as_str()),
        "{own}"
    );
    let clients = env.get("/clients", &client_user).await;
    assert_eq!(clients.as_array().unwrap().len(), 1, "{clients}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_api_rls_hides_every_other_tenants_row_and_other_clients_rows() {
    let env = TestEnv::start(small_params(73)).await;
    let a = firm(&env, "Firm A").await;
    let b = firm(&env, "Firm B").await;
    let mut owner = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.owner_url)
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND column_name = 'tenant_id' ORDER BY 1",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert!(tables.len() >= 14, "{tables:?}");
    for table in &tables {
        let both: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(DISTINCT tenant_id) FROM {table}"
        )))
        .fetch_one(&mut owner)
        .await
        .unwrap();
        let mut tx = env.store.tenant_tx(a.tenant).await.unwrap();
        let seen: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1"
        )))
        .bind(b.tenant.0)
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(
            seen, 0,
            "{table}: tenant B's rows are invisible (of {both} tenants' rows)"
        );
        for statement in [
            format!("UPDATE {table} SET tenant_id = tenant_id WHERE tenant_id = $1"),
            format!("DELETE FROM {table} WHERE tenant_id = $1"),
        ] {
            // Either refused outright (no grant) or touching nothing.
            let touched = sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .bind(b.tenant.0)
                .execute(tx.conn())
                .await
                .map(|r| r.rows_affected())
                .unwrap_or(0);
            assert_eq!(touched, 0, "{statement}");
            tx = env.store.tenant_tx(a.tenant).await.unwrap();
        }
    }
    // No tenant set: nothing visible at all.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&env.db.owner_url)
                .unwrap()
                .username("eam_app"),
        )
        .await
        .unwrap();
    for table in &tables {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
        assert_eq!(n, 0, "{table}: no tenant set, no row visible");
    }
    pool.close().await;
    // A client's scope: only its own accounts and what hangs off them.
    let client = eam_store::ClientId(Uuid::parse_str(&a.clients[0].0).unwrap());
    let mut tx = env.store.scoped_tx(a.tenant, Some(client)).await.unwrap();
    for (table, column) in [("accounts", "client_id"), ("clients", "id")] {
        let others: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE {column} <> $1"
        )))
        .bind(client.0)
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(others, 0, "{table}: another client's rows");
    }
    for table in ["positions", "cash_balances", "transactions"] {
        let others: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} t JOIN accounts a ON a.id = t.account_id WHERE a.client_id <> $1"
        )))
        .bind(client.0)
        .fetch_one(tx.conn())
        .await
        .unwrap();
        let own: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(tx.conn())
                .await
                .unwrap();
        assert_eq!(others, 0, "{table}: another client's rows");
        assert!(
            own > 0 || table == "positions",
            "{table}: the client's own rows are visible"
        );
    }
    env.finish().await;
}

/// A JWT's three parts, base64url, from JSON header and claims and a signature.
fn jwt(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string()),
        b64.encode(signature)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwt_attack_set_is_refused_with_401_and_audited_for_a_known_tenant() {
    let env = TestEnv::start(small_params(74)).await;
    let tenant = env.tenant("Firm A").await;
    let staff = env.token(tenant, STAFF);
    let now = chrono::Utc::now().timestamp();
    let claims = |over: Value| {
        let mut c = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "iat": now, "nbf": now,
            "exp": now + 600, "tenant_id": tenant.0.to_string(), "roles": ["tenant_admin"],
        });
        for (k, v) in over.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let good = env.issuer.sign_claims(&claims(json!({}))).unwrap();
    let (status, _, _) = env.call(Method::GET, "/me", Some(&good), None).await;
    assert_eq!(status, 200, "the untampered token works");

    let kid = env.issuer.jwks()["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = good.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut tampered_claims: Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    tampered_claims["roles"] = json!(["platform_admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(tampered_claims.to_string()),
        parts[2]
    );
    let public_key = serde_json::to_vec(&env.issuer.jwks()["keys"][0]).unwrap();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(kid.clone()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims(json!({})),
        &jsonwebtoken::EncodingKey::from_secret(&public_key).unwrap(),
    )
    .unwrap();
    let stranger = eam_auth::LocalIssuer::ephemeral(ISSUER, AUDIENCE).unwrap();
    let disabled_subject = "disabled-user";
    let (code, user, _) = env
        .call(
            Method::POST,
            "/users",
            Some(&staff),
            Some(&json!({"subject": disabled_subject, "roles": ["advisor"]})),
        )
        .await;
    assert_eq!(code, 201, "{user}");
    let (code, _, _) = env
        .call(
            Method::PATCH,
            &format!("/users/{}", user["id"].as_str().unwrap()),
            Some(&staff),
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(code, 200);

    let attacks: Vec<(&str, String)> = vec![
        (
            "expired",
            env.issuer
                .sign_claims(&claims(json!({"exp": now - 3600, "nbf": now - 7200})))
                .unwrap(),
        ),
        (
            "not yet valid",
            env.issuer
                .sign_claims(&claims(json!({"nbf": now + 3600})))
                .unwrap(),
        ),
        (
            "wrong issuer",
            env.issuer
                .sign_claims(&claims(json!({"iss": "https://evil.test"})))
                .unwrap(),
        ),
        (
            "wrong audience",
            env.issuer
                .sign_claims(&claims(json!({"aud": "another-api"})))
                .unwrap(),
        ),
        (
            "unknown key",
            stranger.sign_claims(&claims(json!({}))).unwrap(),
        ),
        (
            "alg none",
            jwt(
                &json!({"alg": "none", "typ": "JWT", "kid": kid}),
                &claims(json!({})),
                b"",
            ),
        ),
        ("HS256 with the public key", hs256),
        ("tampered payload", tampered),
        (
            "missing tenant",
            env.issuer
                .sign_claims(&claims(json!({"tenant_id": null})))
                .unwrap(),
        ),
        (
            "disabled user",
            env.issuer
                .sign_claims(&claims(json!({"sub": disabled_subject})))
                .unwrap(),
        ),
    ];
    for (name, token) in &attacks {
        let (status, body, headers) = env.call(Method::GET, "/me", Some(token), None).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{name}"
        );
        assert!(
            !body.to_string().contains(token.as_str()),
            "{name}: the token is never echoed"
        );
    }
    // The refusals that named the tenant are in its audit log.
    let entries = env.get("/audit?action=token.refused", &staff).await;
    let refused = entries["entries"].as_array().unwrap();
    assert!(refused.len() >= 5, "{entries}");
    assert!(
        refused
            .iter()
            .any(|e| e["details"]["reason"] == "the user is disabled"),
        "{entries}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_over_its_burst_gets_429_while_another_tenant_goes_on() {
    let env = TestEnv::start_with(
        small_params(75),
        EnvOptions {
            security: eam_api::security::SecuritySettings {
                user_per_second: 1,
                user_burst: 5,
                ..EnvOptions::default().security
            },
            ..EnvOptions::default()
        },
    )
    .await;
    let a = env.tenant("Firm A").await;
    let b = env.tenant("Firm B").await;
    let token_a = env.token(a, &["advisor"]);
    let token_b = env.token(b, &["advisor"]);
    for n in 0..5 {
        let (status, _, headers) = env.call(Method::GET, "/me", Some(&token_a), None).await;
        assert_eq!(status, 200, "request {n} is within the burst");
        // Every answer says where the caller stands (the refill of 1/s may add one back
        // while the test runs, never more in this short loop).
        assert_eq!(headers["ratelimit-limit"], "5");
        assert_eq!(headers["ratelimit-policy"], "1;w=1;burst=5");
        let remaining: u32 = headers["ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((4 - n..=5 - n).contains(&remaining), "{n}: {remaining}");
        let reset: u32 = headers["ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(reset, 5 - remaining, "{n}");
    }
    let (status, body, headers) = env.call(Method::GET, "/me", Some(&token_a), None).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(headers["ratelimit-limit"], "5");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert!(headers.contains_key("ratelimit-reset"));
    let (status, _, _) = env.call(Method::GET, "/me", Some(&token_b), None).await;
    assert_eq!(status, 200, "another tenant is unaffected");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_without_the_bank_sync_module_gets_403_on_connections() {
    let env = TestEnv::start(small_params(76)).await;
    let tenant = eam_store::tenants::create_tenant(&env.store, "No sync", &[])
        .await
        .unwrap();
    let ops = env.token(tenant, &["ops"]);
    let (status, body, _) = env
        .call(Method::GET, "/connections", Some(&ops), None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["detail"],
        "the bank_sync module is not enabled for this tenant"
    );
    // The platform switches it on; the tenant may sync.
    let platform = env.token(tenant, &["platform_admin"]);
    let (status, body, _) = env
        .call(
            Method::PUT,
            &format!("/tenants/{tenant}/modules"),
            Some(&platform),
            Some(&json!({"modules": {"bank_sync": true}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["modules"], json!(["bank_sync"]));
    let (status, _, _) = env
        .call(Method::GET, "/connections", Some(&ops), None)
        .await;
    assert_eq!(status, 200);
    env.finish().await;
}

/// Sends `request` as written (the server may answer and close before all of it is written)
/// and checks the answer is a problem document of `status`.
async fn assert_problem(address: &str, request: &[u8], status: u16) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, request).await;
    let mut answer = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status} ")),
        "{answer}"
    );
    assert!(
        answer
            .to_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    let (_, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let problem: Value = serde_json::from_str(body).expect("a JSON problem");
    assert_eq!(problem["status"], status, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_security_headers_and_an_oversized_body_is_refused() {
    let env = TestEnv::start(small_params(77)).await;
    let tenant = env.tenant("Firm A").await;
    let ops = env.token(tenant, &["ops"]);
    let (_, _, headers) = env.call(Method::GET, "/me", Some(&ops), None).await;
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(headers[name], value, "{name}");
    }
    assert!(headers.contains_key("x-request-id"));
    // An oversized body is refused on its declared length, before it is read: sent by hand,
    // so the client does not trip over the early answer while still writing the body.
    let address = env
        .api
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let head = format!(
        "POST /api/v1/connections HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {ops}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{",
        2 * 1024 * 1024
    );
    assert_problem(&address, head.as_bytes(), 413).await;
    // The same without a declared length (chunked): 413 once past the limit, not a cut body.
    let head = format!(
        "POST /api/v1/connections HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {ops}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    let mut request = head.into_bytes();
    for _ in 0..32 {
        request.extend_from_slice(chunk.as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    assert_problem(&address, &request, 413).await;
    // A 1 MiB header is refused before the API's code sees the request (by hyper, which
    // writes no body itself): a problem document all the same.
    let head = format!(
        "GET /api/v1/me HTTP/1.1\r\nHost: {address}\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    assert_problem(&address, head.as_bytes(), 431).await;
    let list = env.get("/connections", &ops).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing created");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eam_audit_verify_detects_an_edited_or_a_deleted_entry() {
    let env = TestEnv::start(small_params(78)).await;
    let tenant = env.tenant("Firm A").await;
    let admin = env.token(tenant, STAFF);
    for n in 0..4 {
        let (code, _, _) = env
            .call(
                Method::POST,
                "/clients",
                Some(&admin),
                Some(&json!({"reference": format!("C{n}"), "name": format!("Client {n}")})),
            )
            .await;
        assert_eq!(code, 201);
    }
    let verify = async || {
        let out = env
            .eam("ops")
            .args(["audit", "verify", "--tenant", &tenant.0.to_string()])
            .output()
            .await
            .expect("eam audit verify runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = verify().await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("4 entries, chain intact"), "{out}");

    let mut owner = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.owner_url)
        .await
        .unwrap();
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM audit_log WHERE tenant_id = $1 ORDER BY seq")
            .bind(tenant.0)
            .fetch_all(&mut owner)
            .await
            .unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE id = $1")
        .bind(ids[1])
        .execute(&mut owner)
        .await
        .unwrap();
    let (code, out) = verify().await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "BROKEN at entry 2 (id {}): its content does not match its hash; 1 entries before it verify",
            ids[1]
        )),
        "{out}"
    );
    sqlx::query(
        "UPDATE audit_log SET actor = 'user-tenant_admin-ops-support-advisor' WHERE id = $1",
    )
    .bind(ids[1])
    .execute(&mut owner)
    .await
    .unwrap();
    assert_eq!(verify().await.0, Some(0), "restored");
    sqlx::query("DELETE FROM audit_log WHERE id = $1")
        .bind(ids[2])
        .execute(&mut owner)
        .await
        .unwrap();
    let (code, out) = verify().await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "BROKEN at entry 3: entry 3 is missing: the next one is 4; 2 entries before it verify"
        ),
        "{out}"
    );

    // And the app itself can neither edit nor delete an entry.
    let mut tx = env.store.tenant_tx(tenant).await.unwrap();
    for statement in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"] {
        let refused = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(tx.conn())
            .await
            .expect_err("append-only for the app role");
        assert!(
            refused.to_string().contains("permission denied"),
            "{refused}"
        );
        tx = env.store.tenant_tx(tenant).await.unwrap();
    }
    env.finish().await;
}

/// Issue 24: inside a tenant, a user flooding its own limit does not lock the firm's other
/// users out; forged tokens from one address are slowed (429 past a rate, 401 before); the
/// tenant's last enabled admin cannot drop its role or disable itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_fair_inside_a_tenant_and_the_last_admin_stays() {
    let env = TestEnv::start_with(
        small_params(77),
        EnvOptions {
            security: eam_api::security::SecuritySettings {
                tenant_per_second: 1,
                tenant_burst: 30,
                user_per_second: 1,
                user_burst: 10,
                refused_per_second: 1,
                refused_burst: 5,
                ..EnvOptions::default().security
            },
            ..EnvOptions::default()
        },
    )
    .await;
    let tenant = env.tenant("Firm F").await;
    let flood = env.token(tenant, &["advisor"]);
    let calm = env.token(tenant, &["support"]);
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..50 {
        let (status, _, _) = env.call(Method::GET, "/me", Some(&flood), None).await;
        *statuses.entry(status).or_insert(0) += 1;
    }
    // Its burst of 10, and one more per second the loop took.
    let (ok, refused) = (statuses[&200], statuses[&429]);
    assert!(
        (10..=12).contains(&ok) && ok + refused == 50,
        "{statuses:?}"
    );
    for n in 0..10 {
        let (status, body, _) = env.call(Method::GET, "/me", Some(&calm), None).await;
        assert_eq!(status, 200, "request {n} of the other user: {body}");
    }

    // Forged tokens: five answered 401, then 429 with Retry-After; a valid token still works.
    for n in 0..5 {
        let (status, _, _) = env
            .call(Method::GET, "/me", Some("not.a.token"), None)
            .await;
        assert_eq!(status, 401, "forged token {n}");
    }
    let (status, body, headers) = env
        .call(Method::GET, "/me", Some("not.a.token"), None)
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"));

    // The last enabled tenant admin (registered) keeps its role.
    let admin_token = |subject: &str| {
        env.issuer
            .sign(&eam_auth::TokenRequest {
                subject: subject.into(),
                tenant_id: tenant.0,
                roles: vec!["tenant_admin".into()],
                client_id: None,
                ttl: std::time::Duration::from_secs(600),
                mfa_at: Some(eam_auth::unix_now()),
            })
            .unwrap()
    };
    let solo = admin_token("admin-solo");
    let (status, me, _) = env
        .call(
            Method::POST,
            "/users",
            Some(&solo),
            Some(&json!({"subject": "admin-solo", "roles": ["tenant_admin"]})),
        )
        .await;
    assert_eq!(status, 201, "{me}");
    let me = me["id"].as_str().unwrap().to_owned();
    for change in [json!({"roles": ["ops"]}), json!({"disabled": true})] {
        let (status, body, _) = env
            .call(
                Method::PATCH,
                &format!("/users/{me}"),
                Some(&solo),
                Some(&change),
            )
            .await;
        assert_eq!(status, 409, "{change}: {body}");
        assert_eq!(
            body["detail"],
            "admin-solo is the tenant's last enabled tenant admin: give another user the role first"
        );
    }
    let (status, body, _) = env
        .call(
            Method::POST,
            "/users",
            Some(&solo),
            Some(&json!({"subject": "admin-two", "roles": ["tenant_admin"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body, _) = env
        .call(
            Method::PATCH,
            &format!("/users/{me}"),
            Some(&solo),
            Some(&json!({"roles": ["ops"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["roles"], json!(["ops"]));
    env.finish().await;
}

/// Issue 21: behind a load balancer the audit log records the caller, not the balancer; a
/// client that names its own address in `X-Forwarded-For` is not believed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_the_client_behind_a_trusted_proxy_only() {
    let addresses = async |trusted: Vec<String>| {
        let env = TestEnv::start_with(
            small_params(2104),
            EnvOptions {
                trusted_proxies: trusted,
                ..EnvOptions::default()
            },
        )
        .await;
        let tenant = env.tenant("Firm A").await;
        let admin = env.token(tenant, STAFF);
        let answer = env
            .http
            .post(format!("{}/clients", env.api))
            .bearer_auth(&admin)
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
            .json(&json!({"reference": "C1", "name": "Client 1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
        let audit = env.get("/audit?action=client.created", &admin).await;
        let entries = audit["entries"].as_array().unwrap().clone();
        env.finish().await;
        entries
            .iter()
            .map(|e| e["source_addr"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    // The test's API is reached from loopback: as a trusted balancer, the hop it appended.
    assert_eq!(
        addresses(vec!["127.0.0.0/8".into()]).await,
        vec!["203.0.113.9"]
    );
    // Not trusted: the header is the client's own claim, and ignored.
    assert_eq!(addresses(vec![]).await, vec!["127.0.0.1"]);
}
