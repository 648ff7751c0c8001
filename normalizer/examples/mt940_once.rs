//! Parses the `swift` bench's generated MT940 once: a driver for instruction-count profiling,
//! whose figures repeat where wall-clock time on a shared machine does not:
//!
//! ```text
//! cargo build --release -p eam-normalizer --example mt940_once
//! valgrind --tool=callgrind --callgrind-out-file=mt940.callgrind \
//!     target/release/examples/mt940_once 10
//! callgrind_annotate mt940.callgrind
//! ```
//!
//! The argument is the input size in MiB (10 by default). The input is generated before the
//! parse; compare the parse's own count (`swift::parse` inclusive), not the program total.
//! Valgrind hides SHA-NI from the program, so SHA-256 runs in software there and weighs more
//! than it does natively.

#[path = "../benches/support/mt940.rs"]
mod generated;

use eam_normalizer::model::SourceFormat;
use eam_normalizer::swift;

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("the argument is a size in MiB"))
        .unwrap_or(10);
    let statement = generated::mt940(mib * 1024 * 1024);
    let batch = swift::parse(
        SourceFormat::Mt940,
        "bench",
        "bench.sta",
        statement.as_bytes(),
    )
    .expect("the generated MT940 parses");
    println!(
        "{} bytes, {} transactions, {} statements",
        statement.len(),
        batch.transactions.len(),
        batch.statements.len()
    );
}
