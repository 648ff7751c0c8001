//! Secret references: where a secret lives, never the secret itself.
//!
//! Bank connections and settings hold references (`file:///path`, `env://VAR`); values are
//! resolved only when needed, and never logged. AWS Secrets Manager (`aws-sm://name#key`)
//! plugs in here as another scheme.

use std::path::PathBuf;

/// Why a secret could not be resolved. Messages name the reference, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("'{0}' is not a secret reference (expected file:///path or env://NAME)")]
    BadReference(String),
    #[error("secret {reference}: {reason}")]
    Unavailable { reference: String, reason: String },
}

/// A parsed secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    File(PathBuf),
    Env(String),
}

impl SecretRef {
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        if let Some(path) = s.strip_prefix("file://") {
            if path.is_empty() {
                return Err(SecretError::BadReference(s.into()));
            }
            Ok(SecretRef::File(PathBuf::from(path)))
        } else if let Some(name) = s.strip_prefix("env://") {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(SecretError::BadReference(s.into()));
            }
            Ok(SecretRef::Env(name.into()))
        } else {
            Err(SecretError::BadReference(s.into()))
        }
    }
}

/// Resolves a reference to the secret's bytes.
pub async fn resolve(reference: &str) -> Result<Vec<u8>, SecretError> {
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
    }
}

/// Resolves a reference to UTF-8 text, trimmed of a trailing newline.
pub async fn resolve_text(reference: &str) -> Result<String, SecretError> {
    let bytes = resolve(reference).await?;
    let text = String::from_utf8(bytes).map_err(|_| SecretError::Unavailable {
        reference: reference.into(),
        reason: "not UTF-8 text".into(),
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_parsed_strictly() {
        assert_eq!(
            SecretRef::parse("env://BANK_SECRET").unwrap(),
            SecretRef::Env("BANK_SECRET".into())
        );
        assert!(SecretRef::parse("hunter2").is_err());
        assert!(SecretRef::parse("env://").is_err());
        assert!(SecretRef::parse("file://").is_err());
    }

    #[tokio::test]
    async fn a_missing_file_names_the_reference_not_a_value() {
        let e = resolve("file:///nonexistent/eam-secret").await.unwrap_err();
        assert!(e.to_string().contains("file:///nonexistent/eam-secret"));
    }
}
