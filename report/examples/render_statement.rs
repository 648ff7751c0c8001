//! Renders one of the test statements to files, to look at them and to measure a render's
//! peak memory: `cargo run -p eam-report --example render_statement -- realistic out/dir`
//! (`realistic`, `transactions` for the 2,000-transaction one, or `empty`).

#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "realistic".to_owned());
    let dir = PathBuf::from(args.next().unwrap_or_else(|| ".".to_owned()));
    let statement = match kind.as_str() {
        "realistic" => fixtures::realistic(),
        "transactions" => fixtures::with_transactions(2_000),
        "empty" => fixtures::empty(),
        other => {
            eprintln!("unknown statement '{other}': realistic, transactions or empty");
            return ExitCode::FAILURE;
        }
    };
    let written = eam_report::render_pdf(&statement)
        .map_err(|e| e.to_string())
        .and_then(|pdf| {
            std::fs::write(dir.join(format!("{kind}.pdf")), pdf).map_err(|e| e.to_string())
        })
        .and_then(|()| eam_report::render_csv_zip(&statement).map_err(|e| e.to_string()))
        .and_then(|zip| {
            std::fs::write(dir.join(format!("{kind}.zip")), zip).map_err(|e| e.to_string())
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
