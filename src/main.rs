//! `eam`: the one binary. This file only declares the subcommands; each lives in `commands`.

mod commands;
mod telemetry;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the API allocates per request (JSON, rows,
/// headers) from many threads, and glibc's malloc was a fifth of its CPU under load
/// (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// EAM wealth platform backend: syncs accounts, cash, positions and transactions from private
/// banks over mutual TLS into PostgreSQL, and serves them through an HTTP API.
///
/// Settings come from config/default.toml, then EAM_CONFIG_FILE, then the environment
/// (DATABASE_URL, REDIS_URL, EAM_<SECTION>__<KEY>).
#[derive(Parser)]
#[command(name = "eam", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates the database if missing and applies the migrations (as the owner, DATABASE_URL).
    Migrate,
    /// Runs the HTTP API (/api/v1, /docs, /health, /ready) as the app role.
    Serve,
    /// Runs a worker: takes sync jobs from the Redis queue until SIGTERM or Ctrl-C.
    Work(commands::work::WorkArgs),
    /// Runs the bank simulator (bank_a REST JSON over HTTPS with mutual TLS).
    BankSim(eam_banksim::SimArgs),
    /// Prints an access token signed by the local development issuer.
    Token(commands::token::TokenArgs),
    /// Starts everything, syncs a demo tenant from the simulator, prints its portfolio and
    /// job table, then keeps serving until Ctrl-C.
    Demo(commands::demo::DemoArgs),
    /// Parses statement files (SWIFT MT94x/535/536, ISO 20022 camt/semt) and prints the
    /// canonical records as JSON lines, and each error with file, line and field.
    Normalize(commands::normalize::NormalizeArgs),
    /// Loads the raw documents a sync run archived into the store again, without calling the
    /// bank (after a parser fix): a new run linked to it, audited, run in this process.
    Replay(commands::replay::ReplayArgs),
    /// The audit log: `eam audit verify` checks every tenant's hash chain.
    Audit(commands::audit::AuditArgs),
    /// Lists the upcoming scheduled syncs of every tenant (enabled schedules of connections that
    /// are not paused), in UTC and in each schedule's time zone.
    Schedule(commands::schedule::ScheduleArgs),
    /// Market data: `eam fx-rates sync [--history]` loads the ECB's euro reference rates.
    FxRates(commands::fx_rates::FxRatesArgs),
    /// Generates a client's portfolio statement (PDF, CSV) for a period, here, as a report job:
    /// archived, listed by the API, audited; `--out DIR` writes the files there too.
    Report(commands::report::ReportArgs),
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    // One TLS crypto provider for every library (sqlx, reqwest, jsonwebtoken, the simulator).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let done = match cli.command {
            Command::Migrate => commands::migrate::run().await,
            Command::Serve => commands::serve::run().await,
            Command::Work(args) => commands::work::run(args).await,
            Command::BankSim(args) => {
                telemetry::init_plain("info");
                eam_banksim::run(args).await
            }
            Command::Token(args) => commands::token::run(args).await,
            Command::Demo(args) => commands::demo::run(args).await,
            // Its exit status says whether every file parsed.
            Command::Normalize(args) => return commands::normalize::run(args),
            Command::Replay(args) => commands::replay::run(args).await,
            Command::Audit(args) => return commands::audit::run(args).await,
            Command::Schedule(args) => commands::schedule::run(args).await,
            Command::FxRates(args) => commands::fx_rates::run(args).await,
            Command::Report(args) => commands::report::run(args).await,
        };
        done.map(|()| std::process::ExitCode::SUCCESS)
    })
}
