//! Fuzz target `shard`: uploaded shard parsing and per-file verification (`wharf_xet::shard`).
//! The property lives in `wharf_xet::fuzzing::check_shard`, which `cargo test` also runs on the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_xet::fuzzing::check_shard(data));
