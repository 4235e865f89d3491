//! Fuzz target `gguf_header`: GGUF header reading (`wharf_core::gguf`).
//! The property lives in `wharf_core::fuzzing::check_gguf_header`, which `cargo test` also runs on the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_core::fuzzing::check_gguf_header(data));
