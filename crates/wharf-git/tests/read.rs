mod common;

use std::collections::HashMap;

use common::*;
use wharf_core::lfs_pointer::LfsPointer;
use wharf_git::{EntryKind, RefExpect, TreeEntry};

#[test]
fn resolve_branches_tags_shas_and_refs() {
    let f = fixture();
    let c1 = commit_at(&f.repo, None, vec![up("a.txt", "a")], 1_700_000_000, "init");
    let c2 = commit_at(
        &f.repo,
        Some(&c1),
        vec![up("b.txt", "b")],
        1_700_000_001,
        "second",
    );
    git(&f.path, &["tag", "light", &c1]);
    git(&f.path, &["tag", "-a", "v1.0", "-m", "release", &c1]);
    git(
        &f.path,
        &["tag", "-a", "nested", "-m", "tag of a tag", "v1.0"],
    );
    git(&f.path, &["branch", "feature/x", &c1]);
    f.repo
        .set_ref("refs/pr/1", &c2, RefExpect::MustNotExist)
        .expect("pr");
    f.repo
        .set_ref("refs/convert/parquet", &c1, RefExpect::MustNotExist)
        .expect("convert");

    let r = |rev: &str| f.repo.resolve(rev).expect("resolve");
    assert_eq!(r("main"), Some(c2.clone()));
    assert_eq!(r("feature/x"), Some(c1.clone()));
    assert_eq!(r("light"), Some(c1.clone()));
    assert_eq!(r("v1.0"), Some(c1.clone()), "annotated tags are peeled");
    assert_eq!(r("nested"), Some(c1.clone()));
    assert_eq!(r(&c1), Some(c1.clone()));
    assert_eq!(r(&c1.to_uppercase()), Some(c1.clone()));
    assert_eq!(r(&c2[..7]), Some(c2.clone()));
    assert_eq!(r("refs/heads/main"), Some(c2.clone()));
    assert_eq!(r("refs/tags/v1.0"), Some(c1.clone()));
    assert_eq!(r("refs/pr/1"), Some(c2.clone()));
    assert_eq!(r("refs/convert/parquet"), Some(c1.clone()));
    let tag_object = git(&f.path, &["rev-parse", "refs/tags/v1.0"]);
    assert_eq!(
        r(tag_object.trim()),
        Some(c1.clone()),
        "a tag object's sha peels to its commit"
    );
    assert_eq!(
        f.repo.ref_target("refs/tags/v1.0").expect("target"),
        Some(c1.clone())
    );
    assert_eq!(f.repo.ref_target("refs/heads/none").expect("target"), None);

    let tree = git(&f.path, &["rev-parse", &format!("{c1}^{{tree}}")]);
    let blob = git(&f.path, &["rev-parse", &format!("{c1}:a.txt")]);
    for rev in [
        "",
        "..",
        "a b",
        "\0",
        "main..dev",
        "main~1",
        "main^",
        "@",
        "-",
        "/",
        "refs/",
        "nope",
        "HEAD~",
        "refs/heads/",
        "ma\nin",
        "main\0",
        "zzzz",
        "abc",
        &"0".repeat(40),
        tree.trim(),
        blob.trim(),
        &blob.trim()[..8],
        "heads/main",
        "refs/heads/../x",
        "ünïcödé",
        &"a".repeat(5000),
    ] {
        assert_eq!(r(rev), None, "{rev:?}");
    }
}

#[test]
fn ambiguous_commit_prefixes_resolve_to_none() {
    let f = fixture();
    // Make root commits on side branches until two share their first four hex digits.
    let mut seen: HashMap<String, String> = HashMap::new();
    let (a, b) = (0..)
        .find_map(|i| {
            let sha = f
                .repo
                .commit(
                    &format!("refs/heads/b{i}"),
                    None,
                    vec![up("f.txt", &i.to_string())],
                    &sig(1_700_000_000),
                    "x",
                )
                .expect("commit");
            let prefix = sha[..4].to_string();
            seen.insert(prefix, sha.clone()).map(|other| (other, sha))
        })
        .expect("collision");
    assert_eq!(f.repo.resolve(&a[..4]).expect("resolve"), None);
    let distinct = (4..40)
        .find(|n| a[..*n] != b[..*n])
        .expect("different shas");
    assert_eq!(
        f.repo.resolve(&a[..distinct]).expect("resolve"),
        Some(a.clone())
    );
    assert_eq!(
        f.repo.resolve(&b[..distinct]).expect("resolve"),
        Some(b.clone())
    );
}

fn names(entries: &[TreeEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

#[test]
fn list_tree_and_entry_match_git() {
    let f = fixture();
    let lfs = LfsPointer {
        oid: "b".repeat(64),
        size: 123_456_789,
    };
    let changes = vec![
        up("README.md", "readme"),
        up("a-b.txt", "dash"),
        up("a/x.txt", "xx"),
        up("a/sub/deep.bin", "deep"),
        up("a.txt", "dot"),
        up("model.safetensors", &lfs.to_text()),
        up(
            "fake-lfs.txt",
            "version https://git-lfs.github.com/spec/v1\noid sha256:nothex\nsize 3\n",
        ),
    ];
    let c = commit_at(&f.repo, None, changes, 1_700_000_000, "init");

    let root = f
        .repo
        .list_tree(&c, "", false)
        .expect("list")
        .expect("root");
    let git_root = lines(&git(&f.path, &["ls-tree", "--name-only", &c]));
    assert_eq!(
        names(&root),
        git_root.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let dir = root.iter().find(|e| e.path == "a").expect("dir a");
    assert_eq!((dir.kind, dir.size), (EntryKind::Directory, 0));
    assert_eq!(
        dir.oid,
        git(&f.path, &["rev-parse", &format!("{c}:a")]).trim()
    );

    let all = f.repo.list_tree(&c, "", true).expect("list").expect("root");
    let git_all = lines(&git(&f.path, &["ls-tree", "-r", "-t", "--name-only", &c]));
    assert_eq!(
        names(&all),
        git_all.iter().map(String::as_str).collect::<Vec<_>>()
    );

    let sub = f.repo.list_tree(&c, "a", true).expect("list").expect("dir");
    assert_eq!(names(&sub), ["a/sub", "a/sub/deep.bin", "a/x.txt"]);
    assert_eq!(
        names(
            &f.repo
                .list_tree(&c, "a/", false)
                .expect("list")
                .expect("dir")
        ),
        ["a/sub", "a/x.txt"]
    );
    assert!(f.repo.list_tree(&c, "nope", false).expect("list").is_none());
    assert!(
        f.repo
            .list_tree(&c, "README.md", false)
            .expect("list")
            .is_none()
    );

    let model = f
        .repo
        .entry(&c, "model.safetensors")
        .expect("entry")
        .expect("file");
    assert_eq!(
        (model.kind, model.size, model.lfs.as_ref()),
        (EntryKind::File, lfs.to_text().len() as u64, Some(&lfs))
    );
    assert!(
        f.repo
            .entry(&c, "fake-lfs.txt")
            .expect("entry")
            .expect("file")
            .lfs
            .is_none()
    );
    let x = f.repo.entry(&c, "a/x.txt").expect("entry").expect("file");
    assert_eq!((x.path.as_str(), x.size), ("a/x.txt", 2));
    assert_eq!(
        x.oid,
        git(&f.path, &["rev-parse", &format!("{c}:a/x.txt")]).trim()
    );
    assert_eq!(f.repo.read_blob(&x.oid).expect("blob"), b"xx");
    assert_eq!(
        f.repo.entry(&c, "a/sub").expect("entry").expect("dir").kind,
        EntryKind::Directory
    );
    assert_eq!(
        f.repo.entry(&c, "").expect("entry").expect("root").kind,
        EntryKind::Directory
    );
    for missing in ["nope", "a/nope", "a/x.txt/more", "a//x.txt"] {
        assert!(
            f.repo.entry(&c, missing).expect("entry").is_none(),
            "{missing}"
        );
    }
    assert_eq!(
        f.repo.entry("nothex", "a").expect_err("bad commit").kind,
        wharf_core::ErrorKind::RevisionNotFound
    );
}

#[test]
fn last_commits_across_three_commits() {
    let f = fixture();
    let c1 = commit_at(
        &f.repo,
        None,
        vec![
            up("a.txt", "1"),
            up("d/x.txt", "1"),
            up("d/y.txt", "1"),
            up("e/z.txt", "1"),
        ],
        1_700_000_000,
        "c1",
    );
    let c2 = commit_at(
        &f.repo,
        Some(&c1),
        vec![up("d/x.txt", "2"), up("b.txt", "2")],
        1_700_000_010,
        "c2",
    );
    let c3 = commit_at(
        &f.repo,
        Some(&c2),
        vec![up("a.txt", "3"), del("e/z.txt"), up("e/w.txt", "3")],
        1_700_000_020,
        "c3",
    );
    let paths: Vec<String> = [
        "a.txt", "b.txt", "d", "d/x.txt", "d/y.txt", "e", "e/w.txt", "e/z.txt", "gone",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let found = f.repo.last_commits(&c3, &paths).expect("last commits");
    let expect = [
        ("a.txt", &c3),
        ("b.txt", &c2),
        ("d", &c2),
        ("d/x.txt", &c2),
        ("d/y.txt", &c1),
        ("e", &c3),
        ("e/w.txt", &c3),
    ];
    assert_eq!(found.len(), expect.len(), "{:?}", found.keys());
    for (path, commit) in expect {
        assert_eq!(&found[path].id, commit, "{path}");
        assert_eq!(
            git(&f.path, &["log", "-1", "--format=%H", &c3, "--", path]).trim(),
            commit.as_str(),
            "{path}"
        );
    }
    assert_eq!(found["b.txt"].title, "c2");
    // From an older commit, history stops there.
    let old = f
        .repo
        .last_commits(&c2, &["a.txt".to_string()])
        .expect("last commits");
    assert_eq!(old["a.txt"].id, c1);
}

#[test]
fn last_commits_through_merges_agree_with_git_log() {
    let f = fixture();
    let base = commit_at(
        &f.repo,
        None,
        vec![
            up("main.txt", "0"),
            up("side.txt", "0"),
            up("both.txt", "0"),
        ],
        1_700_000_000,
        "base",
    );
    let m1 = commit_at(
        &f.repo,
        Some(&base),
        vec![up("main.txt", "1")],
        1_700_000_010,
        "main change",
    );
    let s1 = f
        .repo
        .commit(
            "refs/heads/side",
            Some(&base),
            vec![up("side.txt", "1"), up("both.txt", "s")],
            &sig(1_700_000_020),
            "side change",
        )
        .expect("side");
    // Merge by git: take main's version of both.txt, side's version of side.txt.
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
        &["merge", "-q", "--no-ff", "--no-commit", "origin/side"],
    );
    git(&work, &["checkout", &m1, "--", "both.txt"]);
    git(&work, &["commit", "-q", "-m", "merge side"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let merge = git(&work, &["rev-parse", "HEAD"]).trim().to_string();

    let paths: Vec<String> = ["main.txt", "side.txt", "both.txt"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let found = f.repo.last_commits(&merge, &paths).expect("last commits");
    for path in &paths {
        let expected = git(&f.path, &["log", "-1", "--format=%H", &merge, "--", path]);
        assert_eq!(found[path].id, expected.trim(), "{path}");
    }
    assert_eq!(found["side.txt"].id, s1);
    assert_eq!(found["both.txt"].id, base);
}

#[test]
fn log_pages_in_date_order_and_counts() {
    let f = fixture();
    let mut shas = Vec::new();
    let mut base: Option<String> = None;
    for i in 0..7 {
        let sha = commit_at(
            &f.repo,
            base.as_deref(),
            vec![up("f.txt", &i.to_string())],
            1_700_000_000 + i,
            &format!("c{i}"),
        );
        base = Some(sha.clone());
        shas.push(sha);
    }
    shas.reverse();
    let tip = &shas[0];
    assert_eq!(f.repo.count_commits(tip).expect("count"), 7);
    let (page, more) = f.repo.log(tip, 0, 3).expect("log");
    assert_eq!(
        page.iter().map(|c| &c.id).collect::<Vec<_>>(),
        shas[..3].iter().collect::<Vec<_>>()
    );
    assert!(more);
    let (page, more) = f.repo.log(tip, 6, 3).expect("log");
    assert_eq!((page.len(), more, page[0].title.as_str()), (1, false, "c0"));
    let (page, more) = f.repo.log(tip, 4, 3).expect("log");
    assert_eq!((page.len(), more), (3, false));
    assert!(f.repo.log(tip, 100, 3).expect("log").0.is_empty());
    assert_eq!(f.repo.count_commits(&shas[3]).expect("count"), 4);
}

#[test]
fn log_keeps_children_before_parents_within_one_second() {
    let f = fixture();
    // All commits share one timestamp: only the topology can order them.
    let base = commit_at(&f.repo, None, vec![up("f.txt", "0")], 1_700_000_000, "base");
    let a1 = commit_at(
        &f.repo,
        Some(&base),
        vec![up("a.txt", "1")],
        1_700_000_000,
        "a1",
    );
    let b1 = f
        .repo
        .commit(
            "refs/heads/side",
            Some(&base),
            vec![up("b.txt", "1")],
            &sig(1_700_000_000),
            "b1",
        )
        .expect("b1");
    let b2 = f
        .repo
        .commit(
            "refs/heads/side",
            Some(&b1),
            vec![up("b.txt", "2")],
            &sig(1_700_000_000),
            "b2",
        )
        .expect("b2");
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
    let mut merge = git_command(
        &work,
        &["merge", "-q", "--no-ff", "-m", "merge", "origin/side"],
    );
    merge
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000");
    assert!(merge.status().expect("merge").success());
    git(&work, &["push", "-q", "origin", "main"]);
    let tip = git(&work, &["rev-parse", "HEAD"]).trim().to_string();

    let (log, more) = f.repo.log(&tip, 0, 100).expect("log");
    assert!(!more);
    let ids: Vec<&str> = log.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 5);
    let pos = |sha: &str| ids.iter().position(|i| *i == sha).expect("listed");
    assert_eq!(pos(&tip), 0);
    assert!(pos(&b2) < pos(&b1) && pos(&b1) < pos(&base) && pos(&a1) < pos(&base));
    assert_eq!(pos(&base), 4);
    assert_eq!(f.repo.count_commits(&tip).expect("count"), 5);
}

#[test]
fn refs_lists_branches_tags_prs_and_converts() {
    let f = fixture();
    let c1 = commit_at(&f.repo, None, vec![up("a.txt", "a")], 1_700_000_000, "init");
    let c2 = commit_at(
        &f.repo,
        Some(&c1),
        vec![up("b.txt", "b")],
        1_700_000_001,
        "second",
    );
    f.repo
        .set_ref("refs/heads/dev", &c1, RefExpect::MustNotExist)
        .expect("dev");
    f.repo
        .set_ref("refs/tags/light", &c2, RefExpect::MustNotExist)
        .expect("tag");
    git(&f.path, &["tag", "-a", "v1", "-m", "annotated", &c1]);
    f.repo
        .set_ref("refs/pr/2", &c2, RefExpect::MustNotExist)
        .expect("pr");
    f.repo
        .set_ref("refs/pr/1", &c1, RefExpect::MustNotExist)
        .expect("pr");
    f.repo
        .set_ref("refs/convert/parquet", &c1, RefExpect::MustNotExist)
        .expect("convert");
    git(&f.path, &["update-ref", "refs/other/x", &c1]);
    git(&f.path, &["pack-refs", "--all"]);
    f.repo
        .set_ref("refs/heads/after-pack", &c2, RefExpect::MustNotExist)
        .expect("loose");

    let refs = f.repo.refs().expect("refs");
    let view = |list: &[wharf_git::RefInfo]| -> Vec<(String, String, String)> {
        list.iter()
            .map(|r| (r.name.clone(), r.full_ref.clone(), r.target_commit.clone()))
            .collect()
    };
    let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        view(&refs.branches),
        [
            t("after-pack", "refs/heads/after-pack", &c2),
            t("dev", "refs/heads/dev", &c1),
            t("main", "refs/heads/main", &c2)
        ]
    );
    assert_eq!(
        view(&refs.tags),
        [
            t("light", "refs/tags/light", &c2),
            t("v1", "refs/tags/v1", &c1)
        ]
    );
    assert_eq!(
        view(&refs.pull_requests),
        [
            t("refs/pr/1", "refs/pr/1", &c1),
            t("refs/pr/2", "refs/pr/2", &c2)
        ]
    );
    assert_eq!(
        view(&refs.converts),
        [t("refs/convert/parquet", "refs/convert/parquet", &c1)]
    );
}
