//! camt.052/053/054: any bytes give Ok or a located error, never a panic; the streaming reader
//! and `parse` agree on success.
#![no_main]

use eam_normalizer::iso20022::{self, Record};
use eam_normalizer::model::SourceFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = iso20022::detect(data);
    for format in [
        SourceFormat::Camt052,
        SourceFormat::Camt053,
        SourceFormat::Camt054,
    ] {
        let mut transactions = 0usize;
        let streamed = iso20022::read_records(format, "fuzz", "fuzz", data, |r| {
            if let Record::Entry(_) = r {
                transactions += 1;
            }
        });
        let parsed = iso20022::parse(format, "fuzz", "fuzz", data);
        assert_eq!(streamed.is_ok(), parsed.is_ok());
        if let Ok(batch) = parsed {
            assert_eq!(batch.transactions.len(), transactions);
            for s in &batch.statements {
                // A summary only counts booked entries in its own currency.
                assert!(s.entry_count as usize <= batch.transactions.len());
            }
        }
    }
});
