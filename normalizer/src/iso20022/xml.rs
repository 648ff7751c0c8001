//! The pull loop shared by the camt and semt readers: quick-xml events turned into a path of
//! known element names, and leaf text handed over only when asked for.
//!
//! Why a path of small tags rather than a DOM or serde structs: a 100 MB camt.053 must be read
//! in constant memory, and the schemas differ between message versions (`Sts` holds the code in
//! .02 to .07 and wraps it in `Sts/Cd` from .08 on; parties gained a `Pty` level; charges changed
//! shape). Matching each leaf by the tail of its path (`[.., Ntry, Sts, Cd]`) reads every version
//! with one set of rules, ignores what we do not use (addresses, agents, application headers) at
//! the cost of tokenizing it, and allocates nothing per element: the path is a `Vec<Tag>` of
//! bytes, and the text of a leaf is kept as raw bytes until a rule decodes it.
//!
//! Namespace prefixes are dropped (`camt:Ntry` is `Ntry`): the message type is recognised from
//! the root element and checked against the namespace once. Every element the readers do not
//! name maps to [`Tag::Other`].

use std::borrow::Cow;
use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};

use super::input::{Input, InputError};
use crate::error::ParseError;

/// Nesting deeper than this is refused: no ISO 20022 message comes close, and the path must not
/// grow without bound on hostile input.
const MAX_DEPTH: usize = 128;

/// The text of one element is capped: the longest free-text field of these messages is a few
/// hundred characters, and a hostile file must not make one text buffer grow with the file.
const MAX_TEXT: usize = 64 * 1024;

macro_rules! tags {
    ($($name:ident),* $(,)?) => {
        /// Element local names the readers know; everything else is `Other`.
        #[allow(clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub(crate) enum Tag {
            Other,
            $($name,)*
        }

        impl Tag {
            /// The tag of an element's local name. Every element of a file goes through here:
            /// a `match` on the name compiles to a dispatch on its length and bytes, measurably
            /// faster than a table lookup.
            fn from_local_name(name: &[u8]) -> Tag {
                let Ok(name) = std::str::from_utf8(name) else {
                    return Tag::Other;
                };
                match name {
                    $(stringify!($name) => Tag::$name,)*
                    _ => Tag::Other,
                }
            }
        }
    };
}

tags! {
    // Envelope and message roots.
    Document, BkToCstmrStmt, BkToCstmrAcctRpt, BkToCstmrDbtCdtNtfctn, SctiesBalCtdyRpt,
    // The `.001.01` roots, which carried the version in their name.
    BkToCstmrStmtV01, BkToCstmrAcctRptV01, BkToCstmrDbtCdtNtfctnV01,
    CtdyStmtOfHldgsV02, CtdyStmtOfHldgs, GrpHdr, Stmt, Rpt, Ntfctn,
    // Shared building blocks.
    Id, IBAN, Othr, PrtryAcct, BBAN, UPIC, Ccy, Amt, CdtDbtInd, Dt, DtTm, Cd, Prtry, Tp, SubTp, CdOrPrtry, Nm, Pty,
    CreDtTm, MsgPgntn, PgNb, LastPgInd, StmtPgntn, RptPgntn, NtfctnPgntn, Pgntn,
    // camt statement level.
    ElctrncSeqNb, LglSeqNb, FrToDt, FrDtTm, ToDtTm, Acct, Bal,
    // camt entries.
    Ntry, NtryRef, RvslInd, Sts, BookgDt, ValDt, AcctSvcrRef, BkTxCd, Domn, Fmly, SubFmlyCd,
    NtryDtls, TxDtls, Refs, EndToEndId, InstrId, TxId, UETR, MsgId, PmtInfId, MndtId, ChqNb,
    AmtDtls, TxAmt, InstdAmt, Chrgs, TtlChrgsAndTaxAmt, Rcrd, RltdPties, Dbtr, Cdtr, UltmtDbtr,
    UltmtCdtr, DbtrAcct, CdtrAcct, RmtInf, Ustrd, Strd, CdtrRefInf, Ref, AddtlTxInf,
    AddtlNtryInf, FinInstrmId, ISIN, OthrId, Desc, Btch, RltdDts, IntrBkSttlmDt, TradDt,
    RltdQties, OrgnlAndCurFace, RltdPric, DealPric, Yldd, ValTp,
    // Amount details and their currency exchanges (camt), foreign exchange details (semt).
    CntrValAmt, AnncdPstngAmt, PrpsdAmt, PrtryAmt, CcyXchg, SrcCcy, TrgtCcy, UnitCcy, QtdCcy,
    XchgRate, QtnDt, FXDtls, FrgnXchgDtls,
    // semt.002.
    StmtGnlDtls, StmtId, StmtDtTm, UpdTp, StmtUpdTpAsCd, ActvtyInd, SfkpgAcct, AcctDtls,
    SubAcctDtls, BalForAcct, BalForSubAcct, FinInstrmDtls, FinInstrmAttrbts, DnmtnCcy,
    ClssfctnTp, ClssfctnFinInstrm, AggtBal, AggtQty, Qty, Unit, FaceAmt, AmtsdVal, ShrtLngInd,
    PricDtls, Val, Rate, AcctBaseCcyAmts, InstrmCcyAmts, AltrnRptgCcyAmts, HldgVal, BookVal,
    AcrdIntrstAmt, Sgn, Vlrn, Wrtppr, CUSIP, OthrPrtryId, TtlVals, TtlHldgsValOfStmt,
    AcctBaseCcyTtlAmts, AvlblBal, NotAvlblBal, BalBrkdwn, AddtlBalBrkdwn, BalAtSfkpgPlc,
    QtyBrkdwn, SubBal,
}

/// The raw (still escaped) text of a leaf element.
pub(crate) struct RawText<'a> {
    bytes: &'a [u8],
    truncated: bool,
}

impl<'a> RawText<'a> {
    /// The text, unescaped and trimmed; an error reason when it is not valid UTF-8 or carries
    /// an unknown entity.
    pub(crate) fn decode(&self) -> Result<Cow<'a, str>, String> {
        if self.truncated {
            return Err(format!("text longer than {MAX_TEXT} bytes"));
        }
        let s = std::str::from_utf8(self.bytes)
            .map_err(|e| format!("text is not valid UTF-8 ({e})"))?;
        let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
        if !s.contains('&') {
            return Ok(Cow::Borrowed(s));
        }
        quick_xml::escape::unescape(s)
            .map(|c| Cow::Owned(c.trim().to_owned()))
            .map_err(|e| format!("text has a bad character reference ({e})"))
    }

    /// True when the element has no text.
    pub(crate) fn is_blank(&self) -> bool {
        self.bytes.iter().all(u8::is_ascii_whitespace)
    }

    /// The text of a leaf as a test writes it.
    #[cfg(test)]
    pub(crate) fn for_test(bytes: &'a [u8]) -> Self {
        RawText {
            bytes,
            truncated: false,
        }
    }
}

/// Where an event happened: the line and column (of UTF-8 bytes) just past it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// What a message reader does with the elements of a document.
pub(crate) trait Handler {
    /// An element opened `at`; `path` ends with its tag.
    fn start(&mut self, path: &[Tag], element: &BytesStart<'_>, at: At) -> Result<(), ParseError>;
    /// An element closed `at`; `path` still ends with its tag, `text` is what it held
    /// directly.
    fn end(&mut self, path: &[Tag], text: RawText<'_>, at: At) -> Result<(), ParseError>;
    /// `count` control characters were removed from the text of the element that closes on
    /// `line` (see `crate::control_characters`), before [`Handler::end`] sees it.
    fn removed_control_characters(&mut self, path: &[Tag], count: usize, line: usize);
    /// The input ended inside an open element (`open`, the path of open elements): the file
    /// is cut short. `error` says where; returning it refuses the file (the default), and a
    /// reader that can keep what it read before (the complete statements) returns `Ok`.
    fn cut_short(&mut self, open: &[Tag], error: ParseError) -> Result<(), ParseError> {
        let _ = open;
        Err(error)
    }
}

/// The `Ccy` attribute of an amount element, as written.
pub(crate) fn currency_attribute(element: &BytesStart<'_>) -> Result<Option<String>, String> {
    for attr in element.attributes().with_checks(false) {
        let attr = attr.map_err(|e| format!("malformed attribute ({e})"))?;
        if attr.key.local_name().as_ref() == b"Ccy" {
            let value = std::str::from_utf8(&attr.value)
                .map_err(|_| "the Ccy attribute is not valid UTF-8".to_owned())?;
            return Ok(Some(value.trim().to_owned()));
        }
    }
    Ok(None)
}

/// Reads `input` to the end, feeding `handler`. Errors carry the line and column reached.
pub(crate) fn drive<R: BufRead, H: Handler>(
    document: &str,
    input: R,
    handler: &mut H,
) -> Result<(), ParseError> {
    let input = Input::new(input).map_err(|e| match e {
        InputError::Io(e) => located(document, 1, 1, None, format!("cannot read the file: {e}")),
        InputError::Unsupported(reason) => located(document, 1, 1, None, reason),
    })?;
    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut path: Vec<Tag> = Vec::with_capacity(32);
    let mut text: Vec<u8> = Vec::with_capacity(256);
    let mut truncated = false;
    loop {
        buf.clear();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(e) => {
                let input = reader.get_mut();
                let error = located(
                    document,
                    input.line(),
                    input.column(),
                    None,
                    format!("malformed XML: {e}"),
                );
                // A file cut in the middle of a tag ends in a syntax error with nothing left to
                // read: that is a truncation, like one cut between tags.
                let at_end = !path.is_empty()
                    && reader
                        .get_mut()
                        .fill_buf()
                        .is_ok_and(|rest| rest.is_empty());
                return if at_end {
                    handler.cut_short(&path, error)
                } else {
                    Err(error)
                };
            }
        };
        let outcome = match event {
            Event::Start(ref e) => {
                text.clear();
                truncated = false;
                let at = position(reader.get_mut());
                push(&mut path, e).and_then(|()| handler.start(&path, e, at))
            }
            Event::Empty(ref e) => {
                let at = position(reader.get_mut());
                let r = push(&mut path, e).and_then(|()| {
                    handler.start(&path, e, at)?;
                    let r = handler.end(
                        &path,
                        RawText {
                            bytes: &[],
                            truncated: false,
                        },
                        at,
                    );
                    path.pop();
                    r
                });
                text.clear();
                r
            }
            Event::End(_) => {
                if reader.get_ref().saw_control() && crate::control_characters::any(&text, &[]) {
                    let before = text.len();
                    text.retain(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r'));
                    let line = reader.get_mut().line();
                    handler.removed_control_characters(&path, before - text.len(), line);
                }
                let r = handler.end(
                    &path,
                    RawText {
                        bytes: &text,
                        truncated,
                    },
                    position(reader.get_mut()),
                );
                path.pop();
                text.clear();
                truncated = false;
                r
            }
            Event::Text(ref t) => {
                append(&mut text, &mut truncated, t);
                Ok(())
            }
            Event::CData(ref c) => {
                // CDATA is literal: escape its ampersands so the later unescape restores them.
                for &b in c.iter() {
                    if b == b'&' {
                        append(&mut text, &mut truncated, b"&amp;");
                    } else {
                        append(&mut text, &mut truncated, &[b]);
                    }
                }
                Ok(())
            }
            Event::Eof => {
                if let Some(open) = path.last() {
                    let input = reader.get_mut();
                    let error = located(
                        document,
                        input.line(),
                        input.column(),
                        None,
                        format!("the file ends inside an open element ({open:?}): it is truncated"),
                    );
                    return handler.cut_short(&path, error);
                }
                return Ok(());
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => Ok(()),
        };
        if let Err(mut e) = outcome {
            let input = reader.get_mut();
            if e.line.is_none() {
                e.line = Some(input.line());
                e.column = Some(input.column());
            }
            if e.document.is_empty() {
                document.clone_into(&mut e.document);
            }
            return Err(e);
        }
    }

    fn position<R: BufRead>(input: &mut Input<R>) -> At {
        At {
            line: input.line(),
            column: input.column(),
        }
    }

    fn push(path: &mut Vec<Tag>, e: &BytesStart<'_>) -> Result<(), ParseError> {
        if path.len() >= MAX_DEPTH {
            return Err(ParseError {
                document: String::new(),
                line: None,
                column: None,
                field: None,
                reason: format!("elements nest deeper than {MAX_DEPTH} levels"),
            });
        }
        path.push(Tag::from_local_name(e.local_name().as_ref()));
        Ok(())
    }

    fn append(text: &mut Vec<u8>, truncated: &mut bool, bytes: &[u8]) {
        if text.len() + bytes.len() > MAX_TEXT {
            *truncated = true;
        } else {
            text.extend_from_slice(bytes);
        }
    }
}

fn located(
    document: &str,
    line: usize,
    column: usize,
    field: Option<String>,
    reason: String,
) -> ParseError {
    ParseError {
        document: document.to_owned(),
        line: Some(line),
        column: Some(column),
        field,
        reason,
    }
}
