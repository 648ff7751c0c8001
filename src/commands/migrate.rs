//! `eam migrate`.

use eam_config::Settings;
use sqlx::migrate::MigrateDatabase;

pub async fn run() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    migrate(&settings).await?;
    println!("migrations applied");
    Ok(())
}

/// Creates the database when missing, then applies the migrations as the owner.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let url = settings.database.url.expose();
    if !sqlx::Postgres::database_exists(url).await? {
        sqlx::Postgres::create_database(url).await?;
    }
    eam_store::migrate(url).await?;
    Ok(())
}
