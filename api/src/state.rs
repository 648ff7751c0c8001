//! Shared state of the API: the store, the queue producer and the token verifier.

use std::sync::Arc;

use eam_auth::{LocalIssuer, Verifier};
use eam_store::Store;
use eam_worker::queue::SyncQueue;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub queue: SyncQueue,
    pub verifier: Arc<Verifier>,
    /// The development issuer, whose JWKS the API serves when configured.
    pub local_issuer: Option<Arc<LocalIssuer>>,
}
