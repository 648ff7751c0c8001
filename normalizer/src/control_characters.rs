//! Control characters in statement text: removed, and said.
//!
//! Back-office exports pad fields with NUL or carry stray C0 codes (form feeds from a print
//! spool, escape sequences). PostgreSQL `text` refuses NUL outright, so one NUL in a narrative
//! would fail the whole load; the others only garble what support reads. They carry nothing a
//! bank meant, so the parsers remove every C0 code but tab, line feed and carriage return,
//! before reading (SWIFT: the decoded file; ISO 20022: each element's text), and leave one
//! warning saying where. SOH and ETX are left to the SWIFT tokenizer, which reads them as the
//! file transfer framing they are.
//!
//! The check runs over every byte of every file, so it is written to vectorise: a branch-free
//! test per byte, OR-ed over 64-byte chunks, and the rare dirty input takes the slow path.

/// True when `bytes` hold a C0 code other than tab, LF, CR and the `also_allowed` ones.
pub(crate) fn any(bytes: &[u8], also_allowed: &[u8]) -> bool {
    if also_allowed.contains(&0x01) || also_allowed.contains(&0x03) {
        any_in::<true>(bytes)
    } else {
        any_in::<false>(bytes)
    }
}

/// [`any`] with SOH and ETX allowed (`FRAMING`) or not, fixed at compile time so that the
/// test per byte is a handful of vector comparisons.
fn any_in<const FRAMING: bool>(bytes: &[u8]) -> bool {
    let bad = |b: u8| {
        let framing = FRAMING && (b == 0x01 || b == 0x03);
        u8::from(b < 0x20)
            & u8::from(b != b'\t')
            & u8::from(b != b'\n')
            & u8::from(b != b'\r')
            & u8::from(!framing)
    };
    // Fixed-size blocks, OR-ed without a branch: the compiler turns each into vector code.
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        if let Ok(block) = <&[u8; 64]>::try_from(block)
            && block.iter().fold(0u8, |acc, &b| acc | bad(b)) != 0
        {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| bad(b) != 0)
}

/// True for a character [`remove`] drops.
fn is_removed(c: char, also_allowed: &[u8]) -> bool {
    c < ' ' && !matches!(c, '\t' | '\n' | '\r') && !also_allowed.contains(&(c as u8))
}

/// `s` without its control characters (see the module docs) and how many were removed.
pub(crate) fn remove(s: &str, also_allowed: &[u8]) -> (String, usize) {
    let mut removed = 0;
    let kept = s
        .chars()
        .filter(|&c| {
            let drop = is_removed(c, also_allowed);
            removed += usize::from(drop);
            !drop
        })
        .collect();
    (kept, removed)
}

/// The warning for `count` control characters removed, listing the first lines they were on.
pub(crate) fn message(count: usize, lines: &[usize]) -> String {
    const SHOWN: usize = 10;
    let mut list: Vec<String> = lines.iter().take(SHOWN).map(usize::to_string).collect();
    if lines.len() > SHOWN {
        list.push(format!("and {} more", lines.len() - SHOWN));
    }
    let s = if count == 1 { "" } else { "s" };
    let where_ = if lines.is_empty() {
        String::new()
    } else {
        format!(
            " on line{} {}",
            if lines.len() == 1 { "" } else { "s" },
            list.join(", ")
        )
    };
    format!("{count} control character{s} (NUL or another C0 code) removed from the text{where_}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_c0_codes_other_than_tab_and_line_ends_are_found_and_removed() {
        assert!(!any(b"plain\ttext\r\nwith breaks", &[]));
        assert!(any(b"a\0b", &[]));
        assert!(any(b"\x01frame", &[]));
        assert!(!any(b"\x01frame\x03", &[0x01, 0x03]));
        let long = format!("{}\u{0C}", "x".repeat(200));
        assert!(any(long.as_bytes(), &[]));
        assert_eq!(
            remove("Miete\0\0 Januar\u{1B}[0m\tok", &[]),
            ("Miete Januar[0m\tok".to_owned(), 3)
        );
        assert_eq!(
            message(3, &[4, 9]),
            "3 control characters (NUL or another C0 code) removed from the text on lines 4, 9"
        );
    }
}
