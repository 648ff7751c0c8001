//! Step-up authentication (RFC 9470): the sensitive actions want a second factor stated by
//! the token (`amr` holding `mfa`) at most `auth.mfa_max_age_secs` ago.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::kit::{TestEnv, small_params};

/// A token of the firm's staff whose second factor was `mfa_age` seconds ago (`None`: none).
fn staff_token(env: &TestEnv, tenant: eam_store::TenantId, mfa_age: Option<u64>) -> String {
    env.issuer
        .sign(&eam_auth::TokenRequest {
            subject: "step-up-staff".into(),
            tenant_id: tenant.0,
            roles: ["tenant_admin", "ops", "support", "advisor"]
                .map(String::from)
                .to_vec(),
            client_id: None,
            ttl: Duration::from_secs(600),
            mfa_at: mfa_age.map(|age| eam_auth::unix_now() - age),
        })
        .unwrap()
}

/// Every sensitive action, refused with 401 and the RFC 9470 challenge to a token without a
/// second factor or with one older than 15 minutes, and let through (to its own answer) with a
/// fresh one; the same routes' other changes need no second factor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_actions_want_a_recent_second_factor() {
    let env = TestEnv::start(small_params(98)).await;
    let tenant = env.tenant("Firm U").await;
    let fresh = staff_token(&env, tenant, Some(0));
    let connection = env
        .create_connection(&fresh, &env.connection_body(tenant))
        .await;
    let (status, user, _) = env
        .call(
            Method::POST,
            "/users",
            Some(&fresh),
            Some(&json!({"subject": "someone", "email": "someone@firm.example", "roles": ["ops"]})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let user = user["id"].as_str().unwrap().to_owned();
    let (status, hook, _) = env
        .call(
            Method::POST,
            "/webhooks",
            Some(&fresh),
            Some(&json!({"url": "http://127.0.0.1:9/hook", "event_types": ["sync.failed"]})),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let hook = hook["endpoint"]["id"].as_str().unwrap().to_owned();
    let cert = env.tenant_ref(tenant, "client.pem");

    let sensitive: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PATCH,
            format!("/connections/{connection}"),
            Some(json!({"client_cert_ref": cert})),
        ),
        (
            Method::POST,
            "/jobs/retry".into(),
            Some(json!({"status": "failed"})),
        ),
        (
            Method::POST,
            format!("/jobs/{}/replay", Uuid::new_v4()),
            None,
        ),
        (
            Method::POST,
            "/users".into(),
            Some(json!({"subject": "another", "roles": ["support"]})),
        ),
        (
            Method::PATCH,
            format!("/users/{user}"),
            Some(json!({"roles": ["support"]})),
        ),
        (Method::DELETE, format!("/clients/{}", Uuid::new_v4()), None),
        (
            Method::POST,
            "/webhooks".into(),
            Some(json!({"url": "http://127.0.0.1:9/other", "event_types": ["sync.dead"]})),
        ),
        (
            Method::PATCH,
            format!("/webhooks/{hook}"),
            Some(json!({"event_types": ["sync.dead"]})),
        ),
        (
            Method::POST,
            format!("/webhooks/{hook}/rotate-secret"),
            Some(json!({})),
        ),
        (Method::DELETE, format!("/webhooks/{hook}"), None),
    ];
    let none = staff_token(&env, tenant, None);
    let stale = staff_token(&env, tenant, Some(3_600));
    for (method, path, body) in &sensitive {
        for (what, token) in [("no second factor", &none), ("one an hour old", &stale)] {
            let resp = env
                .http
                .request(method.clone(), format!("{}{path}", env.api))
                .bearer_auth(token)
                .json(&body.clone().unwrap_or(json!({})))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 401, "{method} {path} with {what}");
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert!(
                challenge.starts_with("Bearer error=\"insufficient_user_authentication\"")
                    && challenge.ends_with("max_age=900"),
                "{method} {path}: {challenge}"
            );
            let problem: Value = resp.json().await.unwrap();
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains("needs a recent second factor"),
                "{problem}"
            );
        }
    }
    // Refused, nothing changed: the endpoint still has its first event types.
    let kept = env.get(&format!("/webhooks/{hook}"), &fresh).await;
    assert_eq!(kept["event_types"], json!(["sync.failed"]));
    for (method, path, body) in &sensitive {
        let (status, answer, _) = env
            .call(method.clone(), path, Some(&fresh), body.as_ref())
            .await;
        assert!(
            !matches!(status, 401 | 403 | 500),
            "{method} {path} with a fresh second factor: {status} {answer}"
        );
    }
    // Changes that are not sensitive need no second factor.
    let (status, changed, _) = env
        .call(
            Method::PATCH,
            &format!("/users/{user}"),
            Some(&none),
            Some(&json!({"email": "someone.else@firm.example"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let (status, renamed, _) = env
        .call(
            Method::PATCH,
            &format!("/connections/{connection}"),
            Some(&none),
            Some(&json!({"name": "Bank A (renamed)"})),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    env.finish().await;
}
