//! ISO 20022 statements: camt.052, camt.053, camt.054 (cash) and semt.002 (holdings).
//!
//! Two entry points over one reader. [`read_records`] is the streaming API: it pulls XML
//! events from any [`BufRead`] and hands each canonical record to a callback the moment its
//! element closes, so a 100 MB camt.053 is read in constant memory (no DOM, no list of
//! entries). [`parse`] is that same reader over a byte slice, collecting into a [`Batch`], or
//! fails with a located [`ParseError`] (line, column, and an element path such as
//! `Stmt[2]/Ntry[5]/Amt`).
//!
//! A camt message of several statements (`Stmt`, `Rpt`, `Ntfctn`) is not all or nothing, as
//! an MT940 file is not: a statement that cannot be read (a value that does not parse, no
//! account, a camt.053 statement without closing balance, the file ending inside it) is left
//! out and listed in `Batch::rejected` (document, statement index, `Id`, account, line, field,
//! reason), which the sync turns into a break, while the others load. A message none of whose
//! statements reads, or holding none, is an error; so is an error outside any statement (the
//! group header) or XML that breaks down before the end of the file, since what follows it
//! cannot be read. semt.002 holds one statement: it parses whole or fails.
//!
//! Versions: the readers match elements by name and path, not by schema, so the message
//! versions `.001.02` to `.001.13` read alike, and `.001.01` (2008) with its few differences
//! accepted where they stand: roots named with their version (`BkToCstmrAcctRptV01`), other
//! account ids as `PrtryAcct`/`BBAN`/`UPIC`, balance types without `CdOrPrtry`, `TxDtls`
//! directly in the entry. Of the later changes, the camt `.08` ones (`Sts/Cd` and `Pty`
//! levels) are accepted beside the older forms; semt.002 `.02` and `.03`+ layouts both. The message type is
//! taken from the root element (`BkToCstmrStmt`, `BkToCstmrAcctRpt`, `BkToCstmrDbtCdtNtfctn`,
//! `SctiesBalCtdyRpt`/`CtdyStmtOfHldgsV02`) wherever it sits: alone, under a business
//! application header envelope (`AppHdr` + `Document`), or several in one file.
//!
//! Input: UTF-8 with or without BOM, ISO-8859-1 or windows-1252 declared in the XML
//! declaration, UTF-16 with or without BOM (read, and recognised by [`detect`]), any namespace
//! prefix, CRLF or LF. See `camt` and `semt` for the mapping rules.

mod camt;
mod currency_exchange;
mod input;
mod semt;
mod value;
mod xml;

use std::io::BufRead;

use crate::error::ParseError;
use crate::model::{
    Account, Batch, CashBalance, CompleteSnapshot, ParseWarning, Position, RejectedStatement,
    Security, SourceFormat, StatedRate, StatementSummary, Transaction,
};

/// One canonical record read from an ISO 20022 document, in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Account(Account),
    /// A security, fully described (semt.002) or only referenced (a camt entry's `FinInstrmId`).
    Security(Security),
    Position(Position),
    Balance(CashBalance),
    /// A cash entry: the canonical transaction and the ISO references it has no field for.
    Entry(Box<CashEntry>),
    /// A statement's (or report's, or notification's) own totals, after its entries.
    Statement(StatementSummary),
    /// A complete holdings statement's snapshot, after its positions (never for a delta).
    CompleteSnapshot(CompleteSnapshot),
    /// An exchange rate the document states (camt `CcyXchg`, semt.002 `FXDtls`), each
    /// distinct rate once per document.
    Rate(StatedRate),
    Warning(ParseWarning),
    /// A camt statement left out: the records other than warnings delivered since the
    /// previous statement's end (its `Statement` or `Rejected` record) are this statement's,
    /// and void. Its warnings stand: they describe the file as it was read.
    Rejected(RejectedStatement),
}

/// A camt entry as the canonical model stores it, plus its payment references.
#[derive(Debug, Clone, PartialEq)]
pub struct CashEntry {
    pub transaction: Transaction,
    pub references: EntryReferences,
}

/// The references of a camt entry beyond the bank's own (`AcctSvcrRef`, which is the
/// transaction's `bank_reference`). Per-payment references are those of the entry's only
/// `TxDtls`; a batch (several `TxDtls`) has none of them, only its `transaction_count`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryReferences {
    /// `NtryRef`: the bank's reference of the entry within the statement.
    pub entry_reference: Option<String>,
    /// `Refs/AcctSvcrRef` of the only `TxDtls`.
    pub servicer_reference: Option<String>,
    pub end_to_end_id: Option<String>,
    pub instruction_id: Option<String>,
    pub transaction_id: Option<String>,
    pub uetr: Option<String>,
    pub mandate_id: Option<String>,
    pub cheque_number: Option<String>,
    pub payment_information_id: Option<String>,
    pub message_id: Option<String>,
    /// Structured creditor reference (`RmtInf/Strd/CdtrRefInf/Ref`, e.g. a QR/ESR reference).
    pub creditor_reference: Option<String>,
    /// The counterparty's account (IBAN or other id) on the side of the original movement.
    pub counterparty_account: Option<String>,
    /// Number of `TxDtls` of the entry: more than one is a batch.
    pub transaction_count: u32,
}

/// Parses an ISO 20022 XML file of the given message type into one batch.
///
/// `custodian` scopes securities without ISIN; `document` names the file in errors and
/// provenance. A camt file listed as another camt message (a camt.054 delivered as camt.053)
/// is read as what its root element says, with a warning; camt and semt are not exchangeable.
pub fn parse(
    format: SourceFormat,
    custodian: &str,
    document: &str,
    bytes: &[u8],
) -> Result<Batch, ParseError> {
    let mut batch = Batch::default();
    let mut accounts = std::collections::HashSet::new();
    // Where the statement being read began: a statement left out is cut back to it.
    let mut start = Mark::of(&batch);
    read_records(format, custodian, document, bytes, |record| match record {
        // The stream names an account once per statement; the batch keeps one record.
        Record::Account(a) => {
            if accounts.insert(a.bank_account_id.clone()) {
                batch.accounts.push(a);
            }
        }
        Record::Statement(s) => {
            batch.statements.push(s);
            start = Mark::of(&batch);
        }
        Record::Rejected(r) => {
            for a in batch.accounts.drain(start.accounts..) {
                accounts.remove(&a.bank_account_id);
            }
            batch.securities.truncate(start.securities);
            batch.balances.truncate(start.balances);
            batch.transactions.truncate(start.transactions);
            batch.rates.truncate(start.rates);
            batch.rejected.push(r);
            start = Mark::of(&batch);
        }
        other => collect(&mut batch, other),
    })?;
    batch.dedup_securities();
    Ok(batch)
}

/// How many records of each kind a camt statement can give a batch held when it began.
struct Mark {
    accounts: usize,
    securities: usize,
    balances: usize,
    transactions: usize,
    rates: usize,
}

impl Mark {
    fn of(batch: &Batch) -> Mark {
        Mark {
            accounts: batch.accounts.len(),
            securities: batch.securities.len(),
            balances: batch.balances.len(),
            transactions: batch.transactions.len(),
            rates: batch.rates.len(),
        }
    }
}

/// Streams the records of an ISO 20022 document to `on_record`, in constant memory.
///
/// Records arrive as their elements close: a statement's account and balances, then each entry,
/// then its summary; a holdings statement's securities and positions, then its account and
/// snapshot. An account is named once per statement (a file with several statements of one
/// account names it several times: loading is idempotent, [`parse`] keeps one). A camt
/// statement left out ends with [`Record::Rejected`] instead of its summary: its records are
/// void. On error, the records already delivered belong to a file that failed: a caller
/// that loads them must discard them (as [`parse`] does by returning no batch).
pub fn read_records<R: BufRead>(
    format: SourceFormat,
    custodian: &str,
    document: &str,
    reader: R,
    on_record: impl FnMut(Record),
) -> Result<(), ParseError> {
    match format {
        SourceFormat::Camt052 | SourceFormat::Camt053 | SourceFormat::Camt054 => {
            let mut camt = camt::CamtReader::new(format, custodian, document, on_record);
            xml::drive(document, reader, &mut camt)?;
            camt.finish()
        }
        SourceFormat::Semt002 => {
            let mut semt = semt::SemtReader::new(custodian, document, on_record);
            xml::drive(document, reader, &mut semt)?;
            semt.finish()
        }
        other => Err(ParseError::field(
            document,
            "format",
            format!("{} is not an ISO 20022 format", other.as_str()),
        )),
    }
}

/// Adds one streamed record to a batch.
fn collect(batch: &mut Batch, record: Record) {
    match record {
        Record::Account(a) => batch.accounts.push(a),
        Record::Security(s) => batch.securities.push(s),
        Record::Position(p) => batch.positions.push(p),
        Record::Balance(b) => batch.balances.push(b),
        Record::Entry(e) => batch.transactions.push(e.transaction),
        Record::Statement(s) => batch.statements.push(s),
        Record::CompleteSnapshot(c) => batch.complete_snapshots.push(c),
        Record::Rate(r) => batch.rates.push(r),
        Record::Warning(w) => batch.warnings.push(w),
        Record::Rejected(r) => batch.rejected.push(r),
    }
}

/// How far into a file [`detect`] looks for the message: an application header before the
/// document is a few kilobytes.
const DETECT_WINDOW: usize = 64 * 1024;

/// Recognises an ISO 20022 document and its message type from its namespace
/// (`urn:iso:std:iso:20022:tech:xsd:camt.053.001.08`), or from its message root element when
/// it declares no namespace. `None` for anything else.
pub fn detect(bytes: &[u8]) -> Option<SourceFormat> {
    let head = &bytes[..bytes.len().min(DETECT_WINDOW)];
    // UTF-16 (with or without byte order mark): look at the same text as UTF-8.
    if let Some((encoding, bom)) = input::utf16(head) {
        let units = head[bom..].chunks_exact(2).map(|p| match encoding {
            input::Encoding::Utf16Be => u16::from_be_bytes([p[0], p[1]]),
            _ => u16::from_le_bytes([p[0], p[1]]),
        });
        let text: String = char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        return detect_utf8(text.as_bytes());
    }
    detect_utf8(head)
}

/// [`detect`] over UTF-8 (or single-byte) text.
fn detect_utf8(head: &[u8]) -> Option<SourceFormat> {
    const URN: &[u8] = b"urn:iso:std:iso:20022:tech:xsd:";
    for at in memchr::memmem::find_iter(head, URN) {
        let rest = &head[at + URN.len()..];
        let message = |name: &[u8]| rest.starts_with(name) && rest.get(name.len()) == Some(&b'.');
        if message(b"camt.052") {
            return Some(SourceFormat::Camt052);
        }
        if message(b"camt.053") {
            return Some(SourceFormat::Camt053);
        }
        if message(b"camt.054") {
            return Some(SourceFormat::Camt054);
        }
        if message(b"semt.002") {
            return Some(SourceFormat::Semt002);
        }
    }
    let roots: [(&[u8], SourceFormat); 8] = [
        (b"BkToCstmrAcctRpt>", SourceFormat::Camt052),
        (b"BkToCstmrStmt>", SourceFormat::Camt053),
        (b"BkToCstmrDbtCdtNtfctn>", SourceFormat::Camt054),
        (b"BkToCstmrAcctRptV01>", SourceFormat::Camt052),
        (b"BkToCstmrStmtV01>", SourceFormat::Camt053),
        (b"BkToCstmrDbtCdtNtfctnV01>", SourceFormat::Camt054),
        (b"SctiesBalCtdyRpt>", SourceFormat::Semt002),
        (b"CtdyStmtOfHldgsV02>", SourceFormat::Semt002),
    ];
    roots
        .into_iter()
        .find(|(root, _)| memchr::memmem::find(head, root).is_some())
        .map(|(_, format)| format)
}

#[cfg(test)]
mod rate_tests;
#[cfg(test)]
mod tests;
