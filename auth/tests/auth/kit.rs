//! Shared test kit: signing keys that play a third-party identity provider, token forging for
//! attacks, and a JWKS server on 127.0.0.1:0 that counts its requests and can be held, failed
//! or rotated on demand.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eam_auth::VerifierConfig;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poem::http::StatusCode;
use poem::listener::{Acceptor as _, Listener as _, TcpListener};
use poem::web::Data;
use poem::{EndpointExt as _, IntoResponse as _, Response, Route, Server, get, handler};
use serde_json::{Value, json};
use tokio::sync::{Notify, OwnedRwLockWriteGuard, RwLock};
use uuid::Uuid;

pub const ISSUER: &str = "https://idp.test/realms/eam";
pub const AUDIENCE: &str = "eam-api";

/// One EC and one RSA key shared by the tests that need no particular key (RSA generation is
/// the slow part).
pub static EC: LazyLock<TestKey> = LazyLock::new(|| TestKey::ec("ec-1"));
pub static RSA: LazyLock<TestKey> = LazyLock::new(|| TestKey::rsa("rsa-1"));

/// Installs the process-wide rustls provider, as `main` does.
pub fn install_crypto() {
    // Another test may have installed it already; that is the same provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A verifier configuration for `ISSUER`/`AUDIENCE` fetching from `jwks_url`.
pub fn config(jwks_url: &str) -> VerifierConfig {
    VerifierConfig {
        jwks_url: jwks_url.to_owned(),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        ..VerifierConfig::default()
    }
}

/// A URL nothing listens on, for verifiers that must never fetch.
pub const NO_JWKS: &str = "http://127.0.0.1:9/jwks.json";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Claims a verifier with `config(..)` accepts, for `tenant`.
pub fn valid_claims(tenant: Uuid) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "tenant_id": tenant.to_string(),
        "roles": ["advisor", "ops"],
    })
}

/// Base64url of a JSON value, as a token part.
pub fn part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("a JSON value serialises"))
}

/// A token assembled by hand from a header, claims and signature text.
pub fn forge(header: Value, claims: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", part(&header), part(claims))
}

/// A signing key of a pretend identity provider.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public JWK, with kid, alg and use.
    pub jwk: Value,
    /// The public key as PEM, which an attacker would use as an HMAC secret.
    pub public_pem: String,
}

impl TestKey {
    pub fn ec(kid: &str) -> Self {
        Self::generate(kid, &rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256)
    }

    pub fn rsa(kid: &str) -> Self {
        Self::generate(kid, &rcgen::PKCS_RSA_SHA256, Algorithm::RS256)
    }

    fn generate(kid: &str, rcgen_alg: &'static rcgen::SignatureAlgorithm, alg: Algorithm) -> Self {
        let pair =
            rcgen::KeyPair::generate_for(rcgen_alg).expect("aws-lc-rs generates EC and RSA keys");
        let pem = pair.serialize_pem();
        let encoding = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .expect("rcgen writes PKCS#8 PEM jsonwebtoken reads");
        let public = Jwk::from_encoding_key(&encoding, alg).expect("public part of a fresh key");
        let mut jwk = serde_json::to_value(&public).expect("a JWK serialises");
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        TestKey {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk,
            public_pem: pair.public_key_pem(),
        }
    }

    /// A token with this key's alg and kid.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_kid(Some(&self.kid), claims)
    }

    /// A token signed by this key whose header names `kid` (or none).
    pub fn sign_with_kid(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing with a test key")
    }
}

/// A JWKS holding `keys`.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

/// A JWKS endpoint on 127.0.0.1:0.
pub struct JwksServer {
    pub url: String,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

struct ServerState {
    jwks: Mutex<Value>,
    status: AtomicU16,
    hits: AtomicUsize,
    arrived: Notify,
    gate: Arc<RwLock<()>>,
}

#[handler]
async fn serve_jwks(Data(state): Data<&Arc<ServerState>>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    state.arrived.notify_one();
    // A held gate keeps the answer back until the test lets it go.
    let _open = state.gate.read().await;
    let status = StatusCode::from_u16(state.status.load(Ordering::SeqCst))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status != StatusCode::OK {
        return Response::builder()
            .status(status)
            .body("identity provider down");
    }
    let body = state
        .jwks
        .lock()
        .expect("no test panics while holding the JWKS")
        .clone();
    poem::web::Json(body).into_response()
}

impl JwksServer {
    pub async fn start(jwks: Value) -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind 127.0.0.1:0");
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .expect("a TCP listener has a socket address");
        let state = Arc::new(ServerState {
            jwks: Mutex::new(jwks),
            status: AtomicU16::new(200),
            hits: AtomicUsize::new(0),
            arrived: Notify::new(),
            gate: Arc::new(RwLock::new(())),
        });
        let app = Route::new()
            .at("/jwks.json", get(serve_jwks))
            .data(state.clone());
        let task = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        JwksServer {
            url: format!("http://{addr}/jwks.json"),
            state,
            task,
        }
    }

    /// How many JWKS requests arrived so far.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Serves `jwks` from now on (a key rotation at the provider).
    pub fn serve(&self, jwks: Value) {
        *self
            .state
            .jwks
            .lock()
            .expect("no test panics while holding the JWKS") = jwks;
    }

    /// Answers every request with `status` (200 restores the JWKS).
    pub fn answer_with(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Holds every answer until the returned guard is dropped.
    pub async fn hold(&self) -> OwnedRwLockWriteGuard<()> {
        self.state.gate.clone().write_owned().await
    }

    /// Resolves once a request has arrived (counting one that already did).
    pub async fn request_arrived(&self) {
        self.state.arrived.notified().await;
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A URL on 127.0.0.1 where nothing listens any more.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    drop(listener);
    format!("http://{addr}/jwks.json")
}

/// A short wait bound for things that should finish at once, so a regression fails instead of
/// hanging the suite.
pub const PROMPTLY: Duration = Duration::from_secs(10);
