//! Pure parsers of bank formats into the canonical model, with validation and natural keys.
//!
//! This crate does no I/O: it takes bytes and returns a [`model::Batch`] or a located
//! [`ParseError`]. That keeps every parser testable with plain data and lets support re-run a
//! parser over an archived statement (`eam normalize`) without touching a bank or a database.

pub mod bank_a;
mod control_characters;
pub use eam_model::domain;
pub mod ecb;
pub mod error;
mod isin;
pub mod iso20022;
/// The canonical records (they live in `eam_model::records`, shared with the store).
pub use eam_model::records as model;
pub mod natural_key;
pub mod position_check;
pub mod reconcile;
mod stated_rate;
pub mod statement;
pub mod swift;

pub use error::ParseError;
