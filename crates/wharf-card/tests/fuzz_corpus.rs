//! Replays the committed fuzz corpora and fixed crash inputs of this crate's fuzz targets
//! (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through the same property checks the
//! fuzzers run, so `cargo test` keeps every input they found interesting passing.

use wharf_card::fuzzing::{check_front_matter, check_markdown};
use wharf_core::fuzzing::replay_corpus;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn front_matter_corpus() {
    let ran = replay_corpus(MANIFEST_DIR, "front_matter", check_front_matter);
    assert!(ran > 0, "fuzz/corpus/front_matter is empty");
}

#[test]
fn markdown_corpus() {
    let ran = replay_corpus(MANIFEST_DIR, "markdown", check_markdown);
    assert!(ran > 0, "fuzz/corpus/markdown is empty");
}
