mod common;

use std::sync::Arc;

use common::*;
use wharf_core::ErrorKind;
use wharf_git::{GitRepo, RefExpect};

#[test]
fn init_sets_head_and_server_config() {
    let f = fixture();
    assert_eq!(
        git(&f.path, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    assert_eq!(
        git(&f.path, &["rev-parse", "--is-bare-repository"]).trim(),
        "true"
    );
    for (key, value) in [
        ("uploadpack.allowFilter", "true"),
        ("uploadpack.allowReachableSHA1InWant", "true"),
        ("receive.fsckObjects", "true"),
        ("http.receivepack", "true"),
        ("core.logAllRefUpdates", "false"),
    ] {
        assert_eq!(
            git(&f.path, &["config", "--get", key]).trim(),
            value,
            "{key}"
        );
    }
    let err = GitRepo::init(&f.path).expect_err("second init");
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(f.repo.refs().expect("refs").branches.is_empty());
    assert_eq!(f.repo.resolve("main").expect("resolve"), None);
}

#[test]
fn open_missing_is_repo_not_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = GitRepo::open(&dir.path().join("nope")).expect_err("missing");
    assert_eq!(err.kind, ErrorKind::RepoNotFound);
}

#[test]
fn commit_nested_paths_delete_and_delete_folder() {
    let f = fixture();
    let changes = vec![
        up("README.md", "# hi\n"),
        up("dir/b.txt", "b"),
        up("dir/sub/c.txt", "c"),
        up("x/y/z.txt", "z"),
        up("dir/a.txt", "a"),
    ];
    let c1 = commit_at(&f.repo, None, changes, 1_700_000_000, "First\n\nBody text");
    assert_eq!(git(&f.path, &["rev-parse", "main"]).trim(), c1);
    assert_eq!(
        ls_files(&f.path, "main"),
        [
            "README.md",
            "dir/a.txt",
            "dir/b.txt",
            "dir/sub/c.txt",
            "x/y/z.txt"
        ]
    );
    assert_eq!(git(&f.path, &["show", "main:dir/sub/c.txt"]), "c");
    assert_fsck_clean(&f.path);

    let c2 = commit_at(
        &f.repo,
        Some(&c1),
        vec![del("dir/b.txt"), del_dir("x/")],
        1_700_000_100,
        "Second",
    );
    assert_eq!(
        ls_files(&f.path, "main"),
        ["README.md", "dir/a.txt", "dir/sub/c.txt"]
    );
    assert_eq!(
        lines(&git(&f.path, &["log", "--format=%H"])),
        [c2.clone(), c1.clone()]
    );
    assert_eq!(git(&f.path, &["log", "-1", "--format=%P", &c2]).trim(), c1);

    // Deleting the last file of a directory removes the directory, all the way up.
    let c3 = commit_at(
        &f.repo,
        Some(&c2),
        vec![del("dir/sub/c.txt"), del("dir/a.txt")],
        1_700_000_200,
        "Third",
    );
    assert_eq!(
        lines(&git(&f.path, &["ls-tree", "-r", "-t", "--name-only", &c3])),
        ["README.md"]
    );
    assert_fsck_clean(&f.path);

    let info = f.repo.commit_info(&c1).expect("info");
    assert_eq!(
        (info.title.as_str(), info.message.as_str()),
        ("First", "Body text")
    );
    assert_eq!(
        (info.author_name.as_str(), info.author_email.as_str()),
        ("Ada Lovelace", "ada@example.com")
    );
    assert_eq!(info.date_ms, 1_700_000_000_000);
    assert!(info.parents.is_empty());
    assert_eq!(f.repo.commit_info(&c2).expect("info").parents, [c1]);
    assert_eq!(
        git(
            &f.path,
            &["log", "-1", "--format=%an <%ae> %at %cn %ct", &c2]
        )
        .trim(),
        "Ada Lovelace <ada@example.com> 1700000100 Ada Lovelace 1700000100"
    );
}

#[test]
fn missing_entries_fail_and_leave_the_branch_alone() {
    let f = fixture();
    let c1 = commit_at(
        &f.repo,
        None,
        vec![up("a/b.txt", "b"), up("f.txt", "f")],
        1_700_000_000,
        "init",
    );
    for change in [
        del("nope.txt"),
        del("a"),
        del("a/b.txt/c"),
        del_dir("nope"),
        del_dir("f.txt"),
        del_dir("a/b.txt"),
    ] {
        let err = f
            .repo
            .commit(
                "refs/heads/main",
                Some(&c1),
                vec![change.clone()],
                &sig(1),
                "x",
            )
            .expect_err("missing");
        assert_eq!(err.kind, ErrorKind::EntryNotFound, "{change:?}");
    }
    // A later change in the same commit sees the earlier ones.
    let err = f
        .repo
        .commit(
            "refs/heads/main",
            Some(&c1),
            vec![del("f.txt"), del("f.txt")],
            &sig(1),
            "x",
        )
        .expect_err("deleted twice");
    assert_eq!(err.kind, ErrorKind::EntryNotFound);
    assert_eq!(
        f.repo.ref_target("refs/heads/main").expect("target"),
        Some(c1)
    );
}

#[test]
fn file_and_directory_replace_each_other() {
    let f = fixture();
    let c1 = commit_at(
        &f.repo,
        None,
        vec![up("a/x.txt", "x"), up("a/y/z.txt", "z"), up("f", "file")],
        1_700_000_000,
        "init",
    );
    // "a" becomes a file, "f" becomes a directory.
    let c2 = commit_at(
        &f.repo,
        Some(&c1),
        vec![up("a", "now a file"), up("f/inner.txt", "in")],
        1_700_000_001,
        "swap",
    );
    assert_eq!(ls_files(&f.path, &c2), ["a", "f/inner.txt"]);
    // And back again within one commit: no stale content of the old directory comes back.
    let c3 = commit_at(
        &f.repo,
        Some(&c2),
        vec![
            up("a/new.txt", "n"),
            up("a", "file again"),
            up("a/q/r.txt", "r"),
        ],
        1_700_000_002,
        "again",
    );
    assert_eq!(ls_files(&f.path, &c3), ["a/q/r.txt", "f/inner.txt"]);
    // Upsert then delete in the same commit, and delete then re-add.
    let c4 = commit_at(
        &f.repo,
        Some(&c3),
        vec![
            up("tmp.txt", "t"),
            del("tmp.txt"),
            del("f/inner.txt"),
            up("f/inner.txt", "2"),
        ],
        1_700_000_003,
        "churn",
    );
    assert_eq!(ls_files(&f.path, &c4), ["a/q/r.txt", "f/inner.txt"]);
    assert_eq!(git(&f.path, &["show", &format!("{c4}:f/inner.txt")]), "2");
    assert_fsck_clean(&f.path);
}

#[test]
fn deleting_everything_gives_the_empty_tree() {
    let f = fixture();
    let c1 = commit_at(&f.repo, None, vec![up("a.txt", "a")], 1_700_000_000, "init");
    let c2 = commit_at(
        &f.repo,
        Some(&c1),
        vec![del("a.txt")],
        1_700_000_001,
        "empty",
    );
    assert_eq!(
        git(&f.path, &["rev-parse", &format!("{c2}^{{tree}}")]).trim(),
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    );
    assert!(
        f.repo
            .list_tree(&c2, "", true)
            .expect("list")
            .expect("root")
            .is_empty()
    );
    assert_fsck_clean(&f.path);
}

#[test]
fn invalid_paths_are_rejected() {
    let f = fixture();
    for path in [
        "",
        "/",
        "a//b",
        "../x",
        "a/./b",
        ".git/config",
        "a/.GIT/x",
        "a\0b",
    ] {
        let err = f
            .repo
            .commit("refs/heads/main", None, vec![up(path, "x")], &sig(1), "x")
            .expect_err(path);
        assert_eq!(err.kind, ErrorKind::Unprocessable, "{path:?}");
    }
    let err = f
        .repo
        .commit("refs/heads/a..b", None, vec![up("x", "x")], &sig(1), "x")
        .expect_err("bad ref");
    assert_eq!(err.kind, ErrorKind::Unprocessable);
    assert!(f.repo.refs().expect("refs").branches.is_empty());
}

#[test]
fn stale_parent_loses_and_keeps_the_winner() {
    let f = fixture();
    let base = commit_at(&f.repo, None, vec![up("a.txt", "a")], 1_700_000_000, "init");
    let first = commit_at(
        &f.repo,
        Some(&base),
        vec![up("b.txt", "b")],
        1_700_000_001,
        "first",
    );
    let err = f
        .repo
        .commit(
            "refs/heads/main",
            Some(&base),
            vec![up("c.txt", "c")],
            &sig(2),
            "second",
        )
        .expect_err("stale");
    assert_eq!(err.kind, ErrorKind::PreconditionFailed);
    assert_eq!(git(&f.path, &["rev-parse", "main"]).trim(), first);
    // A root commit onto an existing branch is stale as well.
    let err = f
        .repo
        .commit(
            "refs/heads/main",
            None,
            vec![up("c.txt", "c")],
            &sig(2),
            "root",
        )
        .expect_err("exists");
    assert_eq!(err.kind, ErrorKind::PreconditionFailed);
    // An unknown base is a revision error, not a silent root commit.
    let err = f
        .repo
        .commit(
            "refs/heads/main",
            Some(&"0".repeat(40)),
            vec![],
            &sig(2),
            "x",
        )
        .expect_err("unknown");
    assert_eq!(err.kind, ErrorKind::RevisionNotFound);
    assert_fsck_clean(&f.path);
}

#[test]
fn concurrent_commits_on_one_base_let_exactly_one_win() {
    let f = fixture();
    let base = commit_at(&f.repo, None, vec![up("a.txt", "a")], 1_700_000_000, "init");
    let repo = Arc::new(GitRepo::open(&f.path).expect("open"));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (repo, base) = (repo.clone(), base.clone());
            std::thread::spawn(move || {
                repo.commit(
                    "refs/heads/main",
                    Some(&base),
                    vec![up(&format!("{i}.txt"), "x")],
                    &sig(1_700_000_010 + i),
                    "race",
                )
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let winners: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.kind, ErrorKind::PreconditionFailed);
    }
    assert_eq!(&git(&f.path, &["rev-parse", "main"]).trim(), winners[0]);
}

#[test]
fn pr_ref_commit_and_set_ref_rules() {
    let f = fixture();
    let c1 = commit_at(&f.repo, None, vec![up("a.txt", "a")], 1_700_000_000, "init");
    // A commit with a base onto a missing ref creates it (a PR branching off main).
    let pr = f
        .repo
        .commit(
            "refs/pr/1",
            Some(&c1),
            vec![up("b.txt", "b")],
            &sig(1_700_000_001),
            "pr",
        )
        .expect("pr commit");
    assert_eq!(git(&f.path, &["rev-parse", "refs/pr/1"]).trim(), pr);
    assert_eq!(
        f.repo.resolve("refs/pr/1").expect("resolve"),
        Some(pr.clone())
    );

    f.repo
        .set_ref("refs/heads/dev", &c1, RefExpect::MustNotExist)
        .expect("create");
    let err = f
        .repo
        .set_ref("refs/heads/dev", &c1, RefExpect::MustNotExist)
        .expect_err("exists");
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert_eq!(err.message, "Reference refs/heads/dev already exists");
    let err = f
        .repo
        .set_ref("refs/heads/dev", &pr, RefExpect::MustEqual(&pr))
        .expect_err("mismatch");
    assert_eq!(err.kind, ErrorKind::PreconditionFailed);
    let err = f
        .repo
        .set_ref("refs/heads/nope", &pr, RefExpect::MustEqual(&c1))
        .expect_err("missing");
    assert_eq!(err.kind, ErrorKind::PreconditionFailed);
    f.repo
        .set_ref("refs/heads/dev", &pr, RefExpect::MustEqual(&c1))
        .expect("move");
    f.repo
        .set_ref("refs/heads/dev", &c1, RefExpect::Any)
        .expect("force");
    assert_eq!(git(&f.path, &["rev-parse", "dev"]).trim(), c1);
    let tree = git(&f.path, &["rev-parse", &format!("{c1}^{{tree}}")]);
    let err = f
        .repo
        .set_ref("refs/heads/t", tree.trim(), RefExpect::Any)
        .expect_err("not a commit");
    assert_eq!(err.kind, ErrorKind::RevisionNotFound);
    let err = f
        .repo
        .set_ref("refs/heads/bad name", &c1, RefExpect::Any)
        .expect_err("bad name");
    assert_eq!(err.kind, ErrorKind::Unprocessable);

    assert!(f.repo.delete_ref("refs/heads/dev").expect("delete"));
    assert!(!f.repo.delete_ref("refs/heads/dev").expect("delete again"));
    assert_eq!(f.repo.ref_target("refs/heads/dev").expect("target"), None);
    assert_fsck_clean(&f.path);
}

#[test]
fn works_with_packed_refs_packfiles_and_pushes() {
    let f = fixture();
    let c1 = commit_at(
        &f.repo,
        None,
        vec![up("a.txt", "a"), up("d/b.txt", "b")],
        1_700_000_000,
        "init",
    );
    f.repo
        .set_ref("refs/heads/old", &c1, RefExpect::MustNotExist)
        .expect("branch");
    git(&f.path, &["gc", "--aggressive", "--prune=now"]);
    assert!(f.path.join("packed-refs").exists());
    assert_eq!(f.repo.resolve("main").expect("resolve"), Some(c1.clone()));
    assert_eq!(
        f.repo
            .list_tree(&c1, "d", false)
            .expect("list")
            .expect("dir")[0]
            .path,
        "d/b.txt"
    );
    // Moving a packed ref with compare-and-swap, and deleting one.
    let c2 = commit_at(
        &f.repo,
        Some(&c1),
        vec![up("c.txt", "c")],
        1_700_000_001,
        "after gc",
    );
    assert_eq!(git(&f.path, &["rev-parse", "main"]).trim(), c2);
    assert!(f.repo.delete_ref("refs/heads/old").expect("delete packed"));
    assert!(!git(&f.path, &["for-each-ref"]).contains("refs/heads/old"));

    // A push by git through a clone lands in a new pack; the already open repo must see it.
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
    std::fs::write(work.join("pushed.txt"), "p").expect("write");
    git(&work, &["add", "pushed.txt"]);
    git(&work, &["commit", "-q", "-m", "pushed by git"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let pushed = git(&work, &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(
        f.repo.resolve("main").expect("resolve"),
        Some(pushed.clone())
    );
    assert_eq!(
        f.repo
            .entry(&pushed, "pushed.txt")
            .expect("entry")
            .expect("file")
            .size,
        1
    );
    let c4 = commit_at(
        &f.repo,
        Some(&pushed),
        vec![up("z.txt", "z")],
        1_800_000_000,
        "on top of a push",
    );
    assert_eq!(f.repo.count_commits(&c4).expect("count"), 4);
    git(&f.path, &["repack", "-a", "-d", "-q"]);
    assert_eq!(
        f.repo
            .read_blob(
                &f.repo
                    .entry(&c4, "z.txt")
                    .expect("entry")
                    .expect("file")
                    .oid
            )
            .expect("blob"),
        b"z"
    );
    assert_fsck_clean(&f.path);
}

#[test]
fn write_blob_matches_git_hash_object() {
    let f = fixture();
    let id = f.repo.write_blob(b"hello\n").expect("blob");
    assert_eq!(id, "ce013625030ba8dba906f756967f9e9ca394464a");
    assert_eq!(f.repo.read_blob(&id).expect("read"), b"hello\n");
    assert_eq!(
        f.repo.read_blob(&"1".repeat(40)).expect_err("missing").kind,
        ErrorKind::EntryNotFound
    );
    assert_eq!(
        f.repo.read_blob("zz").expect_err("garbage").kind,
        ErrorKind::EntryNotFound
    );
}
