//! MT940/MT942/MT950: any bytes give a batch or a located error, never a panic. The first byte
//! picks the format and where the input is cut into two pages for `parse_pages`.
#![no_main]

use eam_normalizer::model::SourceFormat;
use eam_normalizer::swift;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let format = match first % 3 {
        0 => SourceFormat::Mt940,
        1 => SourceFormat::Mt942,
        _ => SourceFormat::Mt950,
    };
    let _ = swift::detect(rest);
    let _ = swift::parse(format, "fuzz", "fuzz.sta", rest);
    let _ = swift::read_cash_statements("fuzz.sta", rest);
    let cut = usize::from(first) * rest.len() / 256;
    let _ = swift::parse_pages(
        format,
        "fuzz",
        &[("p1", &rest[..cut]), ("p2", &rest[cut..])],
    );
});
