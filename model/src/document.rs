//! Where a raw document came from: an endpoint of a REST bank, or a statement file.

/// Which endpoint or file type a raw document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    Accounts,
    Positions,
    Balances,
    Transactions,
    /// A statement file (SWIFT FIN, ISO 20022) listed and downloaded from a bank: see
    /// [`RawDocument::file`].
    StatementFile,
    /// A market-data file of reference rates (the ECB's euro reference rates).
    ReferenceRates,
}

impl DocumentKind {
    /// The stable name used in document names and provenance.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Accounts => "accounts",
            DocumentKind::Positions => "positions",
            DocumentKind::Balances => "balances",
            DocumentKind::Transactions => "transactions",
            DocumentKind::StatementFile => "file",
            DocumentKind::ReferenceRates => "reference_rates",
        }
    }

    /// The kind named by [`DocumentKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            DocumentKind::Accounts,
            DocumentKind::Positions,
            DocumentKind::Balances,
            DocumentKind::Transactions,
            DocumentKind::StatementFile,
            DocumentKind::ReferenceRates,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}
