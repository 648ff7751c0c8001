//! The job engine: sync jobs on the Redis queue, orchestrating connectors -> normalizer -> store.
//!
//! PostgreSQL (`sync_runs`) is the system of record for every run; Redis (apalis-redis) only
//! transports tasks. The API creates a run row and pushes a task; a worker picks it up and runs
//! the [`pipeline`]. Retries are decided from the classified error, not by the transport.

pub mod application;
pub mod audit_heads;
pub mod certificates;
pub mod dispatch;
pub mod error;
pub mod mailer;
pub mod market_data;
pub mod pipeline;
pub mod queue;
pub mod reports;
mod statement;
pub mod tick;
pub mod webhooks;

pub use dispatch::DispatchSettings;
pub use eam_queue::{QueueError, SyncQueue};
pub use error::{SyncError, suggested_action};
pub use pipeline::{CustodianLimit, SyncContext, SyncPolicy, SyncTask};
pub use queue::WorkerOptions;
