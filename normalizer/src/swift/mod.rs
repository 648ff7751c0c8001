//! SWIFT FIN statements: MT940, MT942, MT950 (cash) and MT535, MT536 (securities).

use crate::error::ParseError;
use crate::model::{Batch, SourceFormat};

/// Parses a SWIFT FIN file of the given MT format.
pub fn parse(
    format: SourceFormat,
    _custodian: &str,
    document: &str,
    _bytes: &[u8],
) -> Result<Batch, ParseError> {
    Err(ParseError::field(
        document,
        "format",
        format!("{} is not supported yet", format.as_str()),
    ))
}

/// Recognises a SWIFT FIN message and its MT type.
pub fn detect(_bytes: &[u8]) -> Option<SourceFormat> {
    None
}
