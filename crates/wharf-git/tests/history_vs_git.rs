//! `last_commits`, `path_log` and `log` against the real git on histories with nested folders,
//! renames, deletions, re-additions, file/folder swaps and merges.
mod common;

use common::{commit_at, del, del_dir, fixture, git, git_command, lines, sig, up};
use wharf_git::TreeChange;

/// A small deterministic pseudo-random sequence (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as usize
    }
}

const NAMES: [&str; 12] = [
    "a.txt",
    "b.txt",
    "a",
    "a-b",
    "dir/x.txt",
    "dir/y.txt",
    "dir/sub/z.txt",
    "dir/sub/deep/w.txt",
    "other/x.txt",
    "other/a",
    "b",
    "dir/sub/a",
];

/// Every path git knows at `rev`, files and folders, plus all names ever used.
fn all_paths(f: &common::Fixture, rev: &str) -> Vec<String> {
    let mut paths = lines(&git(&f.path, &["ls-tree", "-r", "-t", "--name-only", rev]));
    for n in NAMES {
        paths.push(n.to_string());
    }
    paths.extend(["dir/sub".into(), "dir".into(), "other".into(), "".into()]);
    paths.sort();
    paths.dedup();
    paths
}

/// Random edits on the tree at `rev`: new versions, deletions, renames, folder removals.
fn random_changes(
    f: &common::Fixture,
    rev: Option<&str>,
    rng: &mut Rng,
    round: usize,
) -> Vec<TreeChange> {
    let files = rev.map_or_else(Vec::new, |r| {
        lines(&git(&f.path, &["ls-tree", "-r", "--name-only", r]))
    });
    let mut changes = Vec::new();
    for _ in 0..1 + rng.next() % 3 {
        match rng.next() % 6 {
            0..=2 => {
                let name = NAMES[rng.next() % NAMES.len()];
                // A file cannot sit where a folder is or below a file: skip those.
                let clash = files.iter().any(|p| {
                    p.starts_with(&format!("{name}/")) || name.starts_with(&format!("{p}/"))
                });
                if !clash {
                    changes.push(up(name, &format!("{name} {round} {}", rng.next() % 3)));
                    return changes;
                }
            }
            3 if !files.is_empty() => {
                changes.push(del(&files[rng.next() % files.len()]));
                return changes;
            }
            4 if !files.is_empty() => {
                // A rename: same content under another free name.
                let from = &files[rng.next() % files.len()];
                let to = NAMES[rng.next() % NAMES.len()];
                let clash = files.iter().any(|p| {
                    p == to || p.starts_with(&format!("{to}/")) || to.starts_with(&format!("{p}/"))
                });
                if !clash {
                    let data = git(
                        &f.path,
                        &[
                            "cat-file",
                            "-p",
                            &format!("{}:{from}", rev.unwrap_or_default()),
                        ],
                    );
                    changes.push(del(from));
                    changes.push(up(to, &data));
                    return changes;
                }
            }
            5 if files.iter().any(|p| p.starts_with("dir/sub/")) => {
                changes.push(del_dir("dir/sub"));
                return changes;
            }
            _ => {}
        }
    }
    if changes.is_empty() {
        changes.push(up("a.txt", &format!("fallback {round}")));
    }
    changes
}

fn check_against_git(f: &common::Fixture, tip: &str) {
    let paths = all_paths(f, tip);
    let found = f.repo.last_commits(tip, &paths).expect("last commits");
    for path in &paths {
        let present = path.is_empty()
            || git_command(&f.path, &["cat-file", "-e", &format!("{tip}:{path}")])
                .stderr(std::process::Stdio::null())
                .status()
                .expect("git")
                .success();
        if !present {
            assert!(!found.contains_key(path), "{path} is absent at {tip}");
            continue;
        }
        if path.is_empty() {
            continue;
        }
        let expected = git(&f.path, &["log", "-1", "--format=%H", tip, "--", path]);
        assert_eq!(
            found[path].id,
            expected.trim(),
            "last commit of {path} at {tip}"
        );
        let log: Vec<String> = f
            .repo
            .path_log(tip, path, 0, 1000)
            .expect("path log")
            .0
            .into_iter()
            .map(|c| c.id)
            .collect();
        let expected = lines(&git(&f.path, &["log", "--format=%H", tip, "--", path]));
        assert_eq!(log, expected, "path log of {path} at {tip}");
    }
    let all = lines(&git(&f.path, &["log", "--date-order", "--format=%H", tip]));
    for (skip, limit) in [
        (0, 1),
        (0, 3),
        (2, 5),
        (0, 1000),
        (all.len() - 1, 3),
        (all.len(), 2),
    ] {
        let (page, more) = f.repo.log(tip, skip, limit).expect("log");
        let ids: Vec<String> = page.into_iter().map(|c| c.id).collect();
        let want: Vec<String> = all.iter().skip(skip).take(limit).cloned().collect();
        assert_eq!(ids, want, "log({skip}, {limit}) at {tip}");
        assert_eq!(
            more,
            skip + limit < all.len(),
            "more of log({skip}, {limit})"
        );
    }
}

#[test]
fn linear_history_agrees_with_git() {
    let f = fixture();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut tip: Option<String> = None;
    for round in 0..40 {
        let changes = random_changes(&f, tip.as_deref(), &mut rng, round);
        let at = 1_700_000_000 + (round as i64) / 3;
        tip = Some(commit_at(
            &f.repo,
            tip.as_deref(),
            changes,
            at,
            &format!("c{round}"),
        ));
        if round % 10 == 9 {
            check_against_git(&f, tip.as_deref().expect("tip"));
        }
    }
}

#[test]
fn merged_history_agrees_with_git() {
    let f = fixture();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let base = commit_at(
        &f.repo,
        None,
        vec![
            up("a.txt", "0"),
            up("dir/x.txt", "0"),
            up("dir/sub/z.txt", "0"),
            up("b", "0"),
        ],
        1_700_000_000,
        "base",
    );
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
    let mut main = base.clone();
    for round in 0..6 {
        // A side branch of a few commits from the current main, and some commits on main.
        let branch = format!("refs/heads/side{round}");
        let mut side = main.clone();
        for i in 0..1 + rng.next() % 3 {
            let changes = random_changes(&f, Some(&side), &mut rng, 100 * round + i);
            side = f
                .repo
                .commit(
                    &branch,
                    Some(&side),
                    changes,
                    &sig(1_700_000_010 + 10 * round as i64 + i as i64),
                    "side",
                )
                .expect("side");
        }
        for i in 0..rng.next() % 3 {
            let changes = random_changes(&f, Some(&main), &mut rng, 100 * round + 50 + i);
            main = commit_at(
                &f.repo,
                Some(&main),
                changes,
                1_700_000_012 + 10 * round as i64 + i as i64,
                "main",
            );
        }
        git(&work, &["fetch", "-q", "origin"]);
        git(&work, &["checkout", "-q", "--detach", &main]);
        let mut merge = git_command(
            &work,
            &[
                "merge",
                "-q",
                "--no-ff",
                "-X",
                "theirs",
                "-m",
                "merge",
                &format!("origin/side{round}"),
            ],
        );
        let at = format!("{} +0000", 1_700_000_015 + 10 * round);
        merge
            .env("GIT_AUTHOR_DATE", &at)
            .env("GIT_COMMITTER_DATE", &at);
        merge.stdout(std::process::Stdio::null());
        if !merge.status().expect("merge").success() {
            // A conflict git cannot settle (file against folder): keep main's tree.
            git(&work, &["merge", "--abort"]);
            let mut ours = git_command(
                &work,
                &[
                    "merge",
                    "-q",
                    "--no-ff",
                    "-s",
                    "ours",
                    "-m",
                    "merge",
                    &format!("origin/side{round}"),
                ],
            );
            ours.env("GIT_AUTHOR_DATE", &at)
                .env("GIT_COMMITTER_DATE", &at);
            assert!(ours.status().expect("merge").success());
        }
        git(
            &work,
            &["push", "-q", "-f", "origin", "HEAD:refs/heads/main"],
        );
        main = git(&work, &["rev-parse", "HEAD"]).trim().to_string();
        check_against_git(&f, &main);
        // A linear stretch on top of the merge.
        let changes = random_changes(&f, Some(&main), &mut rng, 100 * round + 90);
        main = commit_at(
            &f.repo,
            Some(&main),
            changes,
            1_700_000_019 + 10 * round as i64,
            "after",
        );
        check_against_git(&f, &main);
    }
    let merges = git(&f.path, &["rev-list", "--merges", "--count", &main]);
    assert_eq!(merges.trim(), "6");
}

/// A packed history as `git fast-import` writes it (each tree a delta against its older
/// version), long enough for the walks to read trees ahead.
#[test]
fn packed_history_agrees_with_git() {
    use std::io::Write as _;
    let f = fixture();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut stream = String::new();
    let files = [
        "a.txt",
        "b",
        "dir/x.txt",
        "dir/sub/z.txt",
        "other/x.txt",
        "top-0.txt",
        "top-1.txt",
    ];
    for c in 0..200 {
        let msg = format!("c{c}");
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter T <t@example.com> {} +0000\ndata {}\n{msg}\n",
            1_700_000_000 + c / 2,
            msg.len()
        ));
        let touched: Vec<&str> = if c == 0 {
            files.to_vec()
        } else {
            vec![files[rng.next() % files.len()]]
        };
        for name in touched {
            if c > 0 && rng.next().is_multiple_of(7) {
                stream.push_str(&format!("D {name}\n"));
            } else {
                let data = format!("{name} {c}\n");
                stream.push_str(&format!(
                    "M 100644 inline {name}\ndata {}\n{data}\n",
                    data.len()
                ));
            }
        }
        // Many root entries, so that trees are worth deltas.
        if c == 0 {
            for i in 0..200 {
                let data = format!("filler {i}\n");
                stream.push_str(&format!(
                    "M 100644 inline filler-{i:03}.txt\ndata {}\n{data}\n",
                    data.len()
                ));
            }
        }
        stream.push('\n');
    }
    let mut child = git_command(&f.path, &["fast-import", "--quiet", "--force"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream.as_bytes())
        .expect("stream");
    assert!(child.wait().expect("wait").success());
    git(&f.path, &["repack", "-adq"]);
    let tip = git(&f.path, &["rev-parse", "refs/heads/main"])
        .trim()
        .to_string();
    check_against_git(&f, &tip);
    // Fresh deltas in git's own layout.
    git(&f.path, &["repack", "-adfq"]);
    check_against_git(&f, &tip);
}
