//! `eam fx-rates sync [--history]`: fetches the ECB's euro reference rates from
//! `market_data.ecb_url`, archives the file and loads its rates (idempotent: run it from cron
//! on business days after 16:00 CET; `--history` backfills every day the feed has).

use eam_config::Settings;
use eam_connectors::Breakers;
use eam_connectors::market_data::EcbFile;
use eam_store::resources::Resources;
use eam_worker::application::WorkerConfig;
use eam_worker::market_data::MarketData;

#[derive(clap::Args)]
pub struct FxRatesArgs {
    #[command(subcommand)]
    pub command: FxRatesCommand,
}

#[derive(clap::Subcommand)]
pub enum FxRatesCommand {
    /// Fetches and loads the latest rates (or, with --history, every day's).
    Sync {
        #[arg(long)]
        history: bool,
    },
}

pub async fn run(args: FxRatesArgs) -> anyhow::Result<()> {
    let FxRatesCommand::Sync { history } = args.command;
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    let resources = Resources::open(&settings).await?;
    let config = WorkerConfig::from_settings(&settings)?;
    let breakers = Breakers::new(config.breakers.clone());
    let market = MarketData {
        settings: &settings.market_data,
        secrets: &resources.secrets,
        breakers: &breakers,
        timeout: config.policy.bank_timeout,
        retry: config.policy.request_retry.clone(),
        egress: config.policy.egress,
    };
    let file = if history {
        EcbFile::History
    } else {
        EcbFile::Daily
    };
    let synced = market
        .sync(&resources.store, &resources.archive, file)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{}: {} rates ({} new, {} changed, {} unchanged), sha256 {}",
        synced.document,
        synced.rates,
        synced.loaded.inserted,
        synced.loaded.updated,
        synced.loaded.unchanged,
        synced.sha256
    );
    for w in &synced.warnings {
        println!("warning: {w}");
    }
    Ok(())
}
