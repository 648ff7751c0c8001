//! Writes the `swift` bench's generated MT940 to a file, for measuring `eam normalize` on it
//! (peak memory with `/usr/bin/time -v`, see BENCHMARKS.md):
//!
//! ```text
//! cargo run --release -p eam-normalizer --example mt940_file -- 100 /tmp/bench-100.sta
//! ```
//!
//! The first argument is the size in MiB, the second the file to write.

#[path = "../benches/support/mt940.rs"]
mod generated;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let path = args.next().unwrap_or_else(|| "bench.sta".to_owned());
    let statement = generated::mt940(mib * 1024 * 1024);
    std::fs::write(&path, statement.as_bytes())?;
    println!("{path}: {} bytes", statement.len());
    Ok(())
}
