//! `eam audit verify`: recomputes every tenant's audit chain and reports the first entry that
//! was edited, deleted from the middle, or forged.

use eam_config::Settings;
use eam_store::TenantId;

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Verifies the hash chain of every tenant's audit log (or one tenant's); exits 1 if one
    /// is broken.
    Verify {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
    },
}

pub async fn run(args: AuditArgs) -> anyhow::Result<std::process::ExitCode> {
    let AuditCommand::Verify { tenant } = args.command;
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    let store = super::connect_store(&settings).await?;
    let tenants: Vec<(TenantId, String)> = match tenant {
        Some(t) => vec![(TenantId(t), t.to_string())],
        None => eam_store::tenants::list_all(&store)
            .await?
            .into_iter()
            .map(|t| (TenantId(t.id), t.name))
            .collect(),
    };
    let mut broken = 0;
    for (tenant, name) in tenants {
        let mut tx = store.tenant_tx(tenant).await?;
        let v = eam_store::audit::verify(&mut tx).await?;
        match v.first_break {
            None => println!("{tenant} {name}: {} entries, chain intact", v.entries),
            Some((id, why)) => {
                broken += 1;
                println!(
                    "{tenant} {name}: BROKEN at entry {id} ({why}); {} entries before it verify",
                    v.entries
                );
            }
        }
    }
    Ok(if broken == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
