//! The local issuer: key file handling, token contents and the published JWKS.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eam_auth::{AuthError, LocalIssuer, TokenRequest, Verifier};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::kit::{self, AUDIENCE, ISSUER, NO_JWKS};

fn request(tenant: Uuid) -> TokenRequest {
    TokenRequest {
        subject: "dev-user".into(),
        tenant_id: tenant,
        roles: vec!["ops".into()],
        client_id: None,
        ttl: Duration::from_secs(3600),
        mfa_at: None,
    }
}

/// The decoded header and claims of a compact JWS.
fn decode_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || {
        let text = parts.next().expect("a JWS has three parts");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).expect("base64url")).expect("JSON")
    };
    (next(), next())
}

#[test]
fn load_or_create_reuses_the_key_in_the_same_directory() {
    kit::install_crypto();
    let dir = tempfile::tempdir().expect("temp dir");
    let first = LocalIssuer::load_or_create(dir.path(), ISSUER, AUDIENCE).expect("creates");
    let second = LocalIssuer::load_or_create(dir.path(), ISSUER, AUDIENCE).expect("loads");
    assert_eq!(first.jwks(), second.jwks());
}

#[tokio::test]
async fn a_token_from_a_reloaded_issuer_verifies_against_the_original_jwks() {
    kit::install_crypto();
    let dir = tempfile::tempdir().expect("temp dir");
    let original = LocalIssuer::load_or_create(&dir.path().join("nested/issuer"), ISSUER, AUDIENCE)
        .expect("creates");
    let reloaded = LocalIssuer::load_or_create(&dir.path().join("nested/issuer"), ISSUER, AUDIENCE)
        .expect("loads");
    let verifier = Verifier::with_keys(kit::config(NO_JWKS), original.jwks()).expect("usable JWKS");
    let tenant = Uuid::new_v4();
    let principal = verifier
        .verify(&reloaded.sign(&request(tenant)).expect("signs"))
        .await
        .expect("verifies");
    assert_eq!(principal.tenant_id, tenant);
}

#[test]
fn the_key_file_is_an_owner_only_pkcs8_pem() {
    kit::install_crypto();
    let dir = tempfile::tempdir().expect("temp dir");
    LocalIssuer::load_or_create(dir.path(), ISSUER, AUDIENCE).expect("creates");
    let path = dir.path().join("signing-key.pem");
    let pem = std::fs::read_to_string(&path).expect("key file exists");
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8 PEM expected"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn concurrent_creators_end_with_one_key() {
    kit::install_crypto();
    let dir = tempfile::tempdir().expect("temp dir");
    let creators = 8;
    let start = Arc::new(Barrier::new(creators));
    let handles: Vec<_> = (0..creators)
        .map(|_| {
            let (start, dir) = (start.clone(), dir.path().to_path_buf());
            std::thread::spawn(move || {
                start.wait();
                LocalIssuer::load_or_create(&dir, ISSUER, AUDIENCE).map(|issuer| issuer.jwks())
            })
        })
        .collect();
    let keys: Vec<Value> = handles
        .into_iter()
        .map(|h| {
            h.join()
                .expect("no creator panics")
                .expect("every creator succeeds")
        })
        .collect();

    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "all creators must end with the same key"
    );
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir lists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        vec!["signing-key.pem"],
        "no staging files are left behind"
    );
    let on_disk = LocalIssuer::load_or_create(dir.path(), ISSUER, AUDIENCE).expect("loads");
    assert_eq!(on_disk.jwks(), keys[0]);
}

#[test]
fn a_corrupt_key_file_is_an_error_and_left_untouched() {
    kit::install_crypto();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("signing-key.pem");
    std::fs::write(&path, "not a key").expect("write");
    match LocalIssuer::load_or_create(dir.path(), ISSUER, AUDIENCE) {
        Err(AuthError::KeyFile { path: reported, .. }) => assert_eq!(reported, path),
        other => panic!("expected KeyFile, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&path).expect("still there"),
        "not a key"
    );
}

#[test]
fn tokens_carry_the_standard_claims_and_the_key_id() {
    kit::install_crypto();
    let issuer = LocalIssuer::ephemeral(ISSUER, AUDIENCE).expect("issuer");
    let (tenant, client) = (Uuid::new_v4(), Uuid::new_v4());
    let req = TokenRequest {
        client_id: Some(client),
        ttl: Duration::from_secs(900),
        ..request(tenant)
    };
    let token = issuer.sign(&req).expect("signs");
    let (header, claims) = decode_parts(&token);

    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], issuer.jwks()["keys"][0]["kid"]);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["sub"], "dev-user");
    assert_eq!(claims["tenant_id"], tenant.to_string());
    assert_eq!(claims["roles"], json!(["ops"]));
    assert_eq!(claims["client_id"], client.to_string());
    let iat = claims["iat"].as_u64().expect("iat is a number");
    assert!(iat.abs_diff(kit::now()) <= 5);
    assert_eq!(claims["nbf"].as_u64(), Some(iat));
    assert_eq!(claims["exp"].as_u64(), Some(iat + 900));
    let jti = claims["jti"].as_str().expect("jti is a string");
    assert!(Uuid::parse_str(jti).is_ok());

    let (_, again) = decode_parts(&issuer.sign(&req).expect("signs"));
    assert_ne!(again["jti"], claims["jti"], "every token has its own jti");
    let (_, no_client) = decode_parts(&issuer.sign(&request(tenant)).expect("signs"));
    assert!(no_client.get("client_id").is_none());
}

#[test]
fn the_jwks_publishes_only_the_public_p256_key() {
    kit::install_crypto();
    let issuer = LocalIssuer::ephemeral(ISSUER, AUDIENCE).expect("issuer");
    let jwks = issuer.jwks();
    let keys = jwks["keys"].as_array().expect("keys array");
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().expect("a JWK is an object");
    let mut fields: Vec<&str> = key.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["alg", "crv", "kid", "kty", "use", "x", "y"]);
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
        (
            &json!("EC"),
            &json!("P-256"),
            &json!("ES256"),
            &json!("sig")
        )
    );
}

#[tokio::test]
async fn another_issuers_token_is_refused_as_an_unknown_key() {
    kit::install_crypto();
    let ours = LocalIssuer::ephemeral(ISSUER, AUDIENCE).expect("issuer");
    let stranger = LocalIssuer::ephemeral(ISSUER, AUDIENCE).expect("issuer");
    assert_ne!(ours.jwks(), stranger.jwks());
    let verifier = Verifier::with_keys(kit::config(NO_JWKS), ours.jwks()).expect("usable JWKS");
    let token = stranger.sign(&request(Uuid::new_v4())).expect("signs");
    assert!(matches!(
        verifier.verify(&token).await,
        Err(AuthError::UnknownKey)
    ));
}

#[test]
fn signing_refuses_an_empty_subject_and_an_endless_lifetime() {
    kit::install_crypto();
    let issuer = LocalIssuer::ephemeral(ISSUER, AUDIENCE).expect("issuer");
    let empty = TokenRequest {
        subject: String::new(),
        ..request(Uuid::new_v4())
    };
    assert!(matches!(issuer.sign(&empty), Err(AuthError::Signing(_))));
    let endless = TokenRequest {
        ttl: Duration::MAX,
        ..request(Uuid::new_v4())
    };
    assert!(matches!(issuer.sign(&endless), Err(AuthError::Signing(_))));
}
