//! Fuzz target `lfs_batch`: the LFS batch and verify request bodies (`wharf_lfs::batch`) and URL signing.
//! The property lives in `wharf_lfs::fuzzing::check_lfs_batch`, which `cargo test` also runs on the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_lfs::fuzzing::check_lfs_batch(data));
