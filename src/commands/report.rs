//! `eam report --tenant <id> --client <id> --from <date> --to <date>`: a client's portfolio
//! statement, generated here, in this process, as a report job the way a worker runs one (the
//! same figures, files, archive and records: `GET /api/v1/reports/{id}` shows it afterwards),
//! audited. The tenant's `reports` module must be on. With `--out`, the files are written
//! there too. Prints the report as JSON; exits non-zero unless it succeeded.

use anyhow::{Context, bail};
use chrono::NaiveDate;
use eam_config::Settings;
use eam_model::domain::Currency;
use eam_queue::ReportTask;
use eam_store::audit::{self, AuditEntry};
use eam_store::reports::{self, Created, NewReport};
use eam_store::{RunId, TenantId};
use eam_worker::pipeline::AttemptOutcome;
use eam_worker::reports::ReportJobs;
use serde_json::json;
use uuid::Uuid;

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Pdf,
    Csv,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Csv => "csv",
        }
    }
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The client's tenant.
    #[arg(long)]
    pub tenant: Uuid,
    /// The client the statement is for.
    #[arg(long)]
    pub client: Uuid,
    /// The period's first day.
    #[arg(long)]
    pub from: NaiveDate,
    /// The period's last day (the statement values the portfolio as of it).
    #[arg(long)]
    pub to: NaiveDate,
    /// The figures' currency (default: the client's reporting currency, else EUR).
    #[arg(long)]
    pub currency: Option<String>,
    /// pdf, csv (a zip of one CSV per table); repeat for both (default: both).
    #[arg(long = "format", value_enum)]
    pub formats: Vec<Format>,
    /// A directory to write the files to, as well as the archive.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Who asks, for the report and the audit log (default: cli:$USER).
    #[arg(long)]
    pub actor: Option<String>,
}

pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    if args.from > args.to {
        bail!("--from ({}) is after --to ({})", args.from, args.to);
    }
    let currency = args
        .currency
        .as_deref()
        .map(|c| {
            Currency::parse(c)
                .map(|c| c.as_str().to_owned())
                .map_err(|_| anyhow::anyhow!("--currency: '{c}' is not an ISO 4217 currency"))
        })
        .transpose()?;
    let mut formats = args.formats.clone();
    if formats.is_empty() {
        formats = vec![Format::Pdf, Format::Csv];
    }
    formats.sort();
    formats.dedup();
    let actor = args.actor.clone().unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    });
    let tenant = TenantId(args.tenant);
    let resources = eam_store::resources::Resources::open(&settings).await?;
    let config = eam_worker::application::WorkerConfig::from_settings(&settings)?;
    let jobs = ReportJobs::new(config.context(&resources), config.reports.clone());

    let id = {
        let mut tx = resources.store.tenant_tx(tenant).await?;
        let firm = eam_store::tenants::get(&mut tx)
            .await
            .with_context(|| format!("tenant {tenant}"))?;
        if !firm.modules.iter().any(|m| m == "reports") {
            bail!("the reports module is not enabled for tenant {tenant}");
        }
        let new = NewReport {
            client_id: args.client,
            kind: "portfolio_statement".into(),
            period_from: args.from,
            period_to: args.to,
            currency,
            formats: formats.iter().map(|f| f.as_str().to_owned()).collect(),
            requested_by: actor.clone(),
            idempotency: None,
        };
        let Created::New(report) = reports::create(&mut tx, &new)
            .await
            .with_context(|| format!("client {} of tenant {tenant}", args.client))?
        else {
            bail!("a report without an idempotency key is always new");
        };
        audit::record(
            &mut tx,
            &AuditEntry {
                actor: actor.clone(),
                action: "report.requested".into(),
                target: Some(format!("report:{}", report.id)),
                request_id: None,
                source_addr: None,
                details: json!({
                    "client_id": report.client_id, "kind": report.kind,
                    "from": report.period_from, "to": report.period_to,
                    "currency": report.currency, "formats": report.formats, "via": "cli",
                }),
            },
        )
        .await?;
        tx.commit().await?;
        report.id
    };
    tracing::info!(report_id = %id, %actor, "report started");
    let task = ReportTask {
        report_id: RunId(id),
        tenant_id: tenant,
    };
    let outcome = eam_worker::reports::run_attempt(&jobs, task, 1).await;
    let (report, files) = {
        let mut tx = resources.store.tenant_tx(tenant).await?;
        (
            reports::get(&mut tx, id).await?,
            reports::files(&mut tx, &[id]).await?,
        )
    };
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for f in &files {
            let bytes = resources.archive.get(&f.archive_key, &f.sha256).await?;
            let path = dir.join(&f.file_name);
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "report_id": report.id,
            "client_id": report.client_id,
            "from": report.period_from,
            "to": report.period_to,
            "status": report.status,
            "error": report.error_class.as_ref().map(|class| json!({
                "class": class,
                "message": report.error_message,
            })),
            "files": files.iter().map(|f| json!({
                "format": f.format,
                "file_name": f.file_name,
                "sha256": f.sha256,
                "size_bytes": f.size_bytes,
                "pages": f.pages,
                "written_to": args.out.as_ref().map(|d| d.join(&f.file_name)),
            })).collect::<Vec<_>>(),
        }))?
    );
    match outcome {
        AttemptOutcome::Finished(eam_model::RunStatus::Succeeded) => Ok(()),
        AttemptOutcome::Finished(eam_model::RunStatus::Queued) => {
            bail!("the report failed transiently; it stays queued and a worker will retry it")
        }
        other => bail!("the report did not succeed: {other:?}"),
    }
}
