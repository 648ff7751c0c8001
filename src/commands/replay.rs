//! `eam replay --run <id>`: re-normalizes the documents a run archived into the store without
//! calling the bank (after a parser fix, say).
//!
//! The replay is a run of its own (trigger `replay`, linked to the run that fetched the
//! documents), written to the audit log, and run here, in this process, through the same
//! pipeline and idempotent load as any sync: no worker needs to be running. Should its attempt
//! fail transiently, the run stays queued and any worker retries it. Prints the run as JSON;
//! exits non-zero unless it succeeded.

use anyhow::{Context, bail};
use eam_config::Settings;
use eam_store::audit::{self, AuditEntry};
use eam_store::runs::{self, RunStatus};
use eam_store::{ConnectionId, RunId, TenantId};
use eam_worker::SyncTask;
use eam_worker::pipeline::{self, AttemptOutcome};
use serde_json::json;
use sqlx::Connection as _;
use uuid::Uuid;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The run whose archived documents to load again.
    #[arg(long)]
    pub run: Uuid,
    /// The run's tenant; by default looked up as the database owner (DATABASE_URL).
    #[arg(long)]
    pub tenant: Option<Uuid>,
    /// Who asks, for the run and the audit log (default: cli:$USER).
    #[arg(long)]
    pub actor: Option<String>,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    let source = RunId(args.run);
    let tenant = match args.tenant {
        Some(t) => TenantId(t),
        None => tenant_of(&settings, source).await?,
    };
    let actor = args.actor.unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    });
    let resources = eam_store::resources::Resources::open(&settings).await?;
    let cx = eam_worker::application::WorkerConfig::from_settings(&settings)?.context(&resources);

    let (replay, connection) = {
        let mut tx = cx.store.tenant_tx(tenant).await?;
        let replay = runs::replay(&mut tx, source, runs::Origin::actor(&actor))
            .await
            .with_context(|| format!("replaying run {source}"))?;
        let run = runs::get(&mut tx, replay).await?;
        audit::record(
            &mut tx,
            &AuditEntry {
                actor: actor.clone(),
                action: "job.replayed".into(),
                target: Some(format!("job:{source}")),
                request_id: None,
                source_addr: None,
                details: json!({ "run_id": replay, "replay_of": run.replay_of, "via": "cli" }),
            },
        )
        .await?;
        tx.commit().await?;
        (replay, ConnectionId(run.connection_id))
    };
    tracing::info!(run_id = %replay, replay_of = %source, %actor, "replay started");

    let task = SyncTask {
        run_id: replay,
        tenant_id: tenant,
        connection_id: connection,
    };
    let outcome = pipeline::run_attempt(&cx, task, 1).await;
    let run = {
        let mut tx = cx.store.tenant_tx(tenant).await?;
        runs::get(&mut tx, replay).await?
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "run_id": run.id,
            "replay_of": run.replay_of,
            "connection_id": run.connection_id,
            "status": run.status,
            "counts": run.counts,
            "error": run.error_class.as_ref().map(|class| json!({
                "class": class,
                "message": run.error_message,
            })),
        }))?
    );
    match outcome {
        AttemptOutcome::Finished(RunStatus::Succeeded | RunStatus::SucceededWithBreaks) => Ok(()),
        AttemptOutcome::Finished(RunStatus::Queued) => {
            bail!("the replay failed transiently; it stays queued and a worker will retry it")
        }
        other => bail!("the replay did not succeed: {other:?}"),
    }
}

/// The tenant of a run, read as the database owner (RLS shows the app one tenant at a time).
async fn tenant_of(settings: &Settings, run: RunId) -> anyhow::Result<TenantId> {
    let mut owner = sqlx::PgConnection::connect(settings.database.url.expose())
        .await
        .context("connecting as the database owner to find the run's tenant (or pass --tenant)")?;
    let tenant: Option<Uuid> = sqlx::query_scalar("SELECT tenant_id FROM sync_runs WHERE id = $1")
        .bind(run.0)
        .fetch_optional(&mut owner)
        .await?;
    owner.close().await.ok();
    tenant.map(TenantId).with_context(|| {
        format!("run {run} not found (as the owner; pass --tenant if RLS hides it)")
    })
}
