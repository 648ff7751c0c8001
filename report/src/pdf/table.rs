//! Tables that break across pages: the header row is drawn again at the top of every page a
//! table continues on, with the group it was in marked "(continued)"; a group row is never
//! left alone at the bottom of a page. Every cell's text is cut or wrapped to its column
//! (wrapped texts to a stated number of lines, the last cut with an ellipsis), so nothing
//! overflows; figures are right-aligned.

use super::fonts::Face;
use super::layout::{ACCENT, CONTENT_WIDTH, Flow, INK, MARGIN, MUTED, NEGATIVE, SHADE};
use super::layout::{STRIPE, Style};

/// Text size of table bodies.
pub const BODY: f32 = 7.5;
/// Text size of header rows and notes under a cell's text.
const SMALL: f32 = 6.5;
/// Padding inside a cell.
const PAD_X: f32 = 3.0;
const PAD_Y: f32 = 2.5;
/// Lines a note under a cell's text may take (a reason why a figure is missing).
const NOTE_LINES: usize = 3;
/// Room kept under a group row for at least one of its rows.
const KEEP_WITH_NEXT: f32 = 16.0;

/// Which edge a column's texts stick to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A column: its title, its share of the width, its alignment.
#[derive(Debug, Clone)]
pub struct Column {
    pub title: String,
    /// Relative width: the columns are scaled together to the content width.
    pub width: f32,
    pub align: Align,
}

impl Column {
    /// A left-aligned (text) column.
    pub fn text(title: impl Into<String>, width: f32) -> Column {
        Column {
            title: title.into(),
            width,
            align: Align::Left,
        }
    }

    /// A right-aligned (figure) column.
    pub fn figure(title: impl Into<String>, width: f32) -> Column {
        Column {
            title: title.into(),
            width,
            align: Align::Right,
        }
    }
}

/// One cell: its text (cut to one line unless wrapping is allowed), an optional smaller note
/// under it, or a bar.
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    style: Style,
    max_lines: usize,
    note: Option<(String, Style)>,
    /// A horizontal bar filling this share of the cell (`0..=1`), drawn instead of text.
    bar: Option<f32>,
}

impl Cell {
    /// Plain text, cut to one line.
    pub fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            style: Style::regular(BODY),
            max_lines: 1,
            note: None,
            bar: None,
        }
    }

    /// Nothing.
    pub fn empty() -> Cell {
        Cell::text("")
    }

    /// A figure: dark red when it is negative.
    pub fn figure(text: impl Into<String>) -> Cell {
        let text = text.into();
        let negative = text.starts_with('-');
        let mut cell = Cell::text(text);
        if negative {
            cell.style = cell.style.color(NEGATIVE);
        }
        cell
    }

    /// A figure that could not be computed.
    pub fn missing() -> Cell {
        Cell::text("n/a").styled(Style::regular(BODY).color(MUTED))
    }

    /// A horizontal bar for a share of the whole.
    pub fn bar(share: f32) -> Cell {
        Cell {
            bar: Some(share.clamp(0.0, 1.0)),
            ..Cell::empty()
        }
    }

    /// The same text wrapped over up to `lines` lines.
    pub fn wrapped(mut self, lines: usize) -> Cell {
        self.max_lines = lines.max(1);
        self
    }

    /// The same text in bold.
    pub fn bold(mut self) -> Cell {
        self.style.face = Face::Bold;
        self
    }

    /// The same text in another style.
    pub fn styled(mut self, style: Style) -> Cell {
        self.style = style;
        self
    }

    /// A smaller grey line under the text (wrapped, up to three lines).
    pub fn note(self, note: impl Into<String>) -> Cell {
        self.note_styled(note, Style::regular(SMALL).color(MUTED))
    }

    /// A smaller line under the text, in a colour of its own (wrapped, up to three lines).
    pub fn note_colored(self, note: impl Into<String>, color: super::layout::Rgb) -> Cell {
        self.note_styled(note, Style::regular(SMALL).color(color))
    }

    /// True when the cell draws nothing.
    fn is_blank(&self) -> bool {
        self.text.is_empty() && self.note.is_none() && self.bar.is_none()
    }

    fn note_styled(mut self, note: impl Into<String>, style: Style) -> Cell {
        let note = note.into();
        if !note.is_empty() {
            self.note = Some((note, style));
        }
        self
    }
}

/// A row of a table.
#[derive(Debug, Clone)]
pub enum Row {
    /// Cells, one per column.
    Data(Vec<Cell>),
    /// A label across the whole width that starts a group of rows (e.g. an account).
    Group(String),
    /// Cells summing what is above, under a rule.
    Total(Vec<Cell>),
}

/// A row cut to its columns, ready to draw.
struct Laid {
    kind: Kind,
    height: f32,
    /// Per column: the lines of text with their style, or a bar.
    cells: Vec<LaidCell>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Header,
    Data,
    Group,
    Total,
}

enum LaidCell {
    Lines(Vec<(String, Style)>, Align),
    Bar(f32),
}

/// Draws a table of `columns` and `rows` where the flow stands, over as many pages as needed.
pub fn draw(flow: &mut Flow, columns: &[Column], rows: impl IntoIterator<Item = Row>) {
    let table = Geometry::new(columns);
    let header = table.lay_header(flow);
    let mut header_page = None;
    let mut group: Option<String> = None;
    let mut stripe = false;
    for row in rows {
        let laid = table.lay(flow, row);
        let continued = match (&group, laid.kind) {
            (Some(label), Kind::Data | Kind::Total) => {
                Some(table.lay(flow, Row::Group(format!("{label} (continued)"))))
            }
            _ => None,
        };
        let on_this_page = header_page == Some(flow.pages.len());
        let mut need = laid.height;
        if laid.kind == Kind::Group {
            need += KEEP_WITH_NEXT;
        }
        if !on_this_page {
            need += header.height + continued.as_ref().map_or(0.0, |c| c.height);
        }
        if flow.ensure(need) || !on_this_page {
            table.draw_row(flow, &header, false);
            header_page = Some(flow.pages.len());
            stripe = false;
            if let Some(c) = &continued {
                table.draw_row(flow, c, false);
            }
        }
        if let (Kind::Group, Some(LaidCell::Lines(lines, _))) = (laid.kind, laid.cells.first()) {
            group = lines.first().map(|(text, _)| text.clone());
            stripe = false;
        }
        table.draw_row(flow, &laid, stripe);
        stripe = laid.kind == Kind::Data && !stripe;
    }
}

/// The columns' positions on the page.
struct Geometry<'a> {
    columns: &'a [Column],
    /// Left edge and width of each column.
    spans: Vec<(f32, f32)>,
}

impl<'a> Geometry<'a> {
    fn new(columns: &'a [Column]) -> Geometry<'a> {
        let total: f32 = columns.iter().map(|c| c.width).sum();
        let scale = if total > 0.0 {
            CONTENT_WIDTH / total
        } else {
            0.0
        };
        let mut x = MARGIN;
        let spans = columns
            .iter()
            .map(|c| {
                let span = (x, c.width * scale);
                x += c.width * scale;
                span
            })
            .collect();
        Geometry { columns, spans }
    }

    fn lay_header(&self, flow: &Flow) -> Laid {
        let style = Style::bold(SMALL);
        let cells: Vec<Cell> = self
            .columns
            .iter()
            .map(|c| Cell::text(c.title.clone()).styled(style).wrapped(2))
            .collect();
        let mut laid = self.lay(flow, Row::Data(cells));
        laid.kind = Kind::Header;
        laid
    }

    fn lay(&self, flow: &Flow, row: Row) -> Laid {
        let (kind, cells) = match row {
            Row::Data(cells) => (Kind::Data, cells),
            Row::Total(cells) => (Kind::Total, cells.into_iter().map(Cell::bold).collect()),
            Row::Group(label) => {
                let style = Style::bold(BODY).color(ACCENT);
                let text =
                    flow.faces
                        .get(style.face)
                        .fit(&label, style.size, CONTENT_WIDTH - 2.0 * PAD_X);
                let line_height = style.line_height();
                return Laid {
                    kind: Kind::Group,
                    height: line_height + 2.0 * PAD_Y + 2.0,
                    cells: vec![LaidCell::Lines(vec![(text, style)], Align::Left)],
                };
            }
        };
        let widths = self.widths(kind, &cells);
        let mut height: f32 = 0.0;
        let laid: Vec<LaidCell> = cells
            .into_iter()
            .zip(widths)
            .zip(self.columns)
            .enumerate()
            .map(|(i, ((cell, width), column))| {
                if let Some(share) = cell.bar {
                    height = height.max(BODY * 1.3);
                    return LaidCell::Bar(share);
                }
                // A total's label reads from the table's left edge, whatever its column.
                let align = if kind == Kind::Total && i == 0 {
                    Align::Left
                } else {
                    column.align
                };
                let inner = (width - 2.0 * PAD_X).max(0.0);
                let metrics = flow.faces.get(cell.style.face);
                let mut lines: Vec<(String, Style)> = if cell.max_lines > 1 {
                    metrics.wrap(&cell.text, cell.style.size, inner, cell.max_lines)
                } else {
                    vec![metrics.fit(&cell.text, cell.style.size, inner)]
                }
                .into_iter()
                .map(|l| (l, cell.style))
                .collect();
                if let Some((note, style)) = cell.note {
                    let note_lines = flow
                        .faces
                        .get(style.face)
                        .wrap(&note, style.size, inner, NOTE_LINES);
                    lines.extend(note_lines.into_iter().map(|l| (l, style)));
                }
                height = height.max(lines.iter().map(|(_, s)| s.line_height()).sum());
                LaidCell::Lines(lines, align)
            })
            .collect();
        Laid {
            kind,
            height: height.max(BODY * 1.3) + 2.0 * PAD_Y,
            cells: laid,
        }
    }

    /// The width each cell may use: its column's, except a total's label, which runs on over
    /// the empty cells after it (so "Total CH93 0076 2011 6238 5295 7" is never cut short).
    fn widths(&self, kind: Kind, cells: &[Cell]) -> Vec<f32> {
        let mut widths: Vec<f32> = self.spans.iter().map(|&(_, w)| w).collect();
        if kind == Kind::Total {
            let free: f32 = cells
                .iter()
                .zip(&self.spans)
                .skip(1)
                .take_while(|(c, _)| c.is_blank())
                .map(|(_, &(_, w))| w)
                .sum();
            if let Some(first) = widths.first_mut() {
                *first += free;
            }
        }
        widths
    }

    fn draw_row(&self, flow: &mut Flow, row: &Laid, stripe: bool) {
        let top = flow.y();
        match row.kind {
            Kind::Group => flow.rect(MARGIN, top + 2.0, CONTENT_WIDTH, row.height - 2.0, SHADE),
            Kind::Data if stripe => flow.rect(MARGIN, top, CONTENT_WIDTH, row.height, STRIPE),
            Kind::Header => flow.rect(MARGIN, top, CONTENT_WIDTH, row.height, SHADE),
            Kind::Total => flow.rule(MARGIN, top, CONTENT_WIDTH, 0.6, INK),
            Kind::Data => {}
        }
        if row.kind == Kind::Group {
            if let Some(LaidCell::Lines(lines, _)) = row.cells.first() {
                for (text, style) in lines {
                    flow.text(MARGIN + PAD_X, top + 2.0 + PAD_Y + style.size, *style, text);
                }
            }
            flow.advance(row.height);
            return;
        }
        for (cell, &(x, width)) in row.cells.iter().zip(&self.spans) {
            match cell {
                LaidCell::Bar(share) => {
                    let h = BODY * 0.7;
                    let y = top + (row.height - h) / 2.0;
                    let w = (width - 2.0 * PAD_X) * share;
                    if w > 0.0 {
                        flow.rect(x + PAD_X, y, w, h, ACCENT);
                    }
                }
                LaidCell::Lines(lines, align) => {
                    let mut line_top = top + PAD_Y;
                    for (text, style) in lines {
                        let baseline = line_top + style.size;
                        match align {
                            Align::Left => flow.text(x + PAD_X, baseline, *style, text.as_str()),
                            Align::Right => {
                                flow.text_right(x + width - PAD_X, baseline, *style, text.as_str())
                            }
                        }
                        line_top += style.line_height();
                    }
                }
            }
        }
        flow.advance(row.height);
        if row.kind == Kind::Header {
            flow.rule(MARGIN, flow.y(), CONTENT_WIDTH, 0.6, INK);
        }
    }
}
