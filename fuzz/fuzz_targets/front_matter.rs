//! Fuzz target `front_matter`: model card YAML front matter, validation and derived tags (`wharf_card`).
//! The property lives in `wharf_card::fuzzing::check_front_matter`, which `cargo test` also runs on the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_card::fuzzing::check_front_matter(data));
