//! Fuzz target `xorb`: xorb upload verification, ingest, footers, chunk decoding and chunk tables (`wharf_xet::xorb`).
//! The property lives in `wharf_xet::fuzzing::check_xorb`, which `cargo test` also runs on the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_xet::fuzzing::check_xorb(data));
