//! Fuzz target `safetensors_header`: safetensors header length, JSON and parameter counts (`wharf_core::safetensors`).
//! The property lives in `wharf_core::fuzzing::check_safetensors_header`, which `cargo test` also runs on the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_core::fuzzing::check_safetensors_header(data));
