//! The git binary's side of `wharf fsck`: `git fsck` of a repository, and the LFS pointers
//! reachable from its refs. The git binary (as for clone and push) rather than gix: `git fsck`
//! is the reference for what git itself accepts, and these walks run only in the full check.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Output, Stdio};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use wharf_core::lfs_pointer::{LfsPointer, MAX_POINTER_SIZE};
use wharf_core::{Error, Result};

/// Lines of git's complaint kept in a finding.
const MAX_COMPLAINT_LINES: usize = 8;

/// An LFS pointer reachable from some ref, at the first path it was seen at.
#[derive(Debug, Clone)]
pub(crate) struct ReachablePointer {
    pub path: String,
    pub pointer: LfsPointer,
}

/// `git --git-dir DIR …` with the environment reduced as for the smart-HTTP services, so that
/// neither the system's git config nor the caller's variables change what it reports.
fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir").arg(dir);
    cmd.env_clear();
    for key in ["PATH", "HOME", "LANG", "TMPDIR"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs git with `stdin` fed from a separate task (its output may fill the pipe first).
async fn run(dir: &Path, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Output> {
    let mut cmd = git(dir);
    cmd.args(args).stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn()?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        tokio::spawn(async move {
            let _ = pipe.write_all(&data).await;
        });
    }
    Ok(child.wait_with_output().await?)
}

/// Runs git and returns its stdout; a failure is an error carrying its stderr.
async fn stdout_of(dir: &Path, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Vec<u8>> {
    let out = run(dir, args, stdin).await?;
    if !out.status.success() {
        return Err(Error::internal(format!(
            "git {} failed in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// `git fsck`: None when git finds nothing wrong, else the first lines of what it says.
/// Without `full` only connectivity is checked (every reachable object present and parsable),
/// which is what a crash can break; `full` also re-hashes every object.
pub(crate) async fn fsck(dir: &Path, full: bool) -> Result<Option<String>> {
    let mut args = vec!["fsck", "--no-dangling", "--no-progress"];
    if !full {
        args.push("--connectivity-only");
    }
    let out = run(dir, &args, None).await?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let complaint: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(MAX_COMPLAINT_LINES)
        .collect();
    Ok(match (out.status.success(), complaint.is_empty()) {
        (true, true) => None,
        (true, false) => Some(complaint.join("; ")),
        (false, _) if complaint.is_empty() => Some(format!("git fsck exited with {}", out.status)),
        (false, _) => Some(complaint.join("; ")),
    })
}

/// Every blob small enough to be an LFS pointer that is reachable from any ref (branches, tags,
/// pull requests, conversions), parsed; those that are valid pointers are returned.
pub(crate) async fn reachable_pointers(dir: &Path) -> Result<Vec<ReachablePointer>> {
    let listing = stdout_of(dir, &["rev-list", "--objects", "--all"], None).await?;
    let listing = String::from_utf8_lossy(&listing);
    let mut paths: HashMap<&str, &str> = HashMap::new();
    let mut ids = String::new();
    for line in listing.lines() {
        let (oid, path) = line.split_once(' ').unwrap_or((line, ""));
        if paths.insert(oid, path).is_none() {
            ids.push_str(oid);
            ids.push('\n');
        }
    }
    let small = small_blobs(dir, ids).await?;
    if small.is_empty() {
        return Ok(Vec::new());
    }
    let request: String = small.iter().map(|oid| format!("{oid}\n")).collect();
    let contents = stdout_of(dir, &["cat-file", "--batch"], Some(request.into_bytes())).await?;
    Ok(parse_batch(&contents)?
        .into_iter()
        .filter_map(|(oid, data)| {
            let pointer = LfsPointer::parse(data)?;
            let path = paths.get(oid.as_str()).copied().unwrap_or_default();
            Some(ReachablePointer {
                path: path.to_string(),
                pointer,
            })
        })
        .collect())
}

/// Of the objects listed in `ids` (one per line), the blobs of at most [`MAX_POINTER_SIZE`].
async fn small_blobs(dir: &Path, ids: String) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let checked = stdout_of(
        dir,
        &[
            "cat-file",
            "--batch-check=%(objectname) %(objecttype) %(objectsize)",
        ],
        Some(ids.into_bytes()),
    )
    .await?;
    Ok(String::from_utf8_lossy(&checked)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (oid, kind, size) = (parts.next()?, parts.next()?, parts.next()?);
            let size: u64 = size.parse().ok()?;
            (kind == "blob" && size <= MAX_POINTER_SIZE).then(|| oid.to_string())
        })
        .collect())
}

/// Splits `git cat-file --batch` output: `<oid> <type> <size>\n<content>\n` per object.
fn parse_batch(mut out: &[u8]) -> Result<Vec<(String, &[u8])>> {
    let corrupt = || Error::internal("unexpected output from git cat-file --batch");
    let mut objects = Vec::new();
    while !out.is_empty() {
        let end = out.iter().position(|b| *b == b'\n').ok_or_else(corrupt)?;
        let header = std::str::from_utf8(&out[..end]).map_err(|_| corrupt())?;
        let mut parts = header.split(' ');
        let oid = parts.next().ok_or_else(corrupt)?.to_string();
        if parts.next() == Some("missing") {
            out = &out[end + 1..];
            continue;
        }
        let size: usize = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(corrupt)?;
        let body = out.get(end + 1..end + 1 + size).ok_or_else(corrupt)?;
        objects.push((oid, body));
        // The content is followed by one newline.
        out = out.get(end + 2 + size..).unwrap_or_default();
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_output_splits_into_objects() {
        let out = b"aa blob 3\nabc\nbb missing\ncc blob 0\n\n";
        let objects = parse_batch(out).expect("parse");
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0], ("aa".to_string(), &b"abc"[..]));
        assert_eq!(objects[1], ("cc".to_string(), &b""[..]));
        assert!(parse_batch(b"dd blob 10\nshort\n").is_err());
    }
}
