//! `:86:` information to the account owner, and its German structured form.
//!
//! German banks (the DFÜ agreement of the Deutsche Kreditwirtschaft) write `:86:` as a
//! three-digit business transaction code (GVC) followed by subfields `?NN`: `?00` posting text,
//! `?10` primanota, `?20`-`?29` and `?60`-`?63` purpose, `?30` counterparty BIC (or bank code),
//! `?31` counterparty IBAN (or account), `?32`-`?33` counterparty name, `?34` text key
//! extension. The separator is usually `?` but is whatever the fourth character is (Triodos
//! writes `>`). Lines wrap at 65 characters anywhere, even between `?` and the subfield
//! number (`?3` / `4997`), so the lines are joined without a separator before splitting.
//!
//! Inside the purpose, SEPA payments carry keywords (`EREF+`, `KREF+`, `MREF+`, `CRED+`,
//! `SVWZ+`, `ABWA+` ...); [`Details::sepa`] reads one. Anything else is free text whose lines
//! are kept, joined by a line break.

/// The SEPA keywords that may start a part of a German purpose text.
const SEPA_KEYWORDS: &[&str] = &[
    "EREF", "KREF", "MREF", "CRED", "DEBT", "SVWZ", "ABWA", "ABWE", "IBAN", "BIC", "COAM", "OAMT",
    "SQTP", "PURP",
];

/// The parts of a `:86:` text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// True for the German `NNN?00...` form.
    pub structured: bool,
    /// Business transaction code (GVC), e.g. `166`.
    pub code: Option<String>,
    pub posting_text: Option<String>,
    pub prima_nota: Option<String>,
    /// Purpose (`?20`-`?29`, `?60`-`?63`) joined, or the whole free text.
    pub purpose: String,
    pub counterparty_bic: Option<String>,
    pub counterparty_account: Option<String>,
    pub counterparty_name: Option<String>,
    pub text_key_extension: Option<String>,
}

impl Details {
    /// Reads a `:86:` value (continuation lines included). Never fails: text that is not the
    /// structured form is free text.
    pub fn parse(raw: &str) -> Details {
        let Some(joined) = structured_text(raw) else {
            return Details {
                purpose: free_text(raw),
                ..Details::default()
            };
        };
        let mut d = Details {
            structured: true,
            code: joined.get(..3).map(str::to_owned),
            ..Details::default()
        };
        let mut name = String::new();
        let keep = |t: &str| Some(t.trim().to_owned()).filter(|t| !t.is_empty());
        for (num, text) in subfields(&joined) {
            match num {
                "00" => d.posting_text = keep(text),
                "10" => d.prima_nota = keep(text),
                "30" => d.counterparty_bic = keep(text),
                "31" => d.counterparty_account = keep(text),
                "32" | "33" => name.push_str(text),
                "34" => d.text_key_extension = keep(text),
                n if is_purpose(n) => d.purpose.push_str(text),
                _ => {}
            }
        }
        d.counterparty_name = Some(name.trim().to_owned()).filter(|n| !n.is_empty());
        d
    }

    /// The value of a SEPA keyword in the purpose (`SVWZ` -> remittance text), up to the next
    /// keyword.
    pub fn sepa(&self, keyword: &str) -> Option<&str> {
        sepa_range(&self.purpose, keyword).map(|(a, b)| &self.purpose[a..b])
    }

    /// What a person reads as the entry's text: the SEPA remittance (`SVWZ+`) when there is
    /// one, else the purpose, else the posting text.
    pub fn description(&self) -> Option<String> {
        describe(self.purpose.clone(), self.posting_text.as_deref())
    }
}

/// What the canonical mapping needs of a `:86:` text, read with as few copies as possible (it
/// runs once per entry): the GVC, the description ([`Details::description`]) and the
/// counterparty name.
pub(crate) struct Summary {
    pub code: Option<[u8; 3]>,
    pub description: Option<String>,
    pub counterparty: Option<String>,
}

/// Summarizes an owned `:86:` text, reusing its buffer for the description and `scratch` for
/// the joined lines: one allocation fewer per entry than [`Details::parse`].
pub(crate) fn summarize(mut raw: String, scratch: &mut String) -> Summary {
    let b = raw.as_bytes();
    let structured = b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && (b.len() == 3 || is_separator(b[3]));
    if !structured {
        let purpose = if memchr::memchr2(b'\r', b'\n', b).is_some() {
            free_text(&raw)
        } else {
            raw
        };
        return Summary {
            code: None,
            description: describe(purpose, None),
            counterparty: None,
        };
    }
    scratch.clear();
    for line in crate::swift::text::value_lines(&raw) {
        scratch.push_str(line);
    }
    let joined = scratch.as_str();
    let code = joined
        .as_bytes()
        .get(..3)
        .and_then(|c| <[u8; 3]>::try_from(c).ok());
    raw.clear();
    let mut purpose = raw;
    let mut posting = None;
    let mut name = String::new();
    for (num, text) in subfields(joined) {
        match num {
            "00" => posting = Some(text.trim()).filter(|t| !t.is_empty()),
            "32" | "33" => name.push_str(text),
            n if is_purpose(n) => purpose.push_str(text),
            _ => {}
        }
    }
    let trimmed = name.trim();
    let counterparty = if trimmed.is_empty() {
        None
    } else if trimmed.len() == name.len() {
        Some(name)
    } else {
        Some(trimmed.to_owned())
    };
    Summary {
        code,
        description: describe(purpose, posting),
        counterparty,
    }
}

/// The SEPA remittance of `purpose` when there is one, else `purpose`, else `posting`: reuses
/// the purpose's buffer.
fn describe(mut purpose: String, posting: Option<&str>) -> Option<String> {
    let (start, end) = match sepa_range(&purpose, "SVWZ") {
        Some(r) => r,
        None => {
            let start = purpose.len() - purpose.trim_start().len();
            (start, purpose.trim_end().len().max(start))
        }
    };
    purpose.truncate(end);
    purpose.drain(..start);
    if purpose.trim().is_empty() {
        return posting.map(str::to_owned);
    }
    Some(purpose)
}

/// The `(start, end)` of a SEPA keyword's value in a purpose text, trimmed.
fn sepa_range(text: &str, keyword: &str) -> Option<(usize, usize)> {
    let start = keyword_positions(text).find(|(_, k)| *k == keyword)?.0 + keyword.len() + 1;
    let end = keyword_positions(&text[start..])
        .next()
        .map_or(text.len(), |(i, _)| start + i);
    let value = &text[start..end];
    let lead = value.len() - value.trim_start().len();
    let v = value.trim();
    (!v.is_empty()).then_some((start + lead, start + lead + v.len()))
}

/// The lines of a structured `:86:` joined without separator (borrowed when it is one line),
/// or `None` for free text.
fn structured_text(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    let b = raw.as_bytes();
    let structured = b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && (b.len() == 3 || is_separator(b[3]));
    if !structured {
        return None;
    }
    Some(if memchr::memchr2(b'\r', b'\n', b).is_some() {
        let mut joined = String::with_capacity(raw.len());
        for line in crate::swift::text::value_lines(raw) {
            joined.push_str(line);
        }
        std::borrow::Cow::Owned(joined)
    } else {
        std::borrow::Cow::Borrowed(raw)
    })
}

/// Free text with its lines joined by a line break.
fn free_text(raw: &str) -> String {
    let mut purpose = String::with_capacity(raw.len());
    for (i, line) in crate::swift::text::value_lines(raw).enumerate() {
        if i > 0 {
            purpose.push('\n');
        }
        purpose.push_str(line);
    }
    purpose
}

/// The `?NN` subfields of a structured text: number and text. The separator is the fourth
/// byte, which the callers have checked is ASCII (see [`is_separator`]), so every cut is a
/// character boundary.
fn subfields(joined: &str) -> impl Iterator<Item = (&str, &str)> {
    let (sep, body) = match joined.as_bytes().get(3) {
        Some(&sep) => (sep, joined.get(4..).unwrap_or_default()),
        None => (b'?', ""),
    };
    let ends = memchr::memchr_iter(sep, body.as_bytes()).chain(std::iter::once(body.len()));
    let mut start = 0;
    ends.filter_map(move |end| {
        let part = body.get(start..end);
        start = end + 1;
        let part = part?;
        let (num, text) = (part.get(..2)?, part.get(2..)?);
        num.bytes()
            .all(|c| c.is_ascii_digit())
            .then_some((num, text))
    })
}

/// `20` to `29` and `60` to `63`: the subfields of the purpose (`num` is two digits).
fn is_purpose(num: &str) -> bool {
    matches!(num.as_bytes(), [b'2', _] | [b'6', b'0'..=b'3'])
}

/// Positions of `KEYWORD+` in a purpose text, in order.
fn keyword_positions(text: &str) -> impl Iterator<Item = (usize, &'static str)> + '_ {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b'+', bytes).filter_map(move |plus| {
        SEPA_KEYWORDS.iter().find_map(|k| {
            let start = plus.checked_sub(k.len())?;
            // The keywords are ASCII: equal bytes start at a character boundary.
            (bytes.get(start..plus) == Some(k.as_bytes())).then_some((start, *k))
        })
    })
}

fn is_separator(b: u8) -> bool {
    !b.is_ascii_alphanumeric() && !b.is_ascii_whitespace() && b.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn german_subfields_survive_a_line_break_inside_the_marker() {
        let raw = "177?00ONLINE-UEBERWEISUNG?109310?20KREF+HKCCS12345?21SVWZ+323\r\n01000-P111111-33333?22333?23DATUM 02.09.2019, 22.19 UHR?241.TAN 0\r\n12345?30DEUTDEBBXXX?31DExx123412341234123431?32EMPFAENGER ABCDE?3\r\n4997";
        let d = Details::parse(raw);
        assert!(d.structured);
        assert_eq!(d.code.as_deref(), Some("177"));
        assert_eq!(d.posting_text.as_deref(), Some("ONLINE-UEBERWEISUNG"));
        assert_eq!(d.counterparty_name.as_deref(), Some("EMPFAENGER ABCDE"));
        assert_eq!(d.text_key_extension.as_deref(), Some("997"));
        assert_eq!(d.sepa("KREF"), Some("HKCCS12345"));
        assert_eq!(
            d.sepa("SVWZ"),
            Some("32301000-P111111-33333333DATUM 02.09.2019, 22.19 UHR1.TAN 012345")
        );
    }

    #[test]
    fn another_separator_character_is_honoured() {
        let d = Details::parse("000>100987654321\n>20ALGEMENE TUSSENREKENING KOS>21TEN");
        assert_eq!(d.prima_nota.as_deref(), Some("0987654321"));
        assert_eq!(d.purpose, "ALGEMENE TUSSENREKENING KOSTEN");
    }

    #[test]
    fn free_text_keeps_its_lines() {
        let d = Details::parse("GIRO 428428 KPN\r\nINCL. 1,44 BTW");
        assert!(!d.structured);
        assert_eq!(d.purpose, "GIRO 428428 KPN\nINCL. 1,44 BTW");
        assert_eq!(
            d.description().as_deref(),
            Some("GIRO 428428 KPN\nINCL. 1,44 BTW")
        );
    }

    #[test]
    fn a_bare_code_is_structured_with_nothing_else() {
        let d = Details::parse("091");
        assert_eq!(d.code.as_deref(), Some("091"));
        assert_eq!(d.description(), None);
    }
}
