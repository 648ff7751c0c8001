//! The two shipped faces (Liberation Sans regular and bold, SIL Open Font License, files and
//! licence in `report/fonts/`), their metrics, and text measured and cut to a width.
//!
//! Text is laid out here, not by a shaper: one glyph per character from the font's `cmap`,
//! advanced by its `hmtx` width, no kerning. For the Latin text of a statement that is what a
//! shaper would do too, and it makes measuring and drawing the same computation, so a
//! right-aligned figure ends exactly at its column's edge and a cut text never overflows.
//! A character the font lacks is drawn as the font's missing-glyph box (its text still
//! extracts correctly: the PDF maps every glyph back to its characters).

use std::sync::OnceLock;

use krilla::text::{Font, GlyphId, KrillaGlyph};
use skrifa::MetadataProvider;
use skrifa::charmap::Charmap;
use skrifa::instance::{LocationRef, Size};
use skrifa::metrics::GlyphMetrics;
use skrifa::raw::FontRef;
use skrifa::raw::TableProvider;

const REGULAR: &[u8] = include_bytes!("../../fonts/LiberationSans-Regular.ttf");
const BOLD: &[u8] = include_bytes!("../../fonts/LiberationSans-Bold.ttf");

/// What marks a text cut to fit.
const ELLIPSIS: char = '\u{2026}';

/// A typeface of the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Regular,
    Bold,
}

/// One face: the font for the PDF writer and the tables to measure with.
pub struct Metrics {
    pub font: Font,
    charmap: Charmap<'static>,
    glyphs: GlyphMetrics<'static>,
    units_per_em: f32,
}

/// Both faces, read once per process.
pub struct Faces {
    regular: Metrics,
    bold: Metrics,
}

/// The shipped faces; `None` only if a font file in the repository were unreadable (a test
/// renders a statement, so that cannot ship).
pub fn faces() -> Option<&'static Faces> {
    static FACES: OnceLock<Option<Faces>> = OnceLock::new();
    FACES
        .get_or_init(|| {
            Some(Faces {
                regular: Metrics::read(REGULAR)?,
                bold: Metrics::read(BOLD)?,
            })
        })
        .as_ref()
}

impl Metrics {
    fn read(data: &'static [u8]) -> Option<Metrics> {
        let font_ref = FontRef::new(data).ok()?;
        let units_per_em = f32::from(font_ref.head().ok()?.units_per_em());
        Some(Metrics {
            font: Font::new(data.into(), 0)?,
            charmap: font_ref.charmap(),
            glyphs: font_ref.glyph_metrics(Size::unscaled(), LocationRef::default()),
            units_per_em,
        })
    }

    /// The glyph for a character (the missing-glyph box when the font lacks it) and its
    /// advance in ems.
    fn glyph(&self, ch: char) -> (GlyphId, f32) {
        // A control character (a line break in a name) takes a space's place.
        let ch = if ch.is_control() { ' ' } else { ch };
        let id = self.charmap.map(ch).unwrap_or_default();
        let advance = self.glyphs.advance_width(id).unwrap_or(0.0) / self.units_per_em;
        (GlyphId::new(id.to_u32()), advance)
    }

    /// The width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.glyph(c).1).sum::<f32>() * size
    }

    /// The glyphs that draw `text`, each mapped back to its character.
    pub fn glyphs(&self, text: &str) -> Vec<KrillaGlyph> {
        text.char_indices()
            .map(|(i, c)| {
                let (id, advance) = self.glyph(c);
                KrillaGlyph::new(id, advance, 0.0, 0.0, 0.0, i..i + c.len_utf8(), None)
            })
            .collect()
    }

    /// `text` as it fits in `width`: whole, or cut with an ellipsis.
    pub fn fit(&self, text: &str, size: f32, width: f32) -> String {
        if self.width(text, size) <= width {
            return text.to_owned();
        }
        let budget = width - self.glyph(ELLIPSIS).1 * size;
        let mut used = 0.0;
        let mut out = String::new();
        for c in text.chars() {
            used += self.glyph(c).1 * size;
            if used > budget {
                break;
            }
            out.push(c);
        }
        let mut out = out.trim_end().to_owned();
        out.push(ELLIPSIS);
        out
    }

    /// `text` in lines no wider than `width`, broken at spaces (inside a word only when the
    /// word alone is wider), at most `max_lines` of them, the last cut with an ellipsis when
    /// text remains.
    pub fn wrap(&self, text: &str, size: f32, width: f32, max_lines: usize) -> Vec<String> {
        let max_lines = max_lines.max(1);
        let mut lines: Vec<String> = Vec::new();
        let mut current = String::new();
        for word in text.split_whitespace() {
            let candidate = if current.is_empty() {
                word.to_owned()
            } else {
                format!("{current} {word}")
            };
            if self.width(&candidate, size) <= width {
                current = candidate;
                continue;
            }
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            // A word wider than the column is broken where it reaches the edge.
            let mut rest = word;
            while self.width(rest, size) > width {
                let cut = self.prefix_within(rest, size, width);
                lines.push(rest[..cut].to_owned());
                rest = &rest[cut..];
            }
            current = rest.to_owned();
        }
        if !current.is_empty() || lines.is_empty() {
            lines.push(current);
        }
        if lines.len() > max_lines {
            let rest = lines[max_lines - 1..].join(" ");
            lines.truncate(max_lines - 1);
            lines.push(self.fit(&format!("{rest}{ELLIPSIS}"), size, width));
        }
        lines
    }

    /// The byte length of the longest prefix of `text` no wider than `width` (at least one
    /// character, so breaking always advances).
    fn prefix_within(&self, text: &str, size: f32, width: f32) -> usize {
        let mut used = 0.0;
        let mut end = 0;
        for (i, c) in text.char_indices() {
            used += self.glyph(c).1 * size;
            if used > width && i > 0 {
                break;
            }
            end = i + c.len_utf8();
        }
        end
    }
}

impl Faces {
    /// One face's metrics.
    pub fn get(&self, face: Face) -> &Metrics {
        match face {
            Face::Regular => &self.regular,
            Face::Bold => &self.bold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regular() -> &'static Metrics {
        faces().expect("the shipped fonts read").get(Face::Regular)
    }

    #[test]
    fn digits_have_one_width_so_figures_align() {
        let m = regular();
        assert_eq!(m.width("1111", 10.0), m.width("8888", 10.0));
    }

    #[test]
    fn fit_cuts_with_an_ellipsis_within_the_width() {
        let m = regular();
        let text = "Nestlé SA registered shares, a very long security name indeed";
        let cut = m.fit(text, 8.0, 100.0);
        assert!(cut.ends_with(ELLIPSIS));
        assert!(m.width(&cut, 8.0) <= 100.0);
        assert_eq!(m.fit("short", 8.0, 100.0), "short");
    }

    #[test]
    fn wrap_breaks_at_spaces_and_never_exceeds_the_width_or_the_lines() {
        let m = regular();
        let text = "Transfer to account CH9300762011623852957 reference INV-2026-11-0042 \
                    monthly management fee and custody charges";
        let lines = m.wrap(text, 7.5, 120.0, 2);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| m.width(l, 7.5) <= 120.0), "{lines:?}");
        assert!(lines[1].ends_with(ELLIPSIS));
        let one = m.wrap("Fee", 7.5, 120.0, 2);
        assert_eq!(one, vec!["Fee".to_owned()]);
        let long_word = m.wrap(&"X".repeat(200), 7.5, 50.0, 3);
        assert_eq!(long_word.len(), 3);
        assert!(long_word.iter().all(|l| m.width(l, 7.5) <= 50.0));
        assert_eq!(m.wrap("", 7.5, 50.0, 2), vec![String::new()]);
    }
}
