//! Integration tests of eam-auth, as one test binary: the verification rules, the JWKS cache
//! over real HTTP, and the local issuer.

mod issuer;
mod jwks_http;
mod kit;
mod verify;
