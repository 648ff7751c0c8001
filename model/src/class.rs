//! Error classes: what kind of failure a sync hit, whether it is retried, and what support
//! should do next.

/// What kind of failure a sync step hit; decides retry and the suggested action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Timeouts, refused connections, 5xx, 429: retried with backoff.
    Transient,
    /// The bank refused our credentials or client certificate: no retry, ops must act.
    Auth,
    /// The bank sent something unreadable or inconsistent: no retry, the document is kept.
    Data,
    /// A bug or misconfiguration on our side.
    Internal,
}

impl ErrorClass {
    /// The stable name stored on runs and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Auth => "auth",
            ErrorClass::Data => "data",
            ErrorClass::Internal => "internal",
        }
    }

    /// The class named by [`ErrorClass::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            ErrorClass::Transient,
            ErrorClass::Auth,
            ErrorClass::Data,
            ErrorClass::Internal,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    /// The next step a support person should take for an error of this class.
    pub fn suggested_action(self) -> &'static str {
        match self {
            ErrorClass::Transient => {
                "The bank or network failed temporarily; the run is retried automatically. If it ended dead, retry it once the bank is reachable."
            }
            ErrorClass::Auth => {
                "The bank refused our credentials or client certificate, or the connection names a secret or an address the platform does not allow (the message says which): check the connection's references and certificate (expired or revoked?), update them, then retry."
            }
            ErrorClass::Data => {
                "The bank sent data that cannot be read or does not add up: nothing was loaded. Inspect the error location, contact the bank or wait for a parser fix, then retry."
            }
            ErrorClass::Internal => "An internal error: report it to engineering with the run id.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_has_a_stable_name_and_an_action() {
        for class in [
            ErrorClass::Transient,
            ErrorClass::Auth,
            ErrorClass::Data,
            ErrorClass::Internal,
        ] {
            assert_eq!(ErrorClass::parse(class.as_str()), Some(class));
            assert!(!class.suggested_action().is_empty());
        }
        assert_eq!(ErrorClass::parse("unknown"), None);
    }
}
