//! The bank simulator: a seeded, internally consistent private bank served as the three bank
//! protocols of the design, for tests, benchmarks and the demo: `bank_a` (REST JSON), `bank_b`
//! (SWIFT FIN files) and `bank_c` (ISO 20022 files), all over one HTTPS server that requires a
//! client certificate.
//!
//! Four parts, one direction: [`dataset`] generates the bank's data (pure, deterministic: the
//! single source of truth tests compare against), [`files`] writes it as statement files (pure
//! too: [`swift_files`] and [`iso_files`] need no server), [`pki`] makes the certificates for
//! mutual TLS, and the `bank_a` and [`bank_files`] modules serve it over HTTP. [`start`] binds
//! a listener (port 0 allowed) whose TLS layer refuses any client without a certificate signed
//! by the PKI's CA before HTTP starts, and serves in a background task; [`run`] is
//! `eam bank-sim`.
//!
//! Protocol conventions a client must know: `POST /oauth/token` (client credentials in the
//! form or HTTP Basic) returns a bearer token valid for an hour; `/v1` lists page with
//! `limit` (default 100, at most 1000) and an opaque `cursor` taken from the previous page's
//! `next_cursor` (null on the last page), which is only valid for the listing it came from.
//! bank_b ([`RunningSim::bank_b_url`]) and bank_c ([`RunningSim::bank_c_url`]) list files at
//! `{url}/files?after=<id>` (paged the same way) and serve them at `{url}/files/{id}`; bank_b
//! trusts the client certificate alone, bank_c also wants `X-API-Key: <client secret>`.
//!
//! For reliability tests the simulator can be told to fail ([`faults`]: latency, hangs, error
//! statuses, damaged bodies, reset connections) and counts what it receives
//! ([`RunningSim::requests`], [`RunningSim::requests_to`],
//! [`RunningSim::connections_accepted`]). Both are reachable in process through
//! [`RunningSim`] and over HTTPS through the admin API under `/admin` (see the `admin`
//! module), for tests whose bank clients run in other processes.

mod admin;
mod app;
pub mod bank_a;
pub mod bank_files;
pub mod dataset;
pub mod ecb;
mod error;
pub mod faults;
pub mod files;
mod listener;
pub mod pki;
mod state;
mod traffic;

pub use crate::faults::{Fault, FaultHandle, FaultRule, InvalidFaultRule};
pub use crate::files::{
    FileFormat, FileProtocol, StatementFile, iso_files, swift_files, swift_reference,
};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::NaiveDate;
use poem::listener::{Acceptor, Listener, RustlsCertificate, RustlsConfig};
use tokio::sync::oneshot;

use crate::dataset::{Dataset, SimParams};
use crate::listener::CountingListener;
use crate::pki::PkiPaths;
use crate::state::SimState;

/// How long a shutdown waits for open connections before closing them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Flags of `eam bank-sim`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "EAM_BANKSIM_BIND", default_value = "127.0.0.1:8443")]
    pub bind: SocketAddr,
    /// Directory for the PKI (under `pki/`) and the generated client secret.
    #[arg(long, env = "EAM_BANKSIM_DIR", default_value = ".local/banksim")]
    pub dir: PathBuf,
    /// Seed of the generated data: the same seed and sizes give the same bank.
    #[arg(long, default_value_t = dataset::DEMO_SEED)]
    pub seed: u64,
    /// Number of end clients.
    #[arg(long, default_value_t = dataset::DEMO_CLIENTS)]
    pub clients: u32,
    /// Accounts per client, alternating custody and cash.
    #[arg(long, default_value_t = dataset::DEMO_ACCOUNTS_PER_CLIENT)]
    pub accounts_per_client: u32,
    /// Securities each custody account holds at the end date.
    #[arg(long, default_value_t = dataset::DEMO_POSITIONS_PER_ACCOUNT)]
    pub positions_per_account: u32,
    /// Transactions per account.
    #[arg(long, default_value_t = dataset::DEMO_TRANSACTIONS_PER_ACCOUNT)]
    pub transactions_per_account: u32,
    /// Days of history, ending at the end date.
    #[arg(long, default_value_t = dataset::DEMO_DAYS)]
    pub days: u32,
    /// Last simulated day, YYYY-MM-DD (default: today, UTC).
    #[arg(long)]
    pub end_date: Option<NaiveDate>,
    /// OAuth client id the token endpoint accepts (bank_a).
    #[arg(long, env = "EAM_BANKSIM_CLIENT_ID", default_value = "eam-bank-a")]
    pub client_id: String,
    /// File holding the OAuth client secret, which is also bank_c's API key; created with a
    /// random secret if missing (default: `<dir>/client_secret`).
    #[arg(long, env = "EAM_BANKSIM_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// A fault rule as JSON, installed at start (repeatable; checked in the order given), e.g.
    /// '{"path_prefix": "/v1", "fault": {"kind": "status", "status": 503}, "times": 3}'.
    #[arg(long = "fault", value_name = "JSON")]
    pub faults: Vec<FaultRule>,
}

/// Everything a simulator needs to start.
#[derive(Clone)]
pub struct SimConfig {
    pub params: SimParams,
    pub pki: PkiPaths,
    /// Port 0 picks a free port; [`RunningSim::base_url`] reports it.
    pub bind: SocketAddr,
    pub client_id: String,
    /// bank_a's OAuth client secret and bank_c's API key.
    pub client_secret: String,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("params", &self.params)
            .field("pki", &self.pki)
            .field("bind", &self.bind)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

/// A simulator serving in the background; dropping it stops the server too.
pub struct RunningSim {
    base_url: String,
    state: Arc<SimState>,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningSim {
    /// `https://127.0.0.1:<port>` (the server certificate names 127.0.0.1 and localhost).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// bank_b's base URL: `https://127.0.0.1:<port>/bank-b` (files under `/files`).
    pub fn bank_b_url(&self) -> String {
        format!("{}{}", self.base_url, bank_files::BANK_B_PREFIX)
    }

    /// bank_c's base URL: `https://127.0.0.1:<port>/bank-c` (files under `/files`).
    pub fn bank_c_url(&self) -> String {
        format!("{}{}", self.base_url, bank_files::BANK_C_PREFIX)
    }

    /// The ECB reference rates' base URL: `https://127.0.0.1:<port>/ecb/stats/eurofxref`.
    pub fn ecb_url(&self) -> String {
        format!("{}{}", self.base_url, ecb::ECB_PREFIX)
    }

    /// The data being served.
    pub fn dataset(&self) -> Arc<Dataset> {
        Arc::clone(&self.state.dataset)
    }

    /// Stops delivering a statement file (bank_b, bank_c): it is neither listed nor served,
    /// as when a bank's statement goes missing. True when it was delivered until now.
    pub fn withhold_file(&self, id: &str) -> bool {
        self.state
            .withheld
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned())
    }

    /// Delivers a withheld statement file again (listed and served), as a bank that delivers
    /// a statement late. True when it was withheld until now.
    pub fn release_file(&self, id: &str) -> bool {
        self.state
            .withheld
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }

    /// Serves the statement file `id` with `body` instead of the dataset's (listing size and
    /// digest included): a dialect or a damaged statement for end-to-end tests.
    pub fn replace_file(&self, id: &str, body: Vec<u8>) {
        self.state
            .replaced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), body);
    }

    /// Makes bank_a write `to` wherever its JSON answers would hold `from` (an ISIN whose
    /// check digit the bank got wrong, say), in every page from now on.
    pub fn rewrite_bank_a(&self, from: &str, to: &str) {
        self.state
            .bank_a_rewrites
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((from.to_owned(), to.to_owned()));
    }

    /// Leaves the booked trade `transaction_id` out of bank_b's securities feed: the MT536 of
    /// its account and day is served without it (see [`files::mt536_without`]), while the
    /// MT940 still books its cash side and the MT535s still hold it, as when a custodian's
    /// securities back office loses a transaction. Returns the id of that MT536; `None` (and
    /// nothing changes) when the id is not a booked buy or sell.
    pub fn leave_out_trade(&self, transaction_id: &str) -> Option<String> {
        let (id, body) = files::mt536_without(&self.state.dataset, transaction_id)?;
        self.replace_file(&id, body);
        Some(id)
    }

    /// The simulator's fault rules: what is injected here applies to the next request.
    pub fn faults(&self) -> FaultHandle {
        self.state.faults.clone()
    }

    /// The trace ids of the W3C `traceparent` headers received so far, sorted.
    pub fn traces_seen(&self) -> Vec<String> {
        self.state.traffic.traces()
    }

    /// HTTP requests received so far, on every endpoint except the admin API, including those
    /// a fault answered or holds (TLS handshakes refused before HTTP are not requests).
    pub fn requests(&self) -> u64 {
        self.state.traffic.requests()
    }

    /// Requests counted by [`requests`](Self::requests) whose path lies under `path_prefix`,
    /// matched at segment boundaries like fault rules ([`faults::path_matches`]).
    pub fn requests_to(&self, path_prefix: &str) -> u64 {
        self.state.traffic.requests_to(path_prefix)
    }

    /// TCP connections accepted so far, including those then refused at the TLS handshake,
    /// reset by [`Fault::ResetConnection`], or used for the admin API.
    pub fn connections_accepted(&self) -> u64 {
        self.state.traffic.connections()
    }

    /// Stops accepting, lets open requests finish (a few seconds at most), and waits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "bank simulator stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "bank simulator task failed"),
        }
    }
}

/// Generates the dataset, binds the listener and serves it in a background task.
pub async fn start(config: SimConfig) -> anyhow::Result<RunningSim> {
    config.params.validate()?;
    let server_cert = pki::read_pem(&config.pki.server_cert)?;
    let server_key = pki::read_pem(&config.pki.server_key)?;
    let client_ca = pki::read_pem(&config.pki.ca_cert)?;
    let params = config.params.clone();
    let client_id = config.client_id;
    let client_secret = config.client_secret;
    // Large datasets take seconds to generate and list: keep that off the async workers.
    let state = tokio::task::spawn_blocking(move || {
        let dataset = dataset::generate(&params);
        SimState::new(Arc::new(dataset), client_id, &client_secret)
    })
    .await
    .context("generating the simulated dataset")?;
    let state = Arc::new(state);

    let tls = RustlsConfig::new()
        .fallback(RustlsCertificate::new().cert(server_cert).key(server_key))
        .client_auth_required(client_ca);
    let acceptor = CountingListener::new(config.bind, Arc::clone(&state))
        .rustls(tls)
        .into_acceptor()
        .await
        .with_context(|| format!("binding the bank simulator on {}", config.bind))?;
    let local = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .context("the listener reports no local address")?;
    let base_url = format!("https://{}", url_authority(local));

    let (stop, stopped) = oneshot::channel::<()>();
    let app = app::build(Arc::clone(&state));
    let stopping = Arc::clone(&state);
    let server = tokio::spawn(
        poem::Server::new_with_acceptor(acceptor)
            .name("bank simulator")
            .run_with_graceful_shutdown(
                app,
                async move {
                    // A dropped sender (RunningSim dropped) stops the server as well.
                    let _ = stopped.await;
                    // Release requests held by a fault, or they would hold the grace period.
                    stopping.begin_stopping();
                },
                Some(SHUTDOWN_GRACE),
            ),
    );
    tracing::info!(%base_url, "bank simulator listening");
    Ok(RunningSim {
        base_url,
        state,
        stop,
        server,
    })
}

/// The host and port clients should use: loopback for a wildcard bind, as the certificate
/// names 127.0.0.1.
fn url_authority(local: SocketAddr) -> String {
    if local.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), local.port()).to_string()
    } else {
        local.to_string()
    }
}

/// `eam bank-sim`: serves until Ctrl-C or SIGTERM, after printing how to connect.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let pki = pki::ensure_pki(&args.dir.join("pki"))?;
    let secret_file = args
        .client_secret_file
        .clone()
        .unwrap_or_else(|| args.dir.join("client_secret"));
    let client_secret = read_or_create_secret(&secret_file)?;
    let end_date = args
        .end_date
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let params = SimParams {
        seed: args.seed,
        clients: args.clients,
        accounts_per_client: args.accounts_per_client,
        positions_per_account: args.positions_per_account,
        transactions_per_account: args.transactions_per_account,
        days: args.days,
        end_date,
    };
    let sim = start(SimConfig {
        params: params.clone(),
        pki: pki.clone(),
        bind: args.bind,
        client_id: args.client_id.clone(),
        client_secret,
    })
    .await?;
    for rule in &args.faults {
        sim.faults().try_inject(rule.clone())?;
    }
    let dataset = sim.dataset();
    println!("bank simulator listening on {}", sim.base_url());
    println!("  bank_a (REST JSON):  {}/v1", sim.base_url());
    println!("  bank_b (SWIFT FIN):  {}/files", sim.bank_b_url());
    println!(
        "  bank_c (ISO 20022):  {}/files (X-API-Key: the client secret)",
        sim.bank_c_url()
    );
    println!("  CA certificate:      {}", pki.ca_cert.display());
    println!("  client certificate:  {}", pki.client_cert.display());
    println!("  client key:          {}", pki.client_key.display());
    println!("  client id:           {}", args.client_id);
    println!("  client secret:       in {}", secret_file.display());
    println!(
        "  data:                seed {}, {} clients, {} accounts, {} to {}",
        params.seed,
        dataset.clients.len(),
        dataset.accounts.len(),
        dataset.start_date,
        params.end_date
    );
    for (id, rule, _) in sim.faults().rules() {
        println!(
            "  fault rule {id}:        {}",
            serde_json::to_string(&rule).context("writing a fault rule as JSON")?
        );
    }
    println!(
        "  admin API:           {}/admin/faults, {}/admin/stats",
        sim.base_url(),
        sim.base_url()
    );
    println!("Serving until Ctrl-C or SIGTERM.");
    wait_for_stop_signal().await?;
    sim.shutdown().await;
    println!("bank simulator stopped");
    Ok(())
}

/// The secret in `path`, or a new random one written there readable only by the owner.
fn read_or_create_secret(path: &Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let secret = existing.trim();
        if !secret.is_empty() {
            return Ok(secret.to_owned());
        }
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(secret.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("listening for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_wildcard_bind_is_reported_as_the_loopback_address_the_certificate_names() {
        let any: SocketAddr = "0.0.0.0:8443".parse().expect("address");
        assert_eq!(url_authority(any), "127.0.0.1:8443");
        let local: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        assert_eq!(url_authority(local), "127.0.0.1:40000");
    }

    #[test]
    fn a_missing_secret_file_is_created_for_the_owner_only_and_then_reused() {
        let dir = std::env::temp_dir().join(format!(
            "eam-banksim-secret-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let path = dir.join("client_secret");
        let created = read_or_create_secret(&path).expect("secret");
        assert_eq!(created.len(), 64);
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_or_create_secret(&path).expect("secret"), created);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn fault_flags_are_parsed_as_rules_in_the_order_given() {
        use clap::Parser as _;
        let cli = Cli::try_parse_from([
            "eam-bank-sim",
            "--fault",
            r#"{"path_prefix": "/oauth/token", "fault": {"kind": "status", "status": 503, "retry_after_secs": 2}, "times": 1}"#,
            "--fault",
            r#"{"path_prefix": "/", "fault": {"kind": "latency", "millis": 50}}"#,
        ])
        .expect("valid flags");
        assert_eq!(
            cli.sim.faults,
            [
                FaultRule::new(
                    "/oauth/token",
                    Fault::Status {
                        status: 503,
                        retry_after_secs: Some(2)
                    }
                )
                .times(1),
                FaultRule::new("/", Fault::Latency { millis: 50 }),
            ]
        );
        assert!(
            Cli::try_parse_from(["eam-bank-sim"])
                .expect("no flags")
                .sim
                .faults
                .is_empty()
        );
    }

    #[test]
    fn an_invalid_fault_flag_is_refused_with_the_reason() {
        use clap::Parser as _;
        for (flag, reason) in [
            ("{not json", "not a fault rule"),
            (
                r#"{"path_prefix": "/v1", "fault": {"kind": "reset_connection"}}"#,
                "path_prefix \"/\"",
            ),
        ] {
            let error = Cli::try_parse_from(["eam-bank-sim", "--fault", flag])
                .err()
                .unwrap_or_else(|| panic!("{flag} must be refused"))
                .to_string();
            assert!(error.contains("--fault"), "{error}");
            assert!(error.contains(reason), "{error}");
        }
    }

    #[test]
    fn the_config_debug_output_hides_the_client_secret() {
        let config = SimConfig {
            params: SimParams::demo(NaiveDate::from_ymd_opt(2026, 11, 20).expect("date")),
            pki: PkiPaths::in_dir(Path::new("/tmp/pki")),
            bind: "127.0.0.1:0".parse().expect("address"),
            client_id: "id".into(),
            client_secret: "do-not-print".into(),
        };
        assert!(!format!("{config:?}").contains("do-not-print"));
    }
}
