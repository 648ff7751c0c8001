//! `eam normalize`: parses statement files and prints the canonical records, for support.
//!
//! Support uses it to see why a statement failed, or what a file will load, without a bank or
//! a database: one JSON line per record (`{"kind": "transaction", "file": ..., "record": ...}`),
//! the file's statement summaries, warnings and rejected statements, and for a file that
//! fails, one `error` line with its location. Exit status: 0 when every file parsed, 1 when
//! one did not parse, 2 when one could not be read.
//!
//! SWIFT cash files (MT940/941/942/950, MT900/910) are streamed (`swift::stream`): each
//! statement's records are printed as soon as it is read, so memory stays flat however large
//! the file (a 100 MB MT940 was the case that needed it). Other formats are read whole and
//! printed kind by kind.

use std::io::{Read, Write};
use std::path::PathBuf;

use eam_normalizer::model::{Batch, SourceFormat};
use serde::Serialize;
use serde_json::json;

#[derive(clap::Args)]
pub struct NormalizeArgs {
    /// The files' format: mt940, mt941, mt942, mt950, mt900, mt910, mt535, mt536, camt052,
    /// camt053, camt054, semt002, or auto (recognised from each file's content).
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// The custodian whose own security ids the files use (for securities without ISIN).
    #[arg(long, default_value = "unknown")]
    pub custodian: String,
    /// Statement files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: NormalizeArgs) -> anyhow::Result<std::process::ExitCode> {
    let fixed = match args.format.as_str() {
        "auto" => None,
        name => match SourceFormat::parse(name).filter(|f| *f != SourceFormat::BankAJson) {
            Some(f) => Some(f),
            None => anyhow::bail!(
                "unknown format '{name}': expected auto, mt940, mt941, mt942, mt950, mt900, mt910, mt535, mt536, camt052, camt053, camt054 or semt002"
            ),
        },
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut worst = 0u8;
    for path in &args.files {
        let file = path.display().to_string();
        let unreadable = |out: &mut std::io::BufWriter<_>, e: std::io::Error| {
            eprintln!("{file}: cannot read: {e}");
            line(
                out,
                &json!({"kind": "error", "file": file, "reason": format!("cannot read: {e}")}),
            )
        };
        // The head is enough to recognise the format (both detectors look at 64 KiB).
        let head = match std::fs::File::open(path).and_then(|f| {
            let mut head = Vec::with_capacity(64 * 1024);
            f.take(64 * 1024).read_to_end(&mut head).map(|_| head)
        }) {
            Ok(h) => h,
            Err(e) => {
                unreadable(&mut out, e)?;
                worst = worst.max(2);
                continue;
            }
        };
        // A zip archive is recognised by its members, whose directory is at its end.
        let archive = if eam_normalizer::statement::is_zip(&head) {
            match std::fs::read(path) {
                Ok(b) => Some(b),
                Err(e) => {
                    unreadable(&mut out, e)?;
                    worst = worst.max(2);
                    continue;
                }
            }
        } else {
            None
        };
        let Some(format) = fixed
            .or_else(|| eam_normalizer::statement::detect(archive.as_deref().unwrap_or(&head)))
        else {
            eprintln!("{file}: not a recognised statement format (give --format)");
            line(
                &mut out,
                &json!({"kind": "error", "file": file, "reason": "not a recognised statement format"}),
            )?;
            worst = worst.max(1);
            continue;
        };
        let parsed = if streamed(format) && archive.is_none() {
            match std::fs::File::open(path) {
                Ok(f) => stream(&mut out, &file, format, f)?,
                Err(e) => {
                    unreadable(&mut out, e)?;
                    worst = worst.max(2);
                    continue;
                }
            }
        } else {
            let bytes = match archive.map_or_else(|| std::fs::read(path), Ok) {
                Ok(b) => b,
                Err(e) => {
                    unreadable(&mut out, e)?;
                    worst = worst.max(2);
                    continue;
                }
            };
            match eam_normalizer::statement::parse(format, &args.custodian, &file, &bytes) {
                Ok(batch) => print_batch(&mut out, &file, format, &batch).map(|()| Ok(()))?,
                Err(e) => Err(e),
            }
        };
        match parsed {
            Ok(()) => {}
            Err(e) => {
                eprintln!("{e}");
                line(
                    &mut out,
                    &json!({"kind": "error", "file": file, "format": format.as_str(), "line": e.line,
                            "column": e.column, "field": e.field, "reason": e.reason}),
                )?;
                worst = worst.max(1);
            }
        }
    }
    out.flush()?;
    Ok(std::process::ExitCode::from(worst))
}

/// The formats read by `swift::stream`.
fn streamed(format: SourceFormat) -> bool {
    matches!(
        format,
        SourceFormat::Mt940
            | SourceFormat::Mt941
            | SourceFormat::Mt942
            | SourceFormat::Mt950
            | SourceFormat::Mt900
            | SourceFormat::Mt910
    )
}

/// Prints a SWIFT cash file's records as they are read; the outer error is the output's.
fn stream(
    out: &mut impl Write,
    file: &str,
    format: SourceFormat,
    input: std::fs::File,
) -> anyhow::Result<Result<(), eam_normalizer::ParseError>> {
    use eam_normalizer::swift::stream::{Record, read_records};
    let mut written: std::io::Result<()> = Ok(());
    let (mut accounts, mut balances, mut transactions) = (0usize, 0usize, 0usize);
    // read_records buffers (and rewinds) the file itself.
    let read = read_records(format, file, input, |record| {
        if written.is_err() {
            return;
        }
        let (kind, value) = match &record {
            Record::Account(a) => {
                accounts += 1;
                ("account", serde_json::to_value(a))
            }
            Record::Balance(b) => {
                balances += 1;
                ("balance", serde_json::to_value(b))
            }
            Record::Transaction(t) => {
                transactions += 1;
                ("transaction", serde_json::to_value(t))
            }
            Record::Statement(s) => ("statement", serde_json::to_value(s)),
            Record::Warning(w) => {
                eprintln!("{file}: warning: {}", w.message);
                ("warning", serde_json::to_value(w))
            }
            Record::Rejected(r) => {
                eprintln!(
                    "{file}: statement {} ({}) rejected, line {}: {}",
                    r.index,
                    r.reference.as_deref().unwrap_or("no reference"),
                    r.line.map_or_else(|| "?".to_owned(), |l| l.to_string()),
                    r.reason
                );
                ("rejected_statement", serde_json::to_value(r))
            }
        };
        written = value
            .map_err(std::io::Error::other)
            .and_then(|v| line(out, &json!({"kind": kind, "file": file, "record": v})));
    });
    written?;
    if read.is_ok() {
        eprintln!(
            "{file}: {} ({accounts} accounts, 0 positions, {balances} balances, {transactions} transactions)",
            format.as_str()
        );
    }
    Ok(read)
}

fn line(out: &mut impl Write, value: &serde_json::Value) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

fn records<T: Serialize>(
    out: &mut impl Write,
    file: &str,
    kind: &str,
    items: &[T],
) -> anyhow::Result<()> {
    for item in items {
        line(out, &json!({"kind": kind, "file": file, "record": item}))?;
    }
    Ok(())
}

fn print_batch(
    out: &mut impl Write,
    file: &str,
    format: SourceFormat,
    batch: &Batch,
) -> anyhow::Result<()> {
    records(out, file, "account", &batch.accounts)?;
    records(out, file, "security", &batch.securities)?;
    records(out, file, "position", &batch.positions)?;
    records(out, file, "complete_snapshot", &batch.complete_snapshots)?;
    records(out, file, "balance", &batch.balances)?;
    records(out, file, "transaction", &batch.transactions)?;
    records(out, file, "statement", &batch.statements)?;
    records(out, file, "rate", &batch.rates)?;
    records(out, file, "warning", &batch.warnings)?;
    records(out, file, "rejected_statement", &batch.rejected)?;
    for w in &batch.warnings {
        eprintln!("{file}: warning: {}", w.message);
    }
    for r in &batch.rejected {
        eprintln!(
            "{file}: statement {} ({}) rejected, line {}: {}",
            r.index,
            r.reference.as_deref().unwrap_or("no reference"),
            r.line.map_or_else(|| "?".to_owned(), |l| l.to_string()),
            r.reason
        );
    }
    eprintln!(
        "{file}: {} ({} accounts, {} positions, {} balances, {} transactions)",
        format.as_str(),
        batch.accounts.len(),
        batch.positions.len(),
        batch.balances.len(),
        batch.transactions.len()
    );
    Ok(())
}
