//! What every process opens from its settings before it serves or works: the pool as the app
//! role, the one secret provider (its cache shared by everything the process resolves), and
//! the raw document archive. `eam serve`, `eam work` and `eam demo` open them here; tests
//! hand in their own (a database of their own, the AWS emulator).

use eam_config::{SecretProvider, Settings};

use crate::archive::{Archive, ArchiveError, ArchiveLocation, S3Location};
use crate::audit::{AuditKey, AuditKeys};
use crate::{AppDb, Store, StoreError};

/// The shared outside parts of a process.
#[derive(Clone)]
pub struct Resources {
    pub store: Store,
    pub secrets: SecretProvider,
    pub archive: Archive,
}

/// Why a process could not open its resources; each names the setting to look at.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("database.app_password: {0}")]
    Password(#[from] eam_config::SecretError),
    #[error("cannot connect to {at}: {source}{hint}")]
    Database {
        at: String,
        source: StoreError,
        /// What to look at when the error alone does not say (a refused password).
        hint: String,
    },
    #[error("opening the document archive (archive.*): {0}")]
    Archive(#[from] ArchiveError),
    #[error("{setting} (from {origin}): {reason}")]
    AuditKey {
        setting: String,
        origin: String,
        reason: String,
    },
}

impl Resources {
    /// Opens what the settings name.
    pub async fn open(settings: &Settings) -> Result<Resources, OpenError> {
        let secrets = SecretProvider::from_settings(&settings.secrets);
        let store = connect(settings, &secrets)
            .await?
            .with_audit_keys(audit_keys(settings, &secrets).await?);
        let archive = Archive::open(&archive_location(settings))?;
        Ok(Resources {
            store,
            secrets,
            archive,
        })
    }
}

/// Connects to PostgreSQL as the app role the settings name (its password may be a platform
/// secret reference).
pub async fn connect(settings: &Settings, secrets: &SecretProvider) -> Result<Store, OpenError> {
    let db = &settings.database;
    let password = if db.app_password.expose().contains("://") {
        secrets
            .resolve_platform_text(db.app_password.expose())
            .await?
    } else {
        db.app_password.expose().to_owned()
    };
    Store::connect(AppDb {
        owner_url: db.url.expose(),
        app_user: &db.app_user,
        app_password: &password,
        max_connections: db.max_connections,
    })
    .await
    .map_err(|source| OpenError::Database {
        at: settings.describe_database(),
        hint: refused_login_hint(settings, &source),
        source,
    })
}

/// For a login PostgreSQL refused (28P01 wrong password, 28000 no such role or not allowed
/// from here): the settings that hold the role and its password, and where they came from.
fn refused_login_hint(settings: &Settings, e: &StoreError) -> String {
    let code = match e {
        StoreError::Database(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    match code.as_deref() {
        Some("28P01" | "28000") => format!(
            "; the role is database.app_user ({}, from {}), its password database.app_password \
             (from {})",
            settings.database.app_user,
            settings.origin("database.app_user"),
            settings.origin("database.app_password")
        ),
        _ => String::new(),
    }
}

/// The audit log's keys the settings name, resolved (none when `audit.key_ref` is empty).
pub async fn audit_keys(
    settings: &Settings,
    secrets: &SecretProvider,
) -> Result<AuditKeys, OpenError> {
    let a = &settings.audit;
    if a.key_ref.is_empty() {
        return Ok(AuditKeys::default());
    }
    let resolve = async |setting: &str, reference: &str| {
        let failed = |reason: String| OpenError::AuditKey {
            setting: setting.to_owned(),
            origin: settings.origin(setting),
            reason,
        };
        let bytes = secrets
            .resolve_platform(reference)
            .await
            .map_err(|e| failed(e.to_string()))?;
        AuditKey::new(&bytes).map_err(failed)
    };
    let current = resolve("audit.key_ref", &a.key_ref).await?;
    let mut retired = Vec::new();
    for reference in &a.retired_key_refs {
        retired.push(resolve("audit.retired_key_refs", reference).await?);
    }
    Ok(AuditKeys::new(current, retired))
}

/// Where the settings archive documents: an S3 bucket if one is named, else a directory.
pub fn archive_location(settings: &Settings) -> ArchiveLocation {
    let a = &settings.archive;
    if a.s3_bucket.is_empty() {
        ArchiveLocation::Directory(a.dir.clone().into())
    } else {
        ArchiveLocation::S3(S3Location {
            bucket: a.s3_bucket.clone(),
            region: a.s3_region.clone(),
            endpoint: Some(a.s3_endpoint.clone()).filter(|e| !e.is_empty()),
            static_credentials: None,
        })
    }
}
