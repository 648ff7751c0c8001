//! `eam normalize`, as support runs it on statement files.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn corpus() -> PathBuf {
    let dir = match std::env::var_os("EAM_CORPUS_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    assert!(
        dir.join("index.json").is_file(),
        "the shared corpus is missing: no index.json in {} (set EAM_CORPUS_DIR)",
        dir.display()
    );
    dir
}

/// Runs `eam normalize` and returns its exit code and JSON lines.
fn normalize(args: &[&str]) -> (i32, Vec<Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_eam"))
        .arg("normalize")
        .args(args)
        .output()
        .expect("eam runs");
    let lines = String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (out.status.code().expect("exit code"), lines)
}

#[test]
fn a_statement_prints_its_records_as_json_lines_with_exact_values() {
    let file = corpus().join("jejik-mt940/abnamro.txt");
    let (code, lines) = normalize(&[file.to_str().unwrap()]);
    assert_eq!(code, 0);
    let kinds = |k: &str| lines.iter().filter(|l| l["kind"] == k).count();
    assert_eq!(kinds("account"), 1);
    assert_eq!(kinds("transaction"), 10);
    assert_eq!(kinds("statement"), 2, "two statements in the file");
    let opening = lines
        .iter()
        .find(|l| l["kind"] == "balance" && l["record"]["kind"] == "opening")
        .expect("an opening balance");
    assert_eq!(opening["record"]["amount"], "3236.28");
    assert_eq!(opening["record"]["currency"], "EUR");
    assert_eq!(opening["record"]["as_of"], "2011-05-22");
    let closing = lines
        .iter()
        .find(|l| l["kind"] == "balance" && l["record"]["kind"] == "closing")
        .expect("a closing balance");
    assert_eq!(closing["record"]["amount"], "876.84");
}

#[test]
fn an_unreadable_file_is_an_error_line_with_its_location_and_a_non_zero_exit() {
    let snippet = corpus().join("wolph-mt940/betterplace/amount_formats.sta");
    let (code, lines) = normalize(&["--format", "mt940", snippet.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["kind"], "error");
    assert_eq!(lines[0]["format"], "mt940");
    assert!(lines[0]["line"].is_u64(), "the line is named: {}", lines[0]);
    assert!(
        lines[0]["field"].is_string(),
        "the field is named: {}",
        lines[0]
    );

    let (code, lines) = normalize(&["/nonexistent/statement.sta"]);
    assert_eq!(code, 2, "a file that cannot be read");
    assert!(
        lines[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("cannot read")
    );

    let (code, _) = normalize(&["--format", "xml", "/nonexistent"]);
    assert_ne!(code, 0, "an unknown format is refused");
}
