//! `eam audit verify`: recomputes every tenant's audit chain with the configured keys, holds
//! it against every head published to the archive, and reports the first entry that was
//! edited, deleted or forged, and since when. `eam audit publish-heads`: publishes the heads
//! now (workers do it every `audit.head_interval_secs`).

use eam_config::Settings;
use eam_store::TenantId;
use eam_store::audit::{self, Verification};
use eam_store::resources::Resources;

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Verifies every tenant's audit log (or one tenant's): its keyed hash chain, and every
    /// head published to the archive; exits 1 if one is broken.
    Verify {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
    },
    /// Publishes each tenant's newest entry as a signed head to the archive now.
    PublishHeads,
}

pub async fn run(args: AuditArgs) -> anyhow::Result<std::process::ExitCode> {
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    let resources = Resources::open(&settings).await?;
    let tenant = match args.command {
        AuditCommand::PublishHeads => {
            let published = audit::publish_heads(&resources.store, &resources.archive).await?;
            println!("{published} heads published");
            return Ok(std::process::ExitCode::SUCCESS);
        }
        AuditCommand::Verify { tenant } => tenant,
    };
    let tenants: Vec<(TenantId, String)> = match tenant {
        Some(t) => vec![(TenantId(t), t.to_string())],
        None => eam_store::tenants::list_all(&resources.store)
            .await?
            .into_iter()
            .map(|t| (TenantId(t.id), t.name))
            .collect(),
    };
    let mut broken = 0;
    for (tenant, name) in tenants {
        let heads = audit::published_heads(&resources.archive, tenant).await?;
        let mut tx = resources.store.tenant_tx(tenant).await?;
        let v = audit::verify(&mut tx, &heads).await?;
        if v.first_break.is_some() {
            broken += 1;
        }
        println!("{tenant} {name}: {}", describe(&v));
    }
    Ok(if broken == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// One line: intact with what it was checked against, or where and why it breaks.
fn describe(v: &Verification) -> String {
    let anchored = match &v.newest_head {
        Some(h) => format!(
            "{} published heads match, the newest at entry {} ({})",
            v.heads_matched,
            h.seq,
            h.published_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => "no published head yet".to_owned(),
    };
    let mut notes = vec![anchored];
    if v.unanchored > 0 {
        notes.push(format!(
            "{} entries after it not anchored yet",
            v.unanchored
        ));
    }
    if v.unkeyed > 0 {
        notes.push(format!(
            "{} entries from before audit.key_ref was set (plain SHA-256)",
            v.unkeyed
        ));
    }
    match &v.first_break {
        None => format!("{} entries, chain intact; {}", v.entries, notes.join("; ")),
        Some(b) => format!(
            "BROKEN at entry {}{}: {}; {} entries before it verify",
            b.seq,
            b.id.map(|id| format!(" (id {id})")).unwrap_or_default(),
            b.why,
            v.entries.min(b.seq.saturating_sub(1).max(0) as u64)
        ),
    }
}
