//! The subcommands' implementations.

pub mod audit;
pub mod demo;
pub mod fx_rates;
pub mod migrate;
pub mod normalize;
pub mod replay;
pub mod report;
pub mod schedule;
pub mod serve;
pub mod token;
pub mod work;

use eam_config::{SecretProvider, Settings};
use eam_store::Store;

/// Connects to PostgreSQL as the app role.
pub async fn connect_store(settings: &Settings) -> anyhow::Result<Store> {
    let secrets = SecretProvider::from_settings(&settings.secrets);
    let keys = eam_store::resources::audit_keys(settings, &secrets).await?;
    Ok(eam_store::resources::connect(settings, &secrets)
        .await?
        .with_audit_keys(keys))
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
