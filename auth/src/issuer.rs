//! The local development issuer: signs tokens with its own ES256 key and publishes its JWKS.
//!
//! It exists so that the API can be run and tested without an outside identity provider: the API
//! serves this issuer's JWKS and verifies its tokens exactly as it would a real provider's, so no
//! code path is special-cased for development.
//!
//! The key is a P-256 key in a PKCS#8 PEM file (`signing-key.pem`, mode 0600). Several processes
//! (the API, `eam token`, a test run) may start at once on the same directory, so creation must
//! not let two of them end up with different keys: each writes a complete candidate to a private
//! temporary file and publishes it with `hard_link`, which fails if the key file already exists,
//! then everyone reloads whatever file won. Readers therefore never see a half-written key, and
//! an existing key is never replaced. A key file that exists but cannot be parsed is an error,
//! not a reason to overwrite it.

use std::fs;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::AuthError;

/// Name of the key file inside the issuer directory.
const KEY_FILE: &str = "signing-key.pem";

/// Now in Unix seconds (0 on a clock before 1970): what `TokenRequest::mfa_at` is given for a
/// second factor passed now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a token should say about its holder.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The `sub` claim: the user id.
    pub subject: String,
    /// The tenant the holder acts in.
    pub tenant_id: Uuid,
    /// Role names.
    pub roles: Vec<String>,
    /// The client a client user is restricted to.
    pub client_id: Option<Uuid>,
    /// Lifetime from now.
    pub ttl: Duration,
    /// When the holder passed a second factor (Unix seconds): the token then says
    /// `amr: ["pwd", "mfa"]` and `auth_time` that moment; `None`: `amr: ["pwd"]`, `auth_time`
    /// now.
    pub mfa_at: Option<u64>,
}

/// A development token issuer holding an ES256 signing key.
pub struct LocalIssuer {
    issuer: String,
    audience: String,
    kid: String,
    key: EncodingKey,
    public_jwk: Value,
}

impl LocalIssuer {
    /// Loads the key in `dir`, creating the directory and a new key if missing (race-safe).
    pub fn load_or_create(dir: &Path, issuer: &str, audience: &str) -> Result<Self, AuthError> {
        let path = dir.join(KEY_FILE);
        if let Some(pem) = read_key_file(&path)? {
            return Self::from_pem(&pem, issuer, audience)
                .map_err(|reason| key_file_error(&path, reason));
        }
        create_private_dir(dir)
            .map_err(|e| key_file_error(&path, format!("creating its directory failed: {e}")))?;
        publish_new_key(dir, &path)?;
        // Whichever process won the race, its key is the one on disk: use that.
        let pem = read_key_file(&path)?.ok_or_else(|| {
            key_file_error(&path, "disappeared right after it was created".into())
        })?;
        Self::from_pem(&pem, issuer, audience).map_err(|reason| key_file_error(&path, reason))
    }

    /// An issuer with a fresh key that lives only in memory (tests).
    pub fn ephemeral(issuer: &str, audience: &str) -> Result<Self, AuthError> {
        let pem = generate_pem()?;
        Self::from_pem(&pem, issuer, audience).map_err(AuthError::Signing)
    }

    /// Signs an ES256 token for `req`, valid from now for `req.ttl`.
    pub fn sign(&self, req: &TokenRequest) -> Result<String, AuthError> {
        if req.subject.is_empty() {
            return Err(AuthError::Signing("the subject is empty".into()));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| AuthError::Signing("the system clock is before 1970".into()))?
            .as_secs();
        let exp = now
            .checked_add(req.ttl.as_secs())
            .ok_or_else(|| AuthError::Signing("the requested lifetime is too long".into()))?;
        let mut claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": req.subject,
            "iat": now,
            "nbf": now,
            "exp": exp,
            "jti": Uuid::new_v4().to_string(),
            "tenant_id": req.tenant_id.to_string(),
            "roles": req.roles,
            "amr": if req.mfa_at.is_some() { vec!["pwd", "mfa"] } else { vec!["pwd"] },
            "auth_time": req.mfa_at.unwrap_or(now),
        });
        if let (Some(client), Some(map)) = (req.client_id, claims.as_object_mut()) {
            map.insert("client_id".into(), Value::String(client.to_string()));
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }

    /// Signs any claims with this issuer's key and `kid`, exactly as given: for tests that
    /// need a token a real provider might send (expired, another audience, a missing claim).
    pub fn sign_claims(&self, claims: &Value) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }

    /// The public JWKS a verifier needs: `{"keys":[{kty, crv, x, y, kid, alg, use}]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk] })
    }

    /// Builds the issuer from a PKCS#8 P-256 PEM; the error says what is wrong with the key.
    fn from_pem(pem: &str, issuer: &str, audience: &str) -> Result<Self, String> {
        let key = EncodingKey::from_ec_pem(pem.as_bytes())
            .map_err(|e| format!("not a PKCS#8 EC key: {e}"))?;
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)
            .map_err(|e| format!("not a P-256 key: {e}"))?;
        let AlgorithmParameters::EllipticCurve(ec) = &jwk.algorithm else {
            return Err("not an EC key".into());
        };
        // The RFC 7638 thumbprint: stable for the key, and different for every new key.
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| format!("thumbprint failed: {e}"))?;
        let public_jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": ec.x,
            "y": ec.y,
            "kid": kid,
            "alg": "ES256",
            "use": "sig",
        });
        Ok(LocalIssuer {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            kid,
            key,
            public_jwk,
        })
    }
}

impl std::fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A new P-256 private key as PKCS#8 PEM.
fn generate_pem() -> Result<String, AuthError> {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| AuthError::Signing(format!("generating a P-256 key failed: {e}")))?;
    Ok(pair.serialize_pem())
}

/// The key file's text, `None` if it does not exist.
fn read_key_file(path: &Path) -> Result<Option<String>, AuthError> {
    match fs::read_to_string(path) {
        Ok(pem) => {
            warn_if_readable_by_others(path);
            Ok(Some(pem))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(key_file_error(path, format!("reading failed: {e}"))),
    }
}

/// Writes a fresh key to a temporary file and links it into place unless a key already exists.
fn publish_new_key(dir: &Path, path: &Path) -> Result<(), AuthError> {
    let pem = generate_pem()?;
    let tmp = dir.join(format!(".{KEY_FILE}.{}.tmp", Uuid::new_v4()));
    let written = write_private_file(&tmp, pem.as_bytes());
    let linked = written.and_then(|()| fs::hard_link(&tmp, path));
    // The temporary name is only a staging area; losing it is harmless.
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a new local signing key");
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(key_file_error(path, format!("creating failed: {e}"))),
    }
}

/// Creates `path` (which must not exist) readable by the owner only, and syncs it.
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Creates the issuer directory (owner-only on Unix) if it is missing.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Logs a warning when a key file is readable by group or others.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the signing key file is readable by other users; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn key_file_error(path: &Path, reason: String) -> AuthError {
    AuthError::KeyFile {
        path: PathBuf::from(path),
        reason,
    }
}
