//! Helpers for tests that check our repositories with the real `git` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;
use wharf_git::{GitRepo, Signature, TreeChange};

pub struct Fixture {
    pub _dir: TempDir,
    pub path: PathBuf,
    pub repo: GitRepo,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ns").join("repo.git");
    let repo = GitRepo::init(&path).expect("init");
    Fixture {
        _dir: dir,
        path,
        repo,
    }
}

/// Runs git in `dir` with no user or system configuration; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir, args).output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.com")
        .env("GIT_COMMITTER_NAME", "Tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.com");
    cmd
}

/// `git fsck --strict` must report nothing at all.
pub fn assert_fsck_clean(path: &Path) {
    let out = git_command(path, &["fsck", "--strict", "--no-dangling"])
        .output()
        .expect("run git");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "fsck: {text}"
    );
}

pub fn sig(secs: i64) -> Signature {
    Signature {
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        time_ms: secs * 1000 + 123,
    }
}

pub fn up(path: &str, data: &str) -> TreeChange {
    TreeChange::Upsert {
        path: path.into(),
        data: data.as_bytes().to_vec(),
    }
}

pub fn del(path: &str) -> TreeChange {
    TreeChange::Delete { path: path.into() }
}

pub fn del_dir(path: &str) -> TreeChange {
    TreeChange::DeleteFolder { path: path.into() }
}

/// Commits on main on top of `base` with a fixed time `secs`.
pub fn commit_at(
    repo: &GitRepo,
    base: Option<&str>,
    changes: Vec<TreeChange>,
    secs: i64,
    msg: &str,
) -> String {
    repo.commit("refs/heads/main", base, changes, &sig(secs), msg)
        .expect("commit")
}

/// `git ls-tree -r --name-only` at `rev`, one path per element.
pub fn ls_files(path: &Path, rev: &str) -> Vec<String> {
    git(path, &["ls-tree", "-r", "--name-only", rev])
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}
