//! Replays the committed fuzz corpora and fixed crash inputs of the `xorb` and `shard` fuzz
//! targets (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) and this crate's seed
//! inputs through the same property checks the fuzzers run.
//!
//! `cargo test -p wharf-xet --test fuzz_corpus -- --ignored write_seed_corpus` (re)writes the
//! seed files into `fuzz/corpus/`.

use wharf_core::fuzzing::replay_corpus;
use wharf_xet::fuzzing::{check_shard, check_xorb, seed_inputs};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn replay(target: &str, check: fn(&[u8])) {
    let seeds = seed_inputs(target);
    assert!(!seeds.is_empty());
    for (_, seed) in &seeds {
        check(seed);
    }
    let ran = replay_corpus(MANIFEST_DIR, target, check);
    assert!(ran > 0, "fuzz/corpus/{target} is empty");
}

#[test]
fn xorb_corpus() {
    replay("xorb", check_xorb);
}

#[test]
fn shard_corpus() {
    replay("shard", check_shard);
}

#[test]
fn real_client_shards_pass_the_shard_check() {
    check_shard(include_bytes!("fixtures/det.hf_xet-1.8.0.shard"));
    check_shard(include_bytes!("fixtures/floats.hf_xet-1.8.0.shard"));
}

#[test]
#[ignore = "writes seed files into fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    for target in ["xorb", "shard"] {
        let dir = std::path::Path::new(MANIFEST_DIR)
            .join("../../fuzz/corpus")
            .join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        for (name, bytes) in seed_inputs(target) {
            std::fs::write(dir.join(name), bytes).expect("seed file");
        }
    }
}
