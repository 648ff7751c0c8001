//! The caller a token describes ([`Principal`]), where its claims are found ([`ClaimNames`]),
//! and turning verified claims into it. The verifier checks the token and then asks this module;
//! nothing here knows about signatures or keys.
//!
//! Identity providers disagree on where tenant and roles live: our local issuer puts them at the
//! top level, Keycloak nests roles under `realm_access.roles`, Auth0 uses namespaced names that
//! themselves contain dots (`https://example.com/tenant`). A configured name is therefore first
//! looked up as a literal top-level claim and only then as a dotted path. Roles are accepted as a
//! JSON array of strings or as one space-separated string (the OAuth `scope` style).
//!
//! This runs only after the signature, issuer, audience and times have been checked, but it still
//! treats the claims as untrusted shapes: a wrong type is an error that names the claim, never a
//! panic and never a silent default.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::AuthError;

/// Where the tenant, roles and client id are found in a token's claims.
#[derive(Debug, Clone)]
pub struct ClaimNames {
    /// The tenant UUID claim (required); a literal name or a dotted path.
    pub tenant: String,
    /// The roles claim (required, may be empty): a JSON array or a space-separated string.
    pub roles: String,
    /// The client UUID claim (optional).
    pub client: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            tenant: "tenant_id".into(),
            roles: "roles".into(),
            client: "client_id".into(),
        }
    }
}

/// The authenticated caller a verified token describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: the user at the identity provider.
    pub subject: String,
    /// The tenant the caller acts in.
    pub tenant_id: Uuid,
    /// Role names as the token states them (unknown ones are the API's to ignore).
    pub roles: Vec<String>,
    /// The client a client user is restricted to, if any.
    pub client_id: Option<Uuid>,
    /// How the user authenticated (`amr`, RFC 8176): `mfa` when a second factor was used.
    pub amr: Vec<String>,
    /// The authentication context class (`acr`), if the provider states one.
    pub acr: Option<String>,
    /// When the user authenticated (`auth_time`, Unix seconds), if the provider says.
    pub auth_time: Option<i64>,
}

impl Principal {
    /// True when the token says a second factor was used (`amr` holds `mfa`, or `acr` is one
    /// of `mfa_acr`) at most `max_age_secs` before `now` (Unix seconds).
    pub fn has_recent_mfa(&self, mfa_acr: &[String], max_age_secs: i64, now: i64) -> bool {
        let second_factor = self.amr.iter().any(|m| m == "mfa")
            || self.acr.as_ref().is_some_and(|a| mfa_acr.contains(a));
        second_factor
            && self
                .auth_time
                .is_some_and(|t| t <= now + 60 && now - t <= max_age_secs)
    }
}

/// Builds the principal from verified claims, naming the first claim that is missing or wrong.
pub(crate) fn principal_from_claims(
    claims: &Map<String, Value>,
    names: &ClaimNames,
) -> Result<Principal, AuthError> {
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(invalid("sub", "must not be empty")),
        Some(Value::Null) | None => return Err(AuthError::MissingClaim("sub".into())),
        Some(_) => return Err(invalid("sub", "must be a string")),
    };

    let tenant_id = match find_claim(claims, &names.tenant) {
        None => return Err(AuthError::MissingClaim(names.tenant.clone())),
        Some(value) => parse_uuid(value, &names.tenant)?,
    };

    let roles = match find_claim(claims, &names.roles) {
        None => return Err(AuthError::MissingClaim(names.roles.clone())),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid(&names.roles, "every role must be a string"))?,
        Some(_) => {
            return Err(invalid(
                &names.roles,
                "must be an array of strings or a space-separated string",
            ));
        }
    };

    let client_id = match find_claim(claims, &names.client) {
        None => None,
        Some(value) => Some(parse_uuid(value, &names.client)?),
    };

    let amr = match claims.get("amr") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("amr", "every method must be a string"))?,
        Some(_) => return Err(invalid("amr", "must be an array of strings")),
    };
    let acr = match claims.get("acr") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("acr", "must be a string")),
    };
    let auth_time = match claims.get("auth_time") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| invalid("auth_time", "must be an integer (Unix seconds)"))?,
        ),
    };

    Ok(Principal {
        subject,
        tenant_id,
        roles,
        client_id,
        amr,
        acr,
        auth_time,
    })
}

/// The claim called `name`, literally or as a dotted path; `null` counts as absent.
fn find_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let found = match claims.get(name) {
        Some(value) => Some(value),
        None => {
            let mut segments = name.split('.');
            let first = segments.next().and_then(|s| claims.get(s));
            segments.try_fold(first?, |value, segment| value.as_object()?.get(segment))
        }
    };
    found.filter(|value| !value.is_null())
}

/// Reads a UUID claim.
fn parse_uuid(value: &Value, name: &str) -> Result<Uuid, AuthError> {
    let text = value
        .as_str()
        .ok_or_else(|| invalid(name, "must be a UUID string"))?;
    Uuid::parse_str(text).map_err(|_| invalid(name, "must be a UUID"))
}

fn invalid(claim: &str, reason: &'static str) -> AuthError {
    AuthError::InvalidClaim {
        claim: claim.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_literal_claim_name_with_dots_wins_over_the_path() {
        let c = claims(
            json!({ "https://x.example/tenant": "a", "https://x": { "example/tenant": "b" } }),
        );
        assert_eq!(
            find_claim(&c, "https://x.example/tenant"),
            Some(&json!("a"))
        );
    }

    #[test]
    fn a_dotted_name_walks_nested_objects() {
        let c = claims(json!({ "realm_access": { "roles": ["ops"] } }));
        assert_eq!(find_claim(&c, "realm_access.roles"), Some(&json!(["ops"])));
        assert_eq!(find_claim(&c, "realm_access.missing"), None);
        assert_eq!(find_claim(&c, "realm_access.roles.deeper"), None);
    }

    #[test]
    fn a_null_claim_counts_as_absent() {
        let c = claims(json!({ "client_id": null }));
        assert_eq!(find_claim(&c, "client_id"), None);
    }

    #[test]
    fn space_separated_roles_are_split() {
        let tenant = Uuid::new_v4();
        let c = claims(
            json!({ "sub": "u", "tenant_id": tenant.to_string(), "roles": " ops  advisor " }),
        );
        let p = principal_from_claims(&c, &ClaimNames::default()).expect("valid claims");
        assert_eq!(p.roles, vec!["ops", "advisor"]);
        assert_eq!(p.tenant_id, tenant);
        assert_eq!(p.client_id, None);
    }

    #[test]
    fn an_empty_subject_is_refused() {
        let c = claims(json!({ "sub": "", "tenant_id": Uuid::new_v4().to_string(), "roles": [] }));
        let err = principal_from_claims(&c, &ClaimNames::default()).expect_err("empty sub");
        assert!(
            matches!(err, AuthError::InvalidClaim { ref claim, .. } if claim == "sub"),
            "{err}"
        );
    }
}
