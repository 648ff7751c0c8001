//! Pages as lists of drawing operations, and the cursor that fills them top to bottom.
//!
//! The statement is laid out completely before anything is written as PDF: only then is the
//! number of pages known, which every footer's "Page n of m" needs. Coordinates are points
//! from the page's top-left corner, y growing downwards; text is placed by its baseline.

use super::fonts::{Face, Faces};

/// A4 portrait, in points.
pub const PAGE_WIDTH: f32 = 595.28;
pub const PAGE_HEIGHT: f32 = 841.89;
/// Left and right margin.
pub const MARGIN: f32 = 40.0;
/// The width between the margins.
pub const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;
/// Where the body starts, below the header.
pub const BODY_TOP: f32 = 86.0;
/// Where the body ends, above the footer.
pub const BODY_BOTTOM: f32 = PAGE_HEIGHT - 50.0;

/// A colour, 8 bits per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// Body text.
pub const INK: Rgb = Rgb(33, 37, 41);
/// Secondary text: ISINs, dates in footers, explanations.
pub const MUTED: Rgb = Rgb(104, 112, 120);
/// Negative figures and warnings: dark enough to read in black and white print.
pub const NEGATIVE: Rgb = Rgb(168, 20, 38);
/// Headings and the header's accent.
pub const ACCENT: Rgb = Rgb(22, 60, 110);
/// Rules between rows.
pub const RULE: Rgb = Rgb(206, 212, 218);
/// Every other table row.
pub const STRIPE: Rgb = Rgb(245, 247, 249);
/// Table header rows and group rows.
pub const SHADE: Rgb = Rgb(229, 234, 240);

/// One drawing operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A single line of text starting at `x` on `baseline`.
    Text {
        x: f32,
        baseline: f32,
        face: Face,
        size: f32,
        color: Rgb,
        text: String,
    },
    /// A filled rectangle.
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: Rgb,
    },
    /// A straight line.
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
        color: Rgb,
    },
    /// The firm's logo scaled into this box.
    Logo { x: f32, y: f32, w: f32, h: f32 },
}

/// One page's operations, in drawing order.
#[derive(Debug, Default)]
pub struct Page {
    pub ops: Vec<Op>,
}

/// The pages laid out so far and where the next content goes.
pub struct Flow {
    pub faces: &'static Faces,
    pub pages: Vec<Page>,
    /// The top of the free space on the last page.
    y: f32,
}

impl Flow {
    /// One empty page.
    pub fn new(faces: &'static Faces) -> Flow {
        Flow {
            faces,
            pages: vec![Page::default()],
            y: BODY_TOP,
        }
    }

    /// The top of the free space.
    pub fn y(&self) -> f32 {
        self.y
    }

    /// Moves the top of the free space down.
    pub fn advance(&mut self, dy: f32) {
        self.y += dy;
    }

    /// Starts a new page.
    pub fn new_page(&mut self) {
        self.pages.push(Page::default());
        self.y = BODY_TOP;
    }

    /// Starts a new page unless `height` still fits on this one (or this one is empty:
    /// something taller than a page goes on one anyway, clipped by nothing but the footer's
    /// margin). True when a page was started.
    pub fn ensure(&mut self, height: f32) -> bool {
        if self.y + height <= BODY_BOTTOM || self.y <= BODY_TOP {
            return false;
        }
        self.new_page();
        true
    }

    /// Adds an operation to the current page.
    pub fn push(&mut self, op: Op) {
        if let Some(page) = self.pages.last_mut() {
            page.ops.push(op);
        }
    }

    /// A line of text starting at `x`.
    pub fn text(&mut self, x: f32, baseline: f32, style: Style, text: impl Into<String>) {
        let mut text = text.into();
        if text.contains(char::is_control) {
            text = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
        }
        self.push(Op::Text {
            x,
            baseline,
            face: style.face,
            size: style.size,
            color: style.color,
            text,
        });
    }

    /// A line of text ending at `right`.
    pub fn text_right(&mut self, right: f32, baseline: f32, style: Style, text: impl Into<String>) {
        let text = text.into();
        let width = self.faces.get(style.face).width(&text, style.size);
        self.text(right - width, baseline, style, text);
    }

    /// A filled rectangle.
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Rgb) {
        self.push(Op::Rect { x, y, w, h, color });
    }

    /// A horizontal rule across `width` from `x` at `y`.
    pub fn rule(&mut self, x: f32, y: f32, width: f32, weight: f32, color: Rgb) {
        self.push(Op::Line {
            x1: x,
            y1: y,
            x2: x + width,
            y2: y,
            width: weight,
            color,
        });
    }

    /// Text wrapped to the content width, line by line (a paragraph may go over a page).
    pub fn paragraph(&mut self, text: &str, style: Style) {
        let metrics = self.faces.get(style.face);
        for line in metrics.wrap(text, style.size, CONTENT_WIDTH, usize::MAX) {
            let height = style.line_height();
            self.ensure(height);
            let baseline = self.y + style.size;
            self.text(MARGIN, baseline, style, line);
            self.advance(height);
        }
    }
}

/// How a text is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    pub face: Face,
    pub size: f32,
    pub color: Rgb,
}

impl Style {
    /// Regular ink at `size`.
    pub const fn regular(size: f32) -> Style {
        Style {
            face: Face::Regular,
            size,
            color: INK,
        }
    }

    /// Bold ink at `size`.
    pub const fn bold(size: f32) -> Style {
        Style {
            face: Face::Bold,
            size,
            color: INK,
        }
    }

    /// The same in another colour.
    pub const fn color(self, color: Rgb) -> Style {
        Style { color, ..self }
    }

    /// The distance between two lines' baselines.
    pub fn line_height(&self) -> f32 {
        self.size * 1.3
    }
}
