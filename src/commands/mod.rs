//! The subcommands' implementations.

pub mod demo;
pub mod migrate;
pub mod normalize;
pub mod serve;
pub mod token;
pub mod work;

use eam_config::Settings;
use eam_store::{AppDb, Store};

/// Connects to PostgreSQL as the app role.
pub async fn connect_store(settings: &Settings) -> anyhow::Result<Store> {
    let password = if settings.database.app_password.expose().contains("://") {
        eam_config::secrets::resolve_text(settings.database.app_password.expose()).await?
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
