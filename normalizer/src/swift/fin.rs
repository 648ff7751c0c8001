//! The FIN layer: envelopes, messages and fields, before any meaning.
//!
//! A file may hold one message or hundreds, with or without the SWIFT envelope:
//!
//! - `{1:...}{2:O940...}{3:...}{4:` opens a message; block 2 names its type (`I940`/`O940`).
//!   A line `-}` (optionally followed by the trailer blocks `{5:...}`) closes it, and so does
//!   a line `-` followed by the trailer, the next envelope or the end of the file. A `-`
//!   followed by anything else is text: banks wrap `:86:` narratives with a line holding only
//!   `-`, and ending the message there would lose the rest of the statement;
//! - without an envelope a line `-` closes a message, and a new `:20:` (or `:16R:GENL`) starts
//!   the next one (the readers handle that), so files whose banks omit the `-` still split;
//! - the dialects real files carry are read as meant, each reported as a [`Note`] that the
//!   caller turns into a warning (see [`tokenize`]): indented lines, `ä`/`å` for the braces,
//!   `:86 :`, FinTS segment text around the message;
//! - SOH (0x01) and ETX (0x03), the framing bytes of file transfers, are ignored where they
//!   stand at the start or end of a line;
//! - text before the first field of a message (ABN AMRO's `ABNANL2A`/`940` header, ING's
//!   `0000 01INGBNL2AXXXX00001`, Rabobank's `:940:`) is skipped.
//!
//! A field starts at a line `:TAG:` whose tag is one the message family knows (see
//! [`Family`]); every other line continues the field before it. That rule, rather than "any
//! line that starts with a colon", is what real MT940 needs: narrative `:86:` lines wrap at 65
//! characters and do start with text such as `:12:11` or `:KO:NR:` (both in the corpus).
//!
//! [`tokenize`] pushes [`Event`]s to a callback instead of building a list: a 100 MB statement
//! file is read in one pass, and a field value is a slice of the decoded text (continuation
//! lines and their line breaks included), so nothing is copied here.

use crate::swift::text::Lines;

/// Which set of tags starts a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// MT940, MT942, MT950: only the tags of these messages (plus `:NS:`, the German
    /// non-SWIFT field).
    Cash,
    /// ISO 15022 messages (MT535, MT536): two digits and a letter, e.g. `:16R:`, `:93B:`.
    Securities,
    /// MT900, MT910: the tags of a confirmation (`:32A:`, `:50a:`, `:72:` ...).
    Confirmation,
}

/// The tags of MT900/MT910 (debit and credit confirmations).
const CONFIRMATION_TAGS: &[&str] = &[
    "13D", "20", "21", "25", "25P", "32A", "50", "50A", "50F", "50K", "52A", "52D", "56A", "56D",
    "72",
];

const CASH_TAGS: &[&str] = &[
    "13", "13D", "20", "21", "25", "25P", "28", "28C", "34F", "60F", "60M", "61", "62F", "62M",
    "64", "65", "86", "90C", "90D", "NS",
];

impl Family {
    /// True when `tag` starts a field in messages of this family.
    pub fn is_tag(self, tag: &str) -> bool {
        match self {
            Family::Cash => CASH_TAGS.contains(&tag),
            Family::Confirmation => CONFIRMATION_TAGS.contains(&tag),
            Family::Securities => {
                let b = tag.as_bytes();
                b.len() == 3
                    && b[0].is_ascii_digit()
                    && b[1].is_ascii_digit()
                    && b[2].is_ascii_uppercase()
            }
        }
    }
}

/// One field: its tag without colons, its value and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub tag: &'a str,
    /// Everything after `:TAG:` up to the next field, continuation lines and their line breaks
    /// included, trailing blank lines and spaces removed.
    pub value: &'a str,
    /// Line number (from 1) of the `:TAG:` line in its document.
    pub line: usize,
    /// Index of the document in a multi-document read (0 for a single file).
    pub part: usize,
}

impl<'a> Field<'a> {
    /// The first line of the value.
    pub fn first_line(&self) -> &'a str {
        self.value
            .split(['\r', '\n'])
            .next()
            .unwrap_or_default()
            .trim_end()
    }

    /// The lines after the first, blank ones included.
    pub fn continuation(&self) -> impl Iterator<Item = &'a str> {
        crate::swift::text::value_lines(self.value).skip(1)
    }
}

/// What [`tokenize`] reports, in document order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// An envelope header `{1:..}{2:..}`: a message starts; `mt` is the type block 2 names.
    Header {
        mt: Option<u16>,
        line: usize,
        part: usize,
    },
    Field(Field<'a>),
    /// `-` or `-}`: the message ends.
    End {
        line: usize,
        part: usize,
    },
    /// A dialect read as the bank meant it; the caller turns it into a warning.
    Note(Note<'a>),
}

/// A dialect of the FIN layer that was read, not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `ä` and `å` written for `{` and `}` (the Nordic ISO 646 variants).
    NationalBraces,
    /// A tag with spaces inside its colons (`:86 :`); `text` is the tag as written.
    MalformedTag,
    /// FinTS segment text around the message (`HIKAZ:5:7:3+@438@`, `-+@0@'`); `text` is
    /// what was stripped.
    FintsLeftover,
}

/// Where and what [`Dialect`] was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Note<'a> {
    pub dialect: Dialect,
    /// The text as written (the malformed tag, the stripped leftover).
    pub text: &'a str,
    pub line: usize,
    pub part: usize,
}

impl Note<'_> {
    /// The warning support reads.
    pub fn message(&self) -> String {
        match self.dialect {
            Dialect::NationalBraces => "the envelope writes the braces { and } as the national letters ä and å (ISO 646 Nordic variant): read as braces".to_owned(),
            Dialect::MalformedTag => format!(
                "malformed tag '{}' read as ':{}:'",
                self.text,
                self.text.trim_matches(':').trim()
            ),
            Dialect::FintsLeftover => {
                format!("FinTS segment text `{}` around the message stripped", self.text)
            }
        }
    }
}

/// The field being read: tag, value start and end offsets, line.
type Open<'a> = Option<(&'a str, usize, usize, usize)>;

/// Reads one document and reports its events. A document that ends inside a message reports
/// no `End`: the message may continue in the next document (see `swift::parse_pages`).
///
/// Dialects read as meant (each test in this module names one):
///
/// - lines indented by spaces or tabs read as if they were not;
/// - inside block 4 of an envelope, a line `-` is the end only when the trailer (`{5:`), the
///   next envelope or the end of the file follows it; before anything else it is text of the
///   field it stands in (banks wrap `:86:` narratives so), while without an envelope `-`
///   always ends the message, since nothing else would;
/// - `ä`/`å` in place of `{`/`}` around blocks (Nordic exports), reported once per document;
/// - a tag with spaces inside its colons (`:86 :`), reported;
/// - FinTS segment text left around the message (`HIKAZ:5:7:3+@438@` before it, `-+@0@'`
///   after it), stripped and reported.
pub fn tokenize<'a, E>(
    text: &'a str,
    part: usize,
    family: Family,
    emit: impl FnMut(Event<'a>) -> Result<(), E>,
) -> Result<(), E> {
    tokenize_piece(text, part, family, &mut TokenizerState::default(), emit)
}

/// What the tokenizer carries from one piece of a document to the next: the streaming read
/// (`swift::stream`) feeds a large file in pieces that each start where a message starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenizerState {
    /// Inside block 4 of an envelope: a bare `-` needs the look-ahead.
    in_block4: bool,
    braces_noted: bool,
    /// Lines of the document before this piece, so line numbers stay the document's.
    lines_before: usize,
}

impl TokenizerState {
    /// Lines of the document before the next piece.
    pub fn lines_before(&self) -> usize {
        self.lines_before
    }
}

/// [`tokenize`] over one piece of a document, `state` carried from the piece before. A piece
/// must start at a line that starts a message (an envelope header) or, outside envelopes, a
/// statement: the field open at the end of a piece is complete there.
pub fn tokenize_piece<'a, E>(
    text: &'a str,
    part: usize,
    family: Family,
    state: &mut TokenizerState,
    mut emit: impl FnMut(Event<'a>) -> Result<(), E>,
) -> Result<(), E> {
    let mut open: Open<'a> = None;
    let flush =
        |open: &mut Open<'a>, emit: &mut dyn FnMut(Event<'a>) -> Result<(), E>| -> Result<(), E> {
            if let Some((tag, start, end, line)) = open.take() {
                let value = text[start..end]
                    .trim_end_matches(|c: char| c.is_whitespace() || c == '\x01' || c == '\x03');
                emit(Event::Field(Field {
                    tag,
                    value,
                    line,
                    part,
                }))?;
            }
            Ok(())
        };
    let note = |dialect, text, line| {
        Event::Note(Note {
            dialect,
            text,
            line,
            part,
        })
    };
    let mut lines = Lines::new(text);
    let mut last_line = 0;
    while let Some(line) = lines.next() {
        last_line = line.number;
        let number = line.number + state.lines_before;
        // SOH framing and indentation: skipped byte by byte (a `char` pattern costs more on
        // every line of a large file).
        let indent = line
            .text
            .bytes()
            .take_while(|b| matches!(b, 0x01 | b' ' | b'\t'))
            .count();
        let mut content = &line.text[indent..];
        if matches!(content.as_bytes().first(), Some(b'@' | b'A'..=b'Z'))
            && let Some(n) = fints_head(content)
        {
            emit(note(Dialect::FintsLeftover, &content[..n], number))?;
            content = &content[n..];
            if content.trim().is_empty() {
                continue;
            }
        }
        let offset = line.end - content.len();
        let bytes = content.as_bytes();
        match bytes.first() {
            Some(b':') => {
                if let Some((tag, value_at)) = field_start(content, family) {
                    flush(&mut open, &mut emit)?;
                    open = Some((tag, offset + value_at, line.end, number));
                    continue;
                }
                if let Some((tag, value_at)) = malformed_field_start(content, family) {
                    flush(&mut open, &mut emit)?;
                    emit(note(Dialect::MalformedTag, &content[..value_at], number))?;
                    open = Some((tag, offset + value_at, line.end, number));
                    continue;
                }
            }
            Some(b'{') | Some(0xC3) if is_block_start(content) => {
                flush(&mut open, &mut emit)?;
                let national = bytes[0] != b'{';
                if national && !state.braces_noted {
                    state.braces_noted = true;
                    emit(note(Dialect::NationalBraces, "", number))?;
                }
                emit(Event::Header {
                    mt: header_type(content),
                    line: number,
                    part,
                })?;
                // A field may follow `{4:` on the same line.
                let block4 = content
                    .find("{4:")
                    .map(|i| i + 3)
                    .or_else(|| content.find("ä4:").map(|i| i + 4));
                if let Some(at) = block4 {
                    state.in_block4 = true;
                    let rest = &content[at..];
                    if let Some((tag, value_at)) = field_start(rest, family) {
                        let rest_offset = offset + at;
                        open = Some((tag, rest_offset + value_at, line.end, number));
                    }
                }
                continue;
            }
            Some(b'-') => {
                let t = content.trim_end_matches(|c: char| c == '\x03' || c.is_whitespace());
                let after = &t[1..];
                let closes = after.starts_with('}') || after.starts_with('å');
                let leftover = if closes { None } else { fints_tail(after) };
                let bare = after.is_empty();
                if closes
                    || leftover.is_some()
                    || (bare && (!state.in_block4 || ends_block4(lines.clone())))
                {
                    flush(&mut open, &mut emit)?;
                    state.in_block4 = false;
                    if after.starts_with('å') && !state.braces_noted {
                        state.braces_noted = true;
                        emit(note(Dialect::NationalBraces, "", number))?;
                    }
                    if let Some(n) = leftover {
                        emit(note(Dialect::FintsLeftover, &after[..n], number))?;
                    }
                    emit(Event::End { line: number, part })?;
                    // The next message may start right after the leftover: `-+@438@:20:..`.
                    if let Some(n) = leftover
                        && let Some((tag, value_at)) = field_start(&after[n..], family)
                    {
                        open = Some((tag, offset + 1 + n + value_at, line.end, number));
                    }
                    continue;
                }
            }
            _ => {}
        }
        if let Some(o) = open.as_mut() {
            o.2 = line.end;
        }
        // Text outside a field (before the first one of a message) is a preamble: skipped.
    }
    state.lines_before += last_line;
    flush(&mut open, &mut emit)
}

/// `{n:` or its Nordic form `än:` at the start of a line.
fn is_block_start(content: &str) -> bool {
    let b = content.as_bytes();
    match b.first() {
        Some(b'{') => true,
        _ => {
            content.starts_with('ä')
                && b.get(2).is_some_and(u8::is_ascii_digit)
                && b.get(3) == Some(&b':')
        }
    }
}

/// What follows a bare `-` inside block 4 ends the message: the trailer or the next envelope
/// (`{`, `ä`), FinTS text after the message, or nothing but blank lines.
fn ends_block4(rest: Lines<'_>) -> bool {
    for line in rest {
        let t = line
            .text
            .trim_matches(|c: char| c == '\x01' || c == '\x03' || c.is_whitespace());
        if t.is_empty() {
            continue;
        }
        return is_block_start(t) || t.starts_with('\'') || t.starts_with("+@");
    }
    true
}

/// The length of FinTS segment text before a message: an optional segment head
/// (`HIKAZ:5:7:3+`, upper-case letters and colon-separated numbers) and the binary length
/// `@438@` that FinTS writes before the MT940 it carries.
fn fints_head(content: &str) -> Option<usize> {
    let b = content.as_bytes();
    let mut i = 0;
    if b.first()?.is_ascii_uppercase() {
        let letters = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
        if !(5..=6).contains(&letters) {
            return None;
        }
        i = letters;
        while b.get(i) == Some(&b':') {
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            i += 1 + digits;
        }
        if b.get(i) != Some(&b'+') {
            return None;
        }
        i += 1;
    }
    if b.get(i) != Some(&b'@') {
        return None;
    }
    let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || b.get(i + 1 + digits) != Some(&b'@') {
        return None;
    }
    Some(i + digits + 2)
}

/// FinTS text after a message's `-`: the segment end `'` or the next binary element `+@n@`
/// (and a `'` after it); its length in `after`.
fn fints_tail(after: &str) -> Option<usize> {
    if after.starts_with('\'') {
        return Some(after.len());
    }
    let n = 1 + fints_head(after.strip_prefix('+')?)?;
    if after[n..].starts_with('\'') {
        return Some(after.len());
    }
    Some(n)
}

/// `:TAG:` at the start of a line: the tag and the byte offset of the value.
fn field_start(line: &str, family: Family) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    if b.first() != Some(&b':') {
        return None;
    }
    let end = b.iter().skip(1).take(4).position(|&c| c == b':')? + 1;
    let tag = &line[1..end];
    family.is_tag(tag).then_some((tag, end + 1))
}

/// `:86 :` or `: 86:`: a known tag with spaces inside the colons. Only tried when
/// [`field_start`] found no tag, so the common path pays nothing for it.
fn malformed_field_start(line: &str, family: Family) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    let end = b.iter().skip(1).take(6).position(|&c| c == b':')? + 1;
    let written = &line[1..end];
    let tag = written.trim_matches(' ');
    (tag.len() < written.len() && !tag.contains(' ') && family.is_tag(tag))
        .then_some((tag, end + 1))
}

/// The message type named by block 2 (`{2:I940...}` or `{2:O940...}`).
fn header_type(line: &str) -> Option<u16> {
    let i = line
        .find("{2:")
        .map(|i| i + 3)
        .or_else(|| line.find("ä2:").map(|i| i + 4))?;
    let b = line.as_bytes().get(i..i + 4)?;
    if !matches!(b[0], b'I' | b'O') || !b[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        b[1..]
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str, family: Family) -> Vec<Event<'_>> {
        let mut out = Vec::new();
        tokenize::<()>(text, 0, family, |e| {
            out.push(e);
            Ok(())
        })
        .unwrap();
        out
    }

    fn fields(text: &str, family: Family) -> Vec<(&str, &str, usize)> {
        events(text, family)
            .into_iter()
            .filter_map(|e| match e {
                Event::Field(f) => Some((f.tag, f.value, f.line)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_envelope_names_the_message_type_and_ends_with_dash_brace() {
        let text = "{1:F01ASNBNL21XXXX0000000000}{2:O940ASNBNL21XXXXN}{3:}{4:\r\n:20:REF\r\n:25:NL81\r\n-}{5:}";
        let e = events(text, Family::Cash);
        assert_eq!(
            e[0],
            Event::Header {
                mt: Some(940),
                line: 1,
                part: 0
            }
        );
        assert!(matches!(e[3], Event::End { line: 4, .. }));
    }

    #[test]
    fn unknown_tags_inside_narrative_continue_the_field() {
        let text = ":86:805?00ENTGELT\n:12:11\n:KO:NR:4\n:62F:C160301EUR1194,00\n";
        let f = fields(text, Family::Cash);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0], ("86", "805?00ENTGELT\n:12:11\n:KO:NR:4", 1));
        assert_eq!(f[1].0, "62F");
    }

    #[test]
    fn preamble_lines_are_skipped_and_soh_etx_ignored() {
        let text = "\x01\nABNANL2A\n940\n:20:ABN\n-\x03\n";
        let e = events(text, Family::Cash);
        assert_eq!(e.len(), 2);
        assert!(matches!(
            e[0],
            Event::Field(Field {
                tag: "20",
                value: "ABN",
                line: 4,
                ..
            })
        ));
        assert!(matches!(e[1], Event::End { .. }));
    }

    #[test]
    fn a_line_starting_with_a_dash_and_text_is_not_an_end() {
        let text = ":86:SVWZ+Vertrags\n-Nr. 1000620785\n-\n";
        let f = fields(text, Family::Cash);
        assert_eq!(f[0].1, "SVWZ+Vertrags\n-Nr. 1000620785");
    }

    #[test]
    fn securities_tags_are_two_digits_and_a_letter() {
        let text = ":16R:FIN\n:35B:/US/AGGR_AVAI\nAGGR=300, AVAI:=200\n:93B::AGGR//FAMT/300,\n";
        let f = fields(text, Family::Securities);
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].1, "/US/AGGR_AVAI\nAGGR=300, AVAI:=200");
        assert_eq!(f[2].1, ":AGGR//FAMT/300,");
    }
}
