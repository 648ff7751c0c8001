//! End-to-end tests: the bank simulator over real HTTPS with mutual TLS, a worker on a real
//! Redis queue, the HTTP API, and PostgreSQL as the non-superuser app role (RLS on).
//!
//! One test binary (each binary links the whole stack). Every test builds its own world with
//! [`kit::TestEnv::start`]: a fresh database, its own queue name, its own simulator and API on
//! port 0, its own tenant, so tests run in parallel. Nothing sleeps to wait: jobs are polled
//! with a deadline.

mod api_errors;
mod approvals;
mod banks;
mod changes;
mod connector;
mod dialects;
mod documents;
mod isolation;
mod kit;
mod market_data;
mod metrics;
mod normalize_cli;
mod operability;
mod positions;
mod read_cache;
mod reliability;
mod reports;
mod restarts;
mod schedule;
mod secrets;
mod security;
mod services;
mod step_up;
mod sync;
mod tasks;
mod tenant_scope;
mod wealth;
mod webhooks;
mod workers;
