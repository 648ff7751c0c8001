//! The subcommands' implementations.

pub mod audit;
pub mod demo;
pub mod migrate;
pub mod normalize;
pub mod replay;
pub mod schedule;
pub mod serve;
pub mod token;
pub mod work;

use eam_config::{SecretProvider, Settings};
use eam_store::archive::{Archive, ArchiveLocation, S3Location};
use eam_store::{AppDb, Store};

/// The process's one secret provider (its cache is shared by everything that resolves).
pub fn secret_provider(settings: &Settings) -> SecretProvider {
    SecretProvider::from_settings(&settings.secrets)
}

/// The raw document archive the settings name: an S3 bucket if one is set, else a directory.
pub fn open_archive(settings: &Settings) -> anyhow::Result<Archive> {
    let a = &settings.archive;
    let location = if a.s3_bucket.is_empty() {
        ArchiveLocation::Directory(a.dir.clone().into())
    } else {
        ArchiveLocation::S3(S3Location {
            bucket: a.s3_bucket.clone(),
            region: a.s3_region.clone(),
            endpoint: Some(a.s3_endpoint.clone()).filter(|e| !e.is_empty()),
            static_credentials: None,
        })
    };
    Ok(Archive::open(&location)?)
}

/// Connects to PostgreSQL as the app role.
pub async fn connect_store(settings: &Settings) -> anyhow::Result<Store> {
    let password = if settings.database.app_password.expose().contains("://") {
        secret_provider(settings)
            .resolve_platform_text(settings.database.app_password.expose())
            .await?
    } else {
        settings.database.app_password.expose().to_owned()
    };
    Ok(Store::connect(AppDb {
        owner_url: settings.database.url.expose(),
        app_user: &settings.database.app_user,
        app_password: &password,
        max_connections: settings.database.max_connections,
    })
    .await?)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
