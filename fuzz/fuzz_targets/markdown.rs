//! Fuzz target `markdown`: Markdown rendering and sanitising (`wharf_card::render_markdown`): no script survives.
//! The property lives in `wharf_card::fuzzing::check_markdown`, which `cargo test` also runs on the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_card::fuzzing::check_markdown(data));
