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
//! **Whose secret.** The platform's own settings (the database password, ...) may use any
//! reference: [`SecretProvider::resolve_platform`]. A tenant's references (its bank
//! connections) reach only what the tenant owns, checked when they are stored and again on
//! every use ([`SecretProvider::resolve_tenant`]), because a reference is a pointer the tenant
//! aims and the worker follows with the platform's privileges: `env://` is refused (the
//! environment is the platform's: `DATABASE_URL`, AWS credentials), `file://` only under the
//! tenant's directory `<secrets.tenant_file_root>/<tenant id>/` (absolute, no `.` or `..`, and
//! the file's real path, symlinks followed, still inside it), `aws-sm://` only secret names
//! under `<secrets.tenant_aws_prefix><tenant id>/` (names, not ARNs, so the prefix is the
//! whole identity). The IAM policy that enforces the same prefix in AWS is in the README.
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
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use uuid::Uuid;

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
    /// A tenant's reference points outside what the tenant owns: it is never resolved.
    #[error("secret reference outside the tenant's scope: {reference}: {rule}")]
    OutOfScope { reference: String, rule: String },
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

/// Where a tenant's secrets may live: the platform's setting, the same for every tenant.
#[derive(Debug, Clone)]
pub struct TenantScope {
    /// Secrets Manager names of tenant T start with `<aws_prefix><T>/`.
    pub aws_prefix: String,
    /// Files of tenant T lie under `<file_root>/<T>/`; None: no `file://` for tenants.
    pub file_root: Option<PathBuf>,
}

impl Default for TenantScope {
    /// Secrets Manager under `eam/<tenant>/`, no files.
    fn default() -> Self {
        TenantScope {
            aws_prefix: "eam/".into(),
            file_root: None,
        }
    }
}

impl TenantScope {
    /// The scope of the settings; a relative file root is taken from the working directory.
    pub fn from_settings(settings: &crate::SecretsSettings) -> Self {
        let file_root = Some(settings.tenant_file_root.trim())
            .filter(|r| !r.is_empty())
            .map(|r| absolute(Path::new(r)));
        TenantScope {
            aws_prefix: settings.tenant_aws_prefix.clone(),
            file_root,
        }
    }

    /// The directory of a tenant's secret files, if tenants may use files.
    pub fn tenant_dir(&self, tenant: Uuid) -> Option<PathBuf> {
        self.file_root
            .as_ref()
            .map(|root| root.join(tenant.hyphenated().to_string()))
    }

    /// The Secrets Manager name prefix of a tenant.
    pub fn aws_prefix_of(&self, tenant: Uuid) -> String {
        format!("{}{}/", self.aws_prefix, tenant.hyphenated())
    }

    /// Parses a tenant's reference and checks it points inside the tenant's scope. A file is
    /// checked by its words here and, when it exists, by its real path (symlinks followed);
    /// [`SecretProvider::resolve_tenant`] checks the real path again before reading.
    pub fn check(&self, tenant: Uuid, reference: &str) -> Result<SecretRef, SecretError> {
        let parsed = SecretRef::parse(reference)?;
        let refuse = |rule: String| SecretError::OutOfScope {
            reference: reference.into(),
            rule,
        };
        match &parsed {
            SecretRef::Env(_) => Err(refuse(format!(
                "env:// is for the platform's own settings, not for tenants; use aws-sm://{}...{}",
                self.aws_prefix_of(tenant),
                match self.tenant_dir(tenant) {
                    Some(dir) => format!(" or file://{}/...", dir.display()),
                    None => String::new(),
                }
            ))),
            SecretRef::File(path) => {
                let Some(dir) = self.tenant_dir(tenant) else {
                    return Err(refuse(
                        "file:// is not available to tenants on this platform (secrets.tenant_file_root is not set); use aws-sm://".into(),
                    ));
                };
                let rule = || {
                    format!(
                        "file:// must name a file under {}/ (an absolute path, without '.' or '..', and no symlink leading out)",
                        dir.display()
                    )
                };
                // Judged on the words as written: `components()` would quietly drop a `.`.
                let words = path.to_string_lossy();
                let plain = path.is_absolute()
                    && words
                        .split('/')
                        .skip(1)
                        .all(|part| !part.is_empty() && part != "." && part != "..");
                if !plain || !path.starts_with(&dir) || path == &dir {
                    return Err(refuse(rule()));
                }
                match real_path_inside(path, &dir) {
                    Ok(_) | Err(RealPath::Missing) => Ok(parsed),
                    Err(RealPath::Outside) => Err(refuse(rule())),
                }
            }
            SecretRef::AwsSecretsManager { secret, .. } => {
                let prefix = self.aws_prefix_of(tenant);
                let ok = !secret.contains(':')
                    && secret.len() > prefix.len()
                    && secret.starts_with(&prefix)
                    && secret[prefix.len()..]
                        .split('/')
                        .all(|part| !part.is_empty() && part != "." && part != "..");
                if ok {
                    Ok(parsed)
                } else {
                    Err(refuse(format!(
                        "aws-sm:// must name a secret under {prefix} (by name, not ARN)"
                    )))
                }
            }
        }
    }
}

/// Why a file's real path is not usable.
enum RealPath {
    Missing,
    Outside,
}

/// The file's real path (symlinks followed), if it lies inside `dir`'s real path.
fn real_path_inside(path: &Path, dir: &Path) -> Result<PathBuf, RealPath> {
    let real_dir = std::fs::canonicalize(dir).map_err(|_| RealPath::Missing)?;
    let real = std::fs::canonicalize(path).map_err(|_| RealPath::Missing)?;
    if real.starts_with(&real_dir) && real != real_dir {
        Ok(real)
    } else {
        Err(RealPath::Outside)
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_owned())
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
    scope: TenantScope,
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

/// UTF-8 text of a secret, trimmed of a trailing newline.
fn text(reference: &str, bytes: Vec<u8>) -> Result<String, SecretError> {
    let text = String::from_utf8(bytes).map_err(|_| SecretError::Unavailable {
        reference: reference.into(),
        reason: "not UTF-8 text".into(),
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// `TenantScope::check` refuses every `env://` reference; kept as an error, not a panic.
fn unreachable_scope(reference: &str) -> Result<Vec<u8>, SecretError> {
    Err(SecretError::OutOfScope {
        reference: reference.into(),
        rule: "env:// is for the platform's own settings".into(),
    })
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
                scope: TenantScope::default(),
                aws,
                client: tokio::sync::OnceCell::new(),
                cache: Mutex::default(),
            }),
        }
    }

    /// The same provider with tenants' references confined to `scope`.
    pub fn with_tenant_scope(self, scope: TenantScope) -> Self {
        let inner = Inner {
            ttl: self.inner.ttl,
            scope,
            aws: self.inner.aws.clone(),
            client: tokio::sync::OnceCell::new(),
            cache: Mutex::default(),
        };
        SecretProvider {
            inner: Arc::new(inner),
        }
    }

    /// Where tenants' secrets may live.
    pub fn tenant_scope(&self) -> &TenantScope {
        &self.inner.scope
    }

    /// The provider the settings describe.
    pub fn from_settings(settings: &crate::SecretsSettings) -> Self {
        let provider = SecretProvider::new(
            AwsAccess {
                region: settings.aws_region.clone(),
                endpoint: Some(settings.aws_endpoint.clone()).filter(|e| !e.is_empty()),
                static_credentials: None,
            },
            Duration::from_secs(settings.cache_ttl_secs),
        );
        provider.with_tenant_scope(TenantScope::from_settings(settings))
    }

    /// Resolves one of a tenant's references (a bank connection's), only inside the tenant's
    /// scope: a reference outside it is refused before anything is read. Logs which tenant
    /// resolved which reference (never the value).
    pub async fn resolve_tenant(
        &self,
        tenant: Uuid,
        reference: &str,
    ) -> Result<Vec<u8>, SecretError> {
        let scope = &self.inner.scope;
        let checked = scope.check(tenant, reference).inspect_err(|e| {
            tracing::warn!(tenant_id = %tenant, reference, error = %e, "tenant secret reference refused");
        })?;
        let value = match checked {
            SecretRef::File(path) => {
                // Read the real path, checked once more now: a symlink planted after the
                // reference was stored must not lead out of the tenant's directory.
                let dir = scope.tenant_dir(tenant).unwrap_or_default();
                let real = real_path_inside(&path, &dir).map_err(|e| match e {
                    RealPath::Missing => SecretError::Unavailable {
                        reference: reference.into(),
                        reason: "no such file".into(),
                    },
                    RealPath::Outside => SecretError::OutOfScope {
                        reference: reference.into(),
                        rule: format!("the file's real path leads out of {}/", dir.display()),
                    },
                })?;
                tokio::fs::read(&real)
                    .await
                    .map_err(|e| SecretError::Unavailable {
                        reference: reference.into(),
                        reason: e.to_string(),
                    })
            }
            SecretRef::Env(_) => unreachable_scope(reference),
            SecretRef::AwsSecretsManager { .. } => self.resolve_platform(reference).await,
        };
        tracing::info!(tenant_id = %tenant, reference, resolved = value.is_ok(), "tenant secret resolved");
        value
    }

    /// [`Self::resolve_tenant`] as UTF-8 text, trimmed of a trailing newline.
    pub async fn resolve_tenant_text(
        &self,
        tenant: Uuid,
        reference: &str,
    ) -> Result<String, SecretError> {
        text(reference, self.resolve_tenant(tenant, reference).await?)
    }

    /// Resolves one of the platform's own references (settings): any scheme, any place. Never
    /// for a reference a tenant gave.
    pub async fn resolve_platform(&self, reference: &str) -> Result<Vec<u8>, SecretError> {
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

    /// [`Self::resolve_platform`] as UTF-8 text, trimmed of a trailing newline.
    pub async fn resolve_platform_text(&self, reference: &str) -> Result<String, SecretError> {
        text(reference, self.resolve_platform(reference).await?)
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
            .resolve_platform("file:///nonexistent/eam-secret")
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
            .resolve_platform("aws-sm://eam/unreachable#key")
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

    /// A platform root with two tenants' directories, a secret in each, and a symlink in the
    /// first that leads to the second's secret.
    fn scoped_root() -> (PathBuf, Uuid, Uuid, SecretProvider) {
        let root = std::env::temp_dir().join(format!("eam-scope-{}", Uuid::new_v4().simple()));
        let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
        for t in [mine, other] {
            std::fs::create_dir_all(root.join(t.to_string())).unwrap();
            std::fs::write(root.join(t.to_string()).join("secret"), format!("of {t}\n")).unwrap();
        }
        std::os::unix::fs::symlink(
            root.join(other.to_string()).join("secret"),
            root.join(mine.to_string()).join("link"),
        )
        .unwrap();
        let provider = local().with_tenant_scope(TenantScope {
            aws_prefix: "eam/".into(),
            file_root: Some(root.clone()),
        });
        (root, mine, other, provider)
    }

    #[tokio::test]
    async fn a_tenant_reaches_only_its_own_secrets() {
        let (root, mine, other, provider) = scoped_root();
        let own = format!("file://{}/{mine}/secret", root.display());
        assert_eq!(
            provider.resolve_tenant_text(mine, &own).await.unwrap(),
            format!("of {mine}")
        );
        assert!(
            provider
                .tenant_scope()
                .check(mine, &format!("aws-sm://eam/{mine}/bank#key"))
                .is_ok()
        );
        let refused = [
            "env://DATABASE_URL".to_owned(),
            "env://HOME".to_owned(),
            "file:///etc/passwd".to_owned(),
            format!("file://{}/{other}/secret", root.display()),
            format!("file://{}/{mine}/../{other}/secret", root.display()),
            format!("file://{}/{mine}/./secret", root.display()),
            format!("file://{}/{mine}/link", root.display()),
            format!("file://{}/{mine}", root.display()),
            format!("file://{}/{mine}x/secret", root.display()),
            format!("aws-sm://eam/{other}/bank#key"),
            format!("aws-sm://eam/{mine}/../{other}/bank"),
            format!("aws-sm://eam/{mine}/"),
            "aws-sm://eam/platform/database".to_owned(),
            format!("aws-sm://arn:aws:secretsmanager:eu-central-1:1:secret:eam/{mine}/x"),
        ];
        for reference in &refused {
            let e = provider.resolve_tenant(mine, reference).await.unwrap_err();
            assert!(
                matches!(e, SecretError::OutOfScope { .. }),
                "{reference}: {e}"
            );
            assert!(
                e.to_string()
                    .starts_with("secret reference outside the tenant's scope: "),
                "{e}"
            );
        }
        // The platform's own references are not confined.
        assert_eq!(
            provider
                .resolve_platform_text(&format!("file://{}/{other}/secret", root.display()))
                .await
                .unwrap(),
            format!("of {other}")
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn a_symlink_planted_after_the_check_is_refused_when_resolved() {
        let (root, mine, other, provider) = scoped_root();
        let path = root.join(mine.to_string()).join("later");
        let reference = format!("file://{}", path.display());
        // Stored while the file did not exist: the words are inside the directory.
        assert!(provider.tenant_scope().check(mine, &reference).is_ok());
        std::os::unix::fs::symlink(root.join(other.to_string()).join("secret"), &path).unwrap();
        let e = provider.resolve_tenant(mine, &reference).await.unwrap_err();
        assert!(matches!(e, SecretError::OutOfScope { .. }), "{e}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn without_a_file_root_tenants_have_no_files_and_the_rule_says_so() {
        let tenant = Uuid::nil();
        let e = TenantScope::default()
            .check(tenant, "file:///var/secrets/x")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret reference outside the tenant's scope: file:///var/secrets/x: file:// is not available to tenants on this platform (secrets.tenant_file_root is not set); use aws-sm://"
        );
        let e = TenantScope::default()
            .check(tenant, "env://DATABASE_URL")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret reference outside the tenant's scope: env://DATABASE_URL: env:// is for the platform's own settings, not for tenants; use aws-sm://eam/00000000-0000-0000-0000-000000000000/..."
        );
    }
}
