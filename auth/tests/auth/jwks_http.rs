//! Fetching, caching and refetching the JWKS over real HTTP on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use eam_auth::{AuthError, Verifier, VerifierConfig};
use uuid::Uuid;

use crate::kit::{self, JwksServer, PROMPTLY, TestKey, valid_claims};

fn verifier(server_url: &str, refetch_floor: Duration) -> Verifier {
    kit::install_crypto();
    Verifier::new(VerifierConfig {
        refetch_floor,
        ..kit::config(server_url)
    })
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn keys_are_fetched_on_first_use_and_then_served_from_the_cache() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(kit::jwks(&[&key])).await;
    let verifier = verifier(&server.url, Duration::ZERO);
    assert_eq!(server.hits(), 0, "constructing the verifier must not fetch");

    for _ in 0..5 {
        verifier
            .verify(&key.sign(&valid_claims(Uuid::new_v4())))
            .await
            .expect("verifies");
    }
    assert_eq!(
        server.hits(),
        1,
        "a known kid is served from the cache, whatever the floor"
    );
}

#[tokio::test]
async fn unknown_kids_inside_the_floor_do_not_refetch() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(kit::jwks(&[&key])).await;
    let verifier = verifier(&server.url, HOUR);
    verifier
        .verify(&key.sign(&valid_claims(Uuid::new_v4())))
        .await
        .expect("verifies");

    for n in 0..20 {
        let token = key.sign_with_kid(Some(&format!("random-{n}")), &valid_claims(Uuid::new_v4()));
        assert!(matches!(
            verifier.verify(&token).await,
            Err(AuthError::UnknownKey)
        ));
    }
    assert_eq!(
        server.hits(),
        1,
        "a flood of unknown kids must not reach the provider"
    );
}

#[tokio::test]
async fn pre_loaded_keys_count_as_just_fetched() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(kit::jwks(&[&key])).await;
    kit::install_crypto();
    let verifier =
        Verifier::with_keys(kit::config(&server.url), kit::jwks(&[&key])).expect("usable JWKS");

    let unknown = key.sign_with_kid(Some("other"), &valid_claims(Uuid::new_v4()));
    assert!(matches!(
        verifier.verify(&unknown).await,
        Err(AuthError::UnknownKey)
    ));
    assert_eq!(
        server.hits(),
        0,
        "the default 30 s floor covers pre-loaded keys"
    );
}

#[tokio::test]
async fn an_unknown_kid_after_the_floor_refetches_once() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(kit::jwks(&[&key])).await;
    let verifier = verifier(&server.url, Duration::ZERO);
    verifier
        .verify(&key.sign(&valid_claims(Uuid::new_v4())))
        .await
        .expect("verifies");

    let unknown = key.sign_with_kid(Some("other"), &valid_claims(Uuid::new_v4()));
    assert!(matches!(
        verifier.verify(&unknown).await,
        Err(AuthError::UnknownKey)
    ));
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_the_withdrawn_one_refused() {
    let (old, new) = (TestKey::ec("2024-key"), TestKey::rsa("2025-key"));
    let server = JwksServer::start(kit::jwks(&[&old])).await;
    let verifier = verifier(&server.url, Duration::ZERO);
    let old_token = old.sign(&valid_claims(Uuid::new_v4()));
    verifier
        .verify(&old_token)
        .await
        .expect("the current key verifies");

    server.serve(kit::jwks(&[&new]));
    let tenant = Uuid::new_v4();
    let principal = verifier
        .verify(&new.sign(&valid_claims(tenant)))
        .await
        .expect("the new key is fetched");
    assert_eq!(principal.tenant_id, tenant);
    assert_eq!(server.hits(), 2);

    // The old kid is no longer published: once the floor allows, the cache follows the provider.
    assert!(matches!(
        verifier.verify(&old_token).await,
        Err(AuthError::UnknownKey)
    ));
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_new_key_is_not_fetched_before_the_floor_has_passed() {
    let (old, new) = (TestKey::ec("old"), TestKey::ec("new"));
    let server = JwksServer::start(kit::jwks(&[&old])).await;
    let verifier = verifier(&server.url, HOUR);
    verifier
        .verify(&old.sign(&valid_claims(Uuid::new_v4())))
        .await
        .expect("verifies");

    server.serve(kit::jwks(&[&old, &new]));
    assert!(matches!(
        verifier
            .verify(&new.sign(&valid_claims(Uuid::new_v4())))
            .await,
        Err(AuthError::UnknownKey)
    ));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn jwks_is_unavailable_when_the_server_is_down_and_nothing_is_cached() {
    let key = TestKey::ec("k1");
    let url = kit::closed_port_url().await;
    let verifier = verifier(&url, Duration::ZERO);
    let token = key.sign(&valid_claims(Uuid::new_v4()));

    match verifier.verify(&token).await {
        Err(AuthError::JwksUnavailable(reason)) => {
            assert!(
                reason.contains(&url),
                "the reason names the JWKS URL: {reason}"
            );
            assert!(
                !reason.contains(&token),
                "the reason must not echo the token"
            );
        }
        other => panic!("expected JwksUnavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn jwks_is_unavailable_while_the_provider_errors_and_recovers_with_it() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(kit::jwks(&[&key])).await;
    server.answer_with(500);
    let verifier = verifier(&server.url, Duration::ZERO);
    let token = key.sign(&valid_claims(Uuid::new_v4()));
    match verifier.verify(&token).await {
        Err(AuthError::JwksUnavailable(reason)) => assert!(reason.contains("500"), "{reason}"),
        other => panic!("expected JwksUnavailable, got {other:?}"),
    }

    server.answer_with(200);
    verifier
        .verify(&token)
        .await
        .expect("keys are fetched once the provider is back");
}

#[tokio::test]
async fn a_failed_fetch_with_nothing_cached_is_not_retried_inside_the_floor() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(kit::jwks(&[&key])).await;
    server.answer_with(503);
    let verifier = verifier(&server.url, HOUR);
    let token = key.sign(&valid_claims(Uuid::new_v4()));
    for _ in 0..3 {
        assert!(matches!(
            verifier.verify(&token).await,
            Err(AuthError::JwksUnavailable(_))
        ));
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_failed_refetch_keeps_the_cached_keys() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(kit::jwks(&[&key])).await;
    let verifier = verifier(&server.url, Duration::ZERO);
    verifier
        .verify(&key.sign(&valid_claims(Uuid::new_v4())))
        .await
        .expect("verifies");

    server.answer_with(500);
    let unknown = key.sign_with_kid(Some("other"), &valid_claims(Uuid::new_v4()));
    assert!(matches!(
        verifier.verify(&unknown).await,
        Err(AuthError::UnknownKey)
    ));
    assert_eq!(server.hits(), 2);
    verifier
        .verify(&key.sign(&valid_claims(Uuid::new_v4())))
        .await
        .expect("the cached key still verifies");
}

#[tokio::test]
async fn a_response_that_is_not_a_jwks_makes_keys_unavailable() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(serde_json::json!({ "issuer": "not a JWKS" })).await;
    let verifier = verifier(&server.url, Duration::ZERO);
    assert!(matches!(
        verifier
            .verify(&key.sign(&valid_claims(Uuid::new_v4())))
            .await,
        Err(AuthError::JwksUnavailable(_))
    ));
}

#[tokio::test]
async fn concurrent_verifications_share_one_fetch() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(kit::jwks(&[&key])).await;
    let verifier = Arc::new(verifier(&server.url, Duration::ZERO));
    let held = server.hold().await;

    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), key.sign(&valid_claims(Uuid::new_v4())));
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    // Every task has missed the cache by now (they ran before the server could even accept the
    // connection); the first fetch is at the server and held there.
    tokio::time::timeout(PROMPTLY, server.request_arrived())
        .await
        .expect("the first fetch arrives");
    drop(held);

    for task in tasks {
        let result = tokio::time::timeout(PROMPTLY, task)
            .await
            .expect("finishes")
            .expect("does not panic");
        result.expect("verifies");
    }
    assert_eq!(
        server.hits(),
        1,
        "one fetch served all concurrent verifications"
    );
}

#[tokio::test]
async fn a_concurrent_flood_of_unknown_kids_costs_one_fetch() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(kit::jwks(&[&key])).await;
    let verifier = Arc::new(verifier(&server.url, HOUR));

    let tasks: Vec<_> = (0..32)
        .map(|n| {
            let verifier = verifier.clone();
            let token =
                key.sign_with_kid(Some(&format!("random-{n}")), &valid_claims(Uuid::new_v4()));
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        let result = tokio::time::timeout(PROMPTLY, task)
            .await
            .expect("finishes")
            .expect("does not panic");
        assert!(matches!(result, Err(AuthError::UnknownKey)));
    }
    assert_eq!(server.hits(), 1);
}
