//! Property checks for the fuzz targets of this crate's parsers (`fuzz/fuzz_targets/`), and the
//! corpus replay every crate's `tests/fuzz_corpus.rs` uses. Not part of Wharf's API.
//!
//! Each `check_*` takes arbitrary bytes, runs a parser and panics when a property fails, so the
//! same function serves libFuzzer (a panic is a crash) and `cargo test` (a panic is a failure).
//! [`replay_corpus`] reads files: it is test support, the one place this crate does IO.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

use crate::commit_lines::{self, CommitOp, CommitParser, MAX_GIT_BLOB, MAX_OPS};
use crate::gguf::{self, GgufError};
use crate::lfs_pointer::{LfsPointer, MAX_POINTER_SIZE, is_sha256_hex};
use crate::names::normalize_repo_path;
use crate::safetensors::{self, MAX_SAFETENSORS_HEADER, SafetensorsError};

/// Runs `check` on every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` of
/// the repository holding the crate at `manifest_dir`; returns how many inputs it ran. A
/// failing input is named on stderr before the panic goes on.
pub fn replay_corpus(manifest_dir: &str, target: &str, check: fn(&[u8])) -> usize {
    let fuzz = Path::new(manifest_dir).join("../../fuzz");
    let dirs = [
        fuzz.join("corpus").join(target),
        fuzz.join("regressions").join(target),
    ];
    let mut ran = 0;
    for path in dirs.iter().flat_map(|dir| files_in(dir)) {
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            eprintln!("fuzz input {} fails its check", path.display());
            resume_unwind(panic);
        }
        ran += 1;
    }
    ran
}

/// The files directly in `dir`, sorted; none when it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

// ---------------------------------------------------------------------------------------------
// path_normalize

/// [`normalize_repo_path`]: an accepted path is the input's non-empty segments joined by `/`,
/// none of them `.`, `..` or a name git refuses as `.git`, with no backslash or NUL; normalising
/// it again changes nothing.
pub fn check_path_normalize(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    let Ok(path) = normalize_repo_path(&input) else {
        return;
    };
    assert!(!path.is_empty() && path.len() <= 4096, "{path:?}");
    assert!(!path.starts_with('/'), "{path:?}");
    assert!(!path.contains('\\') && !path.contains('\0'), "{path:?}");
    for segment in path.split('/') {
        assert!(!segment.is_empty(), "empty segment in {path:?}");
        assert!(segment != "." && segment != "..", "{path:?}");
        assert!(
            !git_refuses_as_dot_git(segment),
            "{segment:?} is .git to git"
        );
    }
    let expected: Vec<&str> = input.split('/').filter(|s| !s.is_empty()).collect();
    assert_eq!(
        path,
        expected.join("/"),
        "only empty segments may be dropped"
    );
    assert_eq!(
        normalize_repo_path(&path).ok().as_deref(),
        Some(path.as_str()),
        "normalising is idempotent"
    );
}

/// git's own test (`is_ntfs_dotgit` || `is_hfs_dotgit` in git's `path.c`/`utf8.c`), written
/// independently of `names.rs` so that the two check each other.
fn git_refuses_as_dot_git(segment: &str) -> bool {
    is_ntfs_dot_git(segment.as_bytes()) || is_hfs_dot_git(segment)
}

/// `.git` or `git~1`, any case, then only dots and spaces up to the end or a `:` (an NTFS
/// stream name).
fn is_ntfs_dot_git(name: &[u8]) -> bool {
    let strip = |prefix: &[u8]| {
        name.get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .map(|_| name.get(prefix.len()..).unwrap_or_default())
    };
    let Some(rest) = strip(b".git").or_else(|| strip(b"git~1")) else {
        return false;
    };
    for &c in rest {
        if c == b':' {
            return true;
        }
        if c != b'.' && c != b' ' {
            return false;
        }
    }
    true
}

/// `.git` in any ASCII case once the code points HFS+ ignores are dropped.
fn is_hfs_dot_git(name: &str) -> bool {
    let ignored =
        |c: char| matches!(c as u32, 0x200c..=0x200f | 0x202a..=0x202e | 0x206a..=0x206f | 0xfeff);
    let visible: String = name.chars().filter(|&c| !ignored(c)).collect();
    visible.eq_ignore_ascii_case(".git")
}

// ---------------------------------------------------------------------------------------------
// lfs_pointer

/// [`LfsPointer::parse`]: only small inputs with a sha256 hex oid are pointers, and a parsed
/// pointer's canonical text parses back to it.
pub fn check_lfs_pointer(data: &[u8]) {
    let Some(pointer) = LfsPointer::parse(data) else {
        return;
    };
    assert!(data.len() as u64 <= MAX_POINTER_SIZE);
    assert!(is_sha256_hex(&pointer.oid), "{pointer:?}");
    let text = pointer.to_text();
    assert_eq!(LfsPointer::parse(text.as_bytes()), Some(pointer));
}

// ---------------------------------------------------------------------------------------------
// safetensors_header

/// The safetensors header reader, on the input both as a whole file and as the JSON alone:
/// the length prefix stays inside the file, `__metadata__` is never a tensor, and parameter
/// counts are exact or an overflow error.
pub fn check_safetensors_header(data: &[u8]) {
    if let Ok(len) = safetensors::header_len(data, data.len() as u64) {
        assert!(len > 0 && len <= MAX_SAFETENSORS_HEADER, "{len}");
        let json = usize::try_from(len)
            .ok()
            .and_then(|len| data.get(8..8 + len));
        assert!(json.is_some(), "header length {len} past the input");
        check_safetensors_json(json.unwrap_or_default());
    }
    check_safetensors_json(data);
}

fn check_safetensors_json(json: &[u8]) {
    let Ok(tensors) = safetensors::parse_header(json) else {
        return;
    };
    assert!(tensors.iter().all(|(name, _, _)| name != "__metadata__"));
    let counted = safetensors::count_parameters(&tensors);
    match expected_counts(&tensors) {
        Some(expected) => assert_eq!(counted, Ok(expected)),
        None => assert_eq!(counted, Err(SafetensorsError::Overflow)),
    }
}

/// Per-dtype element counts computed in wider integers (a zero dimension empties a tensor); None
/// when one does not fit a u64.
fn expected_counts(
    tensors: &[safetensors::TensorInfo],
) -> Option<std::collections::BTreeMap<String, u64>> {
    let mut wide: std::collections::BTreeMap<String, u128> = Default::default();
    for (_, dtype, shape) in tensors {
        let elements = if shape.contains(&0) {
            0
        } else {
            shape
                .iter()
                .try_fold(1u128, |acc, &d| acc.checked_mul(u128::from(d)))
                .filter(|&n| n <= u128::from(u64::MAX))?
        };
        *wide.entry(dtype.clone()).or_default() += elements;
    }
    wide.into_iter()
        .map(|(dtype, n)| u64::try_from(n).ok().map(|n| (dtype, n)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// gguf_header

/// [`gguf::parse_gguf_header`]: a parsed header stays within its limits and the input, its
/// parameter count is exact, it depends only on its own bytes, and one byte less is truncated.
pub fn check_gguf_header(data: &[u8]) {
    let Ok(header) = gguf::parse_gguf_header(data) else {
        return;
    };
    assert!(matches!(header.version, 2 | 3));
    assert!(header.header_len <= data.len());
    assert!(header.metadata.len() as u64 <= gguf::MAX_METADATA_KVS);
    assert!(header.tensors.len() as u64 <= gguf::MAX_TENSORS);
    assert!(
        header
            .tensors
            .iter()
            .all(|t| t.dims.len() as u32 <= gguf::MAX_DIMS)
    );
    let expected: Option<u128> = header.tensors.iter().try_fold(0u128, |total, t| {
        let n = t
            .dims
            .iter()
            .try_fold(1u128, |acc, &d| acc.checked_mul(u128::from(d)))?;
        total.checked_add(n)
    });
    assert_eq!(expected, Some(u128::from(header.parameter_count)));
    let _ = (header.architecture(), header.context_length());

    let own_bytes = data.get(..header.header_len).unwrap_or_default();
    // Debug strings, not ==: a NaN metadata value is never equal to itself.
    assert_eq!(
        format!("{:?}", gguf::parse_gguf_header(own_bytes)),
        format!("{:?}", Ok::<_, GgufError>(header.clone())),
        "the header depends only on its own bytes"
    );
    let short = own_bytes
        .get(..header.header_len.saturating_sub(1))
        .unwrap_or_default();
    assert!(matches!(
        gguf::parse_gguf_header(short),
        Err(GgufError::Truncated { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// commit_ndjson

/// The NDJSON commit parser: the body fed in pieces cut anywhere (sizes taken from the input
/// itself) parses exactly as the whole body does; an accepted commit has at most [`MAX_OPS`]
/// operations, no `file` over [`MAX_GIT_BLOB`] and lower-case LFS oids.
pub fn check_commit_ndjson(data: &[u8]) {
    let whole = commit_lines::parse_commit(data);
    let step = 1 + usize::from(data.first().copied().unwrap_or(0) % 64);
    let mut parser = CommitParser::default();
    let pieces = data.chunks(step).try_for_each(|piece| parser.feed(piece));
    let fed = pieces.and_then(|()| parser.finish());
    assert_eq!(
        format!("{whole:?}"),
        format!("{fed:?}"),
        "pieces of {step} bytes parse differently"
    );
    let Ok((_, ops)) = whole else {
        return;
    };
    assert!(ops.len() <= MAX_OPS);
    for op in &ops {
        match op {
            CommitOp::File { content, .. } => assert!(content.len() as u64 <= MAX_GIT_BLOB),
            CommitOp::LfsFile { oid, .. } => assert_eq!(*oid, oid.to_ascii_lowercase()),
            CommitOp::DeletedFile { .. } | CommitOp::DeletedFolder { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_dot_git_oracle() {
        for name in [
            ".git",
            ".GIT",
            ".git.",
            ".git .",
            ".git:x",
            "git~1",
            "GIT~1 ",
            ".g\u{200c}it",
        ] {
            assert!(git_refuses_as_dot_git(name), "{name:?}");
        }
        for name in [".gitx", "git", ".gi", "git~2", "x.git", ".git x", ""] {
            assert!(!git_refuses_as_dot_git(name), "{name:?}");
        }
    }

    #[test]
    fn checks_accept_valid_inputs() {
        check_path_normalize(b"/a//b/.gitattributes");
        check_lfs_pointer(
            LfsPointer {
                oid: "a".repeat(64),
                size: 3,
            }
            .to_text()
            .as_bytes(),
        );
        check_safetensors_header(br#"{"a": {"dtype": "F32", "shape": [18446744073709551615, 2]}}"#);
        check_gguf_header(b"GGUF\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    }
}
