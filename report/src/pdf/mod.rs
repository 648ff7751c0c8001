//! The statement as a PDF: A4 portrait, laid out into pages first ([`layout`], [`table`],
//! [`sections`]), then written with krilla ([`emit`]) once the page count is known.

mod emit;
mod fonts;
mod layout;
mod sections;
mod table;

use std::io::Cursor;

use krilla::image::Image;

use crate::RenderError;
use crate::statement::Statement;
use layout::Flow;
use sections::LogoBox;

pub use sections::NO_DATA;

/// The most memory a logo may take decoded (a 2,000 x 2,000 RGBA image is 16 MB).
const LOGO_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Renders the statement as PDF bytes: A4, paged, "Page n of m" and the firm, client and
/// period on every page, Liberation Sans embedded as subsets.
pub fn render_pdf(statement: &Statement) -> Result<Vec<u8>, RenderError> {
    render_pdf_counted(statement).map(|(pdf, _)| pdf)
}

/// [`render_pdf`] and the number of pages written (what a listing of the file shows).
pub fn render_pdf_counted(statement: &Statement) -> Result<(Vec<u8>, u32), RenderError> {
    statement.check()?;
    let faces = fonts::faces().ok_or(RenderError::Fonts)?;
    let logo = statement
        .firm
        .logo_png
        .as_deref()
        .map(read_logo)
        .transpose()?;
    let mut flow = Flow::new(faces);
    sections::lay_out(&mut flow, statement);
    sections::frame(&mut flow, statement, logo.as_ref().map(|(_, b)| *b));
    let info = emit::Info {
        title: format!(
            "Portfolio statement {} to {}: {}",
            statement.period.from, statement.period.to, statement.client.name
        ),
        author: statement.firm.name.clone(),
        created: statement.generated_at,
    };
    let pages = u32::try_from(flow.pages.len()).unwrap_or(u32::MAX);
    emit::write(faces, &flow.pages, logo.as_ref().map(|(i, _)| i), info).map(|pdf| (pdf, pages))
}

/// The logo as an image for the PDF and its box in the header. The PNG is decoded whole
/// here, because krilla decodes images only when the document is finished: a truncated or
/// corrupt file is refused now, with the decoder's reason.
fn read_logo(png_bytes: &[u8]) -> Result<(Image, LogoBox), RenderError> {
    let logo_error = |e: &dyn std::fmt::Display| RenderError::Logo(e.to_string());
    let decoder = png::Decoder::new_with_limits(
        Cursor::new(png_bytes),
        png::Limits {
            bytes: LOGO_MAX_BYTES,
        },
    );
    let mut reader = decoder.read_info().map_err(|e| logo_error(&e))?;
    let size = reader
        .output_buffer_size()
        .filter(|&n| n <= LOGO_MAX_BYTES)
        .ok_or_else(|| RenderError::Logo("the image is too large".into()))?;
    let mut pixels = vec![0; size];
    reader.next_frame(&mut pixels).map_err(|e| logo_error(&e))?;
    let info = reader.info();
    let logo_box = LogoBox::fit(info.width, info.height)
        .ok_or_else(|| RenderError::Logo("the image has no pixels".into()))?;
    let image = Image::from_png(png_bytes.to_vec().into(), true).map_err(|e| logo_error(&e))?;
    Ok((image, logo_box))
}
