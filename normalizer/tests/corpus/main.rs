//! Conformance over the shared corpus of real bank statements (`../shared/corpus`, or
//! `EAM_CORPUS_DIR`): every input with an expected output gives matching values, every other
//! input parses and balances or records a break, the inputs meant to be rejected fail with a
//! clear error. Each family prints a pass count per source.

mod iso20022;
mod swift;
