//! `eam demo`: the whole system on one machine, end to end.
//!
//! Migrates, starts the bank simulator (mTLS), a worker and the API in this process, creates a
//! demo tenant, then acts like ops would: creates a bank_a connection and triggers a sync
//! through the HTTP API, waits for the job, and prints the portfolio and the job table as the
//! API returns them. Then it keeps serving, with the URLs and a dev token printed, until Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use eam_config::Settings;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's certificates and secrets.
    #[arg(long, default_value = ".local/demo")]
    pub dir: PathBuf,
    /// Exit after printing instead of serving until Ctrl-C.
    #[arg(long)]
    pub no_wait: bool,
    /// Simulator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mut settings = Settings::load()?;
    settings.log.format = eam_config::LogFormat::Pretty;
    if std::env::var_os("RUST_LOG").is_none() {
        settings.log.level = "warn".into();
    }
    // The simulator listens on loopback, which production refuses for bank URLs.
    settings.egress.allow_private_addresses = true;
    crate::telemetry::init(&settings);
    super::migrate::migrate(&settings)
        .await
        .context("migrating the database")?;

    // Bank simulator with its PKI and the credentials the connection will reference.
    std::fs::create_dir_all(&args.dir)?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let pki = eam_banksim::pki::ensure_pki(&dir.join("pki"))?;
    // Tenants' secret files live under the platform's root, one directory per tenant.
    if settings.secrets.tenant_file_root.trim().is_empty() {
        settings.secrets.tenant_file_root = dir.join("tenant-secrets").display().to_string();
    }
    // The audit chain's key: a file of the demo's own, made once (production names a secret).
    if settings.audit.key_ref.trim().is_empty() {
        let key = dir.join("audit.key");
        if !key.exists() {
            let random = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            std::fs::write(&key, random)?;
        }
        settings.audit.key_ref = format!("file://{}", key.display());
    }
    let client_secret = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let end_date = chrono::Utc::now().date_naive();
    let sim = eam_banksim::start(eam_banksim::SimConfig {
        params: eam_banksim::dataset::SimParams {
            seed: args.seed,
            end_date,
            ..eam_banksim::dataset::SimParams::demo(end_date)
        },
        pki: pki.clone(),
        bind: "127.0.0.1:0".parse()?,
        client_id: "eam-demo".into(),
        client_secret: client_secret.clone(),
    })
    .await?;

    // Worker and API in this process, counting into one set of metrics (the API's /metrics).
    let metrics = eam_metrics::Metrics::new();
    let resources = eam_store::resources::Resources::open(&settings).await?;
    let mut worker =
        eam_worker::application::WorkerApp::build(&settings, &resources, metrics.clone()).await?;
    // The demo triggers its syncs itself: no schedule tick.
    worker.tick = None;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(worker.run(stop_rx.clone()));
    let app = eam_api::Application::build(&settings, &resources, metrics)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let issuer = app
        .state()
        .local_issuer
        .clone()
        .context("the demo needs auth.local_issuer_dir")?;
    let store = resources.store.clone();
    let server = eam_api::Server::bind(&settings.api.bind)
        .await
        .with_context(|| {
            format!(
                "binding the API on {} (set EAM_API__BIND to another port)",
                settings.api.bind
            )
        })?;
    let public_url = settings.api.public_url.trim_end_matches('/').to_owned();
    let api = {
        let mut stop = stop_rx.clone();
        let public_url = public_url.clone();
        tokio::spawn(async move {
            app.serve(server, &public_url, async move {
                let _ = stop.changed().await;
            })
            .await
        })
    };

    // A tenant and a token, as the firm's ops and advisor would hold.
    let tenant =
        eam_store::tenants::create_tenant(&store, "Demo EAM SA", &["bank_sync", "reports"]).await?;
    let token = issuer.sign(&eam_auth::TokenRequest {
        subject: "demo-ops".into(),
        tenant_id: tenant.0,
        roles: vec![
            "tenant_admin".into(),
            "ops".into(),
            "support".into(),
            "advisor".into(),
        ],
        client_id: None,
        ttl: Duration::from_secs(8 * 3600),
        mfa_at: Some(eam_auth::unix_now()),
    })?;
    let http = Http {
        client: reqwest::Client::new(),
        base: format!("{public_url}/api/v1"),
        token: token.clone(),
    };
    let file_ref = |p: &std::path::Path| format!("file://{}", p.display());

    // The platform admin says where the three custodians live and which CA signs them (a
    // tenant never does).
    let platform = Http {
        token: issuer.sign(&eam_auth::TokenRequest {
            subject: "demo-platform-admin".into(),
            tenant_id: tenant.0,
            roles: vec!["platform_admin".into()],
            client_id: None,
            ttl: Duration::from_secs(600),
            mfa_at: None,
        })?,
        ..http.clone()
    };
    for (code, name, protocol, url) in [
        ("bank_a", "Bank A (REST JSON)", "bank_a", sim.base_url()),
        (
            "bank_b",
            "Bank B (SWIFT FIN files)",
            "bank_b",
            sim.bank_b_url(),
        ),
        (
            "bank_c",
            "Bank C (ISO 20022 files)",
            "bank_c",
            sim.bank_c_url(),
        ),
    ] {
        platform
            .send(
                platform
                    .client
                    .put(platform.url(&format!("/custodians/{code}")))
                    .json(&json!({
                        "name": name, "protocol": protocol, "base_url": url,
                        "ca_cert_ref": file_ref(&pki.ca_cert),
                    })),
            )
            .await?;
    }

    // The firm's own credentials, in its directory of the platform's secret root.
    let secrets =
        std::path::Path::new(&settings.secrets.tenant_file_root).join(tenant.0.to_string());
    std::fs::create_dir_all(&secrets)?;
    let secret_path = secrets.join("bank_client_secret");
    std::fs::write(&secret_path, &client_secret)?;
    for (name, from) in [
        ("client.pem", &pki.client_cert),
        ("client.key", &pki.client_key),
    ] {
        std::fs::copy(from, secrets.join(name))?;
    }

    // Three custodians, three protocols, one simulated bank behind them: REST JSON with
    // OAuth2, SWIFT FIN files, ISO 20022 files; each over mutual TLS.
    let tls = json!({
        "client_cert_ref": file_ref(&secrets.join("client.pem")),
        "client_key_ref": file_ref(&secrets.join("client.key")),
    });
    let with_tls = |mut body: Value| {
        for (k, v) in tls.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        body
    };
    // The day's and the past's euro reference rates, fetched over mTLS with the platform's
    // identity like any bank document (a worker's market-data job does this every business day).
    let market_settings = eam_config::MarketDataSettings {
        ecb_url: sim.ecb_url(),
        client_cert_ref: file_ref(&pki.client_cert),
        client_key_ref: file_ref(&pki.client_key),
        ca_cert_ref: file_ref(&pki.ca_cert),
        ..settings.market_data.clone()
    };
    let worker_config = eam_worker::application::WorkerConfig::from_settings(&settings)?;
    let breakers = eam_connectors::Breakers::new(worker_config.breakers.clone());
    let rates = eam_worker::market_data::MarketData {
        settings: &market_settings,
        secrets: &resources.secrets,
        breakers: &breakers,
        timeout: worker_config.policy.bank_timeout,
        retry: worker_config.policy.request_retry.clone(),
        egress: worker_config.policy.egress,
    }
    .sync(
        &resources.store,
        &resources.archive,
        eam_connectors::market_data::EcbFile::History,
    )
    .await
    .map_err(|e| anyhow::anyhow!("the ECB reference rates: {e}"))?;
    println!(
        "Reference rates: {} loaded from {}",
        rates.rates, rates.document
    );

    // bank_a first: it names each account's client, and keeps a month of daily snapshots.
    let bank_a = with_tls(json!({
        "custodian": "bank_a", "name": "Bank A (REST JSON)",
        "client_id": "eam-demo", "client_secret_ref": file_ref(&secret_path),
        "position_history_days": eam_banksim::dataset::DEMO_DAYS,
    }));
    sync_all(&http, &[bank_a]).await?;

    // bank_b's and bank_c's statement files name no client: the firm's rules assign each of
    // their accounts, by the account's IBAN, else by the bank's account id. The simulator
    // serves one set of accounts through all three protocols: the demo gives bank_b's copy
    // of each account to the next client and bank_c's to the account's own, so every client
    // holds accounts at three banks. Every client reports in CHF.
    let clients = http.get("/clients").await?;
    let listed: Vec<&Value> = clients.as_array().into_iter().flatten().collect();
    let client_of = |reference: &str, shift: usize| {
        let at = listed.iter().position(|c| c["reference"] == reference)?;
        listed.get((at + shift) % listed.len()).map(|c| s(&c["id"]))
    };
    for c in clients.as_array().into_iter().flatten() {
        http.send(
            http.client
                .patch(http.url(&format!("/clients/{}", s(&c["id"]))))
                .json(&json!({ "reporting_currency": "CHF" })),
        )
        .await?;
    }
    let mut file_banks = Vec::new();
    for (shift, body) in [1, 0].into_iter().zip([
        with_tls(json!({
            "custodian": "bank_b", "name": "Bank B (SWIFT FIN files)",
        })),
        with_tls(json!({
            "custodian": "bank_c", "name": "Bank C (ISO 20022 files)",
            "client_secret_ref": file_ref(&secret_path),
        })),
    ]) {
        let connection = http
            .send(http.client.post(http.url("/connections")).json(&body))
            .await?;
        let id = s(&connection["id"]);
        for account in &sim.dataset().accounts {
            let client = client_of(&account.client_reference, shift)
                .with_context(|| format!("client {}", account.client_reference))?;
            let (field, pattern) = match &account.iban {
                Some(iban) => ("iban", iban.clone()),
                None => ("bank_account_id", account.account_id.clone()),
            };
            http.send(
                http.client
                    .post(http.url(&format!("/connections/{id}/assignment-rules")))
                    .json(&json!({ "field": field, "pattern": pattern, "client_id": client })),
            )
            .await?;
        }
        file_banks.push(id);
    }
    sync_connections(&http, &file_banks).await?;

    print_portfolio(&http).await?;
    // Returns from the first day with reference rates.
    let first_rates = sim.dataset().fx_days().first().copied().unwrap_or(end_date);
    print_clients(&http, first_rates, end_date).await?;
    print_jobs(&http).await?;
    print_statement(&http, first_rates, end_date, &dir).await?;

    println!();
    println!("API:       {public_url}/api/v1   (OpenAPI: {public_url}/api/v1/openapi.json)");
    println!("Swagger:   {public_url}/docs");
    println!("Metrics:   {public_url}/metrics   (Prometheus: the API's and the worker's)");
    println!(
        "Bank sim:  {} (mTLS; certificates in {})",
        sim.base_url(),
        dir.join("pki").display()
    );
    println!("Tenant:    {tenant}");
    println!("Token:     {token}");
    println!("Try:       curl -H \"Authorization: Bearer $TOKEN\" {public_url}/api/v1/accounts");

    if !args.no_wait {
        println!("\nServing until Ctrl-C ...");
        super::shutdown_signal().await;
    }
    let _ = stop_tx.send(true);
    let _ = api.await;
    let _ = worker.await;
    sim.shutdown().await;
    drop(Arc::clone(&issuer));
    println!("stopped");
    Ok(())
}

#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Http {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req.bearer_auth(&self.token).send().await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("API answered {status}: {body}");
        }
        Ok(body)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.client.get(self.url(path))).await
    }
}

async fn wait_for_job(http: &Http, run_id: &str, limit: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let job = http.get(&format!("/jobs/{run_id}")).await?;
        let status = job["status"].as_str().unwrap_or_default();
        if !matches!(status, "queued" | "running") {
            return Ok(job);
        }
        if Instant::now() > deadline {
            bail!("the sync did not finish within {limit:?} (status {status})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A money amount with its two decimals (the API serves decimals without trailing zeros).
fn money(v: &Value) -> String {
    match v
        .as_str()
        .and_then(|t| t.parse::<rust_decimal::Decimal>().ok())
    {
        Some(d) => format!("{d:.2}"),
        None => s(v),
    }
}

/// Creates the connections and syncs them.
async fn sync_all(http: &Http, bodies: &[Value]) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    for body in bodies {
        let connection = http
            .send(http.client.post(http.url("/connections")).json(body))
            .await?;
        ids.push(s(&connection["id"]));
    }
    sync_connections(http, &ids).await
}

/// Syncs the connections and waits until each run has ended well.
async fn sync_connections(http: &Http, ids: &[String]) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for id in ids {
        let accepted = http
            .send(
                http.client
                    .post(http.url(&format!("/connections/{id}/sync"))),
            )
            .await?;
        let run_id = accepted["run_id"].as_str().context("run id")?.to_owned();
        println!("Sync {run_id} queued for connection {id}");
        runs.push(run_id);
    }
    println!("Waiting for the worker...");
    for run_id in &runs {
        let job = wait_for_job(http, run_id, Duration::from_secs(120)).await?;
        if !matches!(
            job["status"].as_str(),
            Some("succeeded" | "succeeded_with_breaks")
        ) {
            bail!("the demo sync ended {}: {}", job["status"], job["error"]);
        }
    }
    Ok(())
}

/// Each client's consolidated valuation across the three banks and its returns since the
/// first simulated day.
async fn print_clients(http: &Http, from: NaiveDate, to: NaiveDate) -> anyhow::Result<()> {
    let accounts = http.get("/accounts").await?;
    let unassigned = accounts
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["assignment"] == "unassigned")
        .count();
    println!("\nCLIENTS (accounts without a client: {unassigned})");
    for c in http.get("/clients").await?.as_array().into_iter().flatten() {
        let id = s(&c["id"]);
        let value = http
            .get(&format!("/clients/{id}/valuation?as_of={to}"))
            .await?;
        println!(
            "\n  {} {}: {} {} across {} accounts{}",
            s(&c["reference"]),
            s(&c["name"]),
            s(&value["currency"]),
            money(&value["total_presented"]),
            s(&value["accounts"]),
            if value["stale"] == true {
                " (stale rates)"
            } else {
                ""
            }
        );
        for slice in value["by_custodian"].as_array().into_iter().flatten() {
            println!("    {:<8} {:>18}", s(&slice["key"]), money(&slice["value"]));
        }
        let perf = http
            .get(&format!("/clients/{id}/performance?from={from}&to={to}"))
            .await?;
        println!(
            "    {from} to {to}: time-weighted {}%, money-weighted {}% a year, {} external flows{}",
            s(&perf["time_weighted"]["cumulative_percent"]),
            s(&perf["money_weighted"]["annual_percent"]),
            perf["flows"].as_array().map_or(0, Vec::len),
            perf["reasons"]
                .as_array()
                .filter(|r| !r.is_empty())
                .map(|r| format!(" ({r:?})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// The first client's portfolio statement for the period, generated by the worker and saved
/// next to the demo's other files.
async fn print_statement(
    http: &Http,
    from: NaiveDate,
    to: NaiveDate,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let clients = http.get("/clients").await?;
    let Some(client) = clients.as_array().and_then(|c| c.first()) else {
        return Ok(());
    };
    let queued = http
        .send(http.client.post(http.url("/reports")).json(&json!({
            "kind": "portfolio_statement", "client_id": client["id"],
            "from": from, "to": to,
        })))
        .await?;
    let id = s(&queued["id"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let report = loop {
        let report = http.get(&format!("/reports/{id}")).await?;
        if !matches!(report["status"].as_str(), Some("queued" | "running")) {
            break report;
        }
        if Instant::now() > deadline {
            bail!("the statement was not generated within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "\nSTATEMENT of {} {} ({from} to {to}): {}",
        s(&client["reference"]),
        s(&client["name"]),
        s(&report["status"])
    );
    if report["status"] != "succeeded" {
        println!("  {}", s(&report["error"]["message"]));
        return Ok(());
    }
    for file in report["files"].as_array().into_iter().flatten() {
        let resp = http
            .client
            .get(http.url(&format!("/reports/{id}/files/{}", s(&file["format"]))))
            .bearer_auth(&http.token)
            .send()
            .await?
            .error_for_status()?;
        let path = dir.join(s(&file["file_name"]));
        std::fs::write(&path, resp.bytes().await?)?;
        println!(
            "  {:<4} {} ({} bytes{}, sha256 {})",
            s(&file["format"]),
            path.display(),
            s(&file["size_bytes"]),
            file["pages"]
                .as_u64()
                .map(|p| format!(", {p} pages"))
                .unwrap_or_default(),
            s(&file["sha256"])
        );
    }
    Ok(())
}

async fn print_portfolio(http: &Http) -> anyhow::Result<()> {
    let accounts = http.get("/accounts").await?;
    println!("\nPORTFOLIO");
    for a in accounts.as_array().into_iter().flatten() {
        let id = s(&a["id"]);
        println!(
            "\n  [{}] {} {} ({}, {}) client {}",
            s(&a["custodian"]),
            s(&a["bank_account_id"]),
            s(&a["iban"]),
            s(&a["kind"]),
            s(&a["currency"]),
            s(&a["client"]["name"])
        );
        let holdings = http.get(&format!("/holdings?account_id={id}")).await?;
        let positions = holdings["holdings"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if positions.is_empty() {
            println!("    no securities");
        } else {
            println!("    holdings as of {}", s(&holdings["as_of"]));
            println!(
                "    {:<14} {:<34} {:>14} {:>12} {:>16}",
                "ISIN", "security", "quantity", "price", "market value"
            );
        }
        for h in positions {
            let name: String = s(&h["security"]["name"]).chars().take(34).collect();
            println!(
                "    {:<14} {:<34} {:>14} {:>12} {:>16}",
                s(&h["security"]["isin"]),
                name,
                s(&h["quantity"]),
                format!(
                    "{}{}",
                    s(&h["price"]),
                    if h["price_type"] == "percent" {
                        "%"
                    } else {
                        ""
                    }
                ),
                money(&h["market_value"])
            );
        }
        // Statement banks report a balance per day: show the latest of each kind.
        let balances = http.get(&format!("/balances?account_id={id}")).await?;
        let mut latest: Vec<&Value> = Vec::new();
        for b in balances["balances"].as_array().into_iter().flatten() {
            match latest
                .iter_mut()
                .find(|l| l["kind"] == b["kind"] && l["currency"] == b["currency"])
            {
                Some(l) if s(&l["as_of"]) < s(&b["as_of"]) => *l = b,
                Some(_) => {}
                None => latest.push(b),
            }
        }
        for b in latest {
            println!(
                "    {:<10} {} {:>16} as of {}",
                s(&b["kind"]),
                s(&b["currency"]),
                money(&b["amount"]),
                s(&b["as_of"])
            );
        }
    }
    Ok(())
}

async fn print_jobs(http: &Http) -> anyhow::Result<()> {
    let jobs = http.get("/jobs").await?;
    println!("\nJOBS");
    println!(
        "  {:<38} {:<10} {:<10} {:>8} {:>9} {:>9} {:>9}",
        "run", "trigger", "status", "attempts", "inserted", "updated", "ms"
    );
    for j in jobs["jobs"].as_array().into_iter().flatten() {
        let c = &j["counts"];
        let sum = |field: &str| -> u64 {
            [
                "clients",
                "accounts",
                "securities",
                "positions",
                "balances",
                "transactions",
            ]
            .iter()
            .map(|k| c[k][field].as_u64().unwrap_or(0))
            .sum()
        };
        println!(
            "  {:<38} {:<10} {:<10} {:>8} {:>9} {:>9} {:>9}",
            s(&j["id"]),
            s(&j["trigger"]),
            s(&j["status"]),
            s(&j["attempts"]),
            sum("inserted"),
            sum("updated"),
            s(&j["duration_ms"])
        );
    }
    Ok(())
}
