//! The one error type of this crate.
//!
//! Each refusal of a token has its own variant so that tests can assert the exact reason and
//! the API can log it, while the HTTP mapping stays trivial: `JwksUnavailable` is the only
//! variant that is not the caller's fault (503); every other verification error is a 401.
//! Messages never contain the token or any text copied from it (a `kid` or `alg` could carry
//! anything an attacker likes), only the name of what was wrong and, where it helps, the
//! configured value that was expected.

use std::path::PathBuf;

/// Why a token was refused, or why issuing one or loading keys failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The identity provider's keys could not be obtained and none are cached (HTTP 503).
    #[error("the identity provider's signing keys are unavailable: {0}")]
    JwksUnavailable(String),

    /// A JWKS handed to the verifier holds no usable key or is not a JWKS at all.
    #[error("invalid JWKS: {0}")]
    InvalidJwks(String),

    /// The token text is not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    Malformed(&'static str),

    /// The header names an algorithm other than RS256 or ES256 (including `none` and HMAC).
    #[error("token algorithm {0} is not accepted (only RS256 and ES256 are)")]
    AlgorithmNotAllowed(String),

    /// The header's algorithm does not fit the type of the key its `kid` names.
    #[error("token algorithm {token_alg} does not match its key, which is for {key_alg}")]
    AlgorithmMismatch {
        /// The algorithm the token header claims.
        token_alg: &'static str,
        /// The algorithm the named key is used with.
        key_alg: &'static str,
    },

    /// The header has no `kid`, so the signing key cannot be chosen.
    #[error("token header has no key id (kid)")]
    MissingKeyId,

    /// The `kid` is not among the identity provider's current keys.
    #[error("token is signed with a key (kid) the identity provider does not publish")]
    UnknownKey,

    /// The signature does not verify: the token was altered or signed by someone else.
    #[error("token signature is invalid")]
    BadSignature,

    /// The token's `exp` is in the past, beyond the allowed clock leeway.
    #[error("token has expired")]
    Expired,

    /// The token's `nbf` is in the future, beyond the allowed clock leeway.
    #[error("token is not valid yet (nbf is in the future)")]
    NotYetValid,

    /// The token's `iss` is not the configured issuer.
    #[error("token issuer (iss) is not the expected issuer {expected}")]
    WrongIssuer {
        /// The configured issuer.
        expected: String,
    },

    /// The token's `aud` does not name this API.
    #[error("token audience (aud) does not include {expected}")]
    WrongAudience {
        /// The configured audience.
        expected: String,
    },

    /// A claim the API needs is absent (or not of a type its check understands).
    #[error("token lacks the required claim {0}")]
    MissingClaim(String),

    /// A claim is present but has the wrong type or value.
    #[error("token claim {claim} is invalid: {reason}")]
    InvalidClaim {
        /// The claim's configured name.
        claim: String,
        /// What the claim must be.
        reason: &'static str,
    },

    /// The local issuer's key file could not be read, written or parsed.
    #[error("signing key file {path}: {reason}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What went wrong with it.
        reason: String,
    },

    /// The local issuer could not produce a token.
    #[error("could not sign a token: {0}")]
    Signing(String),
}
