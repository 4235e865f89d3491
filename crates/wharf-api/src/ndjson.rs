//! The NDJSON commit body (`POST /api/{t}/{id}/commit/{rev}`), read line by line as it arrives:
//! one header line, then operations in order. Nothing is read before the caller was allowed to
//! write (the route checks first), no line may exceed [`MAX_LINE`], a commit carries at most
//! [`MAX_OPS`] operations, and a `file` operation's base64 is refused by its length before it
//! is decoded when the file would be over the size git stores (10 MiB).

use axum::body::Body;
use base64::Engine;
use futures::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wharf_core::{Error, ErrorKind, Result};
use wharf_hub::{CommitHeader, CommitOp, MAX_GIT_BLOB, MemoryReservation};

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
    /// Takes one line (without its newline). Blank lines are skipped.
    pub fn line(&mut self, raw: &[u8]) -> Result<()> {
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

    /// The header and the operations, once every line was read.
    pub fn finish(self) -> Result<(CommitHeader, Vec<CommitOp>)> {
        let header = self
            .header
            .ok_or_else(|| Error::bad_request("The commit has no header line"))?;
        Ok((header, self.ops))
    }
}

/// Parses a whole body held in memory (tests, fuzzing).
pub fn parse_commit(body: &[u8]) -> Result<(CommitHeader, Vec<CommitOp>)> {
    let mut parser = CommitParser::default();
    for raw in body.split(|b| *b == b'\n') {
        parser.line(raw)?;
    }
    parser.finish()
}

/// Reads a commit body as it streams in: at most `limit` bytes in all, each line parsed as soon
/// as it is complete, so only the current line and the decoded operations are ever held, and
/// `memory` grows with what was read. The body must keep the hub's minimal upload pace.
pub async fn read_commit(
    body: Body,
    limit: usize,
    memory: &mut MemoryReservation,
) -> Result<(CommitHeader, Vec<CommitOp>)> {
    let stream = body
        .into_data_stream()
        .map(|piece| piece.map_err(std::io::Error::other))
        .boxed();
    let mut stream = wharf_hub::uploads::paced(stream);
    let mut parser = CommitParser::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| Error::bad_request(format!("The commit body was interrupted: {e}")))?;
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(too_large(format!(
                "The commit body is larger than {} MiB",
                limit >> 20
            )));
        }
        memory.cover(total as u64).await?;
        let mut rest: &[u8] = &chunk;
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            pending.extend_from_slice(&rest[..at]);
            parser.line(&pending)?;
            pending.clear();
            rest = &rest[at + 1..];
        }
        pending.extend_from_slice(rest);
        if pending.len() > MAX_LINE {
            return Err(too_large(format!(
                "Commit line {} is longer than 16 MiB",
                parser.lines + 1
            )));
        }
    }
    parser.line(&pending)?;
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

    #[tokio::test]
    async fn streamed_bodies_parse_across_chunk_boundaries_and_stop_at_the_limit() {
        let text = "{\"key\":\"header\",\"value\":{\"summary\":\"s\"}}\n{\"key\":\"deletedFile\",\"value\":{\"path\":\"x\"}}";
        let pieces: Vec<Result<bytes::Bytes, std::io::Error>> = text
            .as_bytes()
            .chunks(7)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        let dir = tempfile::tempdir().expect("dir");
        let hub = wharf_hub::Hub::open(&wharf_hub::HubConfig {
            data_dir: dir.path().to_path_buf(),
        })
        .await
        .expect("hub");
        let mut memory = hub.reserve_memory(1).await.expect("reserve");
        let body = Body::from_stream(futures::stream::iter(pieces));
        let (h, ops) = read_commit(body, 1 << 20, &mut memory)
            .await
            .expect("parse");
        assert_eq!((h.summary.as_str(), ops.len()), ("s", 1));
        let e = read_commit(Body::from(text), 10, &mut memory)
            .await
            .expect_err("limit");
        assert_eq!(e.kind, ErrorKind::PayloadTooLarge);
        let endless = Body::from(vec![b'x'; MAX_LINE + 10]);
        let e = read_commit(endless, usize::MAX, &mut memory)
            .await
            .expect_err("line");
        assert_eq!(e.kind, ErrorKind::PayloadTooLarge);
        assert!(
            memory.bytes() >= (MAX_LINE as u64),
            "the reservation grew with the body"
        );
    }
}
