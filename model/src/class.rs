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

    /// The next step for an error of this class with this message: the class's own, unless
    /// the message says a secret, certificate, key or CA the connection names could not be
    /// used here (then the bank was not asked, and the fix is the file or the reference).
    pub fn suggested_action_for(self, message: &str) -> &'static str {
        const LOCAL: [&str; 5] = [
            "credentials unavailable: secret",
            "bank credentials are unusable",
            "is not valid PEM",
            "the bank CA is unusable",
            "is not a secret reference",
        ];
        if self == ErrorClass::Auth && LOCAL.iter().any(|m| message.contains(m)) {
            return "A secret, certificate, key or CA file the connection names cannot be used (the message names it: missing, unreadable or not PEM); the bank was not asked. Fix the file or secret, or change the connection's reference, then retry.";
        }
        self.suggested_action()
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
    fn a_local_file_that_cannot_be_used_gets_its_own_suggestion() {
        for message in [
            "bank credentials unavailable: secret file:///t/gone.pem: no such file",
            "bank credentials are unusable: the client certificate file holds no certificate",
        ] {
            assert!(
                ErrorClass::Auth
                    .suggested_action_for(message)
                    .starts_with("A secret, certificate, key or CA file"),
                "{message}"
            );
        }
        assert_eq!(
            ErrorClass::Auth.suggested_action_for("TLS handshake refused by the bank"),
            ErrorClass::Auth.suggested_action()
        );
    }

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
            assert_eq!(
                class.suggested_action_for("anything"),
                class.suggested_action()
            );
        }
        assert_eq!(ErrorClass::parse("unknown"), None);
    }
}
