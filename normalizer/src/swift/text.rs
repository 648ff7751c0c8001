//! Bytes to text, and text to lines.
//!
//! SWIFT FIN proper only carries the X character set (letters, digits and `/-?:().,'+ `), but
//! the files banks hand out are written by their back offices: UTF-8, ISO-8859-1 (often really
//! Windows-1252) and, from older German and Hungarian systems, DOS code pages. Nothing in the
//! file says which. [`decode`] decides once per document, in this order:
//!
//! 1. valid UTF-8 (a leading byte-order mark is dropped) is borrowed as it is: the common and
//!    fast case, no copy;
//! 2. text that is UTF-8 apart from a few stray bytes (more well-formed multi-byte characters
//!    than bad bytes) is read as UTF-8 with U+FFFD for the strays;
//! 3. otherwise it is a single-byte code page: DOS code page 850 when the bytes 0x80 to 0xA5
//!    (its accented letters) outnumber 0xC0 to 0xFF (the accented letters of ISO-8859-1),
//!    ISO-8859-1 otherwise, with the Windows-1252 signs at 0x80 to 0x9F.
//!
//! Amounts, dates, codes and references are ASCII in every one of these, so a wrong guess can
//! only garble a name or a description, never a number.
//!
//! [`Lines`] splits on CRLF, LF and CR alone (old Mac exports), and numbers lines from 1.

use std::borrow::Cow;

/// How [`decode`] read a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// UTF-8 with some invalid bytes replaced by U+FFFD.
    Utf8Lossy,
    /// DOS code page 850.
    Cp850,
    /// ISO-8859-1, with the Windows-1252 signs at 0x80 to 0x9F.
    Latin1,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf8Lossy => "UTF-8 with invalid bytes",
            Encoding::Cp850 => "DOS code page 850",
            Encoding::Latin1 => "ISO-8859-1",
        }
    }
}

/// Decodes a document; see the module documentation for how the encoding is chosen.
pub fn decode(bytes: &[u8]) -> (Cow<'_, str>, Encoding) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (Cow::Borrowed(s), Encoding::Utf8);
    }
    let mut multibyte = 0usize;
    let mut invalid = 0usize;
    for chunk in bytes.utf8_chunks() {
        multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        invalid += chunk.invalid().len();
    }
    if multibyte > invalid {
        return (String::from_utf8_lossy(bytes), Encoding::Utf8Lossy);
    }
    let dos = bytes
        .iter()
        .filter(|&&b| (0x80..=0xA5).contains(&b))
        .count();
    let latin = bytes.iter().filter(|&&b| b >= 0xC0).count();
    let (encoding, high): (Encoding, fn(u8) -> char) = if dos > latin {
        (Encoding::Cp850, |b| CP850_HIGH[usize::from(b - 0x80)])
    } else {
        (Encoding::Latin1, |b| {
            if b < 0xA0 {
                CP1252_C1[usize::from(b - 0x80)]
            } else {
                char::from(b)
            }
        })
    };
    let text = bytes
        .iter()
        .map(|&b| if b < 0x80 { char::from(b) } else { high(b) })
        .collect();
    (Cow::Owned(text), encoding)
}

/// [`decode`]'s choice made over a document read in chunks (the streaming read), in constant
/// memory: the same counts, so the same encoding as [`decode`] of the whole document.
#[derive(Debug, Default)]
pub struct EncodingProbe {
    /// An incomplete UTF-8 sequence at the end of the last chunk.
    carry: Vec<u8>,
    multibyte: usize,
    invalid: usize,
    dos: usize,
    latin: usize,
}

impl EncodingProbe {
    /// Counts the next chunk (the byte-order mark already dropped).
    pub fn push(&mut self, bytes: &[u8]) {
        self.dos += bytes
            .iter()
            .filter(|&&b| (0x80..=0xA5).contains(&b))
            .count();
        self.latin += bytes.iter().filter(|&&b| b >= 0xC0).count();
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(bytes);
        let mut chunks = buf.utf8_chunks().peekable();
        while let Some(chunk) = chunks.next() {
            self.multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
            let bad = chunk.invalid();
            // The last bytes may be a character that the next chunk completes.
            let incomplete = chunks.peek().is_none()
                && !bad.is_empty()
                && std::str::from_utf8(bad).is_err_and(|e| e.error_len().is_none());
            if incomplete {
                self.carry = bad.to_vec();
            } else {
                self.invalid += bad.len();
            }
        }
    }

    /// The encoding [`decode`] would have chosen.
    pub fn finish(self) -> Encoding {
        let invalid = self.invalid + self.carry.len();
        if invalid == 0 {
            Encoding::Utf8
        } else if self.multibyte > invalid {
            Encoding::Utf8Lossy
        } else if self.dos > self.latin {
            Encoding::Cp850
        } else {
            Encoding::Latin1
        }
    }
}

/// Decodes a piece of a document in the encoding chosen for the whole (see [`EncodingProbe`]).
/// A piece must start and end at line breaks, so no character is split.
pub fn decode_as(bytes: &[u8], encoding: Encoding) -> Cow<'_, str> {
    match encoding {
        Encoding::Utf8 | Encoding::Utf8Lossy => String::from_utf8_lossy(bytes),
        Encoding::Cp850 => Cow::Owned(
            bytes
                .iter()
                .map(|&b| {
                    if b < 0x80 {
                        char::from(b)
                    } else {
                        CP850_HIGH[usize::from(b - 0x80)]
                    }
                })
                .collect(),
        ),
        Encoding::Latin1 => Cow::Owned(
            bytes
                .iter()
                .map(|&b| match b {
                    0..0x80 => char::from(b),
                    0x80..0xA0 => CP1252_C1[usize::from(b - 0x80)],
                    _ => char::from(b),
                })
                .collect(),
        ),
    }
}

/// One line of a document: its number (from 1), its byte range in the text and its content
/// without the line break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub number: usize,
    pub start: usize,
    pub end: usize,
    pub text: &'a str,
}

/// The lines of a text, split on CRLF, LF or CR.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    text: &'a str,
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Self {
        Lines {
            text,
            pos: 0,
            number: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        let bytes = self.text.as_bytes();
        if self.pos >= bytes.len() {
            return None;
        }
        let start = self.pos;
        let (end, next) = match memchr::memchr2(b'\r', b'\n', &bytes[start..]) {
            Some(i) => {
                let end = start + i;
                let next = if bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n') {
                    end + 2
                } else {
                    end + 1
                };
                (end, next)
            }
            None => (bytes.len(), bytes.len()),
        };
        self.pos = next;
        self.number += 1;
        // `start` and `end` sit next to ASCII line breaks or the ends of the text, so both
        // are character boundaries.
        Some(Line {
            number: self.number,
            start,
            end,
            text: &self.text[start..end],
        })
    }
}

/// The lines of a field value (no numbering), split like [`Lines`].
pub fn value_lines(value: &str) -> impl Iterator<Item = &str> {
    Lines::new(value).map(|l| l.text)
}

/// DOS code page 850 (Western Europe), bytes 0x80 to 0xFF.
const CP850_HIGH: [char; 128] = [
    '\u{00C7}', '\u{00FC}', '\u{00E9}', '\u{00E2}', '\u{00E4}', '\u{00E0}', '\u{00E5}', '\u{00E7}',
    '\u{00EA}', '\u{00EB}', '\u{00E8}', '\u{00EF}', '\u{00EE}', '\u{00EC}', '\u{00C4}', '\u{00C5}',
    '\u{00C9}', '\u{00E6}', '\u{00C6}', '\u{00F4}', '\u{00F6}', '\u{00F2}', '\u{00FB}', '\u{00F9}',
    '\u{00FF}', '\u{00D6}', '\u{00DC}', '\u{00F8}', '\u{00A3}', '\u{00D8}', '\u{00D7}', '\u{0192}',
    '\u{00E1}', '\u{00ED}', '\u{00F3}', '\u{00FA}', '\u{00F1}', '\u{00D1}', '\u{00AA}', '\u{00BA}',
    '\u{00BF}', '\u{00AE}', '\u{00AC}', '\u{00BD}', '\u{00BC}', '\u{00A1}', '\u{00AB}', '\u{00BB}',
    '\u{2591}', '\u{2592}', '\u{2593}', '\u{2502}', '\u{2524}', '\u{00C1}', '\u{00C2}', '\u{00C0}',
    '\u{00A9}', '\u{2563}', '\u{2551}', '\u{2557}', '\u{255D}', '\u{00A2}', '\u{00A5}', '\u{2510}',
    '\u{2514}', '\u{2534}', '\u{252C}', '\u{251C}', '\u{2500}', '\u{253C}', '\u{00E3}', '\u{00C3}',
    '\u{255A}', '\u{2554}', '\u{2569}', '\u{2566}', '\u{2560}', '\u{2550}', '\u{256C}', '\u{00A4}',
    '\u{00F0}', '\u{00D0}', '\u{00CA}', '\u{00CB}', '\u{00C8}', '\u{0131}', '\u{00CD}', '\u{00CE}',
    '\u{00CF}', '\u{2518}', '\u{250C}', '\u{2588}', '\u{2584}', '\u{00A6}', '\u{00CC}', '\u{2580}',
    '\u{00D3}', '\u{00DF}', '\u{00D4}', '\u{00D2}', '\u{00F5}', '\u{00D5}', '\u{00B5}', '\u{00FE}',
    '\u{00DE}', '\u{00DA}', '\u{00DB}', '\u{00D9}', '\u{00FD}', '\u{00DD}', '\u{00AF}', '\u{00B4}',
    '\u{00AD}', '\u{00B1}', '\u{2017}', '\u{00BE}', '\u{00B6}', '\u{00A7}', '\u{00F7}', '\u{00B8}',
    '\u{00B0}', '\u{00A8}', '\u{00B7}', '\u{00B9}', '\u{00B3}', '\u{00B2}', '\u{25A0}', '\u{00A0}',
];

/// Windows-1252 letters and signs at 0x80 to 0x9F (C1 controls in ISO-8859-1 proper).
const CP1252_C1: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_borrowed_and_a_bom_dropped() {
        let (t, e) = decode(b"\xEF\xBB\xBF:20:X");
        assert_eq!(t, ":20:X");
        assert!(matches!(t, Cow::Borrowed(_)));
        assert_eq!(e, Encoding::Utf8);
    }

    #[test]
    fn dos_code_page_bytes_become_letters() {
        // "Bankon belüli átutalás" as a Hungarian DOS system writes it.
        let (t, e) = decode(b"Bankon bel\x81li \xA0tutal\xA0s");
        assert_eq!(e, Encoding::Cp850);
        assert_eq!(t, "Bankon belüli átutalás");
    }

    #[test]
    fn latin1_bytes_become_letters() {
        let (t, e) = decode(b"K\xE4se \x80");
        assert_eq!(e, Encoding::Latin1);
        assert_eq!(t, "Käse €");
    }

    #[test]
    fn a_stray_byte_in_utf8_text_keeps_the_rest_utf8() {
        let mut bytes = "Käse Müller ß".as_bytes().to_vec();
        bytes.push(0xFF);
        let (t, e) = decode(&bytes);
        assert_eq!(e, Encoding::Utf8Lossy);
        assert_eq!(t, "Käse Müller ß\u{FFFD}");
    }

    #[test]
    fn the_probe_over_chunks_chooses_what_decode_chooses() {
        let samples: [&[u8]; 4] = [
            "Käse Müller ß €".as_bytes(),
            b"Bankon bel\x81li \xA0tutal\xA0s",
            b"K\xE4se \x80",
            b"K\xC3\xA4se \xFF M\xC3\xBCller \xC3\xA9t\xC3\xA9",
        ];
        for bytes in samples {
            for split in 0..=bytes.len() {
                let mut probe = EncodingProbe::default();
                probe.push(&bytes[..split]);
                probe.push(&bytes[split..]);
                assert_eq!(
                    probe.finish(),
                    decode(bytes).1,
                    "{bytes:?} split at {split}"
                );
            }
            let (whole, encoding) = decode(bytes);
            assert_eq!(decode_as(bytes, encoding), whole);
        }
    }

    #[test]
    fn lines_split_on_crlf_lf_and_cr_alone() {
        let lines: Vec<_> = Lines::new("a\r\nb\nc\rd")
            .map(|l| (l.number, l.text))
            .collect();
        assert_eq!(lines, vec![(1, "a"), (2, "b"), (3, "c"), (4, "d")]);
        let empty: Vec<_> = Lines::new("a\n\nb\n").map(|l| l.text).collect();
        assert_eq!(empty, vec!["a", "", "b"]);
    }
}
