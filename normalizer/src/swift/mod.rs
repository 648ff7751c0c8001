//! SWIFT FIN statements: MT940, MT941, MT942, MT950 (cash), MT900, MT910 (confirmations of
//! one debit or credit, see [`confirmation`]) and MT535, MT536 (securities).
//!
//! A file goes through four layers, each its own module, so that each can be tested and
//! reused on its own (the corpus test compares upstream expectations at the layer they
//! describe):
//!
//! 1. [`text`]: bytes to text. UTF-8, ISO-8859-1 and DOS code pages are told apart per file;
//!    CRLF, LF and CR-only line ends are all lines.
//! 2. [`fin`]: envelopes (`{1:}{2:}{4:` ... `-}`, SOH/ETX), messages and fields `:TAG:value`,
//!    pushed as events: one pass, no copy of field values.
//! 3. [`mt94x`] and [`securities`]: fields into typed statements with the values as written
//!    ([`CashStatement`], [`SecuritiesStatement`]), each handed over as soon as it ends, so a
//!    large file is streamed statement by statement.
//! 4. [`cash`] and [`custody`]: typed statements into the canonical model, where codes are
//!    validated (ISO 4217, ISIN check digit, IBAN) and mandatory parts enforced.
//!
//! What is rejected, and only that: what cannot be read without guessing, such as a statement
//! without account (`:25:`, `:97A:`), an MT940 page without opening or closing balance (a
//! truncated file), a balance or value with no currency, a second account or balance inside
//! one statement. The error names the document, the line, the field and why.
//! In a file of several statements or messages (cash, confirmations, MT535/MT536) such an
//! error costs only its statement: it is listed in [`Batch::rejected`](crate::model::Batch)
//! (document, index, reference, line, field, reason) and the others load, since a download
//! cut short in its last statement still holds complete ones before it. An MT535/MT536
//! message is mapped as it is read, so one left out is taken back whole (its securities,
//! positions, movements, rates, and the keys and prices it numbered). A file none of whose
//! statements reads is an error.
//! A statement that reads but does not balance loads: the reconciliation's balance check
//! makes it a break (see `crate::reconcile`), as it did before.
//! What can be read unambiguously but is unusual is read and leaves a [`ParseWarning`]: a
//! value date of 30 February, an amount without decimal comma or with a decimal point, a file
//! that was not UTF-8, braces written as national letters, a malformed tag, FinTS leftovers,
//! an ISIN failing its check digit (the security kept under the bank's id).
//!
//! A statement split across files (a bank paginating its download mid-statement) is read with
//! [`parse_pages`]: the files are one stream of fields, while errors and provenance still name
//! the file and line each record came from.
//!
//! [`ParseWarning`]: crate::model::ParseWarning

pub mod cash;
pub mod confirmation;
pub mod custody;
pub mod details;
#[cfg(test)]
mod dialect_tests;
pub mod fin;
pub mod mt94x;
#[cfg(test)]
mod rate_tests;
pub mod securities;
pub mod stream;
pub mod text;
pub mod values;

use crate::error::ParseError;
use crate::model::{Batch, ParseWarning, RejectedStatement, SourceFormat};

pub use self::mt94x::CashStatement;
pub use self::securities::SecuritiesStatement;

use self::fin::Family;
use self::mt94x::{CashReader, ReadError};
use self::securities::SecuritiesReader;
use self::text::Encoding;

/// Parses a SWIFT FIN file of the given MT format.
pub fn parse(
    format: SourceFormat,
    custodian: &str,
    document: &str,
    bytes: &[u8],
) -> Result<Batch, ParseError> {
    parse_pages(format, custodian, &[(document, bytes)])
}

/// Parses files that continue each other (pages of one download, in order) as one stream:
/// a statement may start in one file and end in the next. Each record's provenance names the
/// file it was read from.
pub fn parse_pages(
    format: SourceFormat,
    custodian: &str,
    pages: &[(&str, &[u8])],
) -> Result<Batch, ParseError> {
    let names: Vec<&str> = pages.iter().map(|(name, _)| *name).collect();
    let mut notes = Vec::new();
    let texts = decode_pages(pages, &mut notes);
    let mut batch = match family(format, &names)? {
        Family::Cash => {
            let mut mapper = cash::CashMapper::new(format, &names);
            // One pass of memchr over the text saves regrowing a large transaction list.
            let entries: usize = texts
                .iter()
                .map(|(t, _)| memchr::memmem::find_iter(t.as_bytes(), b":61:").count())
                .sum();
            mapper.batch.transactions.reserve(entries);
            let mut count = 0usize;
            let mut loaded = 0usize;
            let mut rejected = Vec::new();
            // Statements per document, for the index a rejected one is named by.
            let mut per_document = vec![0u32; names.len()];
            let read = read_cash(&texts, &names, &mut notes, |st| {
                count += 1;
                let index = per_document.get_mut(st.at.part).map_or(0, |n| {
                    *n += 1;
                    *n
                });
                let (reference, account) = (st.reference.clone(), st.account.clone());
                // A statement that cannot be mapped leaves no record (every check comes
                // before the first push) and does not stop its neighbours.
                match mapper.statement(st) {
                    Ok(()) => loaded += 1,
                    Err(e) => rejected.push(RejectedStatement {
                        document: e.document,
                        index,
                        reference,
                        account,
                        line: e.line,
                        field: e.field,
                        reason: e.reason,
                    }),
                }
                Ok(())
            });
            read?;
            if count == 0 {
                return empty_or_nothing_found(format, &names, &texts);
            }
            if loaded == 0 {
                // Nothing to load: the first statement's reason is the document's.
                return Err(rejected.swap_remove(0).into());
            }
            mapper.batch.rejected = rejected;
            mapper.batch
        }
        Family::Confirmation => {
            let mut mapper = confirmation::ConfirmationMapper::new(format, &names);
            let (mut count, mut loaded) = (0usize, 0usize);
            let mut rejected = Vec::new();
            let mut per_document = vec![0u32; names.len()];
            let read = read_confirmations(
                Family::Confirmation,
                &texts,
                &names,
                &mut notes,
                confirmation::ConfirmationReader::new(|c: confirmation::Confirmation| {
                    count += 1;
                    let index = per_document.get_mut(c.at.part).map_or(0, |n| {
                        *n += 1;
                        *n
                    });
                    let (reference, account) = (c.reference.clone(), c.account.clone());
                    match mapper.confirmation(c) {
                        Ok(()) => loaded += 1,
                        Err(e) => rejected.push(RejectedStatement {
                            document: e.document,
                            index,
                            reference,
                            account,
                            line: e.line,
                            field: e.field,
                            reason: e.reason,
                        }),
                    }
                    Ok(())
                }),
            );
            read?;
            if count == 0 {
                return empty_or_nothing_found(format, &names, &texts);
            }
            if loaded == 0 {
                return Err(rejected.swap_remove(0).into());
            }
            mapper.batch.rejected = rejected;
            mapper.batch
        }
        Family::Securities => {
            let mut mapper = custody::CustodyMapper::new(format, custodian, &names);
            let (mut count, mut loaded) = (0usize, 0usize);
            let mut rejected = Vec::new();
            let mut per_document = vec![0u32; names.len()];
            let read = read_securities(format, &texts, &names, &mut notes, |st| {
                count += 1;
                let index = per_document.get_mut(st.at.part).map_or(0, |n| {
                    *n += 1;
                    *n
                });
                let reference = st.reference.clone();
                let account = st.account.as_ref().map(|(a, _)| a.clone());
                // A message that cannot be mapped is taken back whole and listed; the other
                // messages of the file load.
                match mapper.statement_or_nothing(st) {
                    Ok(()) => loaded += 1,
                    Err(e) => rejected.push(RejectedStatement {
                        document: e.document,
                        index,
                        reference,
                        account,
                        line: e.line,
                        field: e.field,
                        reason: e.reason,
                    }),
                }
                Ok(())
            });
            read?;
            if count == 0 {
                return empty_or_nothing_found(format, &names, &texts);
            }
            if loaded == 0 {
                return Err(rejected.swap_remove(0).into());
            }
            mapper.batch.rejected = rejected;
            mapper.batch
        }
    };
    batch.warnings.splice(0..0, notes);
    for ((name, _), (_, encoding)) in pages.iter().zip(&texts) {
        if !matches!(encoding, Encoding::Utf8) {
            batch.warnings.insert(
                0,
                ParseWarning {
                    document: (*name).to_owned(),
                    line: None,
                    field: None,
                    message: format!("the file is not UTF-8: read as {}", encoding.as_str()),
                },
            );
        }
    }
    batch.dedup_securities();
    Ok(batch)
}

/// Reads the MT940/MT942/MT950 statements of one file, values as written (no validation
/// against ISO code lists, no mandatory-field checks beyond the syntax).
pub fn read_cash_statements(
    document: &str,
    bytes: &[u8],
) -> Result<Vec<CashStatement>, ParseError> {
    let names = [document];
    // Values as written: the dialect notes are the mapped batch's business.
    let mut notes = Vec::new();
    let texts = decode_pages(&[(document, bytes)], &mut notes);
    let mut out = Vec::new();
    read_cash(&texts, &names, &mut notes, |st| {
        out.push(st);
        Ok(())
    })?;
    Ok(out)
}

/// Reads the MT535 (`format` Mt535) or MT536 statements of one file, values as written.
pub fn read_securities_statements(
    format: SourceFormat,
    document: &str,
    bytes: &[u8],
) -> Result<Vec<SecuritiesStatement>, ParseError> {
    let names = [document];
    let mut notes = Vec::new();
    let texts = decode_pages(&[(document, bytes)], &mut notes);
    let mut out = Vec::new();
    read_securities(format, &texts, &names, &mut notes, |st| {
        out.push(st);
        Ok(())
    })?;
    Ok(out)
}

/// The MT types this crate reads (any other type in block 2 is read by its fields).
pub(crate) fn is_known_type(mt: u16) -> bool {
    matches!(mt, 900 | 910 | 940 | 941 | 942 | 950 | 535 | 536)
}

/// Recognises a SWIFT FIN message and its MT type: by the envelope's block 2 when it names a
/// type this crate reads, else (no envelope, or a type it does not know, such as a bank's
/// MT970 label on an MT940) by the tags the file uses.
pub fn detect(bytes: &[u8]) -> Option<SourceFormat> {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    let (text, _) = text::decode(head);
    let block2 = text.find("{2:").or_else(|| text.find("ä2:").map(|i| i + 1));
    if let Some(i) = block2
        && let Some(t) = text.get(i + 4..i + 7)
    {
        match t {
            "940" => return Some(SourceFormat::Mt940),
            "941" => return Some(SourceFormat::Mt941),
            "942" => return Some(SourceFormat::Mt942),
            "950" => return Some(SourceFormat::Mt950),
            "900" => return Some(SourceFormat::Mt900),
            "910" => return Some(SourceFormat::Mt910),
            "535" => return Some(SourceFormat::Mt535),
            "536" => return Some(SourceFormat::Mt536),
            _ => {}
        }
    }
    let has = |tag: &str| {
        text.match_indices(tag)
            .any(|(i, _)| i == 0 || matches!(text.as_bytes()[i - 1], b'\n' | b'\r' | b'\x01'))
    };
    if has(":16R:") {
        if has(":16R:TRAN") || has(":36B:") {
            return Some(SourceFormat::Mt536);
        }
        if has(":93B:") || has(":16R:FIN") || has(":22F::CODE") {
            return Some(SourceFormat::Mt535);
        }
        return None;
    }
    let opening = has(":60F:") || has(":60M:");
    // A balance report: a date and time, a booked balance and no entries.
    if has(":13D:") && has(":62F:") && !has(":61:") && !has(":34F:") {
        return Some(SourceFormat::Mt941);
    }
    if (has(":34F:") || has(":13D:")) && !opening {
        return Some(SourceFormat::Mt942);
    }
    if has(":25:") && (opening || has(":61:")) {
        return Some(SourceFormat::Mt940);
    }
    None
}

fn family(format: SourceFormat, names: &[&str]) -> Result<Family, ParseError> {
    match format {
        SourceFormat::Mt940 | SourceFormat::Mt941 | SourceFormat::Mt942 | SourceFormat::Mt950 => {
            Ok(Family::Cash)
        }
        SourceFormat::Mt900 | SourceFormat::Mt910 => Ok(Family::Confirmation),
        SourceFormat::Mt535 | SourceFormat::Mt536 => Ok(Family::Securities),
        other => Err(ParseError::field(
            names.first().copied().unwrap_or_default(),
            "format",
            format!("{} is not a SWIFT FIN format", other.as_str()),
        )),
    }
}

/// Decodes each page and removes its control characters (see `crate::control_characters`),
/// with one warning per page that had any.
fn decode_pages<'a>(
    pages: &[(&str, &'a [u8])],
    warnings: &mut Vec<ParseWarning>,
) -> Vec<(std::borrow::Cow<'a, str>, Encoding)> {
    pages
        .iter()
        .map(|(name, bytes)| {
            let (text, encoding) = text::decode(bytes);
            (without_control_characters(name, text, warnings), encoding)
        })
        .collect()
}

/// SOH and ETX stay: the tokenizer reads them as framing.
fn without_control_characters<'a>(
    name: &str,
    text: std::borrow::Cow<'a, str>,
    warnings: &mut Vec<ParseWarning>,
) -> std::borrow::Cow<'a, str> {
    const FRAMING: &[u8] = &[0x01, 0x03];
    if !crate::control_characters::any(text.as_bytes(), FRAMING) {
        return text;
    }
    let mut lines = Vec::new();
    let mut count = 0;
    let mut out = String::with_capacity(text.len());
    for line in text::Lines::new(&text) {
        let (kept, removed) = crate::control_characters::remove(line.text, FRAMING);
        if removed > 0 {
            count += removed;
            lines.push(line.number);
        }
        out.push_str(&kept);
        // The line break as written (CRLF, LF or CR), so line numbers stay.
        match text.as_bytes().get(line.end..line.end + 2) {
            Some(b"\r\n") => out.push_str("\r\n"),
            _ => match text.as_bytes().get(line.end) {
                Some(b'\r') => out.push('\r'),
                Some(b'\n') => out.push('\n'),
                _ => {}
            },
        }
    }
    warnings.push(ParseWarning {
        document: name.to_owned(),
        line: lines.first().copied(),
        field: None,
        message: crate::control_characters::message(count, &lines),
    });
    std::borrow::Cow::Owned(out)
}

fn read_cash(
    texts: &[(std::borrow::Cow<'_, str>, Encoding)],
    names: &[&str],
    notes: &mut Vec<ParseWarning>,
    done: impl FnMut(CashStatement) -> Result<(), ReadError>,
) -> Result<(), ParseError> {
    let mut reader = CashReader::new(done);
    for (part, (text, _)) in texts.iter().enumerate() {
        fin::tokenize(text, part, Family::Cash, |e| match e {
            fin::Event::Note(n) => {
                notes.push(dialect_warning(names, &n));
                Ok(())
            }
            e => reader.event(e),
        })
        .map_err(|e| located(names, e))?;
    }
    reader.close().map_err(|e| located(names, e))?;
    Ok(())
}

fn read_securities(
    format: SourceFormat,
    texts: &[(std::borrow::Cow<'_, str>, Encoding)],
    names: &[&str],
    notes: &mut Vec<ParseWarning>,
    done: impl FnMut(SecuritiesStatement) -> Result<(), ReadError>,
) -> Result<(), ParseError> {
    let mut reader = SecuritiesReader::new(format == SourceFormat::Mt536, done);
    for (part, (text, _)) in texts.iter().enumerate() {
        fin::tokenize(text, part, Family::Securities, |e| match e {
            fin::Event::Note(n) => {
                notes.push(dialect_warning(names, &n));
                Ok(())
            }
            e => reader.event(e),
        })
        .map_err(|e| located(names, e))?;
    }
    reader.close().map_err(|e| located(names, e))?;
    Ok(())
}

/// Reads the MT900/MT910 confirmations of the documents.
fn read_confirmations<F>(
    family: Family,
    texts: &[(std::borrow::Cow<'_, str>, Encoding)],
    names: &[&str],
    notes: &mut Vec<ParseWarning>,
    mut reader: confirmation::ConfirmationReader<F>,
) -> Result<(), ParseError>
where
    F: FnMut(confirmation::Confirmation) -> Result<(), ReadError>,
{
    for (part, (text, _)) in texts.iter().enumerate() {
        fin::tokenize(text, part, family, |e| match e {
            fin::Event::Note(n) => {
                notes.push(dialect_warning(names, &n));
                Ok(())
            }
            e => reader.event(e),
        })
        .map_err(|e| located(names, e))?;
    }
    reader.close().map_err(|e| located(names, e))?;
    Ok(())
}

fn dialect_warning(names: &[&str], n: &fin::Note<'_>) -> ParseWarning {
    ParseWarning {
        document: names.get(n.part).copied().unwrap_or_default().to_owned(),
        line: Some(n.line),
        field: None,
        message: n.message(),
    }
}

fn located(names: &[&str], e: ReadError) -> ParseError {
    ParseError {
        document: names.get(e.at.part).copied().unwrap_or_default().to_owned(),
        line: Some(e.at.line),
        column: None,
        field: Some(format!(":{}:", e.tag)),
        reason: e.reason,
    }
}

/// An empty file (a bank with nothing to report) is an empty batch with a warning; a file
/// with text but no SWIFT field is an error.
fn empty_or_nothing_found(
    format: SourceFormat,
    names: &[&str],
    texts: &[(std::borrow::Cow<'_, str>, Encoding)],
) -> Result<Batch, ParseError> {
    let blank = |t: &str| {
        t.chars()
            .all(|c| c.is_whitespace() || c == '\x01' || c == '\x03')
    };
    if !texts.iter().all(|(t, _)| blank(t)) {
        return Err(ParseError::field(
            names.first().copied().unwrap_or_default(),
            "file",
            format!(
                "no {} message found: the file holds no SWIFT field (:20:, :16R: ...)",
                format.as_str()
            ),
        ));
    }
    let mut batch = Batch::default();
    for name in names {
        batch.warnings.push(ParseWarning {
            document: (*name).to_owned(),
            line: None,
            field: None,
            message: "the file is empty: no statement in it".to_owned(),
        });
    }
    Ok(batch)
}
