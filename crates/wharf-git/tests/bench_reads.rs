//! Micro benchmark of the history and tree reads behind the web pages (the repositories of
//! `bench/pages.sh`, built with `git fast-import` and repacked like a pushed repository).
//!
//!     cargo test --release -p wharf-git --test bench_reads -- --ignored --nocapture
//!
//! `BENCH_FILES` (1000) and `BENCH_COMMITS` (1000) size the repositories; `BENCH_RUNS` (7).
mod common;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{git, git_command};
use wharf_git::GitRepo;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// File `i` of the repository: flat in the root, or in one of 20 folders.
fn file_name(i: usize, nested: bool) -> String {
    if nested {
        format!("folder-{:02}/file-{i:04}.txt", i % 20)
    } else {
        format!("file-{i:04}.txt")
    }
}

/// `files` files (the first commit adds them all), then `commits - 1` commits editing one each.
fn build(path: &Path, files: usize, commits: usize, nested: bool) {
    let mut stream = String::new();
    for c in 0..commits {
        let mark_time = 1_700_000_000 + c;
        let msg = format!("commit {c}");
        let _ = writeln!(
            stream,
            "commit refs/heads/main\ncommitter T <t@example.com> {mark_time} +0000\ndata {}\n{msg}",
            msg.len()
        );
        if c == 0 {
            for i in 0..files {
                let data = format!("file {i} version 0\n");
                let _ = writeln!(
                    stream,
                    "M 100644 inline {}\ndata {}\n{data}",
                    file_name(i, nested),
                    data.len()
                );
            }
        } else {
            let i = (c * 7919) % files;
            let data = format!("file {i} version {c}\n");
            let _ = writeln!(
                stream,
                "M 100644 inline {}\ndata {}\n{data}",
                file_name(i, nested),
                data.len()
            );
        }
        stream.push('\n');
    }
    let mut child = git_command(path, &["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream.as_bytes())
        .expect("write stream");
    assert!(child.wait().expect("wait").success());
    // Pushed packs keep the client's deltas; BENCH_REPACK=f computes fresh ones (git's own
    // layout: newer versions whole, older ones deltas against them).
    if std::env::var("BENCH_REPACK").as_deref() == Ok("f") {
        git(path, &["repack", "-adfq"]);
    } else {
        git(path, &["repack", "-adq"]);
    }
}

/// Median and minimum of `runs` calls, each on a freshly opened repository.
fn time(path: &Path, runs: usize, mut f: impl FnMut(&GitRepo)) -> (Duration, Duration) {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let repo = GitRepo::open(path).expect("open");
            let start = Instant::now();
            f(&repo);
            start.elapsed()
        })
        .collect();
    samples.sort();
    (samples[runs / 2], samples[0])
}

fn report(name: &str, (median, min): (Duration, Duration)) {
    eprintln!(
        "{name:<58} median {:>8.2} ms   min {:>8.2} ms",
        median.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3
    );
}

#[test]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
fn bench_page_reads() {
    let files = env_usize("BENCH_FILES", 1000);
    let commits = env_usize("BENCH_COMMITS", 1000);
    let runs = env_usize("BENCH_RUNS", 7);
    for nested in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("repo.git");
        GitRepo::init(&path).expect("init");
        build(&path, files, commits, nested);
        let tip = git(&path, &["rev-parse", "refs/heads/main"])
            .trim()
            .to_string();
        let repo = GitRepo::open(&path).expect("open");
        let layout = if nested { "nested" } else { "flat" };
        let (dir_name, file) = if nested {
            ("folder-07", file_name(7, true))
        } else {
            ("", file_name(7, false))
        };
        let paths: Vec<String> = repo
            .list_tree(&tip, dir_name, false)
            .expect("list")
            .expect("dir")
            .into_iter()
            .map(|e| e.path)
            .collect();
        eprintln!("--- {layout}: {files} files, {commits} commits, {runs} runs");
        report(
            &format!("last_commits({} entries of '{dir_name}')", paths.len()),
            time(&path, runs, |r| {
                assert_eq!(r.last_commits(&tip, &paths).expect("lc").len(), paths.len());
            }),
        );
        report(
            &format!("path_log({file}, 0, 50)"),
            time(&path, runs, |r| {
                r.path_log(&tip, &file, 0, 50).expect("path log");
            }),
        );
        report(
            "log(0, 50)",
            time(&path, runs, |r| {
                assert_eq!(r.log(&tip, 0, 50).expect("log").0.len(), 50);
            }),
        );
        report(
            "log(0, 1)",
            time(&path, runs, |r| {
                assert_eq!(r.log(&tip, 0, 1).expect("log").0.len(), 1);
            }),
        );
        report(
            &format!("list_tree('{dir_name}') first call"),
            time(&path, runs, |r| {
                r.list_tree(&tip, dir_name, false).expect("list");
            }),
        );
        report(
            &format!("list_tree('{dir_name}') repeated"),
            time(&path, runs, |_| {
                repo.list_tree(&tip, dir_name, false).expect("list");
            }),
        );
        report(
            "list_tree('', recursive) repeated",
            time(&path, runs, |_| {
                repo.list_tree(&tip, "", true).expect("list");
            }),
        );
    }
}
