//! Deterministic natural keys for records the bank gives no reference for.

use sha2::{Digest, Sha256};

/// A key from the identifying fields of a record: `h:` + hex SHA-256 of the fields, each
/// length-prefixed so that no two different field lists hash the same bytes.
pub fn hashed(fields: &[&str]) -> String {
    let mut h = Sha256::new();
    for f in fields {
        h.update((f.len() as u64).to_le_bytes());
        h.update(f.as_bytes());
    }
    format!("h:{}", hex::encode(&h.finalize()[..16]))
}
