//! Fuzz target `path_normalize`: in-repo path normalisation (`wharf_core::normalize_repo_path`).
//! The property lives in `wharf_core::fuzzing::check_path_normalize`, which `cargo test` also runs on the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_core::fuzzing::check_path_normalize(data));
