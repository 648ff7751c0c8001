//! The bank protocols the worker speaks, and what each authenticates with.

/// A bank protocol family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// REST JSON with OAuth2 client credentials.
    BankA,
    /// SWIFT FIN statement files.
    BankB,
    /// ISO 20022 statement files with an API key.
    BankC,
}

/// What a connection of a protocol must give, beside its client certificate for mutual TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// An OAuth2 client id.
    pub client_id: bool,
    /// A reference to a client secret or API key.
    pub secret: bool,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::BankA, Protocol::BankB, Protocol::BankC];

    /// The stable name stored in the custodian registry.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::BankA => "bank_a",
            Protocol::BankB => "bank_b",
            Protocol::BankC => "bank_c",
        }
    }

    /// The protocol named by [`Protocol::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Protocol::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// What its connections authenticate with.
    pub fn credentials(self) -> Credentials {
        match self {
            Protocol::BankA => Credentials {
                client_id: true,
                secret: true,
            },
            Protocol::BankB => Credentials {
                client_id: false,
                secret: false,
            },
            Protocol::BankC => Credentials {
                client_id: false,
                secret: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_are_named_and_say_what_they_need() {
        for p in Protocol::ALL {
            assert_eq!(Protocol::parse(p.as_str()), Some(p));
        }
        assert_eq!(Protocol::parse("bank_z"), None);
        assert!(Protocol::BankA.credentials().client_id);
        assert!(!Protocol::BankB.credentials().secret);
        assert!(Protocol::BankC.credentials().secret && !Protocol::BankC.credentials().client_id);
    }
}
