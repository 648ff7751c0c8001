//! `eam normalize`: parses statement files and prints the canonical records, for support.
//!
//! Support uses it to see why a statement failed, or what a file will load, without a bank or
//! a database: one JSON line per record (`{"kind": "transaction", "file": ..., "record": ...}`),
//! then the file's statement summaries and warnings, and for a file that fails, one `error`
//! line with its location. Exit status: 0 when every file parsed, 1 when one did not parse,
//! 2 when one could not be read.

use std::io::Write;
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
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                line(
                    &mut out,
                    &json!({"kind": "error", "file": file, "reason": format!("cannot read: {e}")}),
                )?;
                worst = worst.max(2);
                continue;
            }
        };
        let Some(format) = fixed.or_else(|| eam_normalizer::statement::detect(&bytes)) else {
            eprintln!("{file}: not a recognised statement format (give --format)");
            line(
                &mut out,
                &json!({"kind": "error", "file": file, "reason": "not a recognised statement format"}),
            )?;
            worst = worst.max(1);
            continue;
        };
        match eam_normalizer::statement::parse(format, &args.custodian, &file, &bytes) {
            Ok(batch) => print_batch(&mut out, &file, format, &batch)?,
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
