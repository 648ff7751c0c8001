//! Rendering speed: the PDF and the CSV zip of the realistic statement (40 positions, 60
//! transactions) and of the same with 2,000 transactions. Run with
//! `cargo bench -p eam-report --bench render`; a statement's PDF is one job's work, so the
//! time per statement is the report worker's throughput per core.

use std::hint::black_box;
use std::time::Duration;

#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

use criterion::{Criterion, criterion_group, criterion_main};

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("statement");
    group.measurement_time(Duration::from_secs(10));
    group.sample_size(20);
    for (name, statement) in [
        ("realistic", fixtures::realistic()),
        ("2000_transactions", fixtures::with_transactions(2_000)),
    ] {
        group.bench_function(format!("pdf/{name}"), |b| {
            b.iter(|| eam_report::render_pdf(black_box(&statement)).expect("renders"))
        });
        group.bench_function(format!("csv_zip/{name}"), |b| {
            b.iter(|| eam_report::render_csv_zip(black_box(&statement)).expect("renders"))
        });
    }
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
