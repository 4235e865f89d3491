//! Tree listings describe each blob once per repository (size and LFS pointer are cached by
//! blob id); repeated listings and other commits sharing blobs must describe them the same.
mod common;

use common::{commit_at, fixture, up};
use wharf_git::{EntryKind, LfsPointer};

#[test]
fn repeated_listings_describe_blobs_the_same() {
    let f = fixture();
    let lfs = LfsPointer {
        oid: "c".repeat(64),
        size: 987_654_321,
    };
    let big = "x".repeat(5000);
    let c1 = commit_at(
        &f.repo,
        None,
        vec![
            up("model.bin", &lfs.to_text()),
            up("big.txt", &big),
            up("small.txt", "small"),
            up("dir/copy.bin", &lfs.to_text()),
        ],
        1_700_000_000,
        "c1",
    );
    let c2 = commit_at(
        &f.repo,
        Some(&c1),
        vec![up("small.txt", "changed"), up("other.bin", &lfs.to_text())],
        1_700_000_001,
        "c2",
    );
    let describe = |commit: &str| {
        let mut all = f
            .repo
            .list_tree(commit, "", true)
            .expect("list")
            .expect("root");
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all.into_iter()
            .map(|e| (e.path, e.kind, e.oid, e.size, e.lfs))
            .collect::<Vec<_>>()
    };
    let first = describe(&c2);
    assert_eq!(first, describe(&c2));
    let lfs_paths: Vec<&str> = first
        .iter()
        .filter(|e| e.4.as_ref() == Some(&lfs))
        .map(|e| e.0.as_str())
        .collect();
    assert_eq!(lfs_paths, ["dir/copy.bin", "model.bin", "other.bin"]);
    let size_of = |path: &str| first.iter().find(|e| e.0 == path).map(|e| e.3);
    assert_eq!(size_of("big.txt"), Some(5000));
    assert_eq!(size_of("small.txt"), Some(7));
    assert_eq!(size_of("dir"), Some(0));
    // The older commit shares blobs with the newer one and has its own.
    let older = describe(&c1);
    let small = older.iter().find(|e| e.0 == "small.txt").expect("small");
    assert_eq!(
        (small.1, small.3, small.4.is_none()),
        (EntryKind::File, 5, true)
    );
    let entry = f
        .repo
        .entry(&c1, "dir/copy.bin")
        .expect("entry")
        .expect("found");
    assert_eq!(
        (entry.size, entry.lfs),
        (lfs.to_text().len() as u64, Some(lfs.clone()))
    );
}
