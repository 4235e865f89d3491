//! The NDJSON commit body of the Hub's commit API (`POST /api/{type}/{id}/commit/{rev}`): one
//! header line, then operations in order. Bodies are fed as they arrive, in chunks split
//! anywhere; only the current line and the decoded operations are held. No line may exceed
//! [`MAX_LINE`], a commit carries at most [`MAX_OPS`] operations, and a `file` operation's
//! base64 is refused by its length before it is decoded when the file would be over the size
//! git stores ([`MAX_GIT_BLOB`]).

use base64::Engine;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, ErrorKind, Result};

/// Regular files above this size must go through LFS.
pub const MAX_GIT_BLOB: u64 = 10 * 1024 * 1024;

/// The commit's message and the commit it must apply on (if the client named one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitHeader {
    pub summary: String,
    pub description: String,
    pub parent_commit: Option<String>,
}

/// One operation of a commit, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOp {
    File {
        path: String,
        content: Vec<u8>,
    },
    LfsFile {
        path: String,
        oid: String,
        size: Option<i64>,
    },
    DeletedFile {
        path: String,
    },
    DeletedFolder {
        path: String,
    },
}

/// Longest line: a 10 MiB file in base64 (13.4 MiB) with its JSON around it.
pub const MAX_LINE: usize = 16 << 20;
/// Most operations in one commit.
pub const MAX_OPS: usize = 20_000;
/// Base64 text of at most [`MAX_GIT_BLOB`] bytes (padding included, whitespace trimmed).
const MAX_BASE64: usize = (MAX_GIT_BLOB as usize).div_ceil(3) * 4;

#[derive(Deserialize)]
struct Line {
    key: String,
    value: Value,
}

#[derive(Deserialize)]
struct HeaderLine {
    #[serde(default)]
    summary: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "parentCommit")]
    parent_commit: Option<String>,
}

#[derive(Deserialize)]
struct FileValue {
    path: String,
    content: String,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct LfsValue {
    path: String,
    oid: String,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    algo: Option<String>,
}

#[derive(Deserialize)]
struct PathValue {
    path: String,
}

/// A commit as it is being read.
#[derive(Default)]
pub struct CommitParser {
    header: Option<CommitHeader>,
    ops: Vec<CommitOp>,
    lines: usize,
    /// The start of a line whose end has not arrived yet.
    pending: Vec<u8>,
}

fn field<T: DeserializeOwned>(v: Value, n: usize) -> Result<T> {
    serde_json::from_value(v)
        .map_err(|e| Error::bad_request(format!("Invalid commit line {n}: {e}")))
}

fn too_large(message: String) -> Error {
    Error::new(ErrorKind::PayloadTooLarge, message)
}

/// Decodes a `file` operation's content, refusing it by length first.
fn file_content(f: &FileValue, n: usize) -> Result<Vec<u8>> {
    if f.encoding.as_deref().is_some_and(|e| e != "base64") {
        return Err(Error::bad_request(format!(
            "Unsupported encoding on line {n}"
        )));
    }
    let text = f.content.trim();
    if text.len() > MAX_BASE64 {
        return Err(too_large(format!(
            "{} is over 10 MiB: files that large must be uploaded with LFS",
            f.path
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Error::bad_request(format!("Invalid base64 on line {n}: {e}")))
}

impl CommitParser {
    /// Parses one complete line (without its newline). Blank lines are skipped.
    fn line(&mut self, raw: &[u8]) -> Result<()> {
        self.lines += 1;
        let n = self.lines;
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        if raw.len() > MAX_LINE {
            return Err(too_large(format!("Commit line {n} is longer than 16 MiB")));
        }
        let line: Line = serde_json::from_slice(raw)
            .map_err(|e| Error::bad_request(format!("Invalid commit line {n}: {e}")))?;
        if line.key != "header" && self.ops.len() >= MAX_OPS {
            return Err(too_large(format!(
                "A commit may hold at most {MAX_OPS} operations; split it into several commits"
            )));
        }
        match line.key.as_str() {
            "header" => {
                let h: HeaderLine = field(line.value, n)?;
                self.header = Some(CommitHeader {
                    summary: h.summary,
                    description: h.description,
                    parent_commit: h.parent_commit,
                });
            }
            "file" => {
                let f: FileValue = field(line.value, n)?;
                let content = file_content(&f, n)?;
                self.ops.push(CommitOp::File {
                    path: f.path,
                    content,
                });
            }
            "lfsFile" => {
                let f: LfsValue = field(line.value, n)?;
                if f.algo.as_deref().is_some_and(|a| a != "sha256") {
                    return Err(Error::bad_request(format!(
                        "Unsupported hash algorithm on line {n}"
                    )));
                }
                self.ops.push(CommitOp::LfsFile {
                    path: f.path,
                    oid: f.oid.to_ascii_lowercase(),
                    size: f.size,
                });
            }
            "deletedFile" => self.ops.push(CommitOp::DeletedFile {
                path: field::<PathValue>(line.value, n)?.path,
            }),
            "deletedFolder" => self.ops.push(CommitOp::DeletedFolder {
                path: field::<PathValue>(line.value, n)?.path,
            }),
            other => {
                return Err(Error::bad_request(format!(
                    "Unknown commit operation '{other}' on line {n}"
                )));
            }
        }
        Ok(())
    }

    /// Takes the next piece of the body, wherever it was cut: complete lines are parsed at
    /// once, the rest waits for the next piece (and may not grow past [`MAX_LINE`]).
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<()> {
        while let Some(at) = chunk.iter().position(|b| *b == b'\n') {
            let result = if self.pending.is_empty() {
                self.line(&chunk[..at])
            } else {
                let mut line = std::mem::take(&mut self.pending);
                line.extend_from_slice(&chunk[..at]);
                let result = self.line(&line);
                line.clear();
                self.pending = line;
                result
            };
            result?;
            chunk = &chunk[at + 1..];
        }
        if self.pending.len().saturating_add(chunk.len()) > MAX_LINE {
            return Err(too_large(format!(
                "Commit line {} is longer than 16 MiB",
                self.lines + 1
            )));
        }
        self.pending.extend_from_slice(chunk);
        Ok(())
    }

    /// The header and the operations, once the whole body was fed.
    pub fn finish(mut self) -> Result<(CommitHeader, Vec<CommitOp>)> {
        let last = std::mem::take(&mut self.pending);
        self.line(&last)?;
        let header = self
            .header
            .ok_or_else(|| Error::bad_request("The commit has no header line"))?;
        Ok((header, self.ops))
    }
}

/// Parses a whole body held in memory.
pub fn parse_commit(body: &[u8]) -> Result<(CommitHeader, Vec<CommitOp>)> {
    let mut parser = CommitParser::default();
    parser.feed(body)?;
    parser.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_operation_in_order() {
        let body =
            br#"{"key":"header","value":{"summary":"s","description":"","parentCommit":"abc"}}
{"key":"file","value":{"path":"a.txt","content":"aGk=","encoding":"base64"}}
{"key":"lfsFile","value":{"path":"w.bin","algo":"sha256","oid":"AB","size":5}}
{"key":"deletedFile","value":{"path":"old.txt"}}
{"key":"deletedFolder","value":{"path":"dir/"}}
"#;
        let (h, ops) = parse_commit(body).expect("parse");
        assert_eq!(h.parent_commit.as_deref(), Some("abc"));
        assert_eq!(ops.len(), 4);
        assert!(matches!(&ops[0], CommitOp::File { content, .. } if content == b"hi"));
        assert!(matches!(&ops[1], CommitOp::LfsFile { oid, size: Some(5), .. } if oid == "ab"));
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(parse_commit(b"{not json}\n").is_err());
        assert!(parse_commit(br#"{"key":"file","value":{"path":"a"}}"#).is_err());
        assert!(
            parse_commit(
                br#"{"key":"header","value":{}}
{"key":"copyFile","value":{}}"#
            )
            .is_err()
        );
        assert!(
            parse_commit(br#"{"key":"file","value":{"path":"a","content":"aGk="}}"#).is_err(),
            "no header"
        );
    }

    #[test]
    fn oversized_files_are_refused_before_decoding() {
        let content = "A".repeat(MAX_BASE64 + 4);
        let body = format!(
            "{{\"key\":\"header\",\"value\":{{}}}}\n{{\"key\":\"file\",\"value\":{{\"path\":\"big.bin\",\"content\":\"{content}\"}}}}\n"
        );
        let e = parse_commit(body.as_bytes()).expect_err("too large");
        assert_eq!(e.kind, ErrorKind::PayloadTooLarge);
        assert!(e.message.contains("big.bin"));
    }

    #[test]
    fn operations_are_counted() {
        let mut body = String::from("{\"key\":\"header\",\"value\":{}}\n");
        for i in 0..=MAX_OPS {
            body.push_str(&format!(
                "{{\"key\":\"deletedFile\",\"value\":{{\"path\":\"f{i}\"}}}}\n"
            ));
        }
        let e = parse_commit(body.as_bytes()).expect_err("too many");
        assert_eq!(e.kind, ErrorKind::PayloadTooLarge);
    }

    #[test]
    fn chunks_split_anywhere_parse_alike() {
        let body = b"{\"key\":\"header\",\"value\":{\"summary\":\"s\"}}\n{\"key\":\"deletedFile\",\"value\":{\"path\":\"x\"}}";
        for size in 1..body.len() {
            let mut parser = CommitParser::default();
            for chunk in body.chunks(size) {
                parser.feed(chunk).expect("feed");
            }
            let (h, ops) = parser.finish().expect("finish");
            assert_eq!((h.summary.as_str(), ops.len()), ("s", 1));
        }
        let mut parser = CommitParser::default();
        let e = parser.feed(&vec![b'x'; MAX_LINE + 1]).expect_err("line");
        assert_eq!(e.kind, ErrorKind::PayloadTooLarge);
    }
}
