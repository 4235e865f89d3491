//! Replays the committed fuzz corpora and fixed crash inputs of this crate's fuzz targets
//! (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through the same property checks the
//! fuzzers run, so `cargo test` keeps every input they found interesting passing.

use wharf_core::fuzzing::replay_corpus;
use wharf_lfs::fuzzing::{check_gitattributes, check_lfs_batch};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn lfs_batch_corpus() {
    let ran = replay_corpus(MANIFEST_DIR, "lfs_batch", check_lfs_batch);
    assert!(ran > 0, "fuzz/corpus/lfs_batch is empty");
}

#[test]
fn gitattributes_corpus() {
    let ran = replay_corpus(MANIFEST_DIR, "gitattributes", check_gitattributes);
    assert!(ran > 0, "fuzz/corpus/gitattributes is empty");
}
