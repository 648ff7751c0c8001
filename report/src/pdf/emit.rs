//! The laid-out pages written as a PDF with krilla: text as glyphs of the embedded, subset
//! fonts (each glyph mapped back to its characters, so the text can be searched, copied and
//! extracted), rectangles, rules and the logo.

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::image::Image;
use krilla::metadata::{DateTime, Metadata};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;

use super::fonts::Faces;
use super::layout::{Op, PAGE_HEIGHT, PAGE_WIDTH, Page, Rgb};
use crate::RenderError;

/// The document's information dictionary.
pub struct Info {
    pub title: String,
    pub author: String,
    pub created: chrono::DateTime<chrono::Utc>,
}

/// Writes `pages` as PDF bytes.
pub fn write(
    faces: &Faces,
    pages: &[Page],
    logo: Option<&Image>,
    info: Info,
) -> Result<Vec<u8>, RenderError> {
    let mut document = Document::new();
    document.set_metadata(metadata(info));
    let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
        .ok_or_else(|| RenderError::Pdf("A4 is not a valid page size".into()))?;
    for page in pages {
        let mut pdf_page = document.start_page_with(settings.clone());
        let mut surface = pdf_page.surface();
        for op in &page.ops {
            draw(&mut surface, faces, logo, op);
        }
        surface.finish();
        pdf_page.finish();
    }
    document
        .finish()
        .map_err(|e| RenderError::Pdf(e.to_string()))
}

fn metadata(info: Info) -> Metadata {
    use chrono::{Datelike, Timelike};
    let t = info.created;
    // Calendar fields are in range by chrono's construction; the casts only narrow the type.
    let created = DateTime::new(t.year().clamp(0, 9999) as u16)
        .month(t.month() as u8)
        .day(t.day() as u8)
        .hour(t.hour() as u8)
        .minute(t.minute() as u8)
        .second(t.second() as u8)
        .utc_offset_hour(0)
        .utc_offset_minute(0);
    Metadata::new()
        .title(info.title)
        .authors(vec![info.author])
        .creator("EAM platform (eam-report)".to_owned())
        .language("en".to_owned())
        .creation_date(created)
}

fn draw(surface: &mut Surface<'_>, faces: &Faces, logo: Option<&Image>, op: &Op) {
    match op {
        Op::Text {
            x,
            baseline,
            face,
            size,
            color,
            text,
        } => {
            if text.is_empty() {
                return;
            }
            let metrics = faces.get(*face);
            surface.set_stroke(None);
            surface.set_fill(Some(fill(*color)));
            surface.draw_glyphs(
                Point::from_xy(*x, *baseline),
                &metrics.glyphs(text),
                metrics.font.clone(),
                text,
                *size,
                false,
            );
        }
        Op::Rect { x, y, w, h, color } => {
            let Some(rect) = Rect::from_xywh(*x, *y, *w, *h) else {
                return;
            };
            let mut path = PathBuilder::new();
            path.push_rect(rect);
            if let Some(path) = path.finish() {
                surface.set_stroke(None);
                surface.set_fill(Some(fill(*color)));
                surface.draw_path(&path);
            }
        }
        Op::Line {
            x1,
            y1,
            x2,
            y2,
            width,
            color,
        } => {
            let mut path = PathBuilder::new();
            path.move_to(*x1, *y1);
            path.line_to(*x2, *y2);
            if let Some(path) = path.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke {
                    paint: paint(*color),
                    width: *width,
                    ..Stroke::default()
                }));
                surface.draw_path(&path);
            }
        }
        Op::Logo { x, y, w, h } => {
            let (Some(image), Some(size)) = (logo, Size::from_wh(*w, *h)) else {
                return;
            };
            surface.push_transform(&Transform::from_translate(*x, *y));
            surface.draw_image(image.clone(), size);
            surface.pop();
        }
    }
}

fn paint(color: Rgb) -> krilla::paint::Paint {
    rgb::Color::new(color.0, color.1, color.2).into()
}

fn fill(color: Rgb) -> Fill {
    Fill {
        paint: paint(color),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}
