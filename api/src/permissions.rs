//! Who may do what: the one table from role to actions.
//!
//! Every operation states its action in its first line (`state.caller(&token, Action::...)` or
//! `state.begin(..)`), so
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
    pub const ALL: [Role; 6] = [
        Role::PlatformAdmin,
        Role::TenantAdmin,
        Role::Ops,
        Role::Support,
        Role::Advisor,
        Role::Client,
    ];

    /// The role's name in tokens and in the users table.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::TenantAdmin => "tenant_admin",
            Role::Ops => "ops",
            Role::Support => "support",
            Role::Advisor => "advisor",
            Role::Client => "client",
        }
    }

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
    /// Every tenant of the platform.
    ReadTenants,
    /// Create tenants and switch their modules.
    ManageTenants,
    ReadUsers,
    /// Register users, set their roles, disable them.
    ManageUsers,
    ReadClients,
    ManageClients,
    /// The tenant's audit log.
    ReadAudit,
    /// The custodian registry (which banks exist, where they live).
    ReadCustodians,
    /// Register custodians and set their address and CA (the platform's).
    ManageCustodians,
    /// Exchange rates (platform-wide market data).
    ReadMarketData,
    /// The rules that give a connection's accounts their client.
    ReadAssignments,
    /// Assign accounts to clients, by hand or by rules.
    AssignAccounts,
    /// The platform's market-data runs (loads of the reference rates).
    ReadMarketDataRuns,
    /// Queue a market-data run now.
    TriggerMarketData,
    /// Clients' reports: their status and files (a client user: its own client's).
    ReadReports,
    /// Queue a report for a client.
    CreateReports,
    /// The tenant's monthly statement schedule and the times it fired.
    ReadReportSchedule,
    /// Set, pause or remove the tenant's monthly statement schedule.
    ManageReportSchedule,
    /// The tenant's webhook endpoints and their delivery logs.
    ReadWebhooks,
    /// Register, change, rotate, delete webhook endpoints; send a delivery again.
    ManageWebhooks,
    /// The tenant's events.
    ReadEvents,
    /// The worklist (an advisor: the tasks about a client).
    ReadTasks,
    /// Assign, comment, resolve and dismiss tasks.
    ManageTasks,
    /// Four-eyes requests (approving or rejecting one also takes the right to do its action).
    ReadApprovals,
    /// Which sensitive actions need a second user's approval.
    ManageApprovalPolicy,
}

impl Action {
    /// The tenant module an action belongs to, which the tenant must have switched on.
    pub fn module(self) -> Option<&'static str> {
        use Action::*;
        match self {
            ReadConnections | ManageConnections | TriggerSync | ReadSchedules | ManageSchedules
            | ReadDocuments => Some("bank_sync"),
            ReadReports | CreateReports | ReadReportSchedule | ManageReportSchedule => {
                Some("reports")
            }
            _ => None,
        }
    }
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
        ReadTenants | ManageTenants => matches!(role, PlatformAdmin),
        ReadUsers | ManageUsers => matches!(role, TenantAdmin),
        // A client user reads its own client (row-level security keeps it to that one).
        ReadClients => matches!(role, TenantAdmin | Advisor | Client),
        ManageClients => matches!(role, TenantAdmin | Advisor),
        ReadAudit => matches!(role, TenantAdmin),
        ReadCustodians => matches!(role, PlatformAdmin | TenantAdmin | Ops | Support),
        ManageCustodians => matches!(role, PlatformAdmin),
        // Reference rates are public knowledge; every caller converts with them.
        ReadMarketData => true,
        ReadAssignments => matches!(role, TenantAdmin | Advisor | Ops | Support),
        AssignAccounts => matches!(role, TenantAdmin | Advisor | Ops),
        // The feed is the platform's; ops of any tenant may see it ran and run it again (an
        // idempotent load of public rates).
        ReadMarketDataRuns | TriggerMarketData => matches!(role, PlatformAdmin | Ops),
        // A statement is the client's: its advisor and the firm's admin make it, the client
        // reads its own (row-level security keeps it to that one). Ops and support see the
        // report jobs' health through metrics and logs, not the statements' contents.
        ReadReports => matches!(role, TenantAdmin | Advisor | Client),
        CreateReports => matches!(role, TenantAdmin | Advisor),
        // Statements for every client of the firm: the firm's admin decides when they go out;
        // advisors see when their clients' next statements are due.
        ReadReportSchedule => matches!(role, TenantAdmin | Advisor),
        ManageReportSchedule => matches!(role, TenantAdmin),
        // Where the firm's events go is the firm admin's call; ops and support read the log
        // to see why a receiver missed one.
        ReadWebhooks => matches!(role, TenantAdmin | Ops | Support),
        ManageWebhooks => matches!(role, TenantAdmin),
        ReadEvents => matches!(role, TenantAdmin | Ops | Support),
        ReadTasks => matches!(role, TenantAdmin | Ops | Support | Advisor),
        ManageTasks => matches!(role, Ops | Support),
        // Everyone who can do one of the sensitive actions sees what waits for a second pair
        // of eyes; whether they may decide a request depends on its action.
        ReadApprovals => matches!(role, TenantAdmin | Ops | Support | Advisor),
        ManageApprovalPolicy => matches!(role, TenantAdmin),
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

/// Every operation of `/api/v1` and the action it requires: the declaration the handlers'
/// first lines (`caller.require(..)`) implement, in one table. A test walks the OpenAPI
/// document and fails on an operation missing here, and calls every operation with every role
/// to check the handler refuses exactly the roles this table refuses.
pub const OPERATIONS: &[(&str, &str, Action)] = {
    use Action::*;
    &[
        ("get", "/me", ReadSelf),
        ("get", "/accounts", ReadPortfolio),
        ("get", "/accounts/{id}/performance", ReadPortfolio),
        ("get", "/clients/{id}/performance", ReadPortfolio),
        ("put", "/accounts/{id}/client", AssignAccounts),
        ("delete", "/accounts/{id}/client", AssignAccounts),
        ("get", "/connections/{id}/assignment-rules", ReadAssignments),
        ("post", "/connections/{id}/assignment-rules", AssignAccounts),
        (
            "delete",
            "/connections/{id}/assignment-rules/{rule_id}",
            AssignAccounts,
        ),
        ("get", "/holdings", ReadPortfolio),
        ("get", "/balances", ReadPortfolio),
        ("get", "/transactions", ReadPortfolio),
        ("get", "/connections", ReadConnections),
        ("post", "/connections", ManageConnections),
        ("get", "/connections/{id}", ReadConnections),
        ("patch", "/connections/{id}", ManageConnections),
        ("delete", "/connections/{id}", ManageConnections),
        ("post", "/connections/{id}/sync", TriggerSync),
        ("post", "/connections/{id}/pause", ManageConnections),
        ("post", "/connections/{id}/resume", ManageConnections),
        ("get", "/connections/{id}/breaker", ReadConnections),
        ("get", "/connections/{id}/schedule", ReadSchedules),
        ("put", "/connections/{id}/schedule", ManageSchedules),
        ("get", "/jobs", ReadJobs),
        ("get", "/jobs/{id}", ReadJobs),
        ("post", "/jobs/{id}/retry", RetryJobs),
        ("post", "/jobs/retry", RetryJobs),
        ("post", "/jobs/{id}/cancel", CancelJobs),
        ("get", "/breaks", ReadJobs),
        ("post", "/jobs/{id}/replay", ReplayRuns),
        ("get", "/certificates", ReadConnections),
        ("get", "/connections/{id}/certificate", ReadConnections),
        ("get", "/documents", ReadDocuments),
        ("get", "/documents/{id}", ReadDocuments),
        ("get", "/documents/{id}/content", ReadDocuments),
        ("get", "/schedules/default", ReadSchedules),
        ("put", "/schedules/default", ManageSchedules),
        ("delete", "/schedules/default", ManageSchedules),
        ("get", "/tenants", ReadTenants),
        ("post", "/tenants", ManageTenants),
        ("put", "/tenants/{id}/modules", ManageTenants),
        ("get", "/users", ReadUsers),
        ("post", "/users", ManageUsers),
        ("get", "/users/{id}", ReadUsers),
        ("patch", "/users/{id}", ManageUsers),
        ("get", "/clients", ReadClients),
        ("post", "/clients", ManageClients),
        ("get", "/clients/{id}", ReadClients),
        ("patch", "/clients/{id}", ManageClients),
        ("delete", "/clients/{id}", ManageClients),
        ("get", "/audit", ReadAudit),
        ("get", "/custodians", ReadCustodians),
        ("put", "/custodians/{code}", ManageCustodians),
        ("get", "/fx-rates", ReadMarketData),
        ("get", "/accounts/{id}/valuation", ReadPortfolio),
        ("get", "/clients/{id}/valuation", ReadPortfolio),
        ("get", "/market-data/runs", ReadMarketDataRuns),
        ("get", "/market-data/runs/{id}", ReadMarketDataRuns),
        ("post", "/market-data/runs", TriggerMarketData),
        ("get", "/securities/{id}/prices", ReadPortfolio),
        ("post", "/reports", CreateReports),
        ("get", "/reports", ReadReports),
        ("get", "/reports/{id}", ReadReports),
        ("get", "/reports/{id}/files/{format}", ReadReports),
        ("get", "/reports/schedule", ReadReportSchedule),
        ("put", "/reports/schedule", ManageReportSchedule),
        ("delete", "/reports/schedule", ManageReportSchedule),
        ("post", "/webhooks", ManageWebhooks),
        ("get", "/webhooks", ReadWebhooks),
        ("get", "/webhooks/{id}", ReadWebhooks),
        ("patch", "/webhooks/{id}", ManageWebhooks),
        ("delete", "/webhooks/{id}", ManageWebhooks),
        ("post", "/webhooks/{id}/rotate-secret", ManageWebhooks),
        ("get", "/webhooks/{id}/deliveries", ReadWebhooks),
        (
            "post",
            "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            ManageWebhooks,
        ),
        ("get", "/events", ReadEvents),
        ("get", "/me/notifications", ReadSelf),
        ("get", "/changes", ReadPortfolio),
        ("get", "/tasks", ReadTasks),
        ("get", "/tasks/{id}", ReadTasks),
        ("post", "/tasks/{id}/assign", ManageTasks),
        ("post", "/tasks/{id}/comments", ManageTasks),
        ("post", "/tasks/{id}/resolve", ManageTasks),
        ("post", "/tasks/{id}/dismiss", ManageTasks),
        ("put", "/me/notifications", ReadSelf),
        ("get", "/approvals", ReadApprovals),
        ("get", "/approvals/{id}", ReadApprovals),
        ("post", "/approvals/{id}/approve", ReadApprovals),
        ("post", "/approvals/{id}/reject", ReadApprovals),
        ("get", "/approvals/policy", ReadApprovals),
        ("put", "/approvals/policy", ManageApprovalPolicy),
    ]
};

/// The action an operation requires, from [`OPERATIONS`].
pub fn action_of(method: &str, path: &str) -> Option<Action> {
    OPERATIONS
        .iter()
        .find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == path)
        .map(|(_, _, a)| *a)
}
