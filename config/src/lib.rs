//! Typed settings: built-in defaults < optional file < environment.
//!
//! Every key exists in `config/default.toml` (embedded at compile time, so the binary runs
//! from anywhere). A file named by `EAM_CONFIG_FILE` overrides it, then environment
//! variables: `DATABASE_URL`, `REDIS_URL`, and `EAM_<SECTION>__<KEY>` for everything else.
//! An environment value takes the type of the default it replaces, so a bad number or an
//! unknown key is an error that names the key, at start-up rather than at 2 a.m.

pub mod secrets;

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
    pub log: LogSettings,
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
            merge_file(&mut table, file, path)?;
        }
        for (name, value) in &env {
            let target = match name.as_str() {
                "DATABASE_URL" => Some(("database".to_owned(), "url".to_owned())),
                "REDIS_URL" => Some(("redis".to_owned(), "url".to_owned())),
                _ => name.strip_prefix("EAM_").and_then(|rest| {
                    rest.split_once("__")
                        .map(|(s, k)| (s.to_lowercase(), k.to_lowercase()))
                }),
            };
            if let Some((section, key)) = target {
                set_typed(&mut table, &section, &key, value, name)?;
            }
        }
        let settings: Settings = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| {
            Err(ConfigError::Key {
                key: key.into(),
                origin: "settings".into(),
                reason: reason.into(),
            })
        };
        if !self.database.url.expose().starts_with("postgres") {
            return bad("database.url", "must be a postgres:// URL");
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
    fn secrets_do_not_print() {
        let s = Settings::load_from(env(&[("EAM_DATABASE__APP_PASSWORD", "hunter2")])).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
