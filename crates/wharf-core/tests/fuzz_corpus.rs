//! Replays the committed fuzz corpora and fixed crash inputs of this crate's fuzz targets
//! (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through the same property checks the
//! fuzzers run, so `cargo test` keeps every input they found interesting passing.

use wharf_core::fuzzing::{
    check_commit_ndjson, check_gguf_header, check_lfs_pointer, check_path_normalize,
    check_safetensors_header, replay_corpus,
};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn replay(target: &str, check: fn(&[u8])) {
    let ran = replay_corpus(MANIFEST_DIR, target, check);
    assert!(ran > 0, "fuzz/corpus/{target} is empty");
}

#[test]
fn path_normalize_corpus() {
    replay("path_normalize", check_path_normalize);
}

#[test]
fn lfs_pointer_corpus() {
    replay("lfs_pointer", check_lfs_pointer);
}

#[test]
fn safetensors_header_corpus() {
    replay("safetensors_header", check_safetensors_header);
}

#[test]
fn gguf_header_corpus() {
    replay("gguf_header", check_gguf_header);
}

#[test]
fn commit_ndjson_corpus() {
    replay("commit_ndjson", check_commit_ndjson);
}
