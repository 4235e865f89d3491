//! The tree-size rule of pushes: every new commit's tree, expanded, stays within
//! `wharf_git::limits` (entries and depth). Runs inside the `pre-receive` hook, reading the
//! pushed (still quarantined) objects through one `git cat-file --batch`, each distinct tree
//! once, so a few dozen objects that expand to millions of paths are refused after a few
//! dozen reads.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use wharf_core::{Error, Result};
use wharf_git::limits::{TreeLimit, TreeMeasure};

/// Largest single object read while measuring (a tree of 250,000 entries is about 12 MiB).
const MAX_OBJECT: usize = 32 << 20;

/// Raw objects of the repository the hook runs in, quarantine included.
struct ObjectReader {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl ObjectReader {
    fn start() -> Result<ObjectReader> {
        let mut child = Command::new("git")
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::internal("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::internal("no stdout"))?;
        Ok(ObjectReader {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    /// The type and content of object `id` (hex).
    fn read(&mut self, id: &str) -> std::result::Result<(String, Vec<u8>), String> {
        writeln!(self.stdin, "{id}").map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())?;
        let mut header = String::new();
        self.stdout
            .read_line(&mut header)
            .map_err(|e| e.to_string())?;
        let parts: Vec<&str> = header.split_whitespace().collect();
        let [_, kind, size] = parts.as_slice() else {
            return Err(format!("object {id} is missing"));
        };
        let size: usize = size.parse().map_err(|_| format!("bad size for {id}"))?;
        if size > MAX_OBJECT {
            return Err(format!("object {id} is larger than {MAX_OBJECT} bytes"));
        }
        let mut data = vec![0u8; size + 1];
        self.stdout
            .read_exact(&mut data)
            .map_err(|e| e.to_string())?;
        data.truncate(size);
        Ok((kind.to_string(), data))
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tree a commit object names.
fn tree_of_commit(raw: &[u8]) -> Option<[u8; 20]> {
    let first = raw.split(|b| *b == b'\n').next()?;
    let hex_id = std::str::from_utf8(first.strip_prefix(b"tree ")?).ok()?;
    let mut id = [0u8; 20];
    hex::decode_to_slice(hex_id, &mut id).ok()?;
    Some(id)
}

/// Why `commits` (new commits of one push, hex ids) break the tree-size rule, if they do.
/// Blocking: run it off the async workers.
pub(crate) fn tree_refusal(commits: &[String]) -> Result<Option<String>> {
    if commits.is_empty() {
        return Ok(None);
    }
    let mut reader = ObjectReader::start()?;
    let mut measure = TreeMeasure::default();
    for commit in commits {
        let (kind, raw) = reader.read(commit).map_err(Error::internal)?;
        if kind != "commit" {
            continue;
        }
        let Some(tree) = tree_of_commit(&raw) else {
            return Ok(Some(format!("commit {commit} has no readable tree")));
        };
        let mut read = |id: &[u8; 20]| -> std::result::Result<Vec<u8>, String> {
            let (kind, data) = reader.read(&hex::encode(id))?;
            if kind == "tree" {
                Ok(data)
            } else {
                Err(format!("{} is a {kind}, not a tree", hex::encode(id)))
            }
        };
        match measure.measure(tree, &mut read) {
            Ok(_) => {}
            Err(TreeLimit::Unreadable(id, why)) => {
                return Err(Error::internal(format!("cannot read tree {id}: {why}")));
            }
            Err(limit) => return Ok(Some(format!("commit {commit}: {limit}"))),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_trees_are_found() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a> 0 +0000\n\nm";
        assert_eq!(
            tree_of_commit(raw).map(hex::encode).as_deref(),
            Some("4b825dc642cb6eb9a060e54bf8d69288fbee4904")
        );
        assert_eq!(tree_of_commit(b"parent x\n"), None);
        assert_eq!(tree_of_commit(b"tree zz\n"), None);
    }
}
