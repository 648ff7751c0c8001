//! The streaming read of SWIFT cash files: records handed over statement by statement, in
//! memory that does not grow with the file.
//!
//! [`crate::swift::parse`] takes the file's bytes and returns one [`Batch`](crate::model::Batch):
//! right for the sync pipeline, which loads a batch in one transaction, but a 100 MB MT940
//! then sits in memory twice (bytes and records). [`read_records`] reads the file from a
//! reader instead, in two passes:
//!
//! 1. the bytes are counted to choose the encoding as [`text::decode`] would for the whole
//!    file ([`text::EncodingProbe`]);
//! 2. the file is cut into pieces of about [`PIECE`] bytes, each ending just before a line
//!    that starts a message (an envelope header `{1:`, or `:20:` in a file without
//!    envelopes), so no field and no envelope spans two pieces; each piece is decoded,
//!    cleaned of control characters, tokenized with the state the previous piece left
//!    ([`fin::TokenizerState`]) and mapped, and each statement's records go to the callback as
//!    soon as the statement ends.
//!
//! The records are those of [`crate::swift::parse`] on the same file, statement by statement
//! (a statement's accounts, balances, transactions, summary and warnings); the control
//! character warning comes once, at the end, as in the batch read. MT940/941/942/950 and
//! MT900/910 stream; MT535/536 statements are read whole by `parse` (their files are small,
//! and a holdings statement merges positions across its pages).

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use crate::error::ParseError;
use crate::model::{
    Account, Batch, CashBalance, ParseWarning, RejectedStatement, SourceFormat, StatementSummary,
    Transaction,
};
use crate::swift::fin::{self, Family, TokenizerState};
use crate::swift::mt94x::{CashReader, ReadError};
use crate::swift::text::{self, Encoding, EncodingProbe};
use crate::swift::{cash, confirmation};

/// About how many bytes are decoded and tokenized at a time.
pub const PIECE: usize = 1 << 20;

/// One record of a streamed read, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Account(Account),
    Balance(CashBalance),
    Transaction(Transaction),
    Statement(StatementSummary),
    Warning(ParseWarning),
    /// A statement left out while the others load (see [`RejectedStatement`]).
    Rejected(RejectedStatement),
}

/// Streams the records of a SWIFT cash or confirmation file (see the module docs). The reader
/// is read twice (it is rewound once). On error, the records already delivered belong to a
/// file that failed.
pub fn read_records<R: Read + Seek>(
    format: SourceFormat,
    document: &str,
    mut input: R,
    mut on_record: impl FnMut(Record),
) -> Result<(), ParseError> {
    let io = |e: std::io::Error| ParseError::field(document, "file", format!("cannot read: {e}"));
    let family = match format {
        SourceFormat::Mt940 | SourceFormat::Mt941 | SourceFormat::Mt942 | SourceFormat::Mt950 => {
            Family::Cash
        }
        SourceFormat::Mt900 | SourceFormat::Mt910 => Family::Confirmation,
        other => {
            return Err(ParseError::field(
                document,
                "format",
                format!(
                    "{} is not streamed: read it with swift::parse",
                    other.as_str()
                ),
            ));
        }
    };

    // Pass 1: the encoding.
    let mut probe = EncodingProbe::default();
    let mut bom = false;
    {
        let mut reader = BufReader::with_capacity(1 << 16, &mut input);
        let mut first = true;
        loop {
            let buf = reader.fill_buf().map_err(io)?;
            if buf.is_empty() {
                break;
            }
            let mut chunk = buf;
            if first {
                first = false;
                if let Some(rest) = chunk.strip_prefix(b"\xEF\xBB\xBF") {
                    bom = true;
                    chunk = rest;
                }
            }
            probe.push(chunk);
            let n = buf.len();
            reader.consume(n);
        }
    }
    let encoding = probe.finish();
    input.seek(SeekFrom::Start(0)).map_err(io)?;
    if encoding != Encoding::Utf8 {
        on_record(Record::Warning(ParseWarning {
            document: document.to_owned(),
            line: None,
            field: None,
            message: format!("the file is not UTF-8: read as {}", encoding.as_str()),
        }));
    }

    // Pass 2: pieces.
    let names = [document];
    let mut state = State {
        names: &names,
        encoding,
        family,
        tokenizer: TokenizerState::default(),
        notes: Vec::new(),
        control: (0, Vec::new()),
        blank: true,
    };
    let mut reader = BufReader::with_capacity(1 << 16, input);
    if bom {
        // The pass-1 check saw the mark in the first bytes: fill, then step over it.
        reader.fill_buf().map_err(io)?;
        reader.consume(3);
    }
    let mut piece: Vec<u8> = Vec::with_capacity(PIECE + (1 << 16));
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut enveloped = false;

    let outcome = match family {
        Family::Confirmation => {
            let mut sink = Sink::new(&mut on_record);
            let mut mapper = confirmation::ConfirmationMapper::new(format, &names);
            let mut reader_state =
                confirmation::ConfirmationReader::new(|c: confirmation::Confirmation| {
                    let (at, reference, account) = (c.at, c.reference.clone(), c.account.clone());
                    let mapped = mapper.confirmation(c);
                    sink.statement(at.part, reference, account, mapped, &mut mapper.batch);
                    Ok(())
                });
            let read = pieces(
                &mut reader,
                &mut piece,
                &mut line,
                &mut enveloped,
                |text_piece| state.feed(text_piece, |e| reader_state.event(e)),
            )
            .and_then(|()| {
                reader_state
                    .close()
                    .map(drop)
                    .map_err(|e| Failure::Parse(state.located(e)))
            });
            read.map(|()| sink.finish())
        }
        _ => {
            let mut sink = Sink::new(&mut on_record);
            let mut mapper = cash::CashMapper::new(format, &names);
            let mut cash_reader = CashReader::new(|st| {
                let (at, reference, account) = (st.at, st.reference.clone(), st.account.clone());
                let mapped = mapper.statement(st);
                sink.statement(at.part, reference, account, mapped, &mut mapper.batch);
                Ok::<(), ReadError>(())
            });
            let read = pieces(
                &mut reader,
                &mut piece,
                &mut line,
                &mut enveloped,
                |text_piece| state.feed(text_piece, |e| cash_reader.event(e)),
            )
            .and_then(|()| {
                cash_reader
                    .close()
                    .map(drop)
                    .map_err(|e| Failure::Parse(state.located(e)))
            });
            read.map(|()| sink.finish())
        }
    };
    let (count, loaded, mut rejected) = outcome.map_err(|e| match e {
        Failure::Io(e) => io(e),
        Failure::Parse(e) => e,
    })?;
    for note in state.notes.drain(..) {
        on_record(Record::Warning(note));
    }
    let (removed, lines) = std::mem::take(&mut state.control);
    if removed > 0 {
        on_record(Record::Warning(ParseWarning {
            document: document.to_owned(),
            line: lines.first().copied(),
            field: None,
            message: crate::control_characters::message(removed, &lines),
        }));
    }
    if count == 0 {
        if !state.blank {
            return Err(ParseError::field(
                document,
                "file",
                format!(
                    "no {} message found: the file holds no SWIFT field (:20:, :16R: ...)",
                    format.as_str()
                ),
            ));
        }
        on_record(Record::Warning(ParseWarning {
            document: document.to_owned(),
            line: None,
            field: None,
            message: "the file is empty: no statement in it".to_owned(),
        }));
        return Ok(());
    }
    if loaded == 0 && !rejected.is_empty() {
        return Err(rejected.swap_remove(0).into());
    }
    Ok(())
}

enum Failure {
    Io(std::io::Error),
    Parse(ParseError),
}

/// Reads lines into pieces and hands each complete piece over.
fn pieces<R: BufRead>(
    reader: &mut R,
    piece: &mut Vec<u8>,
    line: &mut Vec<u8>,
    enveloped: &mut bool,
    mut feed: impl FnMut(&[u8]) -> Result<(), ParseError>,
) -> Result<(), Failure> {
    loop {
        line.clear();
        let n = reader.read_until(b'\n', line).map_err(Failure::Io)?;
        if n == 0 {
            break;
        }
        let starts_message = {
            let t = trim_indent(line);
            let header = t.first() == Some(&b'{') || t.starts_with("ä".as_bytes());
            *enveloped |= header;
            header || (!*enveloped && t.starts_with(b":20:"))
        };
        if starts_message && piece.len() >= PIECE {
            feed(piece).map_err(Failure::Parse)?;
            piece.clear();
        }
        piece.extend_from_slice(line);
    }
    if !piece.is_empty() {
        feed(piece).map_err(Failure::Parse)?;
        piece.clear();
    }
    Ok(())
}

fn trim_indent(line: &[u8]) -> &[u8] {
    let n = line
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | 0x01))
        .count();
    &line[n..]
}

/// What the pieces share: the decoding and tokenizing state and what is said at the end.
struct State<'n> {
    names: &'n [&'n str; 1],
    encoding: Encoding,
    family: Family,
    tokenizer: TokenizerState,
    notes: Vec<ParseWarning>,
    /// Control characters removed so far, and the lines they were on.
    control: (usize, Vec<usize>),
    /// No text but white space and framing so far.
    blank: bool,
}

impl State<'_> {
    fn located(&self, e: ReadError) -> ParseError {
        ParseError {
            document: self.names[0].to_owned(),
            line: Some(e.at.line),
            column: None,
            field: Some(format!(":{}:", e.tag)),
            reason: e.reason,
        }
    }

    fn feed(
        &mut self,
        bytes: &[u8],
        mut event: impl FnMut(fin::Event<'_>) -> Result<(), ReadError>,
    ) -> Result<(), ParseError> {
        let decoded = text::decode_as(bytes, self.encoding);
        let text = self.without_control_characters(decoded);
        self.blank &= text
            .chars()
            .all(|c| c.is_whitespace() || c == '\x01' || c == '\x03');
        let names = self.names;
        let notes = &mut self.notes;
        let located = |e: ReadError| ParseError {
            document: names[0].to_owned(),
            line: Some(e.at.line),
            column: None,
            field: Some(format!(":{}:", e.tag)),
            reason: e.reason,
        };
        fin::tokenize_piece(&text, 0, self.family, &mut self.tokenizer, |e| match e {
            fin::Event::Note(n) => {
                notes.push(ParseWarning {
                    document: names[0].to_owned(),
                    line: Some(n.line),
                    field: None,
                    message: n.message(),
                });
                Ok(())
            }
            e => event(e),
        })
        .map_err(located)
    }

    fn without_control_characters<'t>(
        &mut self,
        text: std::borrow::Cow<'t, str>,
    ) -> std::borrow::Cow<'t, str> {
        const FRAMING: &[u8] = &[0x01, 0x03];
        if !crate::control_characters::any(text.as_bytes(), FRAMING) {
            return text;
        }
        let first = self.tokenizer_lines_before();
        let mut out = String::with_capacity(text.len());
        for line in text::Lines::new(&text) {
            let (kept, removed) = crate::control_characters::remove(line.text, FRAMING);
            if removed > 0 {
                self.control.0 += removed;
                self.control.1.push(first + line.number);
            }
            out.push_str(&kept);
            match text.as_bytes().get(line.end..line.end + 2) {
                Some(b"\r\n") => out.push_str("\r\n"),
                _ => match text.as_bytes().get(line.end) {
                    Some(b'\r') => out.push('\r'),
                    Some(b'\n') => out.push('\n'),
                    _ => {}
                },
            }
        }
        std::borrow::Cow::Owned(out)
    }

    fn tokenizer_lines_before(&self) -> usize {
        self.tokenizer.lines_before()
    }
}

/// Hands a mapped statement's records over, and keeps count.
struct Sink<'f, F: FnMut(Record)> {
    on_record: &'f mut F,
    count: usize,
    loaded: usize,
    /// Rejections are held until a statement loads: a file none of whose statements reads
    /// fails instead, with the first one's reason.
    held: Vec<RejectedStatement>,
    index: u32,
}

impl<'f, F: FnMut(Record)> Sink<'f, F> {
    fn new(on_record: &'f mut F) -> Self {
        Sink {
            on_record,
            count: 0,
            loaded: 0,
            held: Vec::new(),
            index: 0,
        }
    }

    fn statement(
        &mut self,
        _part: usize,
        reference: Option<String>,
        account: Option<String>,
        mapped: Result<(), ParseError>,
        batch: &mut Batch,
    ) {
        self.count += 1;
        self.index += 1;
        match mapped {
            Ok(()) => {
                self.loaded += 1;
                for r in self.held.drain(..) {
                    (self.on_record)(Record::Rejected(r));
                }
            }
            Err(e) => {
                let r = RejectedStatement {
                    document: e.document,
                    index: self.index,
                    reference,
                    account,
                    line: e.line,
                    field: e.field,
                    reason: e.reason,
                };
                if self.loaded == 0 {
                    self.held.push(r);
                } else {
                    (self.on_record)(Record::Rejected(r));
                }
            }
        }
        let on = &mut *self.on_record;
        batch
            .warnings
            .drain(..)
            .for_each(|w| on(Record::Warning(w)));
        batch
            .accounts
            .drain(..)
            .for_each(|a| on(Record::Account(a)));
        batch
            .balances
            .drain(..)
            .for_each(|b| on(Record::Balance(b)));
        batch
            .transactions
            .drain(..)
            .for_each(|t| on(Record::Transaction(t)));
        batch
            .statements
            .drain(..)
            .for_each(|s| on(Record::Statement(s)));
    }

    /// Statements read, loaded, and the rejections still held.
    fn finish(self) -> (usize, usize, Vec<RejectedStatement>) {
        (self.count, self.loaded, self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::io::Cursor;

    /// The streamed records gathered into a batch, as `parse` would give them.
    pub(crate) fn gathered(
        format: SourceFormat,
        document: &str,
        bytes: &[u8],
    ) -> Result<Batch, ParseError> {
        let mut b = Batch::default();
        read_records(format, document, Cursor::new(bytes), |r| match r {
            Record::Account(a) => b.accounts.push(a),
            Record::Balance(x) => b.balances.push(x),
            Record::Transaction(t) => b.transactions.push(t),
            Record::Statement(s) => b.statements.push(s),
            Record::Warning(w) => b.warnings.push(w),
            Record::Rejected(r) => b.rejected.push(r),
        })?;
        Ok(b)
    }

    fn assert_streams_as_parsed(format: SourceFormat, bytes: &[u8]) {
        let parsed = crate::swift::parse(format, "c", "doc", bytes);
        let streamed = gathered(format, "doc", bytes);
        match (parsed, streamed) {
            (Ok(p), Ok(s)) => {
                assert_eq!(s.accounts, p.accounts);
                assert_eq!(s.balances, p.balances);
                assert_eq!(s.transactions, p.transactions);
                assert_eq!(s.statements, p.statements);
                assert_eq!(s.rejected, p.rejected);
                let mut pw = p.warnings;
                let mut sw = s.warnings;
                let key = |w: &ParseWarning| (w.line, w.message.clone());
                pw.sort_by_key(key);
                sw.sort_by_key(key);
                assert_eq!(sw, pw);
            }
            (Err(p), Err(s)) => assert_eq!(s, p),
            (p, s) => panic!("parse {p:?} but stream {s:?}"),
        }
    }

    /// About `target` bytes of enveloped MT940 (or without envelopes), each statement
    /// balanced, with `?xx` narratives wrapped over several lines and a `-` line in one.
    fn generated(target: usize, envelope: bool) -> String {
        let mut out = String::new();
        let mut day = 0u32;
        while out.len() < target {
            day += 1;
            if envelope {
                out.push_str("{1:F01BANKDEFFAXXX0000000000}{2:O940BANKDEFFXXXXN}{4:\r\n");
            }
            let _ = write!(
                out,
                ":20:S{day}\r\n:25:DE89370400440532013000\r\n:28C:{day}/1\r\n:60F:C240101EUR1000,00\r\n"
            );
            for i in 0..30u32 {
                let _ = write!(
                    out,
                    ":61:2401010101D1,{i:02}NTRFNONREF//R{day}-{i}\r\n:86:166?00GUTSCHRIFT?20Rechnung {i}\r\n-\r\n?21Kunde Müller {day}\r\n"
                );
            }
            let total: u32 = (0..30).sum();
            let closing = 100_000 - 30 * 100 - total;
            let _ = write!(
                out,
                ":62F:C240101EUR{},{:02}\r\n{}\r\n",
                closing / 100,
                closing % 100,
                if envelope { "-}{5:}" } else { "-" }
            );
        }
        out
    }

    #[test]
    fn a_file_of_many_pieces_streams_the_records_parse_gives() {
        for envelope in [true, false] {
            let text = generated(3 * PIECE + 12_345, envelope);
            assert_streams_as_parsed(SourceFormat::Mt940, text.as_bytes());
            // In ISO-8859-1, and with a NUL on a line of the third piece.
            let latin: Vec<u8> = text
                .replacen("Kunde", "Ku\0nde", 1)
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect();
            assert_streams_as_parsed(SourceFormat::Mt940, &latin);
        }
    }

    #[test]
    fn small_files_stream_as_they_parse() {
        let cut = ":20:ONE\n:25:A1\n:28C:1\n:60F:C240101EUR1,\n:62F:C240101EUR1,\n-\n:20:TWO\n:25:A1\n:28C:2\n:60F:C240101EUR1,\n";
        assert_streams_as_parsed(SourceFormat::Mt940, cut.as_bytes());
        assert_streams_as_parsed(SourceFormat::Mt940, b"");
        assert_streams_as_parsed(SourceFormat::Mt940, b"no fields here");
        assert_streams_as_parsed(
            SourceFormat::Mt940,
            b"\xEF\xBB\xBF:20:X\n:25:A\n:60F:C240101EUR1,\n-",
        );
    }
}
