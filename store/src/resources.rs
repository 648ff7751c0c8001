//! What every process opens from its settings before it serves or works: the pool as the app
//! role, the one secret provider (its cache shared by everything the process resolves), and
//! the raw document archive. `eam serve`, `eam work` and `eam demo` open them here; tests
//! hand in their own (a database of their own, the AWS emulator).

use eam_config::{SecretProvider, Settings};

use crate::archive::{Archive, ArchiveError, ArchiveLocation, S3Location};
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
    #[error("cannot connect to {at}: {source}")]
    Database { at: String, source: StoreError },
    #[error("opening the document archive (archive.*): {0}")]
    Archive(#[from] ArchiveError),
}

impl Resources {
    /// Opens what the settings name.
    pub async fn open(settings: &Settings) -> Result<Resources, OpenError> {
        let secrets = SecretProvider::from_settings(&settings.secrets);
        let store = connect(settings, &secrets).await?;
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
        source,
    })
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
