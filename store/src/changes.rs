//! The change feed: which tenants' portfolio data changed, as PostgreSQL's triggers announce
//! it on commit (migration `0009_change_feed.sql`).
//!
//! A [`ChangeFeed`] holds one dedicated connection (not one of the store's pooled ones) that
//! `LISTEN`s on the channel. Notifications are transient: whatever was announced while the
//! connection was down is lost, so a consumer must treat [`ChangeFeed::next`] returning an
//! error as "anything may have changed" and subscribe again.

use std::str::FromStr;

use sqlx::postgres::{PgListener, PgPoolOptions};
use uuid::Uuid;

use crate::{Result, Store, TenantId};

/// The channel the triggers notify.
pub const CHANNEL: &str = "eam_portfolio_changed";

/// The `application_name` of the feed's connection (to find it in `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "eam-change-feed";

/// What a notification says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// One tenant's portfolio data.
    Tenant(TenantId),
    /// Possibly any tenant's (a write without a tenant scope, or a payload not understood).
    Everything,
}

impl Changed {
    fn from_payload(payload: &str) -> Changed {
        match Uuid::from_str(payload) {
            Ok(id) => Changed::Tenant(TenantId(id)),
            Err(_) => Changed::Everything,
        }
    }
}

/// A subscription to the change feed.
pub struct ChangeFeed {
    listener: PgListener,
}

impl ChangeFeed {
    /// Opens a dedicated connection, as the store's role, and listens. When this returns, every
    /// change committed from now on will be announced (or the feed will fail).
    pub async fn subscribe(store: &Store) -> Result<ChangeFeed> {
        let options = store.pool().connect_options().as_ref().clone();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_lazy_with(options.application_name(APPLICATION_NAME));
        let mut listener = PgListener::connect_with(&pool).await?;
        // A lost connection must surface as an error, never be silently re-established.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(ChangeFeed { listener })
    }

    /// The next change. An error means the subscription is gone (the connection was lost):
    /// changes may have been missed, and the feed must be subscribed again.
    pub async fn next(&mut self) -> Result<Changed> {
        match self.listener.try_recv().await? {
            Some(notification) => Ok(Changed::from_payload(notification.payload())),
            None => Err(crate::StoreError::Database(sqlx::Error::Io(
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the change feed's connection was lost",
                ),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_names_a_tenant_or_means_everything() {
        let id = Uuid::from_u128(7);
        assert_eq!(
            Changed::from_payload(&id.to_string()),
            Changed::Tenant(TenantId(id))
        );
        assert_eq!(Changed::from_payload("*"), Changed::Everything);
        assert_eq!(Changed::from_payload(""), Changed::Everything);
    }
}
