//! Typed settings: built-in defaults < optional file < environment.
//!
//! Every key exists in `config/default.toml` (embedded at compile time, so the binary runs
//! from anywhere). A file named by `EAM_CONFIG_FILE` overrides it, then environment
//! variables: `DATABASE_URL`, `REDIS_URL`, and `EAM_<SECTION>__<KEY>` for everything else.
//! An environment value takes the type of the default it replaces, so a bad number or an
//! unknown key is an error that names the key, at start-up rather than at 2 a.m.

pub mod egress;
pub mod proxies;
pub mod secrets;

pub use secrets::{SecretError, SecretProvider, SecretRef};

use std::fmt;

use serde::Deserialize;

const DEFAULTS: &str = include_str!("../default.toml");

/// A configuration error, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Toml {
        path: String,
        source: toml::de::Error,
    },
    #[error("setting {key} (from {origin}): {reason}")]
    Key {
        key: String,
        origin: String,
        reason: String,
    },
    #[error("invalid settings: {0}")]
    Invalid(String),
}

/// A value that never prints: passwords and other secrets.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret value; call only where it is handed to the party that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub api: ApiSettings,
    pub auth: AuthSettings,
    pub worker: WorkerSettings,
    pub scheduler: SchedulerSettings,
    pub log: LogSettings,
    pub rate_limit: RateLimitSettings,
    pub secrets: SecretsSettings,
    pub egress: EgressSettings,
    pub archive: ArchiveSettings,
    pub certificates: CertificateSettings,
    pub market_data: MarketDataSettings,
    pub reports: ReportSettings,
    pub webhooks: WebhookSettings,
    pub email: EmailSettings,
    pub audit: AuditSettings,
    pub deployment: DeploymentSettings,
    /// Where each setting that is not the default came from (`section.key` -> "environment
    /// variable DATABASE_URL", "config file /etc/eam.toml"): what error messages name.
    #[serde(skip)]
    pub origins: std::collections::BTreeMap<String, String>,
    /// What loading noticed but did not refuse (an `EAM_` variable that is no setting), for
    /// the process to log once logging is set up.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// `host:port` (and `, database <name>` when the URL names one) of a URL, without its user or
/// password.
fn target(url: &str, default_port: u16) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let database = u.path().trim_start_matches('/');
            format!(
                "{}:{}{}",
                u.host_str().unwrap_or("(no host)"),
                u.port().unwrap_or(default_port),
                if database.is_empty() || u.scheme().starts_with("redis") {
                    String::new()
                } else {
                    format!(", database {database}")
                }
            )
        }
        Err(_) => "(a URL that does not parse)".to_owned(),
    }
}

/// `EAM_` variables that are not settings but are read elsewhere (the config file's path; the
/// scripts', tests' and benchmarks' own switches): no warning for these.
const NOT_SETTINGS: &[&str] = &[
    "EAM_CONFIG_FILE",
    "EAM_BENCH_",
    "EAM_LOCAL_",
    "EAM_NO_",
    "EAM_TEST_",
];

/// Requests per second allowed per tenant and per user, each with a burst.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub tenant_per_second: u32,
    pub tenant_burst: u32,
    pub user_per_second: u32,
    pub user_burst: u32,
    /// Refused tokens answered per second (and burst) per client address before 429.
    pub refused_per_second: u32,
    pub refused_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub app_user: String,
    pub app_password: Secret,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: Secret,
    pub queue: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    pub bind: String,
    pub public_url: String,
    /// Bytes of portfolio pages the read cache may hold, in MiB; 0 turns it off.
    pub read_cache_mib: u64,
    /// How long a cached page may be served, in seconds, even without a change announced.
    pub read_cache_secs: u64,
    /// Browser origins (`https://portal.example`) allowed to call the API; empty: no CORS.
    pub cors_origins: Vec<String>,
    /// Proxies (IP addresses, CIDR ranges) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// Where `/metrics` is served apart from the API (a port the balancer does not expose);
    /// empty: on the API's own port.
    pub metrics_bind: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
    pub local_issuer_dir: String,
    pub tenant_claim: String,
    pub roles_claim: String,
    pub client_claim: String,
    pub leeway_secs: u64,
    pub user_cache_secs: u64,
    /// Sensitive actions want a second factor at most this long ago (RFC 9470 step-up).
    pub mfa_max_age_secs: u64,
    /// `acr` values that count as a second factor, beside `amr` holding `mfa`.
    pub mfa_acr_values: Vec<String>,
    /// A four-eyes request not approved within this many hours expires.
    pub approval_expiry_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub concurrency: usize,
    pub poll_interval_ms: u64,
    pub max_attempts: u32,
    pub bank_timeout_secs: u64,
    pub request_retries: u32,
    pub retry_base_ms: u64,
    pub retry_max_secs: u64,
    pub lease_secs: u64,
    pub pause_after_failures: u32,
    pub dispatch_interval_ms: u64,
    pub stale_after_secs: u64,
    pub shutdown_grace_secs: u64,
    pub breaker_failures: u32,
    pub breaker_min_success_percent: u32,
    pub breaker_min_requests: u32,
    pub breaker_window_secs: u64,
    pub breaker_cooldown_secs: u64,
    /// Where `eam work` serves `/metrics` and `/health`; empty: no listener.
    pub metrics_bind: String,
}

/// Where `aws-sm://` secret references are resolved, and how long values are reused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSettings {
    pub aws_region: String,
    /// Empty: AWS's own endpoint for the region.
    pub aws_endpoint: String,
    pub cache_ttl_secs: u64,
    /// A tenant's `aws-sm://` names start with this, then its id and `/`.
    pub tenant_aws_prefix: String,
    /// A tenant's `file://` secrets live in `<this>/<tenant id>/`; empty: no files for tenants.
    pub tenant_file_root: String,
}

/// Where the platform may connect on a tenant's behalf.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressSettings {
    /// Let bank URLs reach loopback, private and link-local addresses (tests, the demo).
    pub allow_private_addresses: bool,
}

/// Where the platform runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSettings {
    /// Refuse development settings at start (the development token issuer first of all).
    pub production: bool,
}

/// The audit log's key and the heads workers publish.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// A platform secret reference; empty: unkeyed SHA-256 chain (development only).
    pub key_ref: String,
    pub retired_key_refs: Vec<String>,
    /// Seconds between head publications by a worker; 0: none.
    pub head_interval_secs: u64,
}

/// Where raw bank documents are archived: a local directory, or an S3 bucket when one is named.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSettings {
    pub dir: String,
    pub s3_bucket: String,
    pub s3_region: String,
    /// Empty: AWS's own endpoint for the region.
    pub s3_endpoint: String,
}

/// Where the platform's market data comes from, and when a rate is stale.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketDataSettings {
    pub ecb_url: String,
    pub client_cert_ref: String,
    pub client_key_ref: String,
    pub ca_cert_ref: String,
    pub stale_after_business_days: u32,
    /// Load the rates on `schedule` (the worker's tick, once per scheduled time across all
    /// workers); manual runs are possible either way.
    pub enabled: bool,
    /// Five-field cron in `timezone`.
    pub schedule: String,
    pub timezone: String,
}

/// What report jobs print beside the figures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// A PNG file printed on every statement's cover (empty: none). Read when the worker
    /// starts: a path that is not a readable PNG stops it.
    pub logo_path: String,
    /// Statements a worker generates at once (rendering is CPU work beside the syncs' I/O).
    pub concurrency: usize,
}

/// How the workers deliver webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// False: this worker delivers none (another must).
    pub enabled: bool,
    /// The waits after each failed attempt, in milliseconds (their number + 1 attempts).
    pub retry_schedule_ms: Vec<u64>,
    pub timeout_secs: u64,
    /// Deliveries one worker sends at once.
    pub concurrency: usize,
    /// An endpoint whose every delivery failed for this long is disabled.
    pub disable_after_hours: u64,
    /// A claimed delivery's lease: a worker that dies mid-delivery leaves it to another after
    /// this (at least once).
    pub lease_secs: u64,
}

/// E-mail notifications over SMTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The SMTP server; empty: this worker sends no e-mail.
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `starttls` (required), `tls` (from the first byte) or `none` (a local relay).
    pub smtp_security: String,
    pub smtp_username: String,
    pub smtp_password: Secret,
    /// The sender, e.g. `EAM Platform <notifications@example.com>`.
    pub from: String,
    /// When non-urgent notifications go out as one digest per user (five-field cron).
    pub digest_schedule: String,
    pub digest_timezone: String,
}

/// When a connection's client certificate counts as at risk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSettings {
    pub warning_days: u32,
    /// How often each worker checks every client certificate for `certificate.expiring`
    /// (0: this worker does not).
    pub check_interval_hours: u64,
}

/// The schedule tick, and the limits scheduled syncs respect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Run the tick in `eam work`.
    pub enabled: bool,
    pub tick_interval_secs: u64,
    /// How old a missed scheduled time may be and still be caught up.
    pub catch_up_hours: u64,
    /// The window over which syncs scheduled at one time are spread.
    pub spread_secs: u64,
    /// Syncs of one custodian running at once, across all workers (0: no limit).
    pub custodian_limit: u32,
    /// How long a run over the custodian limit waits before it tries again.
    pub custodian_recheck_ms: u64,
    /// A scheduled sync with no successful sync this many hours after its time is a late
    /// bank delivery (`delivery.late`, a task); 0: not checked.
    pub delivery_late_after_hours: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl Settings {
    /// Loads defaults, then `EAM_CONFIG_FILE` if set, then the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment (tests).
    pub fn load_from(env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut origins = std::collections::BTreeMap::new();
        let mut warnings = Vec::new();
        let mut table: toml::Table = DEFAULTS.parse().map_err(|source| ConfigError::Toml {
            path: "config/default.toml (built in)".into(),
            source,
        })?;
        if let Some((_, path)) = env.iter().find(|(k, _)| k == "EAM_CONFIG_FILE") {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                path: path.clone(),
                source,
            })?;
            let file: toml::Table = text.parse().map_err(|source| ConfigError::Toml {
                path: path.clone(),
                source,
            })?;
            for (section, keys) in &file {
                if let Some(keys) = keys.as_table() {
                    for key in keys.keys() {
                        origins.insert(format!("{section}.{key}"), format!("config file {path}"));
                    }
                }
            }
            merge_file(&mut table, file, path)?;
        }
        for (name, value) in &env {
            if name.starts_with("EAM_")
                && !name.contains("__")
                && !NOT_SETTINGS.iter().any(|p| name.starts_with(p))
            {
                warnings.push(format!(
                    "environment variable {name} is not a setting and is ignored (settings are \
                     EAM_<SECTION>__<KEY> with two underscores, e.g. EAM_DATABASE__URL)"
                ));
            }
            let target = match name.as_str() {
                "DATABASE_URL" => Some(("database".to_owned(), "url".to_owned())),
                "REDIS_URL" => Some(("redis".to_owned(), "url".to_owned())),
                _ => name.strip_prefix("EAM_").and_then(|rest| {
                    rest.split_once("__")
                        .map(|(s, k)| (s.to_lowercase(), k.to_lowercase()))
                }),
            };
            if let Some((section, key)) = target {
                set_typed(
                    &mut table,
                    &section,
                    &key,
                    value,
                    &format!("environment variable {name}"),
                )?;
                origins.insert(
                    format!("{section}.{key}"),
                    format!("environment variable {name}"),
                );
            }
        }
        let mut settings: Settings = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        if settings.audit.key_ref.is_empty() {
            warnings.push(
                "audit.key_ref is empty: the audit log is chained with plain SHA-256, which \
                 whoever can write the database can recompute; name a secret of 32 bytes or more"
                    .to_owned(),
            );
        }
        settings.origins = origins;
        settings.warnings = warnings;
        settings.check()?;
        Ok(settings)
    }

    /// "PostgreSQL at host:port, database D, as the app role R (database.url from …)": what a
    /// connection error names, never a password.
    pub fn describe_database(&self) -> String {
        let d = &self.database;
        format!(
            "PostgreSQL at {} as {} (database.url from {}, database.app_user from {})",
            target(d.url.expose(), 5432),
            d.app_user,
            self.origin("database.url"),
            self.origin("database.app_user")
        )
    }

    /// "Redis at host:port (redis.url from …)", never a password.
    pub fn describe_redis(&self) -> String {
        format!(
            "Redis at {} (redis.url from {})",
            target(self.redis.url.expose(), 6379),
            self.origin("redis.url")
        )
    }

    /// Where a setting (`section.key`) came from: an environment variable, a config file, or
    /// the built-in default.
    pub fn origin(&self, key: &str) -> String {
        self.origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| "the built-in default".to_owned())
    }

    /// What production refuses, each naming its setting, where it came from and what to do.
    fn development_settings(&self) -> Vec<String> {
        let mut refused = Vec::new();
        let mut refuse = |key: &str, why: &str| {
            refused.push(format!("{key} (from {}) {why}", self.origin(key)));
        };
        if !self.auth.local_issuer_dir.trim().is_empty() {
            refuse(
                "auth.local_issuer_dir",
                "turns on the development token issuer: set it to \"\" and point auth.issuer \
                 and auth.jwks_url at the identity provider",
            );
        }
        if self.audit.key_ref.trim().is_empty() {
            refuse(
                "audit.key_ref",
                "is empty: the audit log would be chained without its key; name a secret of 32 \
                 bytes or more",
            );
        }
        if self.egress.allow_private_addresses {
            refuse(
                "egress.allow_private_addresses",
                "lets bank URLs reach loopback and private networks: set it to false",
            );
        }
        if !self.api.public_url.starts_with("https://") {
            refuse("api.public_url", "is not https://");
        }
        refused
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| {
            Err(ConfigError::Key {
                key: key.into(),
                origin: self.origin(key),
                reason: reason.into(),
            })
        };
        if !self.database.url.expose().starts_with("postgres") {
            return bad("database.url", "must be a postgres:// URL");
        }
        if self.deployment.production {
            let refused = self.development_settings();
            if !refused.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "deployment.production (from {}) refuses development settings: {}",
                    self.origin("deployment.production"),
                    refused.join("; ")
                )));
            }
        }
        if let Err(reason) = proxies::TrustedProxies::parse(&self.api.trusted_proxies) {
            return bad("api.trusted_proxies", &reason);
        }
        if !self.redis.url.expose().starts_with("redis") {
            return bad("redis.url", "must be a redis:// URL");
        }
        if self.worker.concurrency == 0 {
            return bad("worker.concurrency", "must be at least 1");
        }
        if self.worker.max_attempts == 0 {
            return bad("worker.max_attempts", "must be at least 1");
        }
        if self.worker.lease_secs < 3 {
            return bad("worker.lease_secs", "must be at least 3");
        }
        if self.worker.breaker_min_success_percent > 100 {
            return bad("worker.breaker_min_success_percent", "must be 0 to 100");
        }
        if self.worker.dispatch_interval_ms == 0 {
            return bad("worker.dispatch_interval_ms", "must be at least 1");
        }
        if self.secrets.aws_region.is_empty() {
            return bad(
                "secrets.aws_region",
                "must name a region, e.g. eu-central-1",
            );
        }
        for (key, url) in [
            ("secrets.aws_endpoint", &self.secrets.aws_endpoint),
            ("archive.s3_endpoint", &self.archive.s3_endpoint),
        ] {
            if !url.is_empty() && !url.starts_with("https://") && !url.starts_with("http://") {
                return bad(key, "must be empty or an http(s):// URL");
            }
        }
        if self.archive.s3_bucket.is_empty() && self.archive.dir.is_empty() {
            return bad(
                "archive.dir",
                "must name a directory when archive.s3_bucket is empty",
            );
        }
        if !self.archive.s3_bucket.is_empty() && self.archive.s3_region.is_empty() {
            return bad("archive.s3_region", "must name the bucket's region");
        }
        if self.scheduler.tick_interval_secs == 0 {
            return bad("scheduler.tick_interval_secs", "must be at least 1");
        }
        if self.scheduler.custodian_limit > 0 && self.scheduler.custodian_recheck_ms == 0 {
            return bad("scheduler.custodian_recheck_ms", "must be at least 1");
        }
        if self.api.bind.parse::<std::net::SocketAddr>().is_err() {
            return bad("api.bind", "must be host:port, e.g. 127.0.0.1:8080");
        }
        Ok(())
    }

    /// The JWKS URL the API validates tokens against.
    pub fn jwks_url(&self) -> String {
        if self.auth.jwks_url.is_empty() {
            format!(
                "{}/auth/jwks.json",
                self.api.public_url.trim_end_matches('/')
            )
        } else {
            self.auth.jwks_url.clone()
        }
    }
}

fn merge_file(base: &mut toml::Table, file: toml::Table, path: &str) -> Result<(), ConfigError> {
    for (section, value) in file {
        let (Some(base_section), toml::Value::Table(keys)) = (
            base.get_mut(&section).and_then(toml::Value::as_table_mut),
            value,
        ) else {
            return Err(ConfigError::Key {
                key: section,
                origin: path.into(),
                reason: "unknown section".into(),
            });
        };
        for (key, v) in keys {
            let Some(old) = base_section.get(&key) else {
                return Err(ConfigError::Key {
                    key: format!("{section}.{key}"),
                    origin: path.into(),
                    reason: "unknown key".into(),
                });
            };
            if old.type_str() != v.type_str() {
                return Err(ConfigError::Key {
                    key: format!("{section}.{key}"),
                    origin: path.into(),
                    reason: format!("expected a {}, found a {}", old.type_str(), v.type_str()),
                });
            }
            base_section.insert(key, v);
        }
    }
    Ok(())
}

fn set_typed(
    table: &mut toml::Table,
    section: &str,
    key: &str,
    value: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    let err = |reason: String| ConfigError::Key {
        key: format!("{section}.{key}"),
        origin: origin.into(),
        reason,
    };
    let Some(old) = table
        .get_mut(section)
        .and_then(toml::Value::as_table_mut)
        .and_then(|s| s.get_mut(key))
    else {
        return Err(err("unknown setting".into()));
    };
    *old = match old {
        toml::Value::Integer(_) => toml::Value::Integer(
            value
                .trim()
                .parse()
                .map_err(|_| err(format!("'{value}' is not a whole number")))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(
            value
                .trim()
                .parse()
                .map_err(|_| err(format!("'{value}' is not true or false")))?,
        ),
        _ => toml::Value::String(value.to_owned()),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_environment_overrides_them() {
        let s = Settings::load_from(env(&[
            ("DATABASE_URL", "postgres://u@h:1/db"),
            ("EAM_WORKER__CONCURRENCY", "8"),
            ("EAM_LOG__FORMAT", "pretty"),
            ("UNRELATED", "x"),
        ]))
        .unwrap();
        assert_eq!(s.database.url.expose(), "postgres://u@h:1/db");
        assert_eq!(s.worker.concurrency, 8);
        assert_eq!(s.log.format, LogFormat::Pretty);
        assert_eq!(s.redis.queue, "eam-sync");
    }

    #[test]
    fn production_refuses_every_development_setting_and_names_each() {
        let e = Settings::load_from(env(&[
            ("EAM_DEPLOYMENT__PRODUCTION", "true"),
            ("EAM_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "invalid settings: deployment.production (from environment variable \
                 EAM_DEPLOYMENT__PRODUCTION) refuses development settings: auth.local_issuer_dir \
                 (from the built-in default) turns on the development token issuer"
            ),
            "{e}"
        );
        for named in [
            "audit.key_ref (from the built-in default) is empty",
            "egress.allow_private_addresses (from environment variable \
             EAM_EGRESS__ALLOW_PRIVATE_ADDRESSES) lets bank URLs",
            "api.public_url (from the built-in default) is not https://",
        ] {
            assert!(e.contains(named), "{named}: {e}");
        }
        let fine = Settings::load_from(env(&[
            ("EAM_DEPLOYMENT__PRODUCTION", "true"),
            ("EAM_AUTH__LOCAL_ISSUER_DIR", ""),
            ("EAM_AUDIT__KEY_REF", "aws-sm://eam/audit#key"),
            ("EAM_API__PUBLIC_URL", "https://api.eam.example"),
        ]))
        .unwrap();
        assert!(fine.deployment.production);
        // Development is the default, and allows them.
        assert!(!Settings::load_from(env(&[])).unwrap().deployment.production);
    }

    #[test]
    fn a_bad_or_unknown_setting_names_the_key() {
        let e = Settings::load_from(env(&[("EAM_WORKER__CONCURRENCY", "many")])).unwrap_err();
        assert!(e.to_string().contains("worker.concurrency"), "{e}");
        let e = Settings::load_from(env(&[("EAM_WORKER__CONCURENCY", "2")])).unwrap_err();
        assert!(e.to_string().contains("worker.concurency"), "{e}");
        let e = Settings::load_from(env(&[("EAM_API__BIND", "nonsense")])).unwrap_err();
        assert!(e.to_string().contains("api.bind"), "{e}");
        let e = Settings::load_from(env(&[("EAM_LOG__FORMAT", "xml")])).unwrap_err();
        assert!(e.to_string().contains("xml"), "{e}");
    }

    #[test]
    fn the_scheduler_section_loads_and_refuses_a_zero_tick() {
        let s = Settings::load_from(env(&[
            ("EAM_SCHEDULER__CUSTODIAN_LIMIT", "8"),
            ("EAM_SCHEDULER__ENABLED", "false"),
        ]))
        .unwrap();
        assert_eq!(s.scheduler.custodian_limit, 8);
        assert!(!s.scheduler.enabled);
        assert_eq!(s.scheduler.tick_interval_secs, 60);
        assert_eq!(s.scheduler.catch_up_hours, 12);
        assert_eq!(s.scheduler.spread_secs, 300);
        let e =
            Settings::load_from(env(&[("EAM_SCHEDULER__TICK_INTERVAL_SECS", "0")])).unwrap_err();
        assert!(
            e.to_string().contains("scheduler.tick_interval_secs"),
            "{e}"
        );
    }

    #[test]
    fn secret_provider_and_archive_settings_are_checked() {
        let s = Settings::load_from(env(&[
            ("EAM_ARCHIVE__S3_BUCKET", "eam-statements"),
            ("EAM_SECRETS__CACHE_TTL_SECS", "60"),
        ]))
        .unwrap();
        assert_eq!(s.archive.s3_bucket, "eam-statements");
        assert_eq!(s.secrets.cache_ttl_secs, 60);
        assert_eq!(s.certificates.warning_days, 30);
        let e = Settings::load_from(env(&[("EAM_SECRETS__AWS_ENDPOINT", "localhost:4566")]))
            .unwrap_err();
        assert!(e.to_string().contains("secrets.aws_endpoint"), "{e}");
        let e = Settings::load_from(env(&[("EAM_ARCHIVE__DIR", "")])).unwrap_err();
        assert!(e.to_string().contains("archive.dir"), "{e}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings::load_from(env(&[("EAM_DATABASE__APP_PASSWORD", "hunter2")])).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
