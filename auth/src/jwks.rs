//! Reading a JWKS into verification keys, and fetching one over HTTP.
//!
//! jsonwebtoken verifies signatures but neither fetches key sets nor decides which keys are
//! acceptable, so that policy lives here. A key is kept only if it can serve one of the two
//! algorithms this API accepts: an EC P-256 key becomes an ES256 key and an RSA key of at least
//! 2048 bits an RS256 key. Each key is bound to its algorithm when it is loaded, which is what
//! lets the verifier refuse a token whose header names another one (the classic "RS256 key used
//! as an HMAC secret" confusion cannot arise: no HMAC key or algorithm exists here at all).
//!
//! Keys that do not fit (encryption keys, other curves, other algorithms, no `kid`) are skipped
//! rather than failing the whole set: identity providers routinely publish such keys next to
//! their signing keys.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// Upper bound on a JWKS response body; real ones are a few kilobytes.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Base64url that tolerates the padding some providers add.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A public key bound to the one algorithm it may verify.
pub(crate) struct VerificationKey {
    /// RS256 or ES256.
    pub(crate) alg: Algorithm,
    /// The key material in jsonwebtoken's form.
    pub(crate) key: DecodingKey,
}

/// Usable keys by `kid`.
pub(crate) type KeySet = HashMap<String, Arc<VerificationKey>>;

/// Reads the usable signing keys of a JWKS document; an error if it is not a JWKS or has none.
pub(crate) fn parse_jwks(jwks: &Value) -> Result<KeySet, String> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "the document has no \"keys\" array".to_owned())?;
    let mut set = KeySet::new();
    for jwk in keys {
        match parse_jwk(jwk) {
            Ok((kid, key)) => match set.entry(kid) {
                Entry::Vacant(slot) => {
                    slot.insert(Arc::new(key));
                }
                Entry::Occupied(taken) => {
                    tracing::warn!(
                        kid = taken.key(),
                        "JWKS lists the same kid twice; keeping the first key"
                    );
                }
            },
            Err(reason) => tracing::debug!(reason, "JWKS key skipped"),
        }
    }
    if set.is_empty() {
        return Err(format!(
            "none of its {} keys is usable (an EC P-256 or RSA >= 2048-bit signing key with a kid)",
            keys.len()
        ));
    }
    Ok(set)
}

/// Reads one JWK, or says why it is not a usable signing key.
fn parse_jwk(jwk: &Value) -> Result<(String, VerificationKey), &'static str> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kid = text("kid").filter(|k| !k.is_empty()).ok_or("no kid")?;
    if text("use").is_some_and(|u| u != "sig") {
        return Err("not a signature key (use)");
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "verify"));
        if !verifies {
            return Err("not a verification key (key_ops)");
        }
    }
    let declared_alg = text("alg");
    let key = match text("kty") {
        Some("EC") => {
            if text("crv") != Some("P-256") {
                return Err("EC key not on P-256");
            }
            if declared_alg.is_some_and(|a| a != "ES256") {
                return Err("EC key declared for another algorithm");
            }
            let x = decode_field(text("x"))?;
            let y = decode_field(text("y"))?;
            if x.len() != 32 || y.len() != 32 {
                return Err("EC coordinates are not 32 bytes");
            }
            // The uncompressed SEC1 point, which is what jsonwebtoken verifies EC keys with.
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            VerificationKey {
                alg: Algorithm::ES256,
                key: DecodingKey::from_ec_der(&point),
            }
        }
        Some("RSA") => {
            if declared_alg.is_some_and(|a| a != "RS256") {
                return Err("RSA key declared for another algorithm");
            }
            let n = decode_field(text("n"))?;
            let e = decode_field(text("e"))?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return Err("RSA modulus shorter than 2048 bits");
            }
            VerificationKey {
                alg: Algorithm::RS256,
                key: DecodingKey::from_rsa_raw_components(&n, &e),
            }
        }
        _ => return Err("key type is neither EC nor RSA"),
    };
    Ok((kid.to_owned(), key))
}

/// Decodes a base64url key parameter.
fn decode_field(value: Option<&str>) -> Result<Vec<u8>, &'static str> {
    let value = value.ok_or("key parameter missing")?;
    BASE64URL
        .decode(value)
        .map_err(|_| "key parameter is not base64url")
}

/// Fetches and reads the JWKS at `url`; the error says why, for a 503 and the logs.
pub(crate) async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<KeySet, String> {
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("fetching {url} failed: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url} answered HTTP {status}"));
    }
    // Read in chunks so a misbehaving endpoint cannot make us buffer an unbounded body.
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the JWKS from {url} failed: {e}"))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!(
                "the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let document: Value =
        serde_json::from_slice(&body).map_err(|e| format!("the JWKS at {url} is not JSON: {e}"))?;
    parse_jwks(&document).map_err(|reason| format!("the JWKS at {url} is unusable: {reason}"))
}
