//! Reads a rendered PDF back with poppler's command-line tools (`poppler-utils`): an
//! implementation not ours, as a reader of the statement would see it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A PDF written to a temporary file for the tools; removed when dropped.
pub struct Pdf {
    path: PathBuf,
}

impl Pdf {
    pub fn new(bytes: &[u8]) -> Pdf {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "eam-report-{}-{}.pdf",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, bytes).expect("the temporary PDF is written");
        Pdf { path }
    }

    fn run(&self, tool: &str, args: &[&str]) -> String {
        let path = self.path.to_str().expect("a UTF-8 temporary path");
        let output = Command::new(tool)
            .args(args)
            .arg(path)
            .args(if tool == "pdftotext" { &["-"][..] } else { &[][..] })
            .output()
            .unwrap_or_else(|e| {
                panic!("{tool} could not run ({e}): install poppler-utils (apt-get install -y poppler-utils)")
            });
        assert!(
            output.status.success(),
            "{tool} refused the PDF: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("poppler writes UTF-8")
    }

    /// The text with its layout kept (`pdftotext -layout`), pages separated by form feeds.
    pub fn text(&self) -> String {
        self.run("pdftotext", &["-layout", "-enc", "UTF-8"])
    }

    /// Each page's text.
    pub fn page_texts(&self) -> Vec<String> {
        let text = self.text();
        let mut pages: Vec<String> = text.split('\u{c}').map(str::to_owned).collect();
        // pdftotext ends the last page with a form feed too.
        if pages.last().is_some_and(|p| p.trim().is_empty()) {
            pages.pop();
        }
        pages
    }

    /// The page count `pdfinfo` reads.
    pub fn pages(&self) -> usize {
        let info = self.run("pdfinfo", &[]);
        info.lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("pdfinfo names the page count")
    }

    /// `pdffonts`' rows: (name, embedded, subset, has a ToUnicode map).
    pub fn fonts(&self) -> Vec<(String, bool, bool, bool)> {
        let listing = self.run("pdffonts", &[]);
        listing
            .lines()
            .skip(2)
            .map(|row| {
                let cols: Vec<&str> = row.split_whitespace().collect();
                // name type... encoding emb sub uni object-id generation
                let n = cols.len();
                (
                    cols[0].to_owned(),
                    cols[n - 5] == "yes",
                    cols[n - 4] == "yes",
                    cols[n - 3] == "yes",
                )
            })
            .collect()
    }

    /// The number of images `pdfimages -list` finds.
    pub fn images(&self) -> usize {
        self.run("pdfimages", &["-list"]).lines().skip(2).count()
    }
}

impl Drop for Pdf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Runs of whitespace made one space, so a sentence matches whatever the layout's spacing.
pub fn squeezed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
