//! semt.002: any bytes give Ok or a located error, never a panic; what parses names its
//! accounts and dates.
#![no_main]

use eam_normalizer::iso20022;
use eam_normalizer::model::SourceFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = iso20022::detect(data);
    if let Ok(batch) = iso20022::parse(SourceFormat::Semt002, "fuzz", "fuzz", data) {
        for s in &batch.complete_snapshots {
            assert!(!s.account.is_empty());
        }
        for p in &batch.positions {
            assert!(!p.account.is_empty());
        }
    }
});
