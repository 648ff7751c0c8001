//! Verifying bearer tokens against an identity provider's JWKS.
//!
//! The order of checks is chosen so that nothing from the token is trusted before it must be:
//! the header is read by hand first (size, shape, `alg` in {RS256, ES256}, `kid` present, no
//! `crit`), the key is chosen by `kid` from the cache, its type must match the header's `alg`,
//! and only then does jsonwebtoken check the signature followed by `iss`, `aud`, `sub`, `exp` and
//! `nbf`. The tenant, roles and client claims are read last (see `claims`).
//!
//! Keys are fetched lazily and cached by `kid`. An unknown `kid` triggers a refetch only if the
//! last attempt is older than `refetch_floor`, so a flood of tokens with random kids costs the
//! identity provider at most one request per floor. Fetches are serialised by an async mutex:
//! concurrent verifications that miss the cache queue behind one fetch and then re-read the
//! cache, instead of each asking the provider. A successful fetch replaces the whole set, which
//! is how a key withdrawn by the provider stops being accepted. A failed fetch keeps the keys we
//! had; only when no key was ever obtained is it reported as `JwksUnavailable` (a 503).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::claims::{ClaimNames, Principal, principal_from_claims};
use crate::error::AuthError;
use crate::jwks::{KeySet, VerificationKey, fetch_jwks, parse_jwks};

/// Longest token text looked at; real access tokens are a few kilobytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Longest `kid` accepted, to keep cache look-ups and logs bounded.
const MAX_KID_BYTES: usize = 256;

/// How long a verified token is trusted without checking its signature again (never past its
/// `exp`). A key withdrawn from the JWKS stops working for its tokens within this time.
const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// Verified tokens remembered at most (expired ones are dropped first, then all).
const VERIFIED_CAPACITY: usize = 10_000;

/// Largest clock leeway honoured, whatever the configuration says.
const MAX_LEEWAY: Duration = Duration::from_secs(3600);

/// What the verifier trusts and how it talks to the identity provider.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// URL of the identity provider's JWKS.
    pub jwks_url: String,
    /// The exact `iss` tokens must carry.
    pub issuer: String,
    /// The audience tokens must name in `aud` (a string or one member of an array).
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf` (capped at one hour).
    pub leeway: Duration,
    /// Where the tenant, roles and client id are found.
    pub claim_names: ClaimNames,
    /// Minimum time between two JWKS fetches triggered by unknown key ids.
    pub refetch_floor: Duration,
    /// Timeout of one JWKS request.
    pub http_timeout: Duration,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            jwks_url: String::new(),
            issuer: String::new(),
            audience: String::new(),
            leeway: Duration::from_secs(30),
            claim_names: ClaimNames::default(),
            refetch_floor: Duration::from_secs(30),
            http_timeout: Duration::from_secs(5),
        }
    }
}

/// Verifies JWTs against a cached JWKS; cheap to share behind an `Arc`.
pub struct Verifier {
    config: VerifierConfig,
    rs256: Validation,
    es256: Validation,
    cache: RwLock<KeyCache>,
    /// Tokens already verified, by their exact text: a client sends the same token for many
    /// requests, and checking its signature again is most of an API read's CPU.
    verified: std::sync::Mutex<HashMap<String, Verified>>,
    /// Held for the whole of a fetch so that only one runs at a time; it also owns the HTTP
    /// client, built on first use so that `new` cannot fail.
    fetcher: tokio::sync::Mutex<Option<reqwest::Client>>,
}

/// A token that passed every check, remembered for a while.
struct Verified {
    principal: Principal,
    /// The key that signed it.
    kid: String,
    /// Trusted until then (at most `VERIFIED_TTL` after the check, never past `exp`).
    until: Instant,
}

/// Keys by kid and when they were last (attempted to be) fetched.
#[derive(Default)]
struct KeyCache {
    keys: KeySet,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

/// The parts of the header needed before a key is chosen.
struct TokenHeader {
    alg: Algorithm,
    kid: String,
}

impl Verifier {
    /// A verifier that fetches its keys from `config.jwks_url` on first use.
    pub fn new(config: VerifierConfig) -> Self {
        let rs256 = validation(&config, Algorithm::RS256);
        let es256 = validation(&config, Algorithm::ES256);
        Verifier {
            config,
            rs256,
            es256,
            cache: RwLock::new(KeyCache::default()),
            verified: std::sync::Mutex::new(HashMap::new()),
            fetcher: tokio::sync::Mutex::new(None),
        }
    }

    /// A verifier pre-loaded with `jwks`, counted as fetched just now (the refetch floor applies).
    pub fn with_keys(config: VerifierConfig, jwks: Value) -> Result<Self, AuthError> {
        let keys = parse_jwks(&jwks).map_err(AuthError::InvalidJwks)?;
        let verifier = Verifier::new(config);
        {
            let mut cache = verifier
                .cache
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            cache.keys = keys;
            cache.last_attempt = Some(Instant::now());
        }
        Ok(verifier)
    }

    /// Verifies `token` and returns the caller it describes, or the reason it is refused.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let now = Instant::now();
        let hit = self
            .lock_verified()
            .get(token)
            .filter(|v| now < v.until)
            .map(|v| (v.principal.clone(), v.kid.clone()));
        // Only while its key is still published: a withdrawn key's tokens fail at once.
        if let Some((principal, kid)) = hit
            && self.cached(&kid).is_some()
        {
            return Ok(principal);
        }
        let (principal, kid, expires_in) = self.verify_uncached(token).await?;
        let entry = Verified {
            principal: principal.clone(),
            kid,
            until: now + expires_in.min(VERIFIED_TTL),
        };
        let mut verified = self.lock_verified();
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, v| now < v.until);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(token.to_owned(), entry);
        Ok(principal)
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, Verified>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks the signature and claims; returns the principal, the key's id and how long
    /// until `exp`.
    async fn verify_uncached(
        &self,
        token: &str,
    ) -> Result<(Principal, String, Duration), AuthError> {
        let header = read_header(token)?;
        let key = self.key_for(&header.kid).await?;
        if key.alg != header.alg {
            return Err(AuthError::AlgorithmMismatch {
                token_alg: alg_name(header.alg),
                key_alg: alg_name(key.alg),
            });
        }
        let validation = if key.alg == Algorithm::RS256 {
            &self.rs256
        } else {
            &self.es256
        };
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|e| self.refusal(e.into_kind()))?;
        let principal = principal_from_claims(&data.claims, &self.config.claim_names)?;
        // Until `exp` itself, leeway not included: a cached token never outlives its validity.
        let exp = data.claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok((
            principal,
            header.kid,
            Duration::from_secs(exp.saturating_sub(now)),
        ))
    }

    /// The key named `kid`, fetching the JWKS if the kid is unknown and the floor allows.
    async fn key_for(&self, kid: &str) -> Result<Arc<VerificationKey>, AuthError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut slot = self.fetcher.lock().await;
        // Another verification may have fetched while this one waited for the lock.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        if let Some(refusal) = self.refusal_within_floor() {
            return Err(refusal);
        }
        let client = match slot.as_ref() {
            Some(client) => client.clone(),
            None => {
                let built = reqwest::Client::builder()
                    .timeout(self.config.http_timeout)
                    .build()
                    .map_err(|e| {
                        AuthError::JwksUnavailable(format!(
                            "the HTTP client could not be built: {e}"
                        ))
                    })?;
                *slot = Some(built.clone());
                built
            }
        };
        let outcome = fetch_jwks(&client, &self.config.jwks_url).await;

        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        cache.last_attempt = Some(Instant::now());
        match outcome {
            Ok(keys) => {
                tracing::info!(url = %self.config.jwks_url, keys = keys.len(), "JWKS fetched");
                cache.keys = keys;
                cache.last_error = None;
            }
            Err(reason) => {
                tracing::warn!(%reason, "JWKS fetch failed");
                cache.last_error = Some(reason.clone());
                if cache.keys.is_empty() {
                    return Err(AuthError::JwksUnavailable(reason));
                }
            }
        }
        cache.keys.get(kid).cloned().ok_or(AuthError::UnknownKey)
    }

    /// The cached key for `kid`, if any.
    fn cached(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        self.cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .get(kid)
            .cloned()
    }

    /// The refusal to give without fetching, when the last attempt is more recent than the floor.
    fn refusal_within_floor(&self) -> Option<AuthError> {
        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        let last = cache.last_attempt?;
        if last.elapsed() >= self.config.refetch_floor {
            return None;
        }
        Some(if cache.keys.is_empty() {
            let reason = cache.last_error.as_deref().unwrap_or("no usable keys");
            AuthError::JwksUnavailable(format!("{reason} (next attempt after the refetch floor)"))
        } else {
            AuthError::UnknownKey
        })
    }

    /// Maps a jsonwebtoken error to the refusal it stands for.
    fn refusal(&self, kind: ErrorKind) -> AuthError {
        match kind {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer {
                expected: self.config.issuer.clone(),
            },
            ErrorKind::InvalidAudience => AuthError::WrongAudience {
                expected: self.config.audience.clone(),
            },
            ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim),
            ErrorKind::InvalidClaimFormat(claim) => AuthError::InvalidClaim {
                claim,
                reason: "must be a number of seconds since the epoch",
            },
            ErrorKind::InvalidAlgorithm => {
                AuthError::Malformed("the header's algorithm does not fit the key")
            }
            ErrorKind::Base64(_) => AuthError::Malformed("a part is not base64url"),
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                AuthError::Malformed("the payload is not a JSON object")
            }
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => AuthError::BadSignature,
            _ => AuthError::Malformed("the token could not be decoded"),
        }
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .len();
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .field("cached_keys", &keys)
            .finish()
    }
}

/// The jsonwebtoken checks for one algorithm: signature, then iss, aud, sub, exp and nbf.
fn validation(config: &VerifierConfig, alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.set_issuer(&[&config.issuer]);
    v.set_audience(&[&config.audience]);
    v.validate_exp = true;
    v.validate_nbf = true;
    v.leeway = config.leeway.min(MAX_LEEWAY).as_secs();
    v
}

/// Reads the header by hand, so that an unacceptable `alg` is named and refused before any key
/// is looked up.
fn read_header(token: &str) -> Result<TokenHeader, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::Malformed("the token is longer than 16 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed(
            "a token has three dot-separated parts",
        ));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("the header is not base64url"))?;
    let header: HashMap<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("the header is not a JSON object"))?;

    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => Algorithm::RS256,
        Some("ES256") => Algorithm::ES256,
        Some(other) => return Err(AuthError::AlgorithmNotAllowed(printable_alg(other))),
        None => return Err(AuthError::Malformed("the header has no alg")),
    };
    if header.contains_key("crit") {
        return Err(AuthError::Malformed(
            "the header lists critical extensions (crit), none of which are supported",
        ));
    }
    let kid = match header.get("kid") {
        None | Some(Value::Null) => return Err(AuthError::MissingKeyId),
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_BYTES => kid.clone(),
        Some(_) => {
            return Err(AuthError::Malformed(
                "the header's kid is not a short non-empty string",
            ));
        }
    };
    Ok(TokenHeader { alg, kid })
}

/// The refused algorithm's name if it is a plausible one, so logs show `HS256` or `none` but
/// never arbitrary attacker text.
fn printable_alg(alg: &str) -> String {
    if !alg.is_empty() && alg.len() <= 10 && alg.chars().all(|c| c.is_ascii_alphanumeric()) {
        alg.to_owned()
    } else {
        "(unrecognised)".to_owned()
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        _ => "another algorithm",
    }
}
