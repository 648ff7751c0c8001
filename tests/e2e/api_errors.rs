//! Bad input gets a clear, classified problem+json error and changes nothing.

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::kit::{TestEnv, small_params};

fn assert_problem(status: u16, expected: u16, body: &serde_json::Value) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(
        body["status"], expected,
        "problem body carries the status: {body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "problem shape: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_or_foreign_tokens_get_401_problem_json() {
    let env = TestEnv::start(small_params(1)).await;
    let tenant = env.tenant("Firm A").await;

    let (status, body, headers) = env.call(Method::GET, "/accounts", None, None).await;
    assert_problem(status, 401, &body);
    assert_eq!(headers["content-type"], "application/problem+json");

    let (status, body, _) = env
        .call(Method::GET, "/accounts", Some("not.a.jwt"), None)
        .await;
    assert_problem(status, 401, &body);

    // Signed by another issuer's key: the signature does not verify against our JWKS.
    let stranger =
        eam_auth::LocalIssuer::ephemeral(crate::kit::ISSUER, crate::kit::AUDIENCE).unwrap();
    let forged = stranger
        .sign(&eam_auth::TokenRequest {
            subject: "mallory".into(),
            tenant_id: tenant.0,
            roles: vec!["advisor".into()],
            client_id: None,
            ttl: std::time::Duration::from_secs(60),
            mfa_at: None,
        })
        .unwrap();
    let (status, body, _) = env
        .call(Method::GET, "/accounts", Some(&forged), None)
        .await;
    assert_problem(status, 401, &body);

    // A valid token whose roles do not allow the action: 403.
    let support = env.token(tenant, &["support"]);
    let (status, body, _) = env
        .call(Method::GET, "/accounts", Some(&support), None)
        .await;
    assert_problem(status, 403, &body);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_and_bad_parameters_are_404_and_400() {
    let env = TestEnv::start(small_params(2)).await;
    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["advisor", "ops", "support"]);

    let unknown = Uuid::new_v4();
    for (path, detail) in [
        (
            format!("/holdings?account_id={unknown}"),
            format!("account {unknown} not found"),
        ),
        (
            format!("/balances?account_id={unknown}"),
            format!("account {unknown} not found"),
        ),
        (
            format!("/transactions?account_id={unknown}"),
            format!("account {unknown} not found"),
        ),
        (
            format!("/connections/{unknown}"),
            format!("connection {unknown} not found"),
        ),
        (
            format!("/jobs/{unknown}"),
            format!("job {unknown} not found"),
        ),
    ] {
        let (status, body, _) = env.call(Method::GET, &path, Some(&token), None).await;
        assert_problem(status, 404, &body);
        assert_eq!(
            body["detail"],
            detail.as_str(),
            "the detail names what is missing"
        );
    }
    let (status, body, _) = env
        .call(
            Method::POST,
            &format!("/connections/{unknown}/sync"),
            Some(&token),
            None,
        )
        .await;
    assert_problem(status, 404, &body);

    let (status, body, _) = env
        .call(
            Method::GET,
            "/holdings?account_id=not-a-uuid",
            Some(&token),
            None,
        )
        .await;
    assert_problem(status, 400, &body);
    let (status, body, _) = env
        .call(
            Method::GET,
            &format!("/transactions?account_id={unknown}&limit=0"),
            Some(&token),
            None,
        )
        .await;
    assert_problem(status, 400, &body);
    let (status, body, _) = env
        .call(Method::GET, "/jobs?status=exploded", Some(&token), None)
        .await;
    assert_problem(status, 400, &body);
    let (status, body, _) = env
        .call(Method::GET, "/no/such/route", Some(&token), None)
        .await;
    assert_problem(status, 404, &body);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_connection_bodies_are_refused_and_create_nothing() {
    let env = TestEnv::start(small_params(3)).await;
    let tenant = env.tenant("Firm A").await;
    let token = env.token(tenant, &["ops"]);

    // Not JSON at all.
    let resp = env
        .http
        .post(format!("{}/connections", env.api))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"custodian\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");

    let good = env.connection_body(tenant);
    let mut cases = Vec::new();
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("custodian");
    cases.push((missing, 400));
    let mut unknown_field = good.clone();
    unknown_field["client_secret"] = json!("plain-text-secret");
    cases.push((unknown_field, 400));
    let mut http_url = good.clone();
    http_url["base_url"] = json!("http://bank.example");
    cases.push((http_url, 422));
    let mut bad_ref = good.clone();
    bad_ref["client_secret_ref"] = json!("hunter2");
    cases.push((bad_ref, 422));
    let mut bad_custodian = good.clone();
    bad_custodian["custodian"] = json!("bank_z");
    cases.push((bad_custodian, 422));
    let mut answers = Vec::new();
    for (body, expected) in cases {
        let (status, problem, headers) = env
            .call(Method::POST, "/connections", Some(&token), Some(&body))
            .await;
        assert_problem(status, expected, &problem);
        // Every problem carries its machine code, the request's id and path.
        assert_eq!(
            problem["request_id"],
            headers["x-request-id"].to_str().unwrap()
        );
        assert_eq!(problem["instance"], "/api/v1/connections");
        answers.push(problem);
    }
    // The missing and the unknown field are named by a JSON pointer; codes are stable.
    assert_eq!(answers[0]["code"], "invalid_body", "{}", answers[0]);
    assert_eq!(
        answers[0]["errors"][0]["pointer"], "/custodian",
        "{}",
        answers[0]
    );
    assert_eq!(
        answers[1]["errors"][0]["pointer"], "/client_secret",
        "{}",
        answers[1]
    );
    assert_eq!(answers[2]["code"], "unprocessable");
    let list = env.get("/connections", &token).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing was created");
    env.finish().await;
}

/// A POST with an `Idempotency-Key` header, as an integrator's retrying client sends it.
async fn keyed_post(
    env: &TestEnv,
    token: &str,
    path: &str,
    key: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let answer = env
        .http
        .post(format!("{}{path}", env.api))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let body = answer.json().await.unwrap_or(serde_json::Value::Null);
    (status, body, headers)
}

/// Issue 21: a POST retried with its `Idempotency-Key` (a client that lost the answer) gets
/// the first answer again instead of a second connection; the key with another body is 422,
/// concurrent duplicates run once; keys are the caller's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_post_with_its_idempotency_key_creates_one_connection() {
    let env = TestEnv::start(small_params(2101)).await;
    let tenant = env.tenant("Firm A").await;
    let ops = env.token(tenant, &["ops"]);
    let body = env.file_bank_body(tenant, "bank_b");
    let key = Uuid::new_v4().to_string();

    let (status, first, headers) = keyed_post(&env, &ops, "/connections", &key, &body).await;
    assert_eq!(status, 201, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    let (status, again, headers) = keyed_post(&env, &ops, "/connections", &key, &body).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again, first, "the same answer, the same connection");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    let listed = env.get("/connections", &ops).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // The key with another request: refused, nothing created.
    let mut other = body.clone();
    other["name"] = json!("another name");
    let (status, problem, _) = keyed_post(&env, &ops, "/connections", &key, &other).await;
    assert_problem(status, 422, &problem);
    assert!(
        problem["detail"].as_str().unwrap().starts_with(&format!(
            "Idempotency-Key {key} was used for another request"
        )),
        "{problem}"
    );
    // A refusal is an answer like any other: kept, and given again.
    let bad_key = Uuid::new_v4().to_string();
    let bad = json!({"custodian": "no_such_bank", "name": "x"});
    let (status, refused, _) = keyed_post(&env, &ops, "/connections", &bad_key, &bad).await;
    assert_eq!(status, 422, "{refused}");
    let (status, again, headers) = keyed_post(&env, &ops, "/connections", &bad_key, &bad).await;
    assert_eq!((status, &again), (422, &refused));
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(headers["content-type"], "application/problem+json");

    // Eight at once with a new key and a new connection: one runs, the others get its answer
    // or 409 while it runs.
    let key = Uuid::new_v4().to_string();
    let mut second = body.clone();
    second["name"] = json!("bank_b (second)");
    let answers = futures::future::join_all(
        (0..8).map(|_| keyed_post(&env, &ops, "/connections", &key, &second)),
    )
    .await;
    let created: std::collections::BTreeSet<String> = answers
        .iter()
        .filter(|(s, _, _)| *s == 201)
        .map(|(_, b, _)| b["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, _, _)| *s == 201 || *s == 409),
        "{answers:?}"
    );
    let listed = env.get("/connections", &ops).await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");

    // Another user's key of the same value is that user's own: it runs.
    let other_user = env.token(tenant, &["ops", "support"]);
    let mut third = body.clone();
    third["name"] = json!("bank_b (third)");
    let (status, _, headers) = keyed_post(&env, &other_user, "/connections", &key, &third).await;
    assert_eq!(status, 201);
    assert!(headers.get("idempotent-replayed").is_none());
    // A key that is no key.
    let (status, problem, _) =
        keyed_post(&env, &ops, "/connections", &"k".repeat(256), &body).await;
    assert_problem(status, 400, &problem);
    let listed = env.get("/connections", &ops).await;
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    env.finish().await;
}

/// Issue 21: the API contract is a reviewed file. The OpenAPI document the API serves must
/// equal `docs/openapi.json` (servers aside); a change of the contract fails here until the
/// copy is rewritten (`EAM_TEST_WRITE_OPENAPI=1`) and the diff committed with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_is_the_committed_one() {
    let env = TestEnv::start(small_params(2102)).await;
    let mut served: serde_json::Value = env
        .http
        .get(format!("{}/openapi.json", env.api))
        .send()
        .await
        .expect("openapi.json")
        .json()
        .await
        .expect("JSON");
    served["servers"] = json!([{"url": "https://eam.example/api/v1"}]);
    // Every operation has an id of its own (what generated clients name their methods by).
    let mut ids = Vec::new();
    for item in served["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("operations").values() {
            ids.push(
                op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("an operationId: {op}"))
                    .to_owned(),
            );
        }
    }
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "operationIds repeat: {ids:?}");
    assert!(ids.len() >= 90, "{}", ids.len());
    let text = serde_json::to_string_pretty(&served).expect("serialises") + "\n";
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    if std::env::var_os("EAM_TEST_WRITE_OPENAPI").is_some() {
        std::fs::write(&committed, &text).expect("write docs/openapi.json");
    }
    let on_disk = std::fs::read_to_string(&committed).unwrap_or_default();
    if on_disk != text {
        let first = on_disk
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(on_disk.lines().count().min(text.lines().count()));
        panic!(
            "the API's OpenAPI document differs from docs/openapi.json from line {}: served {:?}, \
             committed {:?}. Review the contract change, then rewrite the copy with \
             EAM_TEST_WRITE_OPENAPI=1 cargo test --test e2e the_served_openapi and commit it",
            first + 1,
            text.lines().nth(first),
            on_disk.lines().nth(first)
        );
    }
    env.finish().await;
}

/// Issue 21: browsers of the configured origins may call the API (preflight, exposed headers);
/// other origins get no CORS grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_origin_may_call_from_a_browser_and_another_may_not() {
    let env = TestEnv::start_with(
        small_params(2103),
        crate::kit::EnvOptions {
            cors_origins: vec!["https://portal.example".into()],
            ..crate::kit::EnvOptions::default()
        },
    )
    .await;
    let tenant = env.tenant("Firm A").await;
    let ops = env.token(tenant, &["ops"]);
    let preflight = |origin: &'static str| {
        env.http
            .request(Method::OPTIONS, format!("{}/connections", env.api))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    let granted = preflight("https://portal.example").await.unwrap();
    assert!(granted.status().is_success(), "{}", granted.status());
    let h = granted.headers();
    assert_eq!(h["access-control-allow-origin"], "https://portal.example");
    let methods = h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(methods.contains("post"), "{methods}");
    let headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(headers.contains("idempotency-key"), "{headers}");
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "{:?}",
        refused.headers()
    );
    // A real call from the portal: the answer names the origin and exposes the API's headers.
    let answer = env
        .http
        .get(format!("{}/me", env.api))
        .bearer_auth(&ops)
        .header("origin", "https://portal.example")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "https://portal.example"
    );
    let exposed = answer.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("x-request-id"),
        "{exposed}"
    );
    env.finish().await;
}
