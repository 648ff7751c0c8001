//! Classified sync errors: what went wrong, in words support can act on, and whether to retry.

use eam_connectors::ErrorClass;

/// A failed sync step. The class decides retry (transient only) and the suggested action.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SyncError {
    pub class: ErrorClass,
    pub message: String,
    /// How long the bank asked us to wait before trying again, if it said.
    pub retry_after: Option<std::time::Duration>,
}

impl SyncError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        SyncError {
            class,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        SyncError::new(ErrorClass::Internal, message)
    }
}

impl From<eam_store::StoreError> for SyncError {
    fn from(e: eam_store::StoreError) -> Self {
        use eam_store::StoreError;
        match &e {
            StoreError::Data(_) => SyncError::new(ErrorClass::Data, e.to_string()),
            // Lost connections, restarts and overload heal by themselves: retry.
            _ if e.is_transient() => {
                SyncError::new(ErrorClass::Transient, format!("database unavailable: {e}"))
            }
            _ => SyncError::internal(format!("database error: {e}")),
        }
    }
}

impl From<eam_connectors::ConnectorError> for SyncError {
    fn from(e: eam_connectors::ConnectorError) -> Self {
        SyncError {
            retry_after: e.retry_after(),
            ..SyncError::new(e.class(), e.to_string())
        }
    }
}

impl From<eam_normalizer::ParseError> for SyncError {
    fn from(e: eam_normalizer::ParseError) -> Self {
        SyncError::new(ErrorClass::Data, format!("unreadable bank data: {e}"))
    }
}

impl From<eam_config::secrets::SecretError> for SyncError {
    fn from(e: eam_config::secrets::SecretError) -> Self {
        // A missing credential needs ops to act, like a rejected one; an unreachable secrets
        // manager heals by itself.
        let class = if e.is_transient() {
            ErrorClass::Transient
        } else {
            ErrorClass::Auth
        };
        match e {
            // Said as it is: the reference was refused, not found missing.
            eam_config::secrets::SecretError::OutOfScope { .. } => {
                SyncError::new(class, e.to_string())
            }
            _ => SyncError::new(class, format!("bank credentials unavailable: {e}")),
        }
    }
}

impl From<eam_store::archive::ArchiveError> for SyncError {
    fn from(e: eam_store::archive::ArchiveError) -> Self {
        use eam_store::archive::ArchiveError;
        match e {
            ArchiveError::Unavailable(_) => SyncError::new(ErrorClass::Transient, e.to_string()),
            // A missing or altered archived document, or an archive that cannot be opened,
            // is ours to investigate.
            ArchiveError::Setup(_) | ArchiveError::Missing(_) | ArchiveError::Damaged { .. } => {
                SyncError::internal(e.to_string())
            }
        }
    }
}

/// The next step a support person should take for an error class.
pub fn suggested_action(class: ErrorClass) -> &'static str {
    class.suggested_action()
}
