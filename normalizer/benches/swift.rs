//! Throughput of the SWIFT parsers on generated files: a ~100 MB MT940 (daily statements of
//! German-style entries with `?xx` details, half with a bank reference) and an MT535 with
//! 50,000 positions. Run with `cargo bench -p eam-normalizer --bench swift`; the target is at
//! least 200 MB/s for MT940 on one core.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

#[path = "support/mt940.rs"]
mod generated;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eam_normalizer::model::SourceFormat;
use eam_normalizer::swift;

/// An MT535 with `positions` holdings in one complete statement.
fn mt535(positions: usize) -> String {
    let mut out = String::from(
        "{1:F01BANKDEFFAXXX0000000000}{2:O535BANKDEFFXXXXN}{4:\r\n:16R:GENL\r\n:28E:1/ONLY\r\n:20C::SEME//BENCH\r\n:23G:NEWM\r\n:98A::STAT//20241120\r\n:22F::CODE//COMP\r\n:97A::SAFE//DEPOT-1\r\n:17B::ACTI//Y\r\n:16S:GENL\r\n:16R:SUBSAFE\r\n",
    );
    for i in 0..positions {
        let bond = i.is_multiple_of(4);
        let _ = write!(
            out,
            ":16R:FIN\r\n:35B:/XX/SEC{i:07}\r\nSECURITY NUMBER {i} AG\r\n:90{}::MRKT//{}\r\n:98A::PRIC//20241120\r\n:93B::AGGR//{}/{},\r\n:19A::HOLD//EUR{},{:02}\r\n{}:16S:FIN\r\n",
            if bond { 'A' } else { 'B' },
            if bond {
                "PRCT/101,25".to_owned()
            } else {
                format!("ACTU/EUR{},{:02}", 10 + i % 500, i % 100)
            },
            if bond { "FAMT" } else { "UNIT" },
            100 + i % 1000,
            1000 + i,
            i % 100,
            if bond { ":19A::ACRU//EUR12,50\r\n" } else { "" },
        );
    }
    out.push_str(":16S:SUBSAFE\r\n-}\r\n");
    out
}

fn bench(c: &mut Criterion) {
    let statement = generated::mt940(100 * 1024 * 1024);
    let mut group = c.benchmark_group("swift");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Bytes(statement.len() as u64));
    group.bench_function("mt940_100MB", |b| {
        b.iter(|| {
            let batch = swift::parse(
                SourceFormat::Mt940,
                "bench",
                "bench.sta",
                black_box(statement.as_bytes()),
            )
            .expect("the generated MT940 parses");
            black_box(batch.transactions.len())
        })
    });
    let holdings = mt535(50_000);
    group.throughput(Throughput::Bytes(holdings.len() as u64));
    group.bench_function("mt535_50k_positions", |b| {
        b.iter(|| {
            let batch = swift::parse(
                SourceFormat::Mt535,
                "bench",
                "bench.fin",
                black_box(holdings.as_bytes()),
            )
            .expect("the generated MT535 parses");
            black_box(batch.positions.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
