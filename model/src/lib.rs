//! The platform's shared language: what every crate says to every other, with no I/O.
//!
//! Ids ([`ids`]), validated domain newtypes ([`domain`]: `Currency`, `Isin`, `Iban`, parsed
//! once and trusted after), the canonical records parsers produce and the store loads
//! ([`records`]), reconciliation breaks and statement chain ends ([`breaks`]), and one home for every enum that crosses a crate line: [`Protocol`] (and the
//! credentials it needs), [`ErrorClass`] (and its suggested action), [`DocumentKind`],
//! [`RunStatus`] (and its allowed transitions), [`BreakerState`], [`CertificateStatus`], and
//! the cron schedule type ([`cron`]). Strings appear only at the database and JSON edges,
//! through each enum's `as_str` / `parse`.
//!
//! Invariant: no tokio, no HTTP client, no database client; every function is pure.

pub mod breaker;
pub mod breaks;
pub mod certificate;
pub mod class;
pub mod cron;
pub mod document;
pub mod domain;
pub mod gauges;
pub mod ids;
pub mod monthly;
pub mod protocol;
pub mod records;
pub mod run;
pub mod trace;
pub mod wealth;

pub use breaker::{BreakerSnapshot, BreakerSource, BreakerState, endpoint_of};
pub use certificate::CertificateStatus;
pub use class::ErrorClass;
pub use document::DocumentKind;
pub use ids::{AccountId, ClientId, ConnectionId, RunId, TenantId};
pub use protocol::Protocol;
pub use run::{RunError, RunStatus, Trigger};
