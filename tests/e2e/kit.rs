//! The test kit: a whole system per test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eam_api::Server;
use eam_api::application::{ApiConfig, Application, Identity};
use eam_auth::{LocalIssuer, TokenRequest, Verifier};
use eam_banksim::RunningSim;
use eam_banksim::dataset::SimParams;
use eam_config::SecretProvider;
use eam_config::secrets::{AwsAccess, TenantScope};
use eam_connectors::{BreakerSettings, RetryPolicy};
use eam_queue::SyncQueue;
use eam_store::archive::{Archive, ArchiveLocation};
use eam_store::audit::{AuditKey, AuditKeys};
use eam_store::resources::Resources;
use eam_store::{AppDb, Store, TenantId};
use eam_worker::application::{WorkerApp, WorkerConfig};
use eam_worker::{DispatchSettings, SyncPolicy, WorkerOptions};
use serde_json::{Value, json};
use sqlx::Connection as _;
use tokio::sync::watch;
use uuid::Uuid;

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "eam-api";
pub const CLIENT_ID: &str = "eam-test";
pub const CLIENT_SECRET: &str = "test-secret-value-7f3a";

/// The end date of every simulated dataset in tests: fixed, so expected values are stable.
pub fn end_date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("valid date")
}

/// Sync tunables for tests: short back-offs and leases, so retries and recoveries happen
/// within a test's deadline; three attempts, one request retry.
pub fn test_policy() -> SyncPolicy {
    SyncPolicy {
        bank_timeout: Duration::from_secs(10),
        max_attempts: 3,
        request_retry: RetryPolicy {
            max_retries: 1,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(2),
        },
        retry_base: Duration::from_millis(200),
        retry_max: Duration::from_secs(1),
        lease: Duration::from_secs(3),
        pause_after_failures: 5,
        custodian_limit: None,
        egress: eam_config::egress::EgressPolicy {
            allow_private_addresses: true,
        },
    }
}

/// Breakers that open after 5 consecutive failures and probe again after one second.
pub fn breaker_settings() -> BreakerSettings {
    BreakerSettings {
        failures_to_open: 5,
        min_success_rate: 0.0,
        rate_window: Duration::from_secs(60),
        min_requests: 1000,
        cooldown: Duration::from_secs(1),
    }
}

/// A worker that polls and dispatches every 100 ms.
pub fn worker_options() -> WorkerOptions {
    WorkerOptions {
        concurrency: 2,
        poll_interval: Duration::from_millis(100),
        grace: Duration::from_secs(10),
        dispatch: DispatchSettings {
            interval: Duration::from_millis(100),
            stale_after: Duration::from_secs(5),
            batch: 100,
        },
    }
}

pub fn small_params(seed: u64) -> SimParams {
    SimParams {
        seed,
        clients: 2,
        accounts_per_client: 2,
        positions_per_account: 5,
        transactions_per_account: 30,
        days: 20,
        end_date: end_date(),
    }
}

fn env_url(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `make test` (it starts PostgreSQL and Redis)")
    })
}

/// A database of its own, migrated, reachable as the owner and as the app role.
pub struct TestDb {
    pub name: String,
    pub owner_url: String,
    server_url: String,
}

impl TestDb {
    /// On the server of `DATABASE_URL`.
    pub async fn create() -> TestDb {
        TestDb::create_on(&env_url("DATABASE_URL")).await
    }

    /// On the server of `base` (any database URL of that server, as a superuser).
    pub async fn create_on(base: &str) -> TestDb {
        let (server, _) = base
            .rsplit_once('/')
            .expect("DATABASE_URL has a database part");
        let name = format!("eam_test_{}", Uuid::new_v4().simple());
        let server_url = format!("{server}/postgres");
        let mut admin = sqlx::PgConnection::connect(&server_url)
            .await
            .expect("connect as owner");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.ok();
        let owner_url = format!("{server}/{name}");
        eam_store::migrate(&owner_url)
            .await
            .expect("migrations apply");
        TestDb {
            name,
            owner_url,
            server_url,
        }
    }

    /// A store connected as the app role (RLS applies).
    pub async fn app_store(&self) -> Store {
        Store::connect(AppDb {
            owner_url: &self.owner_url,
            app_user: "eam_app",
            app_password: "",
            max_connections: 8,
        })
        .await
        .expect("connect as eam_app")
        .with_audit_keys(AuditKeys::new(
            AuditKey::new(TEST_AUDIT_KEY.as_bytes()).expect("test audit key"),
            vec![],
        ))
    }

    pub async fn drop_db(&self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.server_url).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut admin)
            .await;
        }
    }
}

/// The bank simulator alone, on port 0, with the shared test PKI.
pub struct TestSim {
    pub sim: RunningSim,
    pub pki: eam_banksim::pki::PkiPaths,
}

impl TestSim {
    pub async fn start(params: SimParams) -> TestSim {
        install_crypto();
        let pki = eam_banksim::pki::ensure_pki(&pki_dir()).expect("test PKI");
        TestSim::start_with_pki(params, pki).await
    }

    /// With a PKI of the test's own (e.g. client certificates of chosen lifetimes).
    pub async fn start_with_pki(params: SimParams, pki: eam_banksim::pki::PkiPaths) -> TestSim {
        install_crypto();
        let sim = eam_banksim::start(eam_banksim::SimConfig {
            params,
            pki: pki.clone(),
            bind: "127.0.0.1:0".parse().expect("addr"),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
        })
        .await
        .expect("simulator starts");
        TestSim { sim, pki }
    }

    /// The client certificate, key and bank CA a connection to this simulator uses.
    pub fn identity(&self) -> eam_connectors::TlsIdentity {
        let read = |p: &std::path::Path| std::fs::read(p).expect("PKI file");
        eam_connectors::TlsIdentity {
            client_cert_pem: read(&self.pki.client_cert),
            client_key_pem: read(&self.pki.client_key),
            ca_pem: read(&self.pki.ca_cert),
        }
    }
}

/// The whole system for one test.
pub struct TestEnv {
    pub db: TestDb,
    pub store: Store,
    pub sim: RunningSim,
    pub pki: eam_banksim::pki::PkiPaths,
    pub api: String,
    pub issuer: Arc<LocalIssuer>,
    pub http: reqwest::Client,
    /// The platform's root of tenants' secret files: each tenant `env.tenant(..)` creates
    /// gets `<root>/<tenant id>/` with the client secret, certificate and key (and a rogue
    /// certificate and key) the simulator expects: see [`TestEnv::tenant_file`].
    pub secrets_root: std::path::PathBuf,
    /// The document archive the worker fills and the API reads.
    pub archive: Archive,
    /// Its directory, when it is a local one (worker processes a test starts use it too).
    pub archive_dir: Option<std::path::PathBuf>,
    /// The secret provider the in-process worker and the API share.
    pub secrets: SecretProvider,
    /// The Redis and queue name the API pushes to (for worker processes a test starts).
    pub redis_url: String,
    pub queue_name: String,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A tenant with a token and one connection (see [`TestEnv::firm`]).
pub struct Firm {
    pub tenant: TenantId,
    pub token: String,
    pub connection: String,
}

/// How a test's system differs from the default one.
pub struct EnvOptions {
    pub policy: SyncPolicy,
    pub breakers: BreakerSettings,
    /// Run a worker inside the test process (off when the test starts worker processes).
    pub in_process_worker: bool,
    /// Another Redis than `REDIS_URL` (a private one the test restarts).
    pub redis_url: Option<String>,
    /// Another PostgreSQL server than `DATABASE_URL`'s (a private one the test restarts).
    pub database_url: Option<String>,
    /// Rate limits and the users cache of the API.
    pub security: eam_api::security::SecuritySettings,
    /// Where documents are archived (default: a fresh directory of the test's own).
    pub archive: Option<ArchiveLocation>,
    /// How long Secrets Manager values are cached.
    pub secrets_ttl: Duration,
    /// A certificate expiring within this many days is at risk.
    /// Browser origins the API allows (CORS).
    pub cors_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` the API believes.
    pub trusted_proxies: Vec<String>,
    pub certificate_warning_days: u32,
    /// The simulator's PKI (default: the shared test PKI).
    pub pki: Option<eam_banksim::pki::PkiPaths>,
    /// Where bank URLs may point (default: private addresses allowed, the simulator is on
    /// loopback).
    pub egress: eam_config::egress::EgressPolicy,
    /// The API's read cache (default: as configured by default, on).
    pub read_cache: eam_api::read_cache::ReadCacheSettings,
}

impl Default for EnvOptions {
    fn default() -> Self {
        EnvOptions {
            policy: test_policy(),
            breakers: breaker_settings(),
            in_process_worker: true,
            redis_url: None,
            database_url: None,
            // Generous limits (tests make many calls quickly), and no users cache, so a change
            // to a user applies to the next request.
            security: eam_api::security::SecuritySettings {
                tenant_per_second: 10_000,
                tenant_burst: 10_000,
                user_per_second: 10_000,
                user_burst: 10_000,
                refused_per_second: 10_000,
                refused_burst: 10_000,
                user_cache: Duration::ZERO,
            },
            archive: None,
            egress: eam_config::egress::EgressPolicy {
                allow_private_addresses: true,
            },
            secrets_ttl: Duration::from_secs(300),
            certificate_warning_days: 30,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            pki: None,
            read_cache: eam_api::read_cache::ReadCacheSettings {
                max_bytes: 64 << 20,
                ttl: Duration::from_secs(5),
            },
        }
    }
}

/// The local AWS emulator (moto) that `make test` starts; tests of Secrets Manager and S3
/// need it.
pub fn moto_url() -> String {
    env_url("EAM_MOTO_URL")
}

/// Credentials the emulator accepts (it checks none); never used against AWS.
pub const MOTO_CREDENTIALS: (&str, &str) = ("testing", "testing");
pub const MOTO_REGION: &str = "us-east-1";

/// A secret provider whose Secrets Manager is the emulator (when `EAM_MOTO_URL` is set).
pub fn secret_provider(ttl: Duration) -> SecretProvider {
    SecretProvider::new(
        AwsAccess {
            region: MOTO_REGION.into(),
            endpoint: std::env::var("EAM_MOTO_URL").ok(),
            static_credentials: Some((MOTO_CREDENTIALS.0.into(), MOTO_CREDENTIALS.1.into())),
        },
        ttl,
    )
}

/// Secrets Manager names of tenant T start with `eam/T/` in tests.
pub const TENANT_AWS_PREFIX: &str = "eam/";

/// Points the custodian registry at the test's simulator: bank_a, bank_b and bank_c at their
/// URLs, with the simulator's CA (a platform reference).
pub async fn register_custodians(
    store: &Store,
    sim: &RunningSim,
    pki: &eam_banksim::pki::PkiPaths,
) {
    for (code, url) in [
        ("bank_a", sim.base_url()),
        ("bank_b", sim.bank_b_url()),
        ("bank_c", sim.bank_c_url()),
    ] {
        let mut entry = eam_store::custodians::get(store, code)
            .await
            .expect("custodian");
        entry.base_url = Some(url);
        entry.ca_cert_ref = Some(TestEnv::file_ref(&pki.ca_cert));
        eam_store::custodians::put(store, &entry)
            .await
            .expect("register custodian");
    }
}

/// The market-data settings of a test: the simulator's ECB feed over mutual TLS with the
/// test PKI's client identity; the schedule as configured by default (tests tick it by hand).
pub fn market_data_settings(
    sim: &RunningSim,
    pki: &eam_banksim::pki::PkiPaths,
) -> eam_config::MarketDataSettings {
    eam_config::MarketDataSettings {
        ecb_url: sim.ecb_url(),
        client_cert_ref: TestEnv::file_ref(&pki.client_cert),
        client_key_ref: TestEnv::file_ref(&pki.client_key),
        ca_cert_ref: TestEnv::file_ref(&pki.ca_cert),
        stale_after_business_days: 3,
        enabled: true,
        schedule: "30 16 * * 1-5".into(),
        timezone: "Europe/Berlin".into(),
    }
}

/// The report settings of a test: no logo; rates stale after 3 business days, as the API's.
/// Webhook deliveries as the tests' worker sends them: retries 150 ms apart (the schedule's
/// shape, not its hours), loopback receivers allowed when the environment allows private
/// addresses.
pub fn webhook_settings(
    egress: eam_config::egress::EgressPolicy,
) -> eam_worker::webhooks::WebhookSettings {
    eam_worker::webhooks::WebhookSettings {
        retry_schedule: vec![Duration::from_millis(150); 7],
        timeout: Duration::from_secs(5),
        poll: Duration::from_millis(200),
        egress,
        ..eam_worker::webhooks::WebhookSettings::default()
    }
}

pub fn report_settings() -> eam_worker::reports::ReportSettings {
    eam_worker::reports::ReportSettings {
        logo_png: None,
        fx_stale_after: 3,
        concurrency: 2,
    }
}

/// The audit key every test's store writes with (the CLI gets it as `env://`): 32 bytes.
pub const TEST_AUDIT_KEY: &str = "eam-test-audit-key-not-a-secret!";

pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn pki_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("eam-test-pki")
}

impl TestEnv {
    pub async fn start(params: SimParams) -> TestEnv {
        TestEnv::start_with(params, EnvOptions::default()).await
    }

    pub async fn start_with(params: SimParams, options: EnvOptions) -> TestEnv {
        install_crypto();
        let db = match &options.database_url {
            Some(url) => TestDb::create_on(url).await,
            None => TestDb::create().await,
        };
        let store = db.app_store().await;
        let TestSim { sim, pki } = match options.pki.clone() {
            Some(pki) => TestSim::start_with_pki(params, pki).await,
            None => TestSim::start(params).await,
        };
        let (archive_location, archive_dir) = match options.archive.clone() {
            Some(location) => (location, None),
            None => {
                let dir = std::env::temp_dir()
                    .join(format!("eam-test-archive-{}", Uuid::new_v4().simple()));
                (ArchiveLocation::Directory(dir.clone()), Some(dir))
            }
        };
        let archive = Archive::open(&archive_location).expect("document archive");
        let secrets_root =
            std::env::temp_dir().join(format!("eam-test-secrets-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&secrets_root).expect("secrets root");
        let secrets = secret_provider(options.secrets_ttl).with_tenant_scope(TenantScope {
            aws_prefix: TENANT_AWS_PREFIX.into(),
            file_root: Some(secrets_root.clone()),
        });
        register_custodians(&store, &sim, &pki).await;

        let queue_name = format!("eam-test-{}", Uuid::new_v4().simple());
        let redis = options
            .redis_url
            .clone()
            .unwrap_or_else(|| env_url("REDIS_URL"));
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        // One set of metrics for the API and the in-process worker, as in `eam demo`.
        let metrics = eam_metrics::Metrics::new();

        let resources = Resources {
            store: store.clone(),
            secrets: secrets.clone(),
            archive: archive.clone(),
        };
        if options.in_process_worker {
            let worker = WorkerApp::assemble(
                &resources,
                SyncQueue::connect(&redis, &queue_name)
                    .await
                    .expect("queue"),
                WorkerConfig {
                    policy: SyncPolicy {
                        egress: options.egress,
                        ..options.policy.clone()
                    },
                    breakers: options.breakers.clone(),
                    options: worker_options(),
                    tick: None,
                    market_data: market_data_settings(&sim, &pki),
                    reports: report_settings(),
                    webhooks: Some(webhook_settings(options.egress)),
                    mail: None,
                    certificate_check: None,
                    audit_heads: None,
                },
                metrics.clone(),
            );
            let worker_stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                worker.run(worker_stop).await.expect("worker runs");
            }));
        }

        let issuer = Arc::new(LocalIssuer::ephemeral(ISSUER, AUDIENCE).expect("issuer"));
        let config = eam_auth::VerifierConfig {
            jwks_url: "http://unused.invalid/jwks.json".into(),
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            ..eam_auth::VerifierConfig::default()
        };
        let app = Application::assemble(
            &resources,
            SyncQueue::connect(&redis, &queue_name)
                .await
                .expect("queue"),
            Identity {
                verifier: Verifier::with_keys(config, issuer.jwks()).expect("verifier"),
                local_issuer: Some(issuer.clone()),
            },
            ApiConfig {
                security: options.security.clone(),
                read_cache: options.read_cache,
                tenant_claim: "tenant_id".into(),
                certificate_warning_days: options.certificate_warning_days,
                egress: options.egress,
                fx_stale_after: 3,
                step_up: eam_api::state::StepUp::default(),
                approval_expiry: chrono::Duration::hours(24),
                cors_origins: options.cors_origins.clone(),
                trusted_proxies: eam_api::request::TrustedProxies::parse(&options.trusted_proxies)
                    .expect("trusted proxies"),
                metrics_apart: false,
            },
            metrics,
        );
        let server = Server::bind("127.0.0.1:0").await.expect("bind API");
        let api = format!("http://{}", server.local_addr());
        let mut api_stop = stop_rx.clone();
        let public_url = api.clone();
        tasks.push(tokio::spawn(async move {
            app.serve(server, &public_url, async move {
                let _ = api_stop.changed().await;
            })
            .await
            .expect("API runs");
        }));

        TestEnv {
            db,
            store,
            sim,
            pki,
            api: format!("{api}/api/v1"),
            issuer,
            http: reqwest::Client::new(),
            secrets_root,
            archive,
            archive_dir,
            secrets,
            redis_url: redis,
            queue_name,
            stop,
            tasks,
        }
    }

    /// Another worker on this system's queue, with a database pool of its own (run it with
    /// [`WorkerApp::run`]).
    pub async fn another_worker(&self, policy: SyncPolicy) -> WorkerApp {
        let resources = Resources {
            store: self.db.app_store().await,
            secrets: self.secrets.clone(),
            archive: self.archive.clone(),
        };
        let queue = SyncQueue::connect(&self.redis_url, &self.queue_name)
            .await
            .expect("queue");
        WorkerApp::assemble(
            &resources,
            queue,
            WorkerConfig {
                policy,
                breakers: breaker_settings(),
                options: worker_options(),
                tick: None,
                market_data: market_data_settings(&self.sim, &self.pki),
                reports: report_settings(),
                webhooks: None,
                mail: None,
                certificate_check: None,
                audit_heads: None,
            },
            eam_metrics::Metrics::new(),
        )
    }

    /// Stops everything and drops the database.
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
        }
        self.sim.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.secrets_root);
        if let Some(dir) = &self.archive_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        self.db.drop_db().await;
    }

    /// A new tenant with the bank_sync module, and its secret files (see `secrets_root`),
    /// whose sensitive actions need no second user's approval (the tests of what they do;
    /// `tenant_with_four_eyes` keeps the platform's default).
    pub async fn tenant(&self, name: &str) -> TenantId {
        let tenant = self.tenant_with_four_eyes(name).await;
        let mut tx = self.store.tenant_tx(tenant).await.expect("tenant tx");
        eam_store::approvals::set_policy(&mut tx, &[], "test-kit")
            .await
            .expect("approval policy");
        tx.commit().await.expect("commit");
        tenant
    }

    /// A new tenant as `tenant` makes it, with the default approval policy: every sensitive
    /// action waits for a second user's approval.
    pub async fn tenant_with_four_eyes(&self, name: &str) -> TenantId {
        let tenant =
            eam_store::tenants::create_tenant(&self.store, name, &["bank_sync", "reports"])
                .await
                .expect("tenant");
        let dir = self.secrets_root.join(tenant.0.to_string());
        std::fs::create_dir_all(&dir).expect("tenant secrets directory");
        std::fs::write(dir.join("secret"), CLIENT_SECRET).expect("write secret");
        for (name, from) in [
            ("client.pem", &self.pki.client_cert),
            ("client.key", &self.pki.client_key),
            ("rogue.pem", &self.pki.rogue_client_cert),
            ("rogue.key", &self.pki.rogue_client_key),
        ] {
            std::fs::copy(from, dir.join(name)).expect("copy PKI file");
        }
        tenant
    }

    /// A file in the tenant's secret directory: `secret`, `client.pem`, `client.key`,
    /// `rogue.pem`, `rogue.key`, or one the test writes.
    pub fn tenant_file(&self, tenant: TenantId, name: &str) -> std::path::PathBuf {
        self.secrets_root.join(tenant.0.to_string()).join(name)
    }

    /// A `file://` reference to a file in the tenant's secret directory.
    pub fn tenant_ref(&self, tenant: TenantId, name: &str) -> String {
        Self::file_ref(&self.tenant_file(tenant, name))
    }

    pub fn token(&self, tenant: TenantId, roles: &[&str]) -> String {
        self.issuer
            .sign(&TokenRequest {
                subject: format!("user-{}", roles.join("-")),
                tenant_id: tenant.0,
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                client_id: None,
                ttl: Duration::from_secs(600),
                mfa_at: Some(eam_auth::unix_now()),
            })
            .expect("sign")
    }

    /// The `eam` binary with a clean environment pointed at this test's database (as the
    /// owner), Redis and archive, logging warnings only: a command of the CLI as ops run it.
    pub fn eam(&self, user: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_eam"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.db.owner_url)
            .env("REDIS_URL", &self.redis_url)
            .env(
                "EAM_ARCHIVE__DIR",
                self.archive_dir.as_ref().expect("a local archive"),
            )
            .env("EAM_LOG__LEVEL", "warn")
            .env("EAM_TEST_AUDIT_KEY", TEST_AUDIT_KEY)
            .env("EAM_AUDIT__KEY_REF", "env://EAM_TEST_AUDIT_KEY")
            .env("USER", user)
            .kill_on_drop(true);
        command
    }

    /// The body of a connection of `tenant` to this test's statement-file bank `custodian`
    /// (`bank_b`: SWIFT, `bank_c`: ISO 20022, which also wants the tenant's secret), with the
    /// tenant's client certificate.
    pub fn file_bank_body(&self, tenant: TenantId, custodian: &str) -> Value {
        let mut body = json!({
            "custodian": custodian, "name": format!("{custodian} (statement files)"),
            "client_cert_ref": self.tenant_ref(tenant, "client.pem"),
            "client_key_ref": self.tenant_ref(tenant, "client.key"),
        });
        if custodian == "bank_c" {
            body["client_secret_ref"] = json!(self.tenant_ref(tenant, "secret"));
        }
        body
    }

    /// A client user's token: role `client`, confined to `client`.
    pub fn client_token(&self, tenant: TenantId, client: &str) -> String {
        self.issuer
            .sign(&TokenRequest {
                subject: format!("client-{client}"),
                tenant_id: tenant.0,
                roles: vec!["client".to_owned()],
                client_id: Some(uuid::Uuid::parse_str(client).expect("a client id")),
                ttl: Duration::from_secs(600),
                mfa_at: Some(eam_auth::unix_now()),
            })
            .expect("sign")
    }

    pub fn file_ref(p: &std::path::Path) -> String {
        format!("file://{}", p.display())
    }

    /// The body of a bank_a connection of `tenant` to this test's simulator (the registry
    /// says where it is), with the real client certificate from the tenant's secrets.
    pub fn connection_body(&self, tenant: TenantId) -> Value {
        json!({
            "custodian": "bank_a",
            "name": "Bank A test",
            "client_id": CLIENT_ID,
            "client_secret_ref": self.tenant_ref(tenant, "secret"),
            "client_cert_ref": self.tenant_ref(tenant, "client.pem"),
            "client_key_ref": self.tenant_ref(tenant, "client.key"),
        })
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, format!("{}{path}", self.api));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("API reachable");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, headers)
    }

    pub async fn get(&self, path: &str, token: &str) -> Value {
        let (status, body, _) = self
            .call(reqwest::Method::GET, path, Some(token), None)
            .await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Creates a connection through the API and returns its id.
    pub async fn create_connection(&self, token: &str, body: &Value) -> String {
        let (status, created, _) = self
            .call(
                reqwest::Method::POST,
                "/connections",
                Some(token),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "create connection: {created}");
        created["id"].as_str().expect("id").to_owned()
    }

    /// A firm as most tests start: a tenant, a token with `roles`, and one bank_a connection
    /// to the simulator created through the API.
    pub async fn firm(&self, name: &str, roles: &[&str]) -> Firm {
        let tenant = self.tenant(name).await;
        let token = self.token(tenant, roles);
        let connection = self
            .create_connection(&token, &self.connection_body(tenant))
            .await;
        Firm {
            tenant,
            token,
            connection,
        }
    }

    /// Triggers a sync through the API; asserts it was accepted (202) and returns the answer
    /// (`run_id`, `status`, `coalesced`).
    pub async fn trigger_sync(&self, token: &str, connection: &str) -> Value {
        let (status, accepted, _) = self
            .call(
                reqwest::Method::POST,
                &format!("/connections/{connection}/sync"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 202, "sync: {accepted}");
        accepted
    }

    /// Triggers a sync through the API and waits for the job to leave queued/running.
    pub async fn sync_and_wait(&self, token: &str, connection: &str) -> Value {
        let accepted = self.trigger_sync(token, connection).await;
        assert_eq!(accepted["status"], "queued");
        let run = accepted["run_id"].as_str().expect("run id").to_owned();
        self.wait_for_job(token, &run, Duration::from_secs(60))
            .await
    }

    pub async fn wait_for_job(&self, token: &str, run: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let job = self.get(&format!("/jobs/{run}"), token).await;
            if !matches!(job["status"].as_str(), Some("queued" | "running")) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {run} still {} after {limit:?}",
                job["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
