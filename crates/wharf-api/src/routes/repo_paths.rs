//! Paths under a repository's web address, which axum's router cannot express well (optional
//! `datasets/`/`spaces/` prefix, optional `.git` suffix, free-form file paths):
//! `/{ns}/{name}/resolve/{rev}/{path}`, the LFS batch/verify/locks API under
//! `/{ns}/{name}.git/info/lfs/…`, and git's smart HTTP.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{base_url, credentials};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use percent_encoding::percent_decode_str;
use serde_json::json;
use wharf_core::{Error, ErrorKind, RepoType};
use wharf_hub::{
    BatchRequest, ByteRange, ByteStream, Caller, GitService as Service, RepoAddress, VerifyRequest,
};

/// Largest JSON body accepted by the LFS endpoints (10,000 objects take about 1.2 MB).
const JSON_LIMIT: usize = 4 * 1024 * 1024;

/// A repository address and what comes after it.
struct RepoRequest {
    addr: RepoAddress,
    /// The name carried a `.git` suffix.
    dot_git: bool,
    /// Remaining raw (still percent-encoded) segments.
    rest: Vec<String>,
}

fn decode(seg: &str) -> ApiResult<String> {
    percent_decode_str(seg)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::bad_request("Path is not valid UTF-8").into())
}

fn split_repo_path(path: &str) -> ApiResult<Option<RepoRequest>> {
    let mut segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let repo_type = match segs.first() {
        Some(&"datasets") => RepoType::Dataset,
        Some(&"spaces") => RepoType::Space,
        _ => RepoType::Model,
    };
    if repo_type != RepoType::Model {
        segs.remove(0);
    }
    if segs.len() < 2 {
        return Ok(None);
    }
    let ns = decode(segs[0])?;
    let mut name = decode(segs[1])?;
    let dot_git = name.ends_with(".git");
    if dot_git {
        name.truncate(name.len() - 4);
    }
    let rest = segs[2..].iter().map(|s| s.to_string()).collect();
    Ok(Some(RepoRequest {
        addr: RepoAddress::new(repo_type, &ns, &name),
        dot_git,
        rest,
    }))
}

fn not_found() -> ApiError {
    ApiError::new(ErrorKind::NotFound, "Not found")
}

/// The fallback for every path the router does not know.
pub async fn dispatch(State(s): State<AppState>, req: Request) -> Response {
    match route(&s, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(s: &AppState, req: Request) -> ApiResult<Response> {
    let path = req.uri().path().to_string();
    if path.starts_with("/api/") {
        return Err(not_found());
    }
    let Some(rr) = split_repo_path(&path)? else {
        return Err(not_found());
    };
    let rest: Vec<&str> = rr.rest.iter().map(String::as_str).collect();
    let method = req.method().clone();
    match (method, rest.as_slice()) {
        (Method::GET | Method::HEAD, ["resolve", rev, file @ ..])
            if !file.is_empty() && !rr.dot_git =>
        {
            let rev = decode(rev)?;
            let file = decode(&file.join("/"))?;
            resolve(s, req, &rr.addr, &rev, &file).await
        }
        (Method::GET, ["info", "refs"]) => git_info_refs(s, req, &rr.addr).await,
        (Method::POST, ["git-upload-pack"]) => git_upload_pack(s, req, &rr.addr).await,
        (Method::POST, ["git-receive-pack"]) => git_receive_pack(s, req, &rr.addr).await,
        (Method::POST, ["info", "lfs", "objects", "batch"]) => lfs_batch(s, req, &rr.addr).await,
        (Method::POST, ["info", "lfs", "objects", "verify"]) => lfs_verify(s, req, &rr.addr).await,
        (_, ["info", "lfs", "locks", ..]) => Ok(locks_not_supported()),
        _ => Err(not_found()),
    }
}

/// The caller of a request; the future holds no borrow of the (non-`Sync`) request.
fn caller_of(
    s: &AppState,
    req: &Request,
) -> impl std::future::Future<Output = ApiResult<Caller>> + Send + 'static {
    let origin = wharf_http::ClientAddr::of(req.extensions());
    let creds = credentials(req.headers());
    let hub = s.hub.clone();
    async move { Ok(hub.authenticate(&creds?, &origin).await?) }
}

/// Parses a single `Range: bytes=…`; `Ok(None)` means serve the whole content.
pub fn parse_range(headers: &HeaderMap, size: u64) -> ApiResult<Option<ByteRange>> {
    let Some(value) = headers
        .get(axum::http::header::RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // Several ranges: answering with the whole content is allowed.
    }
    let unsatisfiable = || {
        ApiError::new(
            ErrorKind::RangeNotSatisfiable,
            "Requested range not satisfiable",
        )
        .with_header("content-range", &format!("bytes */{size}"))
    };
    let (a, b) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let range = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| unsatisfiable())?;
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }
        }
        (start, end) => {
            let start: u64 = start.parse().map_err(|_| unsatisfiable())?;
            let end: u64 = if end.is_empty() {
                size.saturating_sub(1)
            } else {
                end.parse().map_err(|_| unsatisfiable())?
            };
            if start >= size || end < start {
                return Err(unsatisfiable());
            }
            ByteRange {
                start,
                end: end.min(size - 1),
            }
        }
    };
    Ok(Some(range))
}

/// A 200 or 206 streaming response with length and range headers.
pub fn content_response(
    stream: ByteStream,
    size: u64,
    range: Option<ByteRange>,
    extra: HeaderMap,
) -> Response {
    let (status, length) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.end - r.start + 1),
        None => (StatusCode::OK, size),
    };
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.extend(extra);
    h.insert("content-length", HeaderValue::from(length));
    h.insert("accept-ranges", HeaderValue::from_static("bytes"));
    if let Some(r) = range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end))
    {
        h.insert("content-range", v);
    }
    if !h.contains_key("content-type") {
        h.insert(
            "content-type",
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    response
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// HEAD/GET `/{repo}/resolve/{rev}/{path}` with the headers the client's cache is built on.
async fn resolve(
    s: &AppState,
    req: Request,
    addr: &RepoAddress,
    rev: &str,
    file: &str,
) -> ApiResult<Response> {
    let caller = caller_of(s, &req).await?;
    let (commit, found) = s.hub.resolve_file(&caller, addr, rev, file).await?;
    let client = match caller.name() {
        Some(name) => format!("user:{name}"),
        None => format!("addr:{}", wharf_http::ClientAddr::of(req.extensions())),
    };
    let Some(content) = found else {
        return Err(
            ApiError::from(Error::entry_not_found(file)).with_header("x-repo-commit", &commit)
        );
    };
    let mut extra = HeaderMap::new();
    extra.insert("x-repo-commit", header(&commit));
    extra.insert("etag", header(&format!("\"{}\"", content.etag())));
    if let Some(p) = &content.lfs {
        extra.insert("x-linked-etag", header(&format!("\"{}\"", p.oid)));
        extra.insert("x-linked-size", HeaderValue::from(p.size));
    }
    if let Some(xet_hash) = &content.xet_hash {
        // Xet clients download through the CAS with a read token for this exact commit.
        let base = base_url(req.headers(), s);
        let token_url = format!(
            "{base}/api/{}/{}/{}/xet-read-token/{commit}",
            addr.repo_type.plural(),
            addr.namespace,
            addr.name
        );
        extra.insert("x-xet-hash", header(xet_hash));
        extra.insert("link", header(&format!("<{token_url}>; rel=\"xet-auth\"")));
    }
    let filename = content.path.rsplit('/').next().unwrap_or(&content.path);
    let encoded =
        percent_encoding::utf8_percent_encode(filename, percent_encoding::NON_ALPHANUMERIC);
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    extra.insert(
        "content-disposition",
        header(&format!(
            "inline; filename*=UTF-8''{encoded}; filename=\"{ascii}\";"
        )),
    );
    let range = parse_range(req.headers(), content.size)?;
    if req.method() == Method::HEAD {
        let empty: ByteStream = futures::stream::empty().boxed();
        return Ok(content_response(empty, content.size, range, extra));
    }
    let stream = s.hub.read_file(&content, range).await?;
    s.hub
        .note_download(content.repo_id, addr.repo_type, &content.path, &client)
        .await?;
    Ok(content_response(stream, content.size, range, extra))
}

fn lfs_json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/vnd.git-lfs+json"),
    );
    r
}

async fn body_json<T: serde::de::DeserializeOwned>(req: Request) -> ApiResult<T> {
    let bytes = axum::body::to_bytes(req.into_body(), JSON_LIMIT)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if too_large {
                ApiError::new(ErrorKind::PayloadTooLarge, "Request body too large")
            } else {
                Error::bad_request("Request body interrupted").into()
            }
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_request(format!("Invalid JSON body: {e}")).into())
}

async fn lfs_batch(s: &AppState, req: Request, addr: &RepoAddress) -> ApiResult<Response> {
    let caller = caller_of(s, &req).await?;
    // A repository the caller cannot see is refused before its body is read.
    s.hub.repo(&caller, addr, wharf_hub::Need::Read).await?;
    let base = base_url(req.headers(), s);
    let request: BatchRequest = body_json(req).await?;
    if request.objects.len() > 10_000 {
        return Err(Error::bad_request("Too many objects in one batch (at most 10000)").into());
    }
    let response = s.hub.lfs_batch(&caller, addr, request, &base).await?;
    let body = serde_json::to_value(&response).map_err(Error::internal)?;
    Ok(lfs_json(StatusCode::OK, body))
}

async fn lfs_verify(s: &AppState, req: Request, addr: &RepoAddress) -> ApiResult<Response> {
    let caller = caller_of(s, &req).await?;
    let v: VerifyRequest = body_json(req).await?;
    s.hub.lfs_verify(&caller, addr, &v.oid, v.size).await?;
    Ok(lfs_json(StatusCode::OK, json!({})))
}

/// File locking is not offered. git-lfs treats 501 on `locks/verify` as "no locking API" and
/// quietly turns verification off for the remote, so pushes print no warning; `git lfs lock`
/// gets this clear message.
fn locks_not_supported() -> Response {
    lfs_json(
        StatusCode::NOT_IMPLEMENTED,
        json!({ "message": "File locking is not supported by this server" }),
    )
}

/// git only sends credentials after a challenge, so anonymous callers who lack access get
/// `401` + `WWW-Authenticate: Basic` (missing and private repos alike, so nothing leaks).
fn git_error(caller: &Caller, e: Error) -> ApiError {
    let denied = matches!(
        e.kind,
        ErrorKind::RepoNotFound
            | ErrorKind::Unauthorized
            | ErrorKind::Forbidden
            | ErrorKind::GatedRepo
    );
    if caller.user.is_none() && denied {
        let mut err = ApiError::new(ErrorKind::Unauthorized, "Authentication required");
        err.headers.push((
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"wharf\""),
        ));
        return err;
    }
    e.into()
}

async fn git_caller(
    pending: impl std::future::Future<Output = ApiResult<Caller>>,
) -> ApiResult<Caller> {
    match pending.await {
        Ok(c) => Ok(c),
        Err(e) => Err(git_error(&Caller::anonymous(), e.error)),
    }
}

fn git_protocol(headers: &HeaderMap) -> Option<String> {
    headers
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn git_response(service: Service, suffix: &str, body: Body) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        "content-type",
        header(&format!("application/x-{}-{suffix}", service.name())),
    );
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    r
}

async fn git_info_refs(s: &AppState, req: Request, addr: &RepoAddress) -> ApiResult<Response> {
    let service = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("service=")))
        .and_then(Service::parse);
    let Some(service) = service else {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "Only git's smart HTTP protocol is supported",
        ));
    };
    let caller = git_caller(caller_of(s, &req)).await?;
    let advert = s
        .hub
        .git_advertise(&caller, addr, service, git_protocol(req.headers()))
        .await
        .map_err(|e| git_error(&caller, e))?;
    Ok(git_response(service, "advertisement", Body::from(advert)))
}

fn body_reader(req: Request) -> impl tokio::io::AsyncRead + Send + Unpin + 'static {
    use futures::TryStreamExt;
    tokio_util::io::StreamReader::new(
        req.into_body()
            .into_data_stream()
            .map_err(std::io::Error::other),
    )
}

/// Most bytes a gzipped `git-upload-pack` request may expand to (the wants and haves of a
/// fetch negotiation: 50 bytes a line, a million lines).
const MAX_NEGOTIATION: u64 = 64 << 20;

/// The request body of `git-upload-pack`, decompressed when git gzipped it (it does for large
/// negotiations), and cut off at [`MAX_NEGOTIATION`] bytes either way; git then sees a
/// truncated request and fails it.
fn negotiation_reader(req: Request) -> Box<dyn tokio::io::AsyncRead + Send + Unpin + 'static> {
    use tokio::io::AsyncReadExt;
    let gzipped = req
        .headers()
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let raw = tokio::io::BufReader::new(body_reader(req));
    if gzipped {
        let decoder = async_compression::tokio::bufread::GzipDecoder::new(raw);
        Box::new(decoder.take(MAX_NEGOTIATION))
    } else {
        Box::new(raw.take(MAX_NEGOTIATION))
    }
}

async fn git_upload_pack(s: &AppState, req: Request, addr: &RepoAddress) -> ApiResult<Response> {
    let caller = git_caller(caller_of(s, &req)).await?;
    let protocol = git_protocol(req.headers());
    let running = s
        .hub
        .git_upload_pack(&caller, addr, protocol, negotiation_reader(req))
        .await
        .map_err(|e| git_error(&caller, e))?;
    Ok(git_response(
        Service::UploadPack,
        "result",
        Body::from_stream(running.into_stream()),
    ))
}

async fn git_receive_pack(s: &AppState, req: Request, addr: &RepoAddress) -> ApiResult<Response> {
    let caller = git_caller(caller_of(s, &req)).await?;
    let protocol = git_protocol(req.headers());
    let output = s
        .hub
        .git_receive_pack(&caller, addr, protocol, body_reader(req))
        .await
        .map_err(|e| git_error(&caller, e))?;
    Ok(git_response(
        Service::ReceivePack,
        "result",
        Body::from(output),
    ))
}
