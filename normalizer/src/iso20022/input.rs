//! The byte layer under the XML reader: character encoding and positions.
//!
//! quick-xml reads UTF-8. Real statement files also come in ISO-8859-1 (declared in the XML
//! declaration) and, from Windows systems, in windows-1252 mislabelled or declared as such; some
//! carry a UTF-8 byte order mark. [`Input`] sniffs the BOM and the declaration once, then hands
//! the reader UTF-8: untouched bytes for UTF-8 (no copy), or bytes transcoded chunk by chunk
//! for the single-byte encodings and UTF-16 (a bounded buffer, so memory stays constant).
//! UTF-16 is recognised by its byte order mark, or without one by the first character: an XML
//! file starts with `<` (after white space), which UTF-16 writes as `<` and a zero byte (little
//! endian) or the other way round (big endian); Windows tools export statements so. A
//! declaration naming UTF-16 in a file that is not is refused rather than guessed at.
//!
//! It also counts lines as the reader consumes bytes, so every error can say where it happened
//! without keeping the file in memory. quick-xml consumes exactly up to the end of each event, so
//! after an event the counters point just past it.

use std::io::{self, BufRead, Read};

/// How the bytes under the declaration are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Utf8,
    Latin1,
    Windows1252,
    Utf16Le,
    Utf16Be,
}

/// Why the input cannot be read at all.
#[derive(Debug)]
pub(crate) enum InputError {
    Io(io::Error),
    Unsupported(String),
}

/// Bytes sniffed before the reader starts: enough for a BOM and any sane XML declaration.
const SNIFF_LEN: usize = 1024;

/// Size of the transcoding buffer for single-byte encodings (output is at most twice the input).
const CHUNK: usize = 32 * 1024;

/// A `BufRead` that yields UTF-8 and counts lines of what was consumed.
pub(crate) struct Input<R> {
    inner: R,
    encoding: Encoding,
    /// Sniffed bytes not yet handed out (already UTF-8 or still to transcode, per `encoding`).
    head: Vec<u8>,
    head_pos: usize,
    /// Transcoded bytes for the single-byte encodings and UTF-16.
    out: Vec<u8>,
    /// UTF-16 bytes read but not decoded yet: an odd byte or a high surrogate at a chunk end.
    pending: Vec<u8>,
    out_pos: usize,
    line: usize,
    /// Bytes consumed in total, and at the start of the current line.
    consumed: u64,
    line_start: u64,
    /// Bytes consumed from, and scanned for control characters in, `inner` (UTF-8 only).
    inner_consumed: u64,
    /// UTF-8 only: bytes at the start of `inner`'s buffer the reader consumed but `inner` was
    /// not told of yet (it is told when the buffer is used up), so their lines can be counted
    /// when a position is asked for, in one pass per event rather than one per `consume`;
    /// `counted` of them are counted; `window` is the buffer's length at the last `fill_buf`.
    held: usize,
    counted: usize,
    window: usize,
    inner_scanned: u64,
    /// A control character (see `crate::control_characters`) was in the bytes handed out:
    /// only then does the reader check each element's text, so a clean file pays one scan
    /// of its bytes and nothing per element.
    control: bool,
}

impl<R: BufRead> Input<R> {
    /// Sniffs the encoding of `inner` and prepares to read it as UTF-8.
    pub(crate) fn new(mut inner: R) -> Result<Self, InputError> {
        let mut head = Vec::with_capacity(SNIFF_LEN);
        (&mut inner)
            .take(SNIFF_LEN as u64)
            .read_to_end(&mut head)
            .map_err(InputError::Io)?;
        let mut head_pos = 0;
        let encoding = if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            head_pos = 3;
            declared_encoding(&head[head_pos..])?
        } else if let Some((encoding, bom)) = utf16(&head) {
            head_pos = bom;
            encoding
        } else {
            declared_encoding(&head)?
        };
        let control =
            encoding == Encoding::Utf8 && crate::control_characters::any(&head[head_pos..], &[]);
        Ok(Input {
            inner,
            encoding,
            head,
            head_pos,
            out: Vec::new(),
            pending: Vec::new(),
            out_pos: 0,
            line: 1,
            consumed: 0,
            line_start: 0,
            inner_consumed: 0,
            held: 0,
            counted: 0,
            window: 0,
            inner_scanned: 0,
            control,
        })
    }

    /// One-based line of the next unread byte.
    pub(crate) fn line(&mut self) -> usize {
        self.count_held();
        self.line
    }

    /// True once a control character was seen in the bytes handed out so far (or about to be).
    pub(crate) fn saw_control(&self) -> bool {
        self.control
    }

    /// One-based column (in bytes of UTF-8) of the next unread byte.
    pub(crate) fn column(&mut self) -> usize {
        self.count_held();
        usize::try_from(self.consumed - self.line_start).unwrap_or(usize::MAX - 1) + 1
    }

    /// Counts the lines of the held bytes not counted yet (they are still in `inner`'s buffer).
    fn count_held(&mut self) {
        if self.counted >= self.held {
            return;
        }
        let (from, to) = (self.counted, self.held);
        // The consumed total as it stood after the last counted byte.
        let base = self.consumed - (to - from) as u64;
        if let Ok(buf) = self.inner.fill_buf() {
            let slice = &buf[from.min(buf.len())..to.min(buf.len())];
            let newlines = memchr::memchr_iter(b'\n', slice).count();
            if newlines > 0 {
                self.line += newlines;
                if let Some(last) = memchr::memrchr(b'\n', slice) {
                    self.line_start = base + last as u64 + 1;
                }
            }
        }
        self.counted = to;
    }

    fn count(&mut self, consumed: &[u8]) {
        let newlines = consumed.iter().filter(|&&b| b == b'\n').count();
        if newlines > 0 {
            self.line += newlines;
            if let Some(last) = memchr::memrchr(b'\n', consumed) {
                self.line_start = self.consumed + last as u64 + 1;
            }
        }
        self.consumed += consumed.len() as u64;
    }

    /// Refills `out` with the next transcoded chunk; empty at end of input.
    fn refill_transcoded(&mut self) -> io::Result<()> {
        self.transcode_next()?;
        self.control |= crate::control_characters::any(&self.out, &[]);
        Ok(())
    }

    fn transcode_next(&mut self) -> io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        let encoding = self.encoding;
        if let Encoding::Utf16Le | Encoding::Utf16Be = encoding {
            // A chunk may end inside a character: read on until one is complete.
            while self.out.is_empty() {
                if !self.refill_utf16()? {
                    break;
                }
            }
            return Ok(());
        }
        if self.head_pos < self.head.len() {
            for &b in &self.head[self.head_pos..] {
                push_single_byte(&mut self.out, b, encoding);
            }
            self.head_pos = self.head.len();
            return Ok(());
        }
        let available = self.inner.fill_buf()?;
        let n = available.len().min(CHUNK);
        for &b in &available[..n] {
            push_single_byte(&mut self.out, b, encoding);
        }
        self.inner.consume(n);
        Ok(())
    }
}

impl<R: BufRead> Input<R> {
    /// Decodes the next UTF-16 chunk into `out`; false at the end of the input.
    fn refill_utf16(&mut self) -> io::Result<bool> {
        let mut raw = std::mem::take(&mut self.pending);
        let at_end = if self.head_pos < self.head.len() {
            raw.extend_from_slice(&self.head[self.head_pos..]);
            self.head_pos = self.head.len();
            false
        } else {
            let available = self.inner.fill_buf()?;
            let n = available.len().min(CHUNK);
            raw.extend_from_slice(&available[..n]);
            self.inner.consume(n);
            n == 0
        };
        let little = self.encoding == Encoding::Utf16Le;
        let mut units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|p| {
                let pair = [p[0], p[1]];
                if little {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                }
            })
            .collect();
        let mut decoded = units.len() * 2;
        // A high surrogate waits for its low half in the next chunk.
        if !at_end && units.last().is_some_and(|u| (0xD800..0xDC00).contains(u)) {
            units.pop();
            decoded -= 2;
        }
        let mut tmp = [0u8; 4];
        for c in char::decode_utf16(units) {
            let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
            self.out
                .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
        }
        self.pending = raw.split_off(decoded);
        if at_end && !self.pending.is_empty() {
            // An odd byte at the very end: not a character.
            self.pending.clear();
            self.out
                .extend_from_slice(char::REPLACEMENT_CHARACTER.encode_utf8(&mut tmp).as_bytes());
        }
        Ok(!at_end)
    }
}

/// UTF-16 by its byte order mark, or without one by `<` (after white space) written as
/// UTF-16: the encoding and the length of the mark.
pub(crate) fn utf16(head: &[u8]) -> Option<(Encoding, usize)> {
    if head.starts_with(&[0xFF, 0xFE]) {
        return Some((Encoding::Utf16Le, 2));
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return Some((Encoding::Utf16Be, 2));
    }
    let first = head.chunks_exact(2).find(|p| {
        !(matches!(
            p,
            [b' ' | b'\t' | b'\r' | b'\n', 0] | [0, b' ' | b'\t' | b'\r' | b'\n']
        ))
    })?;
    match first {
        [b'<', 0] => Some((Encoding::Utf16Le, 0)),
        [0, b'<'] => Some((Encoding::Utf16Be, 0)),
        _ => None,
    }
}

impl<R: BufRead> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Input<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self.encoding {
            Encoding::Utf8 => {
                if self.head_pos < self.head.len() {
                    Ok(&self.head[self.head_pos..])
                } else {
                    let buf = self.inner.fill_buf()?;
                    let end = self.inner_consumed + buf.len() as u64;
                    if end > self.inner_scanned {
                        scan_new(
                            buf,
                            self.inner_consumed,
                            &mut self.inner_scanned,
                            &mut self.control,
                        );
                    }
                    self.window = buf.len();
                    Ok(&buf[self.held.min(buf.len())..])
                }
            }
            Encoding::Latin1 | Encoding::Windows1252 | Encoding::Utf16Le | Encoding::Utf16Be => {
                if self.out_pos >= self.out.len() {
                    self.refill_transcoded()?;
                }
                Ok(&self.out[self.out_pos..])
            }
        }
    }

    fn consume(&mut self, amt: usize) {
        match self.encoding {
            Encoding::Utf8 => {
                if self.head_pos < self.head.len() {
                    let end = (self.head_pos + amt).min(self.head.len());
                    let taken = std::mem::take(&mut self.head);
                    self.count(&taken[self.head_pos..end]);
                    self.head = taken;
                    self.head_pos = end;
                } else {
                    // Held, not passed on: the lines are counted when asked for, or at the
                    // latest when the buffer is used up (before `inner` may reuse it).
                    self.held += amt;
                    self.consumed += amt as u64;
                    if self.held >= self.window {
                        self.count_held();
                        self.inner_consumed += self.held as u64;
                        self.inner.consume(self.held);
                        self.held = 0;
                        self.counted = 0;
                    }
                }
            }
            Encoding::Latin1 | Encoding::Windows1252 | Encoding::Utf16Le | Encoding::Utf16Be => {
                let end = (self.out_pos + amt).min(self.out.len());
                let taken = std::mem::take(&mut self.out);
                self.count(&taken[self.out_pos..end]);
                self.out = taken;
                self.out_pos = end;
            }
        }
    }
}

/// Scans the part of `buf` (which starts at offset `start` of the input) not scanned yet. Out
/// of line: `fill_buf` runs several times per XML event and only rarely sees new bytes.
#[cold]
#[inline(never)]
fn scan_new(buf: &[u8], start: u64, scanned: &mut u64, control: &mut bool) {
    let from = usize::try_from(*scanned - start)
        .unwrap_or(0)
        .min(buf.len());
    *control |= crate::control_characters::any(&buf[from..], &[]);
    *scanned = start + buf.len() as u64;
}

/// Appends the UTF-8 form of one byte of a single-byte encoding.
fn push_single_byte(out: &mut Vec<u8>, b: u8, encoding: Encoding) {
    if b < 0x80 {
        out.push(b);
        return;
    }
    let c = match encoding {
        Encoding::Windows1252 if (0x80..0xA0).contains(&b) => {
            WINDOWS_1252_HIGH[usize::from(b - 0x80)]
        }
        _ => char::from(b),
    };
    let mut tmp = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
}

/// windows-1252 characters 0x80..0x9F (undefined positions map to the C1 control, as browsers do).
const WINDOWS_1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}', '\u{017D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{9D}', '\u{017E}', '\u{0178}',
];

/// The encoding named in the XML declaration (`<?xml ... encoding="..."?>`); UTF-8 by default.
fn declared_encoding(head: &[u8]) -> Result<Encoding, InputError> {
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    if !head.starts_with(b"<?xml") {
        return Ok(Encoding::Utf8);
    }
    let Some(end) = memchr::memmem::find(head, b"?>") else {
        return Ok(Encoding::Utf8);
    };
    let decl = &head[..end];
    let Some(at) = memchr::memmem::find(decl, b"encoding") else {
        return Ok(Encoding::Utf8);
    };
    let rest = &decl[at + b"encoding".len()..];
    let rest = trim_ascii_start(rest);
    let Some(rest) = rest.strip_prefix(b"=") else {
        return Ok(Encoding::Utf8);
    };
    let rest = trim_ascii_start(rest);
    let Some((&quote, rest)) = rest.split_first() else {
        return Ok(Encoding::Utf8);
    };
    if quote != b'"' && quote != b'\'' {
        return Ok(Encoding::Utf8);
    }
    let name_end = rest.iter().position(|&b| b == quote).unwrap_or(rest.len());
    let name = String::from_utf8_lossy(&rest[..name_end]).to_ascii_lowercase();
    match name.as_str() {
        "utf-8" | "utf8" | "us-ascii" | "ascii" => Ok(Encoding::Utf8),
        "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "iso_8859-1" | "l1" => {
            Ok(Encoding::Latin1)
        }
        // ISO-8859-15 differs from Latin-1 in eight letters (the euro sign among them); the
        // windows-1252 table carries those at other code points, so Latin-1 is the honest read.
        "iso-8859-15" | "latin-9" => Ok(Encoding::Latin1),
        "windows-1252" | "cp1252" => Ok(Encoding::Windows1252),
        "utf-16" | "utf-16le" | "utf-16be" => Err(InputError::Unsupported(
            "the file declares UTF-16 but has no UTF-16 byte order mark".into(),
        )),
        other => Err(InputError::Unsupported(format!(
            "the XML declaration names the encoding '{other}', which is not supported \
             (UTF-8, ISO-8859-1 and windows-1252 are)"
        ))),
    }
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> (String, usize) {
        let mut input = Input::new(bytes).expect("sniffs");
        let mut s = String::new();
        input
            .read_to_string(&mut s)
            .expect("valid UTF-8 after transcoding");
        (s, input.line())
    }

    /// Lines and columns stay exact when the reader consumes in pieces of every size across
    /// the boundaries of a small inner buffer (the bytes are held and counted lazily).
    #[test]
    fn positions_are_exact_across_buffer_boundaries() {
        let text: String = (0..200)
            .map(|i| format!("<l{i}>{}</l{i}>\n", "x".repeat(i % 13)))
            .collect();
        let bytes = text.as_bytes();
        for capacity in [5, 7, 64] {
            let mut input =
                Input::new(std::io::BufReader::with_capacity(capacity, bytes)).expect("sniffs");
            let mut done = 0usize;
            let mut step = 0usize;
            loop {
                let available = input.fill_buf().unwrap().len();
                if available == 0 {
                    break;
                }
                step = step % 5 + 1;
                let n = step.min(available);
                input.consume(n);
                done += n;
                let before = &bytes[..done];
                let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
                let column = done
                    - before
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |p| p + 1)
                    + 1;
                if done.is_multiple_of(3) {
                    assert_eq!((input.line(), input.column()), (line, column), "at {done}");
                }
            }
            assert_eq!(done, bytes.len());
            assert_eq!(input.line(), 201);
            assert_eq!(input.column(), 1);
        }
    }

    #[test]
    fn a_utf8_bom_is_dropped() {
        let (s, _) = read_all(b"\xEF\xBB\xBF<a/>");
        assert_eq!(s, "<a/>");
    }

    #[test]
    fn latin1_declared_in_the_declaration_is_transcoded() {
        let (s, _) = read_all(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>M\xFCller</a>");
        assert!(s.ends_with("<a>M\u{fc}ller</a>"), "{s}");
    }

    #[test]
    fn windows_1252_maps_the_euro_sign() {
        let (s, _) = read_all(b"<?xml version='1.0' encoding='windows-1252'?><a>\x80</a>");
        assert!(s.ends_with("<a>\u{20AC}</a>"), "{s}");
    }

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn utf16_with_or_without_a_bom_is_transcoded() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n<a>Müller € 𝄞</a>";
        let mut le = vec![0xFF, 0xFE];
        le.extend(utf16le(xml));
        assert_eq!(read_all(&le), (xml.to_owned(), 2));
        assert_eq!(read_all(&utf16le(xml)), (xml.to_owned(), 2));
        let be: Vec<u8> = xml.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(read_all(&be).0, xml);
        // A surrogate pair and a code unit split across the reader's chunks.
        let long = format!("<a>{}𝄞</a>", "x".repeat(CHUNK / 2 - 4));
        let bytes = utf16le(&long);
        let reader = std::io::BufReader::with_capacity(CHUNK + 1, &bytes[..]);
        let mut input = Input::new(reader).expect("sniffs");
        let mut s = String::new();
        input.read_to_string(&mut s).expect("UTF-8 out");
        assert_eq!(s, long);
    }

    #[test]
    fn a_declaration_of_utf16_without_utf16_bytes_is_refused() {
        assert!(matches!(
            Input::new(&b"<?xml version='1.0' encoding='UTF-16'?><a/>"[..]),
            Err(InputError::Unsupported(_))
        ));
    }

    #[test]
    fn lines_are_counted_as_bytes_are_consumed() {
        let (_, line) = read_all(b"<a>\r\n<b/>\r\n</a>");
        assert_eq!(line, 3);
    }
}
