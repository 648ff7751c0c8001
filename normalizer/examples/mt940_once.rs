//! Parses the `swift` bench's generated MT940 once: a driver for instruction-count profiling,
//! whose figures repeat where wall-clock time on a shared machine does not:
//!
//! ```text
//! cargo build --release -p eam-normalizer --example mt940_once
//! valgrind --tool=callgrind --callgrind-out-file=mt940.callgrind \
//!     target/release/examples/mt940_once 10
//! callgrind_annotate --inclusive=yes mt940.callgrind | grep swift::parse
//! ```
//!
//! The first argument is the input size in MiB (10 by default). The input is generated before
//! the parse: compare the parse's own count (`swift::parse`, inclusive), not the program
//! total. Valgrind hides SHA-NI from the program, so SHA-256 runs in software there and
//! weighs more than it does natively.
//!
//! A second argument parses that many times and prints the fastest, a quick wall-clock
//! comparison between two builds when the machine is busy (the bench is the reference).

#[path = "../benches/support/mt940.rs"]
mod generated;

use std::time::{Duration, Instant};

use eam_normalizer::model::SourceFormat;
use eam_normalizer::swift;

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args
        .next()
        .map(|a| a.parse().expect("the first argument is a size in MiB"))
        .unwrap_or(10);
    let runs: u32 = args
        .next()
        .map(|a| a.parse().expect("the second argument is a number of runs"))
        .unwrap_or(1);
    let statement = generated::mt940(mib * 1024 * 1024);
    let mut fastest = Duration::MAX;
    for _ in 0..runs {
        let started = Instant::now();
        let batch = swift::parse(
            SourceFormat::Mt940,
            "bench",
            "bench.sta",
            statement.as_bytes(),
        )
        .expect("the generated MT940 parses");
        let transactions = batch.transactions.len();
        drop(batch);
        fastest = fastest.min(started.elapsed());
        if runs == 1 {
            println!("{} bytes, {transactions} transactions", statement.len());
        }
    }
    if runs > 1 {
        let secs = fastest.as_secs_f64();
        println!(
            "fastest of {runs}: {:.1} ms, {:.1} MB/s",
            secs * 1e3,
            statement.len() as f64 / secs / 1e6
        );
    }
}
