//! The verification rules, one behaviour per test, with pre-loaded keys (no HTTP).

use std::time::Duration;

use eam_auth::{
    AuthError, ClaimNames, LocalIssuer, Principal, TokenRequest, Verifier, VerifierConfig,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::kit::{self, AUDIENCE, EC, ISSUER, NO_JWKS, RSA, TestKey, forge, valid_claims};

/// A verifier that knows the shared EC and RSA keys and never fetches.
fn verifier() -> Verifier {
    verifier_with(kit::config(NO_JWKS))
}

fn verifier_with(config: VerifierConfig) -> Verifier {
    kit::install_crypto();
    Verifier::with_keys(config, kit::jwks(&[&EC, &RSA])).expect("the test JWKS is usable")
}

/// Verifies `claims` signed by the shared EC key.
async fn verify_claims(claims: &Value) -> Result<Principal, AuthError> {
    verifier().verify(&EC.sign(claims)).await
}

fn claims_with(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut claims = valid_claims(Uuid::new_v4());
    if let Some(map) = claims.as_object_mut() {
        change(map);
    }
    claims
}

fn assert_missing(result: Result<Principal, AuthError>, claim: &str) {
    match result {
        Err(AuthError::MissingClaim(name)) => assert_eq!(name, claim),
        other => panic!("expected MissingClaim({claim}), got {other:?}"),
    }
}

fn assert_invalid(result: Result<Principal, AuthError>, claim: &str) {
    match result {
        Err(AuthError::InvalidClaim { claim: name, .. }) => assert_eq!(name, claim),
        other => panic!("expected InvalidClaim({claim}), got {other:?}"),
    }
}

#[tokio::test]
async fn a_local_issuer_token_verifies_to_its_exact_principal() {
    kit::install_crypto();
    let issuer = LocalIssuer::ephemeral(ISSUER, AUDIENCE).expect("ephemeral issuer");
    let verifier =
        Verifier::with_keys(kit::config(NO_JWKS), issuer.jwks()).expect("issuer JWKS is usable");
    let (tenant, client) = (Uuid::new_v4(), Uuid::new_v4());
    let token = issuer
        .sign(&TokenRequest {
            subject: "alice".into(),
            tenant_id: tenant,
            roles: vec!["client".into(), "advisor".into()],
            client_id: Some(client),
            ttl: Duration::from_secs(600),
            mfa_at: None,
        })
        .expect("signing");

    let principal = verifier
        .verify(&token)
        .await
        .expect("a fresh local token verifies");

    assert_eq!(
        principal,
        Principal {
            subject: "alice".into(),
            tenant_id: tenant,
            roles: vec!["client".into(), "advisor".into()],
            client_id: Some(client),
            amr: vec!["pwd".into()],
            acr: None,
            auth_time: principal.auth_time,
        }
    );
    assert!(
        principal.auth_time.is_some(),
        "the local issuer states auth_time"
    );
}

#[tokio::test]
async fn a_token_without_a_client_claim_has_no_client() {
    let tenant = Uuid::new_v4();
    let principal = verify_claims(&valid_claims(tenant))
        .await
        .expect("valid claims");
    assert_eq!(principal.subject, "user-1");
    assert_eq!(principal.tenant_id, tenant);
    assert_eq!(principal.roles, vec!["advisor", "ops"]);
    assert_eq!(principal.client_id, None);
}

#[tokio::test]
async fn an_rs256_token_verifies_against_an_rsa_jwk() {
    let tenant = Uuid::new_v4();
    let principal = verifier()
        .verify(&RSA.sign(&valid_claims(tenant)))
        .await
        .expect("RS256 verifies");
    assert_eq!(principal.tenant_id, tenant);
}

#[tokio::test]
async fn alg_none_is_refused_in_any_spelling() {
    for alg in ["none", "None", "NONE"] {
        let token = forge(
            json!({ "alg": alg, "typ": "JWT", "kid": EC.kid }),
            &valid_claims(Uuid::new_v4()),
            "",
        );
        match verifier().verify(&token).await {
            Err(AuthError::AlgorithmNotAllowed(name)) => assert_eq!(name, alg),
            other => panic!("alg {alg} must be refused, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn hmac_tokens_are_refused_even_when_keyed_with_the_public_key() {
    let claims = valid_claims(Uuid::new_v4());
    for key in [&*EC, &*RSA] {
        for (alg, name) in [
            (Algorithm::HS256, "HS256"),
            (Algorithm::HS384, "HS384"),
            (Algorithm::HS512, "HS512"),
        ] {
            let mut header = Header::new(alg);
            header.kid = Some(key.kid.clone());
            let secret =
                EncodingKey::from_secret(key.public_pem.as_bytes()).expect("a PEM is not empty");
            let token = jsonwebtoken::encode(&header, &claims, &secret).expect("HMAC signing");
            match verifier().verify(&token).await {
                Err(AuthError::AlgorithmNotAllowed(refused)) => assert_eq!(refused, name),
                other => panic!(
                    "{name} keyed with {}'s public key must be refused, got {other:?}",
                    key.kid
                ),
            }
        }
    }
}

#[tokio::test]
async fn asymmetric_algorithms_other_than_rs256_and_es256_are_refused() {
    for alg in ["RS384", "RS512", "PS256", "ES384", "ES512", "EdDSA"] {
        let token = forge(
            json!({ "alg": alg, "kid": RSA.kid }),
            &valid_claims(Uuid::new_v4()),
            "c2ln",
        );
        match verifier().verify(&token).await {
            Err(AuthError::AlgorithmNotAllowed(name)) => assert_eq!(name, alg),
            other => panic!("{alg} must be refused, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_alg_that_does_not_fit_the_named_key_is_refused() {
    let claims = valid_claims(Uuid::new_v4());

    let es256_naming_rsa_key = EC.sign_with_kid(Some(&RSA.kid), &claims);
    match verifier().verify(&es256_naming_rsa_key).await {
        Err(AuthError::AlgorithmMismatch { token_alg, key_alg }) => {
            assert_eq!((token_alg, key_alg), ("ES256", "RS256"))
        }
        other => panic!("expected AlgorithmMismatch, got {other:?}"),
    }

    let rs256_naming_ec_key = RSA.sign_with_kid(Some(&EC.kid), &claims);
    match verifier().verify(&rs256_naming_ec_key).await {
        Err(AuthError::AlgorithmMismatch { token_alg, key_alg }) => {
            assert_eq!((token_alg, key_alg), ("RS256", "ES256"))
        }
        other => panic!("expected AlgorithmMismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_without_kid_is_refused() {
    let token = EC.sign_with_kid(None, &valid_claims(Uuid::new_v4()));
    assert!(matches!(
        verifier().verify(&token).await,
        Err(AuthError::MissingKeyId)
    ));
}

#[tokio::test]
async fn an_unknown_kid_is_refused_as_unknown_key() {
    let token = EC.sign_with_kid(Some("not-published"), &valid_claims(Uuid::new_v4()));
    assert!(matches!(
        verifier().verify(&token).await,
        Err(AuthError::UnknownKey)
    ));
}

#[tokio::test]
async fn a_token_from_another_issuer_key_under_a_known_kid_has_a_bad_signature() {
    let impostor = TestKey::ec(&EC.kid);
    let token = impostor.sign(&valid_claims(Uuid::new_v4()));
    assert!(matches!(
        verifier().verify(&token).await,
        Err(AuthError::BadSignature)
    ));
}

#[tokio::test]
async fn a_wrong_or_missing_issuer_is_refused() {
    let wrong = claims_with(|c| {
        c.insert("iss".into(), json!("https://evil.test"));
    });
    match verify_claims(&wrong).await {
        Err(AuthError::WrongIssuer { expected }) => assert_eq!(expected, ISSUER),
        other => panic!("expected WrongIssuer, got {other:?}"),
    }
    assert_missing(
        verify_claims(&claims_with(|c| {
            c.remove("iss");
        }))
        .await,
        "iss",
    );
}

#[tokio::test]
async fn a_wrong_or_missing_audience_is_refused() {
    for aud in [
        json!("another-api"),
        json!(["another-api", "third-api"]),
        json!([]),
    ] {
        let claims = claims_with(|c| {
            c.insert("aud".into(), aud.clone());
        });
        assert!(
            matches!(
                verify_claims(&claims).await,
                Err(AuthError::WrongAudience { .. })
            ),
            "aud {aud} must be refused"
        );
    }
    assert_missing(
        verify_claims(&claims_with(|c| {
            c.remove("aud");
        }))
        .await,
        "aud",
    );
}

#[tokio::test]
async fn an_audience_array_containing_ours_is_accepted() {
    let claims = claims_with(|c| {
        c.insert("aud".into(), json!(["account", AUDIENCE]));
    });
    verify_claims(&claims)
        .await
        .expect("our audience is in the array");
}

#[tokio::test]
async fn expiry_is_required_and_checked_with_the_leeway() {
    let now = kit::now();
    let long_expired = claims_with(|c| {
        c.insert("exp".into(), json!(now - 31));
    });
    assert!(matches!(
        verify_claims(&long_expired).await,
        Err(AuthError::Expired)
    ));

    let just_expired = claims_with(|c| {
        c.insert("exp".into(), json!(now - 10));
    });
    verify_claims(&just_expired)
        .await
        .expect("within the 30 s leeway");

    assert_missing(
        verify_claims(&claims_with(|c| {
            c.remove("exp");
        }))
        .await,
        "exp",
    );
}

#[tokio::test]
async fn not_before_is_checked_with_the_leeway_when_present() {
    let now = kit::now();
    let future = claims_with(|c| {
        c.insert("nbf".into(), json!(now + 120));
    });
    assert!(matches!(
        verify_claims(&future).await,
        Err(AuthError::NotYetValid)
    ));

    let slightly_ahead = claims_with(|c| {
        c.insert("nbf".into(), json!(now + 10));
    });
    verify_claims(&slightly_ahead)
        .await
        .expect("within the 30 s leeway");

    let absent = claims_with(|c| {
        c.remove("nbf");
    });
    verify_claims(&absent).await.expect("nbf is optional");
}

/// A verified token is remembered (its signature is not checked on every request), but never
/// past its `exp`: the same token is refused once it expires.
#[tokio::test]
async fn a_remembered_token_is_refused_once_it_expires() {
    let verifier = verifier_with(VerifierConfig {
        leeway: Duration::ZERO,
        ..kit::config(NO_JWKS)
    });
    let tenant = Uuid::new_v4();
    let token = EC.sign(&claims_with(|c| {
        c.insert("tenant_id".into(), json!(tenant.to_string()));
        c.insert("exp".into(), json!(kit::now() + 2));
    }));
    for _ in 0..2 {
        let principal = verifier.verify(&token).await.expect("valid until exp");
        assert_eq!(principal.tenant_id, tenant);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match verifier.verify(&token).await {
            Err(AuthError::Expired) => break,
            Ok(_) => assert!(
                std::time::Instant::now() < deadline,
                "the token was still accepted 10 s after it should have expired"
            ),
            Err(other) => panic!("refused for the wrong reason: {other}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_zero_leeway_refuses_a_just_expired_token() {
    let verifier = verifier_with(VerifierConfig {
        leeway: Duration::ZERO,
        ..kit::config(NO_JWKS)
    });
    let claims = claims_with(|c| {
        c.insert("exp".into(), json!(kit::now() - 2));
    });
    assert!(matches!(
        verifier.verify(&EC.sign(&claims)).await,
        Err(AuthError::Expired)
    ));
}

#[tokio::test]
async fn a_missing_subject_is_refused() {
    assert_missing(
        verify_claims(&claims_with(|c| {
            c.remove("sub");
        }))
        .await,
        "sub",
    );
}

#[tokio::test]
async fn the_tenant_claim_is_required_and_must_be_a_uuid() {
    assert_missing(
        verify_claims(&claims_with(|c| {
            c.remove("tenant_id");
        }))
        .await,
        "tenant_id",
    );
    for bad in [
        json!("not-a-uuid"),
        json!(42),
        json!(["b0d5c5a4-3c0e-4a43-9c1e-8a5c2f5a9e01"]),
    ] {
        let claims = claims_with(|c| {
            c.insert("tenant_id".into(), bad.clone());
        });
        assert_invalid(verify_claims(&claims).await, "tenant_id");
    }
}

#[tokio::test]
async fn the_roles_claim_is_required_but_may_be_empty() {
    assert_missing(
        verify_claims(&claims_with(|c| {
            c.remove("roles");
        }))
        .await,
        "roles",
    );
    for bad in [json!(7), json!({ "ops": true }), json!(["ops", 3])] {
        let claims = claims_with(|c| {
            c.insert("roles".into(), bad.clone());
        });
        assert_invalid(verify_claims(&claims).await, "roles");
    }
    let empty = claims_with(|c| {
        c.insert("roles".into(), json!([]));
    });
    assert_eq!(
        verify_claims(&empty).await.expect("empty roles").roles,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn roles_may_be_a_space_separated_string() {
    let claims = claims_with(|c| {
        c.insert("roles".into(), json!("support ops"));
    });
    assert_eq!(
        verify_claims(&claims).await.expect("string roles").roles,
        vec!["support", "ops"]
    );
}

#[tokio::test]
async fn the_client_claim_must_be_a_uuid_when_present() {
    let client = Uuid::new_v4();
    let good = claims_with(|c| {
        c.insert("client_id".into(), json!(client.to_string()));
    });
    assert_eq!(
        verify_claims(&good).await.expect("client UUID").client_id,
        Some(client)
    );

    for bad in [json!("client-7"), json!(7)] {
        let claims = claims_with(|c| {
            c.insert("client_id".into(), bad.clone());
        });
        assert_invalid(verify_claims(&claims).await, "client_id");
    }
}

#[tokio::test]
async fn claim_names_may_be_paths_into_nested_claims() {
    let names = ClaimNames {
        tenant: "eam.tenant".into(),
        roles: "realm_access.roles".into(),
        client: "eam.client".into(),
    };
    let verifier = verifier_with(VerifierConfig {
        claim_names: names,
        ..kit::config(NO_JWKS)
    });
    let (tenant, client) = (Uuid::new_v4(), Uuid::new_v4());
    let claims = claims_with(|c| {
        c.remove("tenant_id");
        c.remove("roles");
        c.insert(
            "eam".into(),
            json!({ "tenant": tenant.to_string(), "client": client.to_string() }),
        );
        c.insert(
            "realm_access".into(),
            json!({ "roles": ["client", "offline_access"] }),
        );
    });
    let principal = verifier
        .verify(&EC.sign(&claims))
        .await
        .expect("Keycloak-style claims");
    assert_eq!(principal.tenant_id, tenant);
    assert_eq!(principal.client_id, Some(client));
    assert_eq!(principal.roles, vec!["client", "offline_access"]);

    let without_roles = claims_with(|c| {
        c.insert("eam".into(), json!({ "tenant": tenant.to_string() }));
    });
    assert_missing(
        verifier.verify(&EC.sign(&without_roles)).await,
        "realm_access.roles",
    );
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let token = EC.sign(&valid_claims(Uuid::new_v4()));
    let parts: Vec<&str> = token.split('.').collect();
    let other_tenant = kit::part(&valid_claims(Uuid::new_v4()));
    let tampered = format!("{}.{other_tenant}.{}", parts[0], parts[2]);
    assert!(matches!(
        verifier().verify(&tampered).await,
        Err(AuthError::BadSignature)
    ));
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    for key in [&*EC, &*RSA] {
        let token = key.sign(&valid_claims(Uuid::new_v4()));
        let (body, signature) = token.rsplit_once('.').expect("a JWS has dots");
        let mut bytes = signature.as_bytes().to_vec();
        // Change a character in the middle, keeping the text valid base64url.
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        let tampered = format!(
            "{body}.{}",
            String::from_utf8(bytes).expect("base64url is ASCII")
        );
        assert!(
            matches!(
                verifier().verify(&tampered).await,
                Err(AuthError::BadSignature)
            ),
            "{}",
            key.kid
        );

        let stripped = format!("{body}.");
        assert!(
            verifier().verify(&stripped).await.is_err(),
            "an empty signature must be refused"
        );
    }
}

#[tokio::test]
async fn malformed_token_text_is_refused_as_malformed() {
    let claims = kit::part(&valid_claims(Uuid::new_v4()));
    let cases = [
        String::new(),
        "Bearer".into(),
        "a.b".into(),
        "a.b.c.d".into(),
        "a.b.c.d.e".into(),
        "!!!.b.c".into(),
        format!("{}.{claims}.c2ln", kit::part(&json!("a string header"))),
        format!("{}.{claims}.c2ln", kit::part(&json!({ "kid": EC.kid }))),
        format!(
            "{}.{claims}.c2ln",
            kit::part(&json!({ "alg": "ES256", "kid": 5 }))
        ),
        format!(
            "{}.{claims}.c2ln",
            kit::part(&json!({ "alg": "ES256", "kid": EC.kid, "crit": ["exp"] }))
        ),
        format!(
            "{}.{claims}.c2ln",
            kit::part(&json!({ "alg": "ES256", "kid": "k".repeat(300) }))
        ),
        "x".repeat(20_000),
        "é.ü.ß".into(),
    ];
    for case in cases {
        match verifier().verify(&case).await {
            Err(AuthError::Malformed(_)) => {}
            other => panic!("{:.60} must be Malformed, got {other:?}", case),
        }
    }
}

#[tokio::test]
async fn no_truncation_or_deletion_of_a_valid_token_panics_or_passes() {
    let verifier = verifier();
    let token = EC.sign(&valid_claims(Uuid::new_v4()));
    for cut in 0..token.len() {
        assert!(
            verifier.verify(&token[..cut]).await.is_err(),
            "prefix of {cut} bytes"
        );
        let without = format!("{}{}", &token[..cut], &token[cut + 1..]);
        assert!(
            verifier.verify(&without).await.is_err(),
            "byte {cut} deleted"
        );
    }
}

#[tokio::test]
async fn refusals_never_echo_the_token() {
    let evil_kid = "kid-<script>alert(1)</script>";
    let tokens = [
        EC.sign_with_kid(Some(evil_kid), &valid_claims(Uuid::new_v4())),
        forge(
            json!({ "alg": "<b>HS256</b>", "kid": EC.kid }),
            &valid_claims(Uuid::new_v4()),
            "",
        ),
        EC.sign(&claims_with(|c| {
            c.insert("tenant_id".into(), json!("<script>tenant</script>"));
        })),
        EC.sign(&claims_with(|c| {
            c.insert("iss".into(), json!("https://evil.test/<script>"));
        })),
    ];
    for token in tokens {
        let message = verifier()
            .verify(&token)
            .await
            .expect_err("refused")
            .to_string();
        for part in token.split('.').filter(|p| !p.is_empty()) {
            assert!(
                !message.contains(part),
                "message {message:?} echoes the token"
            );
        }
        assert!(
            !message.contains("<script>") && !message.contains("<b>"),
            "message {message:?} echoes token text"
        );
    }
}

#[tokio::test]
async fn a_jwks_without_usable_keys_is_refused_and_unusable_keys_are_skipped() {
    kit::install_crypto();
    let hmac_only =
        json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0", "kid": "h", "alg": "HS256" }] });
    assert!(matches!(
        Verifier::with_keys(kit::config(NO_JWKS), hmac_only),
        Err(AuthError::InvalidJwks(_))
    ));
    assert!(matches!(
        Verifier::with_keys(kit::config(NO_JWKS), json!({ "kid": "x" })),
        Err(AuthError::InvalidJwks(_))
    ));

    let mut encryption_key = RSA.jwk.clone();
    encryption_key["use"] = json!("enc");
    let mut p384 = EC.jwk.clone();
    p384["crv"] = json!("P-384");
    let mixed = json!({ "keys": [encryption_key, p384, { "kty": "OKP", "crv": "Ed25519", "x": "AA", "kid": "ed" }, EC.jwk] });
    let verifier = Verifier::with_keys(kit::config(NO_JWKS), mixed).expect("the EC key is usable");
    verifier
        .verify(&EC.sign(&valid_claims(Uuid::new_v4())))
        .await
        .expect("the usable key verifies");
    assert!(matches!(
        verifier
            .verify(&RSA.sign(&valid_claims(Uuid::new_v4())))
            .await,
        Err(AuthError::UnknownKey)
    ));
}

#[test]
fn the_verifier_and_its_verification_can_cross_threads() {
    fn shareable<T: Send + Sync>(_: &T) {}
    fn sendable<T: Send>(_: &T) {}
    kit::install_crypto();
    let verifier = Verifier::new(kit::config(NO_JWKS));
    shareable(&verifier);
    sendable(&verifier.verify("token"));
}
