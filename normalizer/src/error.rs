//! The one error type of the normalizer: where in which document, which field, and why.

use std::fmt;

/// A located parse or validation error. Support reads these, so they name the document, the
/// place in it (line and column for syntax errors, a field path for bad values) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParseError {
    pub document: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// JSON-path-like location of the offending field, e.g. `positions[3].quantity`.
    pub field: Option<String>,
    pub reason: String,
}

impl ParseError {
    /// An error about a field's value.
    pub fn field(document: &str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        ParseError {
            document: document.to_owned(),
            line: None,
            column: None,
            field: Some(field.into()),
            reason: reason.into(),
        }
    }

    /// A syntax or shape error reported by the JSON reader.
    pub fn json(document: &str, err: &serde_json::Error) -> Self {
        ParseError {
            document: document.to_owned(),
            line: Some(err.line()),
            column: Some(err.column()),
            field: None,
            reason: err.to_string(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.document)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
            if let Some(col) = self.column {
                write!(f, ", column {col}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ParseError {}

/// A document whose every statement was rejected fails with the first one's reason.
impl From<crate::model::RejectedStatement> for ParseError {
    fn from(r: crate::model::RejectedStatement) -> Self {
        ParseError {
            document: r.document,
            line: r.line,
            column: None,
            field: r.field,
            reason: r.reason,
        }
    }
}
