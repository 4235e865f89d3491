//! Xet storage: the token endpoints under a repository's API path, and the CAS API under
//! `/api/xet` (`docs/xet.md` §1.3–1.4). CAS calls carry a Xet token (`Authorization: Bearer
//! wx1.…`), never a hub token; signed fetch URLs carry no credentials at all.

use super::RepoPath;
use super::repo_paths::content_response;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, BaseUrl, QueryPairs};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wharf_core::{Error, ErrorKind};
use wharf_hub::{ByteStream, ShardProgress, XetCaller, XetFetchUrl, XetScope, XetTokenGrant};

/// How long a shard upload may take before the v2 answer turns into a stream of progress
/// events: quick outcomes (the usual case) get a plain status, so a refused shard is a 4xx.
const SHARD_QUICK: Duration = Duration::from_secs(5);
/// Interval of the v2 progress events while a shard is being verified (the client's limit
/// between events is about 10 s).
const SHARD_HEARTBEAT: Duration = Duration::from_secs(5);

// --- tokens -----------------------------------------------------------------------------------

fn token_response(grant: XetTokenGrant) -> Response {
    let body = json!({
        "accessToken": grant.access_token,
        "exp": grant.exp,
        "casUrl": grant.cas_url,
    });
    let mut r = Json(body).into_response();
    let h = r.headers_mut();
    for (name, value) in [
        ("x-xet-cas-url", grant.cas_url.clone()),
        ("x-xet-access-token", grant.access_token.clone()),
        ("x-xet-token-expiration", grant.exp.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    r
}

/// `GET /api/{t}/{ns}/{name}/xet-read-token/{rev}`.
pub async fn read_token(
    State(s): State<AppState>,
    Auth(c): Auth,
    BaseUrl(b): BaseUrl,
    Path(p): Path<RepoPath>,
) -> ApiResult<Response> {
    let grant = s
        .hub
        .xet_token(&c, &p.address()?, p.rev(), XetScope::Read, false, &b)
        .await?;
    Ok(token_response(grant))
}

/// `GET /api/{t}/{ns}/{name}/xet-write-token/{rev}[?create_pr=1]`.
pub async fn write_token(
    State(s): State<AppState>,
    Auth(c): Auth,
    BaseUrl(b): BaseUrl,
    Path(p): Path<RepoPath>,
    q: QueryPairs,
) -> ApiResult<Response> {
    let create_pr = q.flag("create_pr", false);
    let grant = s
        .hub
        .xet_token(&c, &p.address()?, p.rev(), XetScope::Write, create_pr, &b)
        .await?;
    Ok(token_response(grant))
}

// --- CAS request plumbing ---------------------------------------------------------------------

fn invalid_token() -> ApiError {
    ApiError::new(ErrorKind::Unauthorized, "Xet token expired or invalid")
}

/// The caller of a CAS request, from its `Authorization: Bearer` Xet token.
async fn xet_caller(s: &AppState, headers: &HeaderMap, need: XetScope) -> ApiResult<XetCaller> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(invalid_token)?;
    let (scheme, token) = value.split_once(' ').ok_or_else(invalid_token)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(invalid_token());
    }
    Ok(s.hub.xet_caller(token.trim(), need).await?)
}

/// The request body as a stream, and its declared `Content-Length`.
fn body_stream(body: Body, headers: &HeaderMap) -> (ByteStream, Option<u64>) {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stream = body
        .into_data_stream()
        .map(|piece| piece.map_err(std::io::Error::other))
        .boxed();
    (stream, declared)
}

/// A single `Range: bytes=a-b` or `bytes=a-` (start, optional inclusive end).
fn byte_range(headers: &HeaderMap) -> ApiResult<Option<(u64, Option<u64>)>> {
    let Some(value) = headers.get(axum::http::header::RANGE) else {
        return Ok(None);
    };
    let bad = || ApiError::from(Error::bad_request("Invalid Range header"));
    let spec = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end = match b.trim() {
        "" => None,
        e => Some(e.parse::<u64>().map_err(|_| bad())?),
    };
    Ok(Some((start, end)))
}

// --- global dedup -------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
pub struct ChunkPath {
    prefix: String,
    hash: String,
}

/// `GET /api/xet/v1/chunks/{prefix}/{chunk}`: the keyed dedup shard, or 404.
pub async fn dedup(
    State(s): State<AppState>,
    Path(p): Path<ChunkPath>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let xc = xet_caller(&s, &headers, XetScope::Read).await?;
    let shard = s.hub.xet_dedup(&xc, &p.prefix, &p.hash).await?;
    let mut r = Response::new(Body::from(shard));
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(r)
}

// --- uploads ------------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
pub struct XorbPath {
    prefix: String,
    hash: String,
}

/// `POST /api/xet/v1/xorbs/default/{hash}`.
pub async fn put_xorb(
    State(s): State<AppState>,
    Path(p): Path<XorbPath>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let xc = xet_caller(&s, &headers, XetScope::Write).await?;
    if p.prefix != "default" {
        return Err(Error::bad_request(format!("Unknown xorb prefix '{}'", p.prefix)).into());
    }
    let (body, declared) = body_stream(body, &headers);
    s.hub.xet_put_xorb(&xc, &p.hash, body, declared).await?;
    // Always true, whether or not the xorb was known: the answer reveals nothing.
    Ok(Json(json!({ "was_inserted": true })))
}

/// `POST /api/xet/v1/shards`: `{"result": 1}` when something was new, else `{"result": 0}`.
pub async fn put_shard_v1(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let xc = xet_caller(&s, &headers, XetScope::Write).await?;
    let (body, declared) = body_stream(body, &headers);
    let upload = s.hub.xet_parse_shard(body, declared).await?;
    let new = s.hub.xet_register_shard(&xc, upload, &|_| {}).await?;
    Ok(Json(json!({ "result": u8::from(new) })))
}

fn event_line(p: ShardProgress) -> Value {
    match p {
        ShardProgress::Validating { verified, total } => {
            json!({ "type": "validating", "verified": verified, "total": total })
        }
        ShardProgress::Committing(stage) => json!({ "type": "committing", "stage": stage }),
    }
}

fn ndjson_bytes(lines: &[Value]) -> Bytes {
    let mut out = Vec::new();
    for l in lines {
        // Serialising a `Value` cannot fail.
        out.extend_from_slice(l.to_string().as_bytes());
        out.push(b'\n');
    }
    Bytes::from(out)
}

fn ndjson_response(body: Body) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

/// The last line of a v2 answer.
fn outcome_line(outcome: Result<bool, Error>) -> Value {
    match outcome {
        Ok(new) => json!({ "type": "result", "result": u8::from(new) }),
        Err(e) => {
            let message = if e.kind == ErrorKind::Internal {
                "Internal error".to_string()
            } else {
                e.message
            };
            json!({ "type": "error", "message": message, "retryable": e.kind == ErrorKind::Internal })
        }
    }
}

/// `POST /api/xet/v2/shards`: NDJSON progress events, then the result. Verification runs in
/// its own task; when it ends within a few seconds the answer is a plain status (4xx for a
/// refused shard), otherwise progress events are streamed until it ends.
pub async fn put_shard_v2(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let xc = xet_caller(&s, &headers, XetScope::Write).await?;
    let (body, declared) = body_stream(body, &headers);
    let upload = s.hub.xet_parse_shard(body, declared).await?;
    let last = Arc::new(Mutex::new(ShardProgress::Validating {
        verified: 0,
        total: 0,
    }));
    let seen = last.clone();
    let hub = s.hub.clone();
    let task = async move {
        let record = move |p: ShardProgress| {
            if let Ok(mut l) = seen.lock() {
                *l = p;
            }
        };
        hub.xet_register_shard(&xc, upload, &record).await
    };
    progress_response(task, last, SHARD_QUICK, SHARD_HEARTBEAT).await
}

/// Runs `task` on its own; answers with its outcome when it ends within `quick`, else streams
/// the latest progress every `heartbeat` and then the outcome as the last NDJSON line.
async fn progress_response<F>(
    task: F,
    last: Arc<Mutex<ShardProgress>>,
    quick: Duration,
    heartbeat: Duration,
) -> ApiResult<Response>
where
    F: std::future::Future<Output = Result<bool, Error>> + Send + 'static,
{
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = done_tx.send(task.await);
    });
    let current = |last: &Arc<Mutex<ShardProgress>>| {
        last.lock()
            .map(|p| *p)
            .unwrap_or(ShardProgress::Committing("uploading"))
    };
    let ended_early = || Error::internal("shard verification task ended early");
    match tokio::time::timeout(quick, &mut done_rx).await {
        Ok(Ok(Ok(new))) => {
            let lines = [
                event_line(current(&last)),
                event_line(ShardProgress::Committing("uploading")),
                event_line(ShardProgress::Committing("syncing")),
                outcome_line(Ok(new)),
            ];
            return Ok(ndjson_response(Body::from(ndjson_bytes(&lines))));
        }
        Ok(Ok(Err(e))) => return Err(e.into()),
        Ok(Err(_)) => return Err(ended_early().into()),
        Err(_) => {}
    }
    // Still running: a progress line now and every `heartbeat`, then the outcome.
    let first = ndjson_bytes(&[event_line(current(&last))]);
    let rest = futures::stream::unfold(Some((done_rx, last)), move |state| async move {
        let (mut done_rx, last) = state?;
        tokio::select! {
            outcome = &mut done_rx => {
                let outcome = outcome.unwrap_or_else(|_| Err(ended_early()));
                Some((ndjson_bytes(&[outcome_line(outcome)]), None))
            }
            _ = tokio::time::sleep(heartbeat) => {
                let line = ndjson_bytes(&[event_line(current(&last))]);
                Some((line, Some((done_rx, last))))
            }
        }
    });
    let stream = futures::stream::once(async move { first })
        .chain(rest)
        .map(Ok::<Bytes, std::io::Error>);
    Ok(ndjson_response(Body::from_stream(stream)))
}

// --- downloads ----------------------------------------------------------------------------------

/// `GET /api/xet/v1/reconstructions/{file}`.
pub async fn reconstruction_v1(
    State(s): State<AppState>,
    BaseUrl(b): BaseUrl,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    reconstruction(&s, &b, &file, &headers, false).await
}

/// `GET /api/xet/v2/reconstructions/{file}`.
pub async fn reconstruction_v2(
    State(s): State<AppState>,
    BaseUrl(b): BaseUrl,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    reconstruction(&s, &b, &file, &headers, true).await
}

async fn reconstruction(
    s: &AppState,
    base: &str,
    file: &str,
    headers: &HeaderMap,
    v2: bool,
) -> ApiResult<Response> {
    let xc = xet_caller(s, headers, XetScope::Read).await?;
    let range = byte_range(headers)?;
    let answer = s.hub.xet_reconstruction(&xc, file, range, base, v2).await?;
    Ok(Json(answer).into_response())
}

/// `GET /api/xet/fetch/{xorb}?r=a-b&exp=…&sig=…`: 206 with the requested bytes.
pub async fn fetch(
    State(s): State<AppState>,
    Path(xorb): Path<String>,
    q: QueryPairs,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let refused = || ApiError::from(Error::forbidden("Invalid or expired fetch URL"));
    let signed = q
        .get("r")
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        .ok_or_else(refused)?;
    let exp = q
        .get("exp")
        .and_then(|e| e.parse::<i64>().ok())
        .ok_or_else(refused)?;
    let url = XetFetchUrl {
        xorb,
        range: signed,
        exp,
        binding: q.get("g").unwrap_or_default().to_string(),
        sig: q.get("sig").unwrap_or_default().to_string(),
    };
    let requested = byte_range(&headers)?;
    let f = s.hub.xet_fetch(&url, requested).await?;
    Ok(content_response(
        f.body,
        f.data_size,
        Some(f.range),
        HeaderMap::new(),
    ))
}

/// `POST /v1/telemetry` (at the origin root, where hf_xet sends it): accepted and ignored.
pub async fn telemetry() -> StatusCode {
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    async fn lines(r: Response) -> Vec<Value> {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .expect("body");
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("json line"))
            .collect()
    }

    fn progress() -> Arc<Mutex<ShardProgress>> {
        Arc::new(Mutex::new(ShardProgress::Validating {
            verified: 0,
            total: 4,
        }))
    }

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn quick_outcomes_are_plain_answers() {
        let r = progress_response(async { Ok(true) }, progress(), 1000 * MS, 10 * MS)
            .await
            .expect("ok");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "application/x-ndjson");
        let l = lines(r).await;
        assert_eq!(l.last(), Some(&json!({"type": "result", "result": 1})));
        assert_eq!(l[0]["type"], "validating");

        let e = progress_response(
            async { Err(Error::bad_request("term 0 of file f does not verify")) },
            progress(),
            1000 * MS,
            10 * MS,
        )
        .await
        .expect_err("refused");
        assert_eq!(e.error.kind, ErrorKind::BadRequest);
    }

    #[tokio::test]
    async fn slow_outcomes_stream_progress_then_the_result() {
        let last = progress();
        let writer = last.clone();
        let task = async move {
            tokio::time::sleep(60 * MS).await;
            if let Ok(mut l) = writer.lock() {
                *l = ShardProgress::Validating {
                    verified: 3,
                    total: 4,
                };
            }
            tokio::time::sleep(60 * MS).await;
            Ok(false)
        };
        let r = progress_response(task, last, 10 * MS, 20 * MS)
            .await
            .expect("stream");
        assert_eq!(r.status(), StatusCode::OK);
        let l = lines(r).await;
        assert!(l.len() >= 3, "{l:?}");
        assert_eq!(
            l[0],
            json!({"type": "validating", "verified": 0, "total": 4})
        );
        assert!(l.contains(&json!({"type": "validating", "verified": 3, "total": 4})));
        assert_eq!(l.last(), Some(&json!({"type": "result", "result": 0})));

        let task = async {
            tokio::time::sleep(50 * MS).await;
            Err(Error::bad_request("file f does not match its hash"))
        };
        let r = progress_response(task, progress(), 10 * MS, 20 * MS)
            .await
            .expect("stream");
        let l = lines(r).await;
        assert_eq!(
            l.last(),
            Some(
                &json!({"type": "error", "message": "file f does not match its hash", "retryable": false})
            )
        );
    }

    #[test]
    fn ranges_and_tokens_from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(byte_range(&h).expect("none"), None);
        h.insert("range", HeaderValue::from_static("bytes=5-10"));
        assert_eq!(byte_range(&h).expect("range"), Some((5, Some(10))));
        h.insert("range", HeaderValue::from_static("bytes=5-"));
        assert_eq!(byte_range(&h).expect("open"), Some((5, None)));
        for bad in ["bytes=-5", "bytes=a-b", "items=1-2", "bytes=1-2,4-5"] {
            h.insert("range", HeaderValue::from_static(bad));
            assert!(byte_range(&h).is_err(), "{bad}");
        }
    }
}
