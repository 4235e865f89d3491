//! Fuzz target `gitattributes`: `.gitattributes` LFS rules (`wharf_lfs::LfsRules`).
//! The property lives in `wharf_lfs::fuzzing::check_gitattributes`, which `cargo test` also runs on the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_lfs::fuzzing::check_gitattributes(data));
