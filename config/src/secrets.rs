//! Secret references: where a secret lives, never the secret itself, and the provider that
//! resolves them.
//!
//! Bank connections and settings hold references; values are resolved only where they are
//! handed to the party that needs them, and never logged:
//!
//! - `aws-sm://NAME#KEY`: AWS Secrets Manager, secret `NAME` (a name or an ARN). With `#KEY`
//!   the secret is a JSON object and the reference is its string field `KEY`; without, the
//!   whole secret (string or binary). Keeping a client certificate and its key as two fields
//!   of one secret makes a rotation atomic: both are fetched, and cached, together.
//! - `file:///path`: a file (Kubernetes secret volumes, development).
//! - `env://NAME`: an environment variable.
//!
//! [`SecretProvider`] is the one way to resolve them, shared by the worker and the API (cheap
//! to clone). Values from Secrets Manager are cached per secret for a TTL, so a nightly batch
//! of syncs asks AWS once per secret, and a rotated secret is picked up within the TTL,
//! without a restart. Files and variables are local and cheap: they are read on every use,
//! so a replaced file counts at once. A refused credential can be dropped from the cache
//! ([`SecretProvider::invalidate`]) so that the next use asks again.
//!
//! Errors name the reference, never a value, and say whether waiting can help: a secret that
//! does not exist needs ops ([`SecretError::Unavailable`]); Secrets Manager being unreachable
//! heals by itself ([`SecretError::Unreachable`]).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

/// Why a secret could not be resolved. Messages name the reference, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "'{0}' is not a secret reference (expected aws-sm://NAME[#KEY], file:///path or env://NAME)"
    )]
    BadReference(String),
    /// The secret does not exist, or cannot be used as asked: ops must act.
    #[error("secret {reference}: {reason}")]
    Unavailable { reference: String, reason: String },
    /// The secrets manager could not be asked (network, throttling, its own failure).
    #[error("secret {reference}: the secrets manager is unreachable: {reason}")]
    Unreachable { reference: String, reason: String },
}

impl SecretError {
    /// True when trying again later can succeed without anyone acting.
    pub fn is_transient(&self) -> bool {
        matches!(self, SecretError::Unreachable { .. })
    }
}

/// A parsed secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    File(PathBuf),
    Env(String),
    AwsSecretsManager {
        /// Secret name or ARN.
        secret: String,
        /// A field of the secret's JSON object, or None for the whole secret.
        key: Option<String>,
    },
}

/// Longest secret id accepted: Secrets Manager names are at most 512 characters, ARNs longer.
const MAX_SECRET_ID: usize = 2048;

impl SecretRef {
    /// Parses a reference strictly: an unknown scheme or an empty or ill-formed name is an
    /// error (so a value pasted where a reference belongs is refused, not stored).
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let bad = || SecretError::BadReference(s.into());
        if let Some(path) = s.strip_prefix("file://") {
            if path.is_empty() {
                return Err(bad());
            }
            Ok(SecretRef::File(PathBuf::from(path)))
        } else if let Some(name) = s.strip_prefix("env://") {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(bad());
            }
            Ok(SecretRef::Env(name.into()))
        } else if let Some(rest) = s.strip_prefix("aws-sm://") {
            let (secret, key) = match rest.split_once('#') {
                Some((secret, key)) => (secret, Some(key)),
                None => (rest, None),
            };
            // The characters Secrets Manager allows in names, plus ':' for ARNs.
            let secret_ok = !secret.is_empty()
                && secret.len() <= MAX_SECRET_ID
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-:".contains(&b));
            let key_ok = key.is_none_or(|k| {
                !k.is_empty() && k.len() <= 256 && k.bytes().all(|b| b.is_ascii_graphic())
            });
            if !secret_ok || !key_ok {
                return Err(bad());
            }
            Ok(SecretRef::AwsSecretsManager {
                secret: secret.into(),
                key: key.map(str::to_owned),
            })
        } else {
            Err(bad())
        }
    }
}

/// How to reach AWS Secrets Manager.
#[derive(Clone, Default)]
pub struct AwsAccess {
    /// e.g. `eu-central-1`.
    pub region: String,
    /// Another endpoint than AWS's (a VPC endpoint, a local emulator); None for AWS.
    pub endpoint: Option<String>,
    /// Fixed credentials, for tests against an emulator only. None: the standard AWS chain
    /// (environment, profile, web identity, container or instance role).
    pub static_credentials: Option<(String, String)>,
}

impl fmt::Debug for AwsAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsAccess")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field(
                "static_credentials",
                &self.static_credentials.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Resolves secret references; shared by every task of a process (cheap to clone).
#[derive(Clone)]
pub struct SecretProvider {
    inner: Arc<Inner>,
}

struct Inner {
    ttl: Duration,
    aws: AwsAccess,
    client: tokio::sync::OnceCell<aws_sdk_secretsmanager::Client>,
    cache: Mutex<Cache>,
}

/// Whole secrets from Secrets Manager by secret id, with the time each was fetched.
type Cache = HashMap<String, (Instant, Arc<Vec<u8>>)>;

impl fmt::Debug for SecretProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretProvider")
            .field("ttl", &self.inner.ttl)
            .field("aws", &self.inner.aws)
            .finish_non_exhaustive()
    }
}

/// Per-call limits towards Secrets Manager, so a hung endpoint fails a sync as transient
/// instead of holding it.
const AWS_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const AWS_OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

impl SecretProvider {
    /// A provider whose Secrets Manager values live `ttl` in the cache.
    pub fn new(aws: AwsAccess, ttl: Duration) -> Self {
        SecretProvider {
            inner: Arc::new(Inner {
                ttl,
                aws,
                client: tokio::sync::OnceCell::new(),
                cache: Mutex::default(),
            }),
        }
    }

    /// The provider the settings describe.
    pub fn from_settings(settings: &crate::SecretsSettings) -> Self {
        SecretProvider::new(
            AwsAccess {
                region: settings.aws_region.clone(),
                endpoint: Some(settings.aws_endpoint.clone()).filter(|e| !e.is_empty()),
                static_credentials: None,
            },
            Duration::from_secs(settings.cache_ttl_secs),
        )
    }

    /// Resolves a reference to the secret's bytes.
    pub async fn resolve(&self, reference: &str) -> Result<Vec<u8>, SecretError> {
        let unavailable = |reason: String| SecretError::Unavailable {
            reference: reference.into(),
            reason,
        };
        match SecretRef::parse(reference)? {
            SecretRef::File(path) => tokio::fs::read(&path)
                .await
                .map_err(|e| unavailable(e.to_string())),
            SecretRef::Env(name) => std::env::var(&name)
                .map(String::into_bytes)
                .map_err(|_| unavailable("environment variable is not set".into())),
            SecretRef::AwsSecretsManager { secret, key } => {
                let whole = self.aws_secret(reference, &secret).await?;
                match key {
                    None => Ok(whole.to_vec()),
                    Some(key) => field(&whole, &key).map_err(unavailable),
                }
            }
        }
    }

    /// Resolves a reference to UTF-8 text, trimmed of a trailing newline.
    pub async fn resolve_text(&self, reference: &str) -> Result<String, SecretError> {
        let bytes = self.resolve(reference).await?;
        let text = String::from_utf8(bytes).map_err(|_| SecretError::Unavailable {
            reference: reference.into(),
            reason: "not UTF-8 text".into(),
        })?;
        Ok(text.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// Forgets the cached value behind a reference (e.g. after the bank refused it), so the
    /// next use fetches it again. A reference that is not cached is ignored.
    pub fn invalidate(&self, reference: &str) {
        if let Ok(SecretRef::AwsSecretsManager { secret, .. }) = SecretRef::parse(reference) {
            self.cache().remove(&secret);
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The map holds no invariant a panicking holder could break: use it as it is.
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The whole secret, from the cache while it is fresh, else from Secrets Manager.
    async fn aws_secret(&self, reference: &str, secret: &str) -> Result<Arc<Vec<u8>>, SecretError> {
        if let Some((at, value)) = self.cache().get(secret)
            && at.elapsed() < self.inner.ttl
        {
            return Ok(value.clone());
        }
        let client = self.client().await;
        let fetched = client
            .get_secret_value()
            .secret_id(secret)
            .send()
            .await
            .map_err(|e| classify(reference, e))?;
        let value = if let Some(text) = fetched.secret_string() {
            text.as_bytes().to_vec()
        } else if let Some(binary) = fetched.secret_binary() {
            binary.as_ref().to_vec()
        } else {
            return Err(SecretError::Unavailable {
                reference: reference.into(),
                reason: "the secret has no value".into(),
            });
        };
        tracing::debug!(secret, version = fetched.version_id(), "secret fetched");
        let value = Arc::new(value);
        self.cache()
            .insert(secret.to_owned(), (Instant::now(), value.clone()));
        Ok(value)
    }

    async fn client(&self) -> &aws_sdk_secretsmanager::Client {
        self.inner
            .client
            .get_or_init(|| async {
                let aws = &self.inner.aws;
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(aws.region.clone()))
                    .timeout_config(
                        aws_config::timeout::TimeoutConfig::builder()
                            .connect_timeout(AWS_CONNECT_TIMEOUT)
                            .operation_timeout(AWS_OPERATION_TIMEOUT)
                            .build(),
                    );
                if let Some(endpoint) = &aws.endpoint {
                    loader = loader.endpoint_url(endpoint);
                }
                if let Some((id, secret)) = &aws.static_credentials {
                    loader = loader.credentials_provider(Credentials::new(
                        id,
                        secret,
                        None,
                        None,
                        "eam-static",
                    ));
                }
                aws_sdk_secretsmanager::Client::new(&loader.load().await)
            })
            .await
    }
}

/// A secret that does not exist, cannot be decrypted or may not be read needs ops; anything
/// else (network, throttling, Secrets Manager's own failures) is transient.
fn classify(
    reference: &str,
    e: SdkError<GetSecretValueError, aws_sdk_secretsmanager::config::http::HttpResponse>,
) -> SecretError {
    let reason = DisplayErrorContext(&e).to_string();
    let refused = e
        .raw_response()
        .is_some_and(|r| matches!(r.status().as_u16(), 401 | 403));
    let needs_ops = refused
        || e.as_service_error().is_some_and(|s| {
            s.is_resource_not_found_exception()
                || s.is_decryption_failure()
                || s.is_invalid_parameter_exception()
                || s.is_invalid_request_exception()
        });
    if needs_ops {
        SecretError::Unavailable {
            reference: reference.into(),
            reason,
        }
    } else {
        SecretError::Unreachable {
            reference: reference.into(),
            reason,
        }
    }
}

/// The string field `key` of a JSON object secret.
fn field(whole: &[u8], key: &str) -> Result<Vec<u8>, String> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(whole)
        .map_err(|_| format!("the secret is not a JSON object, so it has no field '{key}'"))?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(_) => Err(format!("field '{key}' of the secret is not a string")),
        None => Err(format!("the secret has no field '{key}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SecretProvider {
        SecretProvider::new(AwsAccess::default(), Duration::from_secs(60))
    }

    #[test]
    fn references_are_parsed_strictly() {
        assert_eq!(
            SecretRef::parse("env://BANK_SECRET").unwrap(),
            SecretRef::Env("BANK_SECRET".into())
        );
        assert_eq!(
            SecretRef::parse("aws-sm://eam/bank-a/mtls#client_key").unwrap(),
            SecretRef::AwsSecretsManager {
                secret: "eam/bank-a/mtls".into(),
                key: Some("client_key".into())
            }
        );
        assert_eq!(
            SecretRef::parse(
                "aws-sm://arn:aws:secretsmanager:eu-central-1:123456789012:secret:eam-AbCdEf"
            )
            .unwrap(),
            SecretRef::AwsSecretsManager {
                secret: "arn:aws:secretsmanager:eu-central-1:123456789012:secret:eam-AbCdEf".into(),
                key: None
            }
        );
        for bad in [
            "hunter2",
            "env://",
            "file://",
            "aws-sm://",
            "aws-sm://#key",
            "aws-sm://name#",
            "aws-sm://na me#key",
            "aws-sm://name#a key",
            "s3://bucket/key",
        ] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_field_is_read_from_a_json_secret_and_its_absence_named() {
        let whole = br#"{"cert":"PEM","n":1}"#;
        assert_eq!(field(whole, "cert").unwrap(), b"PEM");
        assert!(field(whole, "key").unwrap_err().contains("no field 'key'"));
        assert!(field(whole, "n").unwrap_err().contains("not a string"));
        assert!(field(b"plain", "cert").unwrap_err().contains("not a JSON"));
    }

    #[tokio::test]
    async fn a_missing_file_names_the_reference_not_a_value() {
        let e = local()
            .resolve("file:///nonexistent/eam-secret")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("file:///nonexistent/eam-secret"));
        assert!(!e.is_transient());
    }

    #[tokio::test]
    async fn an_unreachable_secrets_manager_is_transient() {
        // Nothing listens on port 9 of the loopback: the connection is refused at once.
        let provider = SecretProvider::new(
            AwsAccess {
                region: "us-east-1".into(),
                endpoint: Some("http://127.0.0.1:9".into()),
                static_credentials: Some(("id".into(), "secret".into())),
            },
            Duration::from_secs(60),
        );
        let e = provider
            .resolve("aws-sm://eam/unreachable#key")
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(
            e.to_string().contains("aws-sm://eam/unreachable#key"),
            "{e}"
        );
    }

    #[test]
    fn debug_output_hides_static_credentials() {
        let access = AwsAccess {
            region: "r".into(),
            endpoint: None,
            static_credentials: Some(("AKIDEXAMPLE".into(), "wJalrXUtnFEMI".into())),
        };
        let printed = format!("{:?}", SecretProvider::new(access, Duration::ZERO));
        assert!(!printed.contains("wJalrXUtnFEMI") && !printed.contains("AKIDEXAMPLE"));
    }
}
