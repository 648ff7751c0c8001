//! MT535/MT536: any bytes give a batch or a located error, never a panic.
#![no_main]

use eam_normalizer::model::SourceFormat;
use eam_normalizer::swift;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let format = if first % 2 == 0 {
        SourceFormat::Mt535
    } else {
        SourceFormat::Mt536
    };
    let _ = swift::parse(format, "fuzz", "fuzz.fin", rest);
    let _ = swift::read_securities_statements(format, "fuzz.fin", rest);
});
