//! Repository identities and the naming rules the Hub enforces, plus in-repo path normalisation.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The three kinds of repository the Hub hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoType {
    Model,
    Dataset,
    Space,
}

impl RepoType {
    /// Singular name: `model`, `dataset`, `space`.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
            RepoType::Space => "space",
        }
    }
    /// Plural form used in API paths: `/api/models/...`.
    pub fn plural(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
            RepoType::Space => "spaces",
        }
    }
    /// Prefix of web, resolve and git URLs: models have none.
    pub fn url_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
            RepoType::Space => "spaces/",
        }
    }
    pub fn from_singular(s: &str) -> Option<RepoType> {
        match s {
            "model" => Some(RepoType::Model),
            "dataset" => Some(RepoType::Dataset),
            "space" => Some(RepoType::Space),
            _ => None,
        }
    }
    pub fn from_plural(s: &str) -> Option<RepoType> {
        match s {
            "models" => Some(RepoType::Model),
            "datasets" => Some(RepoType::Dataset),
            "spaces" => Some(RepoType::Space),
            _ => None,
        }
    }
}

/// `namespace/name`, both validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoId {
    pub namespace: String,
    pub name: String,
}

impl RepoId {
    pub fn new(namespace: &str, name: &str) -> Result<RepoId> {
        validate_namespace(namespace)?;
        validate_repo_name(name)?;
        Ok(RepoId {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
    /// Parses `ns/name`; single-segment ids are refused (Wharf has no legacy root namespace).
    pub fn parse(id: &str) -> Result<RepoId> {
        match id.split_once('/') {
            Some((ns, name)) => RepoId::new(ns, name),
            None => Err(Error::bad_request(format!(
                "Repo id must be in the form 'namespace/name': '{id}'"
            ))),
        }
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A role in an organization, and the scope of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The Hub's repo-name rule: 1–96 chars of `[A-Za-z0-9_.-]`, starting and ending with a letter,
/// digit or `_`, no `--` or `..`, not ending in `.git`.
pub fn validate_repo_name(name: &str) -> Result<()> {
    validate_segment(name, "repo name")?;
    if name.ends_with(".git") {
        return Err(Error::bad_request(format!(
            "Invalid repo name '{name}': cannot end with '.git'"
        )));
    }
    Ok(())
}

/// User and organization names follow the same character rules as repo names.
pub fn validate_namespace(ns: &str) -> Result<()> {
    validate_segment(ns, "namespace")
}

fn validate_segment(s: &str, what: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::bad_request(format!("Invalid {what} '{s}': {why}")));
    if s.is_empty() || s.len() > 96 {
        return bad("must be 1 to 96 characters long");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return bad("only letters, digits, '-', '_' and '.' are allowed");
    }
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = s.as_bytes();
    if !word(bytes[0]) || !word(bytes[bytes.len() - 1]) {
        return bad("must start and end with a letter, a digit or '_'");
    }
    if s.contains("--") || s.contains("..") {
        return bad("'--' and '..' are forbidden");
    }
    Ok(())
}

/// True for every spelling git itself refuses to check out as `.git` (core.protectNTFS and
/// protectHFS rules): any case, trailing dots or spaces, the 8.3 short name `git~1`, an NTFS
/// alternate data stream (`.git:x` is `.git` on Windows) and the zero-width code points HFS+
/// ignores (`.g\u{200c}it` is `.git` on a Mac).
fn names_git_dir(segment: &str) -> bool {
    let visible: String = segment.chars().filter(|&c| !hfs_ignores(c)).collect();
    let lower = visible.to_ascii_lowercase();
    let file = lower.split(':').next().unwrap_or_default();
    let trimmed = file.trim_end_matches(['.', ' ']);
    trimmed == ".git" || trimmed == "git~1"
}

/// Code points HFS+ drops when it compares names (git's `next_hfs_char`).
fn hfs_ignores(c: char) -> bool {
    matches!(c, '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}')
}

/// Normalises a path inside a repository and refuses anything that could escape it or touch
/// git's own data: absolute paths, `..`, `.` segments, backslashes, NUL, `.git/`.
/// A leading `/` is stripped as the Hub client does; empty segments from `//` are dropped.
pub fn normalize_repo_path(path: &str) -> Result<String> {
    let bad = |why: &str| {
        Err(Error::unprocessable(format!(
            "Invalid path '{}': {why}",
            path.escape_debug()
        )))
    };
    if path.contains('\0') {
        return bad("NUL byte");
    }
    if path.contains('\\') {
        return bad("backslashes are not allowed");
    }
    if path.len() > 4096 {
        return bad("too long");
    }
    let mut parts = Vec::new();
    for seg in path.trim_start_matches('/').split('/') {
        match seg {
            "" => continue,
            "." | ".." => return bad("relative segments are not allowed"),
            s if names_git_dir(s) => return bad("'.git' is reserved"),
            s if s.len() > 255 => return bad("a path segment is too long"),
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return bad("empty path");
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_repo_name("dummy-model_m064").is_ok());
        assert!(validate_repo_name("a").is_ok());
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "a..b",
            "x.git",
            "a/b",
            "é",
            &"a".repeat(97),
        ] {
            assert!(validate_repo_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            normalize_repo_path("/a//b.txt").ok().as_deref(),
            Some("a/b.txt")
        );
        for bad in [
            "..",
            "a/../b",
            "./a",
            ".git/config",
            "a/.git/x",
            "..\\ddd",
            "a\0b",
            "/",
            "",
            ".GIT/x",
            ".git./config",
            ".git /config",
            "git~1/config",
            "a/GIT~1/x",
            ".git:stream/x",
            ".GIT. :$DATA",
            "git~1:x",
            ".g\u{200c}it/config",
            "\u{feff}.git/config",
            ".git\u{200d}",
        ] {
            assert!(normalize_repo_path(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_repo_path(".gitattributes").is_ok());
        assert!(normalize_repo_path(".gitignore").is_ok());
        assert!(normalize_repo_path("git~2/x").is_ok());
        assert!(normalize_repo_path("a:b/.gitx").is_ok());
        assert!(normalize_repo_path("\u{200c}x").is_ok());
    }

    #[test]
    fn repo_ids() {
        assert_eq!(
            RepoId::parse("alice/m")
                .map(|r| r.to_string())
                .ok()
                .as_deref(),
            Some("alice/m")
        );
        assert!(RepoId::parse("alice").is_err());
        assert!(RepoId::parse("a/b/c").is_err());
    }
}
