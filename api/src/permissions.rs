//! Who may do what: the one table from role to actions.
//!
//! Every operation states its action in its first line (`caller.require(Action::...)`), so
//! "who may do this?" is answered here and nowhere else.

use crate::problem::ApiError;

/// The roles of DESIGN §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    PlatformAdmin,
    TenantAdmin,
    Ops,
    Support,
    Advisor,
    Client,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "platform_admin" => Role::PlatformAdmin,
            "tenant_admin" => Role::TenantAdmin,
            "ops" => Role::Ops,
            "support" => Role::Support,
            "advisor" => Role::Advisor,
            "client" => Role::Client,
            _ => return None,
        })
    }
}

/// Everything an API caller can ask to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Who am I.
    ReadSelf,
    /// Accounts, holdings, balances, transactions.
    ReadPortfolio,
    ReadConnections,
    ManageConnections,
    TriggerSync,
    ReadJobs,
    /// Retry failed or dead runs, one or in bulk.
    RetryJobs,
    /// Cancel queued or running runs.
    CancelJobs,
    /// A connection's sync schedule and its next run times.
    ReadSchedules,
    /// Set or pause a connection's sync schedule.
    ManageSchedules,
    /// Archived raw bank documents and their content.
    ReadDocuments,
    /// Re-normalize a run's archived documents into the store.
    ReplayRuns,
}

/// The permission table.
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        ReadSelf => true,
        ReadPortfolio => matches!(role, Advisor | Client),
        ReadConnections => matches!(role, TenantAdmin | Ops | Support),
        ManageConnections => matches!(role, TenantAdmin | Ops),
        TriggerSync => matches!(role, Ops),
        ReadJobs => matches!(role, TenantAdmin | Ops | Support),
        RetryJobs | CancelJobs => matches!(role, Ops | Support),
        ReadSchedules => matches!(role, TenantAdmin | Ops | Support),
        ManageSchedules => matches!(role, TenantAdmin | Ops),
        // Raw statements are what support reads to see why a sync failed.
        ReadDocuments => matches!(role, TenantAdmin | Ops | Support),
        ReplayRuns => matches!(role, Ops | Support),
    }
}

/// Refuses with 403 unless one of the roles allows the action.
pub fn require(roles: &[Role], action: Action) -> Result<(), ApiError> {
    if roles.iter().any(|r| allows(*r, action)) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "your roles do not allow {action:?}"
        )))
    }
}
