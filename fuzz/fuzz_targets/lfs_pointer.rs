//! Fuzz target `lfs_pointer`: Git LFS pointer files (`wharf_core::lfs_pointer`).
//! The property lives in `wharf_core::fuzzing::check_lfs_pointer`, which `cargo test` also runs on the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_core::fuzzing::check_lfs_pointer(data));
