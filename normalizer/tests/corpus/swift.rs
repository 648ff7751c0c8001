//! SWIFT FIN corpus conformance.
