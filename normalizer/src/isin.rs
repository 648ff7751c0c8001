//! An ISIN as a bank delivers it: valid, or kept as written.
//!
//! A holdings file whose one ISIN fails its check digit used to be refused whole, losing
//! every other position in it. The bank still identifies the security (its national id, its
//! own id, or the ISIN text itself), so the security is kept under the bank's id, the text
//! goes to [`Security::raw_isin`](crate::model::Security) and the run carries a warning that
//! support can act on. Nothing is guessed: the invalid text never becomes an `isin:` key.

use crate::domain::{DomainError, Isin};

/// What a written ISIN is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WrittenIsin {
    None,
    Valid(Isin),
    /// The text as written and why it is not an ISIN.
    Invalid(String, DomainError),
}

impl WrittenIsin {
    pub(crate) fn read(text: Option<&str>) -> Self {
        match text {
            None => WrittenIsin::None,
            Some(t) => match Isin::parse(t) {
                Ok(isin) => WrittenIsin::Valid(isin),
                Err(e) => WrittenIsin::Invalid(t.to_owned(), e),
            },
        }
    }

    pub(crate) fn valid(&self) -> Option<&Isin> {
        match self {
            WrittenIsin::Valid(i) => Some(i),
            _ => None,
        }
    }

    pub(crate) fn raw(&self) -> Option<&str> {
        match self {
            WrittenIsin::Invalid(t, _) => Some(t),
            _ => None,
        }
    }

    /// The warning for an invalid ISIN kept under `key`, `None` otherwise.
    pub(crate) fn warning(&self, key: &crate::model::SecurityKey) -> Option<String> {
        match self {
            WrittenIsin::Invalid(_, e) => Some(format!(
                "{e}: the security is kept as {}, the ISIN as written in raw_isin",
                key.as_str()
            )),
            _ => None,
        }
    }
}
