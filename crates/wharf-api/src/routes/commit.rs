//! Preupload and the NDJSON commit endpoint, plus the JSON body extractor every route uses
//! (its rejections speak the Hub's error dialect).

use super::RepoPath;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, BaseUrl, QueryPairs};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use base64::Engine;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wharf_core::Error;
use wharf_hub::{CommitHeader, CommitOp, PreuploadFile};

/// `Json<T>` whose failures are 400s with `X-Error-Message`, not axum's plain-text rejections.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let too_large = e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE;
            let kind = if too_large {
                wharf_core::ErrorKind::PayloadTooLarge
            } else {
                wharf_core::ErrorKind::BadRequest
            };
            ApiError::new(kind, e.body_text())
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Error::bad_request(format!("Invalid JSON body: {e}")).into())
    }
}

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(wharf_core::ErrorKind::BadRequest, e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(|v| Some(JsonBody(v)))
            .map_err(|e| Error::bad_request(format!("Invalid JSON body: {e}")).into())
    }
}

#[derive(Deserialize)]
pub struct PreuploadRequest {
    files: Vec<PreuploadEntry>,
    #[serde(default, rename = "gitIgnore")]
    git_ignore: Option<String>,
}

#[derive(Deserialize)]
struct PreuploadEntry {
    path: String,
    #[serde(default)]
    sample: String,
    size: u64,
}

fn b64(s: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| Error::bad_request(format!("Invalid base64: {e}")))
}

pub async fn preupload(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(p): Path<RepoPath>,
    JsonBody(req): JsonBody<PreuploadRequest>,
) -> ApiResult<Json<Value>> {
    let mut files = Vec::with_capacity(req.files.len());
    for f in req.files {
        files.push(PreuploadFile {
            path: f.path,
            sample: b64(&f.sample)?,
            size: f.size,
        });
    }
    let results = s
        .hub
        .preupload(&c, &p.address()?, p.rev(), files, req.git_ignore)
        .await?;
    let out: Vec<Value> = results
        .iter()
        .map(|r| json!({ "path": r.path, "uploadMode": if r.lfs { "lfs" } else { "regular" }, "shouldIgnore": r.should_ignore, "oid": r.oid }))
        .collect();
    Ok(Json(json!({ "files": out })))
}

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

fn field<T: DeserializeOwned>(v: Value, n: usize) -> Result<T, Error> {
    serde_json::from_value(v)
        .map_err(|e| Error::bad_request(format!("Invalid commit line {n}: {e}")))
}

/// Parses the NDJSON commit body: one header line, then operations in order.
fn parse_commit(body: &[u8]) -> Result<(CommitHeader, Vec<CommitOp>), Error> {
    let mut header = None;
    let mut ops = Vec::new();
    for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line: Line = serde_json::from_slice(raw)
            .map_err(|e| Error::bad_request(format!("Invalid commit line {n}: {e}")))?;
        match line.key.as_str() {
            "header" => {
                let h: HeaderLine = field(line.value, n)?;
                header = Some(CommitHeader {
                    summary: h.summary,
                    description: h.description,
                    parent_commit: h.parent_commit,
                });
            }
            "file" => {
                let f: FileValue = field(line.value, n)?;
                if f.encoding.as_deref().is_some_and(|e| e != "base64") {
                    return Err(Error::bad_request(format!(
                        "Unsupported encoding on line {n}"
                    )));
                }
                ops.push(CommitOp::File {
                    path: f.path,
                    content: b64(&f.content)?,
                });
            }
            "lfsFile" => {
                let f: LfsValue = field(line.value, n)?;
                if f.algo.as_deref().is_some_and(|a| a != "sha256") {
                    return Err(Error::bad_request(format!(
                        "Unsupported hash algorithm on line {n}"
                    )));
                }
                ops.push(CommitOp::LfsFile {
                    path: f.path,
                    oid: f.oid.to_ascii_lowercase(),
                    size: f.size,
                });
            }
            "deletedFile" => ops.push(CommitOp::DeletedFile {
                path: field::<PathValue>(line.value, n)?.path,
            }),
            "deletedFolder" => ops.push(CommitOp::DeletedFolder {
                path: field::<PathValue>(line.value, n)?.path,
            }),
            other => {
                return Err(Error::bad_request(format!(
                    "Unknown commit operation '{other}' on line {n}"
                )));
            }
        }
    }
    let header = header.ok_or_else(|| Error::bad_request("The commit has no header line"))?;
    Ok((header, ops))
}

pub async fn create_commit(
    State(s): State<AppState>,
    Auth(c): Auth,
    BaseUrl(base): BaseUrl,
    Path(p): Path<RepoPath>,
    q: QueryPairs,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let addr = p.address()?;
    let (header, ops) = parse_commit(&body)?;
    drop(body);
    let create_pr = q.flag("create_pr", false);
    let outcome = s
        .hub
        .commit(&c, &addr, p.rev(), header, ops, create_pr)
        .await?;
    let repo_url = format!(
        "{base}/{}{}/{}",
        addr.repo_type.url_prefix(),
        addr.namespace,
        addr.name
    );
    let pr_url = outcome
        .pr_num
        .map(|n| format!("{repo_url}/discussions/{n}"));
    Ok(Json(json!({
        "success": true,
        "commitOid": outcome.commit_oid,
        "commitUrl": format!("{repo_url}/commit/{}", outcome.commit_oid),
        "pullRequestUrl": pr_url,
        "hookOutput": "",
    })))
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
}
