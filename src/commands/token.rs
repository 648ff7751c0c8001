//! `eam token`: a development token from the local issuer.

use std::time::Duration;

use eam_config::Settings;
use uuid::Uuid;

#[derive(clap::Args)]
pub struct TokenArgs {
    /// Tenant id (UUID) the token is for.
    #[arg(long)]
    pub tenant: Uuid,
    /// Comma-separated roles: platform_admin, tenant_admin, ops, support, advisor, client.
    #[arg(long, value_delimiter = ',', default_value = "advisor")]
    pub roles: Vec<String>,
    /// Subject (user id at the identity provider).
    #[arg(long, default_value = "dev-user")]
    pub subject: String,
    /// Client id (UUID) for a client user.
    #[arg(long)]
    pub client: Option<Uuid>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
    /// The holder passed a second factor now (`amr: ["pwd", "mfa"]`, `auth_time` now): what
    /// the sensitive routes ask for (step-up, RFC 9470).
    #[arg(long)]
    pub mfa: bool,
    /// With `--mfa`: the second factor was this many seconds ago.
    #[arg(long, default_value_t = 0)]
    pub mfa_age: u64,
}

pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    if settings.auth.local_issuer_dir.is_empty() {
        anyhow::bail!("auth.local_issuer_dir is empty: the local issuer is disabled");
    }
    let issuer = eam_auth::LocalIssuer::load_or_create(
        std::path::Path::new(&settings.auth.local_issuer_dir),
        &settings.auth.issuer,
        &settings.auth.audience,
    )?;
    let token = issuer.sign(&eam_auth::TokenRequest {
        subject: args.subject,
        tenant_id: args.tenant,
        roles: args.roles,
        client_id: args.client,
        ttl: Duration::from_secs(args.ttl),
        mfa_at: args
            .mfa
            .then(|| eam_auth::unix_now().saturating_sub(args.mfa_age)),
    })?;
    println!("{token}");
    Ok(())
}
