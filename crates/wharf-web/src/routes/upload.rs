//! `/{ns}/{name}/upload/{rev}`: drag-and-drop upload. The multipart body is streamed: each
//! file goes straight into the hub's staging (`upload_file`) while it arrives, and one commit
//! (`commit_staged`) publishes them all. The `_csrf` field must come before the files (the form
//! and its script send it first), or arrive as the `X-CSRF-Token` header.

use crate::WebState;
use crate::error::{WebError, WebResult};
use crate::format::{path_url, redirect, segment};
use crate::routes::edit::writable_head;
use crate::routes::{Target, page};
use crate::session::{Chrome, Ctx};
use crate::views::RepoHead;
use askama::Template;
use axum::extract::State;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use wharf_core::{Error, ErrorKind};
use wharf_hub::{ByteStream, RepoAddress, StagedFile};

/// Text fields (folder, commit message) are small.
const MAX_TEXT_FIELD: usize = 64 * 1024;
/// Files in one upload.
const MAX_FILES: usize = 1000;
/// Fields of any kind in one upload (the files, the form's four, some slack): a body of
/// countless empty or unknown fields is refused rather than read to its end.
const MAX_FIELDS: usize = MAX_FILES + 16;

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage {
    chrome: Chrome,
    repo: RepoHead,
    rev: String,
    action: String,
    dir: String,
    cancel_href: String,
}

/// `GET /{ns}/{name}/upload/{rev}[?dir=…]`.
pub async fn form(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    q: crate::routes::ListParams,
) -> WebResult<Response> {
    let (head, _) = writable_head(&s, &ctx, &t).await?;
    let rev_url = segment(&t.rev);
    page(&UploadPage {
        chrome: ctx.chrome(),
        action: format!("{}/upload/{rev_url}", head.url),
        cancel_href: format!("{}/tree/{rev_url}", head.url),
        dir: q.get("dir").unwrap_or("").to_string(),
        rev: t.rev.clone(),
        repo: head,
    })
}

fn bad_multipart(e: impl std::fmt::Display) -> WebError {
    Error::bad_request(format!("The upload was interrupted or malformed: {e}")).into()
}

/// Reads a small text field.
async fn text_field(mut field: Field<'_>) -> WebResult<String> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
        out.extend_from_slice(&chunk);
        if out.len() > MAX_TEXT_FIELD {
            return Err(
                Error::new(ErrorKind::PayloadTooLarge, "A form field is too large.").into(),
            );
        }
    }
    String::from_utf8(out).map_err(|_| Error::bad_request("A form field is not UTF-8.").into())
}

/// Streams one file field into the hub's staging area. The field borrows the multipart body,
/// so it is pumped through a small channel in this same task while the hub consumes it.
async fn stage(
    s: &WebState,
    ctx: &Ctx,
    addr: &RepoAddress,
    path: &str,
    mut field: Field<'_>,
) -> WebResult<StagedFile> {
    let (mut tx, rx) = futures::channel::mpsc::channel::<std::io::Result<Bytes>>(4);
    let body: ByteStream = rx.boxed();
    let upload = s.hub.upload_file(&ctx.caller, addr, path, body);
    let pump = async move {
        loop {
            let item = match field.chunk().await {
                Ok(Some(chunk)) => Ok(chunk),
                Ok(None) => break,
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let failed = item.is_err();
            // The hub stopped reading (it failed); its error is what gets reported.
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    };
    let (staged, ()) = tokio::join!(upload, pump);
    Ok(staged?)
}

/// The path a browser-sent file name gets under `dir` (old browsers send a full local path).
fn target_path(dir: &str, file_name: &str) -> String {
    let name = file_name.rsplit(['\\']).next().unwrap_or(file_name);
    let dir = dir.trim().trim_matches('/');
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// `POST /{ns}/{name}/upload/{rev}` (multipart: `_csrf`, `dir`, `summary`, `description`,
/// then any number of `files`).
pub async fn upload(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> WebResult<Response> {
    let mut csrf_ok = match headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        Some(token) => ctx.check_csrf(&s, token).is_ok(),
        None => false,
    };
    let (head, addr) = writable_head(&s, &ctx, &t).await?;
    // Only now, so that visitors are sent to log in whatever they sent.
    let mut multipart = multipart.map_err(bad_multipart)?;
    let (mut dir, mut summary, mut description) = (String::new(), String::new(), String::new());
    let mut staged = Vec::new();
    let mut fields = 0;
    while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(Error::bad_request("The upload has too many fields.").into());
        }
        let name = field.name().unwrap_or_default().to_string();
        if let Some(file_name) = field.file_name().map(str::to_string) {
            if !csrf_ok {
                return Err(WebError::csrf());
            }
            if file_name.is_empty() || name != "files" {
                continue;
            }
            if staged.len() >= MAX_FILES {
                return Err(Error::bad_request("At most 1000 files per upload.").into());
            }
            let path = target_path(&dir, &file_name);
            staged.push(stage(&s, &ctx, &addr, &path, field).await?);
            continue;
        }
        let value = text_field(field).await?;
        match name.as_str() {
            "_csrf" => {
                ctx.check_csrf(&s, &value)?;
                csrf_ok = true;
            }
            "dir" => dir = value,
            "summary" => summary = value,
            "description" => description = value,
            _ => {}
        }
    }
    if !csrf_ok {
        return Err(WebError::csrf());
    }
    if staged.is_empty() {
        return Err(Error::bad_request("Choose at least one file to upload.").into());
    }
    let summary = match summary.trim() {
        "" if staged.len() == 1 => "Upload 1 file".to_string(),
        "" => format!("Upload {} files", staged.len()),
        s => s.to_string(),
    };
    s.hub
        .commit_staged(
            &ctx.caller,
            &addr,
            &t.rev,
            staged,
            Vec::new(),
            &summary,
            &description,
        )
        .await?;
    let dir = dir.trim().trim_matches('/');
    let mut to = format!("{}/tree/{}", head.url, segment(&t.rev));
    if !dir.is_empty() {
        to.push('/');
        to.push_str(&path_url(dir));
    }
    Ok(redirect(&to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_file_names_become_repo_paths() {
        assert_eq!(target_path("", "a.bin"), "a.bin");
        assert_eq!(target_path("/w/", "a.bin"), "w/a.bin");
        assert_eq!(target_path("", "C:\\Users\\x\\a.bin"), "a.bin");
    }
}
