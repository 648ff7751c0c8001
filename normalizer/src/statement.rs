//! Statement files (SWIFT FIN and ISO 20022): one entry point per file, whatever its format.
//!
//! Banks deliver statements as files; support and the `bank_b`/`bank_c` connectors hand the
//! raw bytes here with the format they were listed as (or [`detect`] it). A file may hold
//! several messages (statements, pages); it parses into one [`Batch`] or fails with a
//! located [`ParseError`]. In an MT940/MT942/MT950 file of several statements, a statement
//! that cannot be read on its own (cut short, no account) is listed in `Batch::rejected`
//! while its neighbours load; a file none of whose statements reads fails.

use crate::error::ParseError;
use crate::model::{Batch, SourceFormat};

/// Parses one statement file. `custodian` scopes securities that have no ISIN; `document`
/// names the file in errors and provenance.
pub fn parse(
    format: SourceFormat,
    custodian: &str,
    document: &str,
    bytes: &[u8],
) -> Result<Batch, ParseError> {
    match format {
        SourceFormat::Mt940
        | SourceFormat::Mt941
        | SourceFormat::Mt942
        | SourceFormat::Mt950
        | SourceFormat::Mt900
        | SourceFormat::Mt910
        | SourceFormat::Mt535
        | SourceFormat::Mt536 => crate::swift::parse(format, custodian, document, bytes),
        SourceFormat::Camt052
        | SourceFormat::Camt053
        | SourceFormat::Camt054
        | SourceFormat::Semt002 => crate::iso20022::parse(format, custodian, document, bytes),
        SourceFormat::BankAJson => Err(ParseError::field(
            document,
            "format",
            "bank_a JSON pages are parsed per endpoint (bank_a::parse), not as statement files",
        )),
    }
}

/// Guesses the format of a statement file from its content, `None` when it is none of them.
pub fn detect(bytes: &[u8]) -> Option<SourceFormat> {
    crate::iso20022::detect(bytes).or_else(|| crate::swift::detect(bytes))
}
