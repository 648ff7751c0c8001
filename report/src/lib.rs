//! Portfolio statements rendered: a computed [`Statement`] (exact decimals, assembled
//! elsewhere from the wealth view's figures) to a PDF ([`render_pdf`]) and to CSV files
//! ([`render_csv`], [`render_csv_zip`]). Both come from the same `Statement`, so they show the
//! same figures: the PDF presents amounts rounded half to even to the currency's minor unit
//! (through `eam_model::wealth::valuation::present`, the platform's one presentation
//! rounding) and percentages to basis points; the CSV files carry every figure exactly as
//! computed, with the presented amount beside it (see [`csv_files`] for the columns).
//!
//! **Invariant:** pure. No database, HTTP, tokio or file system; input in, bytes out. Nothing
//! panics on input: a statement that cannot be rendered (a period ending before it starts, a
//! logo that is not a PNG) is a [`RenderError`].
//!
//! ## Why krilla writes the PDF
//!
//! The PDF must be produced in-process, pure Rust (no headless browser, no external binary),
//! with fonts embedded and text that `pdftotext`, search and copy read back. Four libraries
//! were weighed (December 2026):
//! - **krilla** 0.8 (MIT or Apache-2.0), by the author of typst's PDF export and built on
//!   typst's `pdf-writer`: embeds TrueType/OpenType fonts as subsets (with `subsetter`)
//!   together with the ToUnicode maps extraction needs, draws positioned glyphs, paths and
//!   PNG images, and can later add PDF/A and tagged PDF. Maintained, releases in step with
//!   typst. Its one duplicate in our tree is `miniz_oxide` 0.8 (through `png`), accepted in
//!   `deny.toml`.
//! - **pdf-writer** + **subsetter**: the layer krilla is written on. Using it directly means
//!   writing CID font dictionaries, width arrays, ToUnicode CMaps and image objects by hand,
//!   which is what krilla already does, tested.
//! - **printpdf** 0.12 (MIT): always brings the azul layout engine, `allsorts`, `lopdf`,
//!   `image` and `time` (dozens of crates, several duplicates of ours), and its API was
//!   rewritten twice in two years.
//! - **genpdf** 0.2: a layout layer over printpdf 0.3 and `rusttype`; its last release is from
//!   June 2021 and rusttype is no longer maintained.
//!
//! krilla leaves layout to the caller, so this crate lays out itself ([`pdf`]'s modules):
//! text measured with the font's own advances (`skrifa`, the reader krilla uses), figures
//! right-aligned, tables broken across pages with their header repeated. The fonts are
//! Liberation Sans regular and bold (SIL Open Font License 1.1, `report/fonts/` with the
//! licence), compiled in with `include_bytes!`.

pub mod csv_files;
mod format;
mod pdf;
pub mod statement;

pub use csv_files::{CsvFile, render_csv, render_csv_zip};
pub use pdf::{NO_DATA, render_pdf, render_pdf_counted};
pub use statement::*;

/// Why a statement could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The period ends before it starts.
    #[error("the period ends on {to}, before it starts on {from}")]
    Period {
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    },
    /// The firm's logo is not a PNG that can be decoded.
    #[error("the firm's logo is not a readable PNG: {0}")]
    Logo(String),
    /// The fonts compiled into the crate could not be read (a broken build, not an input).
    #[error("the embedded fonts could not be read")]
    Fonts,
    /// The PDF writer refused the document.
    #[error("writing the PDF failed: {0}")]
    Pdf(String),
    /// Writing a CSV file failed.
    #[error("writing a CSV file failed: {0}")]
    Csv(String),
    /// Writing the zip archive failed.
    #[error("writing the zip archive failed: {0}")]
    Zip(String),
}
