mod common;

use common::*;
use wharf_core::lfs_pointer::LfsPointer;
use wharf_git::{ChangeKind, FileDiff, TreeChange};

fn bytes(path: &str, data: &[u8]) -> TreeChange {
    TreeChange::Upsert {
        path: path.into(),
        data: data.to_vec(),
    }
}

/// `git diff --name-status` between two commits, as (status letter, path).
fn git_name_status(f: &Fixture, old: &str, new: &str) -> Vec<(String, String)> {
    git(
        &f.path,
        &["diff", "--name-status", "--no-renames", old, new],
    )
    .lines()
    .filter_map(|l| {
        let (status, path) = l.split_once('\t')?;
        Some((status.to_string(), path.to_string()))
    })
    .collect()
}

/// The hunks of `git diff` for one path (everything from the first `@@`).
fn git_hunks(f: &Fixture, old: &str, new: &str, path: &str) -> String {
    let full = git(
        &f.path,
        &[
            "diff",
            "--histogram",
            "-U3",
            "--no-renames",
            "--no-color",
            old,
            new,
            "--",
            path,
        ],
    );
    // A pathspec also matches a folder of that name: keep only the first file's section.
    let first = match full[1..].find("\ndiff --git ") {
        Some(i) => &full[..i + 2],
        None => &full[..],
    };
    match first.find("\n@@") {
        Some(i) => first[i + 1..].to_string(),
        None => String::new(),
    }
}

fn letter(d: &FileDiff) -> &'static str {
    match d.change {
        ChangeKind::Added => "A",
        ChangeKind::Modified => "M",
        ChangeKind::Deleted => "D",
    }
}

#[test]
fn diff_matches_git() {
    let f = fixture();
    let big_text: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
    let c1 = commit_at(
        &f.repo,
        None,
        vec![
            up("README.md", "# Title\n\nintro\n"),
            up("keep.txt", "same\n"),
            up("src/a.py", "print('a')\nx = 1\ny = 2\nz = 3\n"),
            up("src/nested/deep.txt", "deep\n"),
            up("gone/one.txt", "1\n"),
            up("gone/two.txt", "2\n"),
            up("becomes_dir", "file first\n"),
            up("no_newline.txt", "a\nb"),
            bytes("weights.bin", b"\x00\x01\x02binary"),
            up("big.txt", &big_text),
        ],
        1_700_000_000,
        "one",
    );
    let big_changed = big_text.replace("line 5\n", "line five\n");
    let c2 = commit_at(
        &f.repo,
        Some(&c1),
        vec![
            up("README.md", "# Title\n\nintro, longer\n\nmore\n"),
            up("src/a.py", "print('a')\nx = 10\ny = 2\nz = 3\n"),
            del("src/nested/deep.txt"),
            up("src/new.txt", "new\n"),
            del_dir("gone"),
            del("becomes_dir"),
            up("becomes_dir/inside.txt", "inside\n"),
            up("no_newline.txt", "a\nc"),
            bytes("weights.bin", b"\x00\x01\x03binary"),
            up("big.txt", &big_changed),
            bytes("latin1.txt", b"caf\xe9\n"),
        ],
        1_700_000_100,
        "two",
    );

    let diffs = f.repo.diff(Some(&c1), &c2).expect("diff");
    let ours: Vec<(String, String)> = diffs
        .iter()
        .map(|d| (letter(d).to_string(), d.path.clone()))
        .collect();
    assert_eq!(ours, git_name_status(&f, &c1, &c2));

    let by_path = |p: &str| diffs.iter().find(|d| d.path == p).expect(p);
    for path in [
        "README.md",
        "src/a.py",
        "src/new.txt",
        "src/nested/deep.txt",
        "gone/one.txt",
        "becomes_dir",
        "becomes_dir/inside.txt",
        "no_newline.txt",
    ] {
        let d = by_path(path);
        assert!(!d.binary && !d.lfs, "{path}");
        assert_eq!(
            d.patch.as_deref(),
            Some(git_hunks(&f, &c1, &c2, path).as_str()),
            "{path}"
        );
    }
    let readme = by_path("README.md");
    assert_eq!(readme.old_size, "# Title\n\nintro\n".len() as u64);
    assert_eq!(
        readme.new_size,
        "# Title\n\nintro, longer\n\nmore\n".len() as u64
    );
    let old_blob = git(&f.path, &["rev-parse", &format!("{c1}:README.md")]);
    let new_blob = git(&f.path, &["rev-parse", &format!("{c2}:README.md")]);
    assert_eq!(readme.old_oid.as_deref(), Some(old_blob.trim()));
    assert_eq!(readme.new_oid.as_deref(), Some(new_blob.trim()));

    let added = by_path("src/new.txt");
    assert_eq!((added.old_oid.as_deref(), added.old_size), (None, 0));
    let deleted = by_path("gone/two.txt");
    assert_eq!((deleted.new_oid.as_deref(), deleted.new_size), (None, 0));
    assert_eq!(deleted.patch.as_deref(), Some("@@ -1 +0,0 @@\n-2\n"));

    let bin = by_path("weights.bin");
    assert!(bin.binary && bin.patch.is_none());
    let latin = by_path("latin1.txt");
    assert!(latin.binary && latin.patch.is_none(), "not UTF-8");
    let big = by_path("big.txt");
    assert!(!big.binary, "big text is still text");
    assert!(big.patch.is_none(), "no patch over 1 MiB");
    assert_eq!(big.new_size, big_changed.len() as u64);
}

#[test]
fn diff_of_a_root_commit_adds_everything() {
    let f = fixture();
    let c1 = commit_at(
        &f.repo,
        None,
        vec![
            up("b.txt", "b\n"),
            up("a/z.txt", "z\n"),
            up("a/y.txt", "y\n"),
        ],
        1_700_000_000,
        "root",
    );
    let diffs = f.repo.diff(None, &c1).expect("diff");
    let paths: Vec<&str> = diffs.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["a/y.txt", "a/z.txt", "b.txt"]);
    assert!(diffs.iter().all(|d| d.change == ChangeKind::Added));
    assert_eq!(diffs[2].patch.as_deref(), Some("@@ -0,0 +1 @@\n+b\n"));
    assert!(f.repo.diff(Some(&c1), &c1).expect("diff").is_empty());
    assert!(f.repo.diff(Some("0".repeat(40).as_str()), &c1).is_err());
}

#[test]
fn lfs_pointer_changes_report_real_sizes() {
    let f = fixture();
    let p1 = LfsPointer {
        oid: "a".repeat(64),
        size: 5_000_000_000,
    };
    let p2 = LfsPointer {
        oid: "b".repeat(64),
        size: 7,
    };
    let c1 = commit_at(
        &f.repo,
        None,
        vec![
            up("model.safetensors", &p1.to_text()),
            up("was_text.bin", "plain\n"),
        ],
        1_700_000_000,
        "one",
    );
    let c2 = commit_at(
        &f.repo,
        Some(&c1),
        vec![
            up("model.safetensors", &p2.to_text()),
            up("was_text.bin", &p1.to_text()),
        ],
        1_700_000_001,
        "two",
    );
    let diffs = f.repo.diff(Some(&c1), &c2).expect("diff");
    assert_eq!(diffs.len(), 2);
    let m = &diffs[0];
    assert_eq!(m.path, "model.safetensors");
    assert!(m.lfs && !m.binary && m.patch.is_none());
    assert_eq!((m.old_size, m.new_size), (5_000_000_000, 7));
    let w = &diffs[1];
    assert!(w.lfs && w.patch.is_none());
    assert_eq!((w.old_size, w.new_size), (6, 5_000_000_000));
}

#[test]
fn path_log_agrees_with_git_log() {
    let f = fixture();
    let base = commit_at(
        &f.repo,
        None,
        vec![
            up("main.txt", "0"),
            up("side.txt", "0"),
            up("dir/a.txt", "0"),
        ],
        1_700_000_000,
        "base",
    );
    let m1 = commit_at(
        &f.repo,
        Some(&base),
        vec![up("main.txt", "1"), up("dir/b.txt", "1")],
        1_700_000_010,
        "main change",
    );
    let m2 = commit_at(
        &f.repo,
        Some(&m1),
        vec![up("other.txt", "x")],
        1_700_000_015,
        "unrelated",
    );
    let s1 = f
        .repo
        .commit(
            "refs/heads/side",
            Some(&base),
            vec![up("side.txt", "1"), up("dir/a.txt", "s")],
            &sig(1_700_000_020),
            "side change",
        )
        .expect("side");
    let work = f._dir.path().join("work");
    git(
        f._dir.path(),
        &[
            "clone",
            "-q",
            f.path.to_str().expect("utf-8"),
            work.to_str().expect("utf-8"),
        ],
    );
    git(
        &work,
        &["merge", "-q", "--no-ff", "-m", "merge side", "origin/side"],
    );
    git(&work, &["push", "-q", "origin", "main"]);
    let merge = git(&work, &["rev-parse", "HEAD"]).trim().to_string();
    let m3 = commit_at(
        &f.repo,
        Some(&merge),
        vec![del("main.txt")],
        1_700_000_030,
        "delete main",
    );

    for path in [
        "main.txt",
        "side.txt",
        "dir",
        "dir/a.txt",
        "dir/b.txt",
        "other.txt",
        "missing.txt",
    ] {
        let expected: Vec<String> = git(&f.path, &["log", "--format=%H", &m3, "--", path])
            .lines()
            .map(str::to_owned)
            .collect();
        let (found, more) = f.repo.path_log(&m3, path, 0, 100).expect("path log");
        let ids: Vec<String> = found.into_iter().map(|c| c.id).collect();
        assert_eq!(ids, expected, "{path}");
        assert!(!more);
    }
    // Asked again (now answered from the cached change sets) and by a fresh handle without
    // any: the same pages, across the merge.
    let fresh = wharf_git::GitRepo::open(&f.path).expect("open");
    for path in [
        "main.txt",
        "side.txt",
        "dir",
        "dir/a.txt",
        "dir/b.txt",
        "",
        "missing.txt",
    ] {
        let ids = |repo: &wharf_git::GitRepo| -> Vec<String> {
            let (page, _) = repo.path_log(&m3, path, 0, 100).expect("path log");
            page.into_iter().map(|c| c.id).collect()
        };
        let warm = ids(&f.repo);
        assert_eq!(warm, ids(&f.repo), "{path}");
        assert_eq!(warm, ids(&fresh), "{path}");
    }
    // The whole tree: every commit that changed something.
    let (all, _) = f.repo.path_log(&m3, "", 0, 100).expect("path log");
    assert_eq!(all.len(), 6);

    let (page, more) = f.repo.path_log(&m3, "main.txt", 0, 1).expect("page");
    assert_eq!((page[0].id.as_str(), more), (m3.as_str(), true));
    let (page, more) = f.repo.path_log(&m3, "main.txt", 1, 1).expect("page");
    assert_eq!((page[0].id.as_str(), more), (m1.as_str(), true));
    let (page, more) = f.repo.path_log(&m3, "main.txt", 2, 5).expect("page");
    assert_eq!(
        (page[0].id.as_str(), page.len(), more),
        (base.as_str(), 1, false)
    );
    assert!(
        f.repo
            .path_log(&m3, "main.txt", 9, 5)
            .expect("page")
            .0
            .is_empty()
    );
    let (page, _) = f.repo.path_log(&m3, "side.txt", 0, 10).expect("page");
    assert_eq!(page[0].id, s1);
    let (page, _) = f.repo.path_log(&m3, "other.txt", 0, 10).expect("page");
    assert_eq!(page[0].id, m2);
    assert!(
        f.repo
            .path_log(&m3, "a//b", 0, 10)
            .expect("bad path")
            .0
            .is_empty()
    );
}
