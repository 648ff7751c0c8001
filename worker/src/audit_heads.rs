//! Publishing the audit log's heads: every tenant's newest entry, signed, written to the
//! archive at an interval, so that `eam audit verify` can tell a log whose newest entries were
//! deleted, or which was rewritten, from an intact one (`eam_store::audit`). Every worker may
//! run it: a head is published once, whichever worker gets there first.

use std::time::Duration;

use eam_store::Store;
use eam_store::archive::Archive;

/// Publishes at start and every `interval` until `stop` turns true.
pub async fn run_publisher(
    store: Store,
    archive: Archive,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match eam_store::audit::publish_heads(&store, &archive).await {
            Ok(0) => {}
            Ok(published) => tracing::info!(published, "audit heads published"),
            Err(e) => tracing::warn!(error = %e, "audit heads could not all be published"),
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
