//! Fuzz target `commit_ndjson`: the NDJSON commit body (`wharf_core::commit_lines`), whole and fed in pieces.
//! The property lives in `wharf_core::fuzzing::check_commit_ndjson`, which `cargo test` also runs on the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_core::fuzzing::check_commit_ndjson(data));
