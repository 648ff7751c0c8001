//! ISO 20022 statements: camt.052, camt.053, camt.054 (cash) and semt.002 (holdings).

use crate::error::ParseError;
use crate::model::{Batch, SourceFormat};

/// Parses an ISO 20022 XML file of the given message type.
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

/// Recognises an ISO 20022 document and its message type from its namespace.
pub fn detect(_bytes: &[u8]) -> Option<SourceFormat> {
    None
}
