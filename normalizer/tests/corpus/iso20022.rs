//! ISO 20022 corpus conformance.
