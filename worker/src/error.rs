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
    /// Nothing was sent: the endpoint's circuit breaker was open (the cause is elsewhere).
    pub breaker_open: bool,
}

impl SyncError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        SyncError {
            class,
            message: message.into(),
            retry_after: None,
            breaker_open: false,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        SyncError::new(ErrorClass::Internal, message)
    }

    /// The run's own error when this is its final attempt. An open breaker hides the cause
    /// (the bank failed the earlier attempts; the later ones were not even sent): the run
    /// keeps the first attempt error that reached the bank, with the breaker noted.
    /// `earlier` is the run's `attempt_errors` (`[{attempt, at, class, message}, ...]`).
    pub fn final_error(&self, earlier: &serde_json::Value) -> eam_model::RunError {
        let cause = self
            .breaker_open
            .then(|| earlier.as_array())
            .flatten()
            .into_iter()
            .flatten()
            .find_map(|a| {
                let message = a["message"].as_str()?;
                let class = ErrorClass::parse(a["class"].as_str()?)?;
                (!message.starts_with("circuit breaker open")).then_some((class, message))
            });
        match cause {
            Some((class, message)) => eam_model::RunError::new(
                class,
                format!(
                    "{message} (the later attempts were not sent: {})",
                    self.message
                ),
            ),
            None => eam_model::RunError::new(self.class, self.message.clone()),
        }
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
            breaker_open: matches!(e, eam_connectors::ConnectorError::BreakerOpen { .. }),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn breaker() -> SyncError {
        SyncError {
            breaker_open: true,
            ..SyncError::new(
                ErrorClass::Transient,
                "circuit breaker open for https://bank:443: the bank failed repeatedly, nothing was sent",
            )
        }
    }

    #[test]
    fn an_open_breaker_leaves_the_run_the_first_cause_that_reached_the_bank() {
        let earlier = json!([
            {"attempt": 1, "at": "2026-12-07T02:00:00Z", "class": "transient",
             "message": "connection refused by https://bank:443"},
            {"attempt": 2, "at": "2026-12-07T02:00:05Z", "class": "transient",
             "message": "circuit breaker open for https://bank:443: the bank failed repeatedly, nothing was sent"},
        ]);
        let e = breaker().final_error(&earlier);
        assert_eq!(e.class, ErrorClass::Transient);
        assert_eq!(
            e.message,
            "connection refused by https://bank:443 (the later attempts were not sent: circuit \
             breaker open for https://bank:443: the bank failed repeatedly, nothing was sent)"
        );
    }

    #[test]
    fn without_an_earlier_cause_or_a_breaker_the_error_is_the_attempts_own() {
        let only_breaker = json!([{"attempt": 1, "at": "2026-12-07T02:00:00Z",
            "class": "transient", "message": "circuit breaker open for x"}]);
        let e = breaker().final_error(&only_breaker);
        assert!(
            e.message.starts_with("circuit breaker open"),
            "{}",
            e.message
        );
        let refused = SyncError::new(ErrorClass::Auth, "the bank refused our credentials");
        let e = refused.final_error(&json!([{"attempt": 1, "at": "2026-12-07T02:00:00Z",
            "class": "transient", "message": "connection refused"}]));
        assert_eq!(
            (e.class, e.message.as_str()),
            (ErrorClass::Auth, "the bank refused our credentials")
        );
    }
}
