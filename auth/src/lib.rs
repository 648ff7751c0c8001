//! Authentication for the API: who is calling, in which tenant, with which roles.
//!
//! Two halves, deliberately independent of the web framework and the database:
//!
//! - [`Verifier`] checks OIDC access tokens (JWTs) against an identity provider's JWKS and turns
//!   them into a [`Principal`]. It accepts only RS256 and ES256, requires a `kid`, checks `iss`,
//!   `aud`, `sub`, `exp` and `nbf`, and reads the tenant, roles and client claims under
//!   configurable names. Keys are fetched lazily, cached by `kid` and refetched at most once per
//!   `refetch_floor`.
//! - [`LocalIssuer`] is a development identity provider: an ES256 key on disk, tokens signed with
//!   it and the matching JWKS, so the stack runs and is tested with no outside IdP while the
//!   verifier treats its tokens exactly like a real provider's.
//!
//! Every refusal is an [`AuthError`] variant of its own. Only [`AuthError::JwksUnavailable`]
//! means "we could not check" (HTTP 503); all other verification errors mean "this token is not
//! acceptable" (HTTP 401). Error messages never echo the token.

mod claims;
mod error;
mod issuer;
mod jwks;
mod verifier;

pub use claims::{ClaimNames, Principal};
pub use error::AuthError;
pub use issuer::{LocalIssuer, TokenRequest, unix_now};
pub use verifier::{Verifier, VerifierConfig};
