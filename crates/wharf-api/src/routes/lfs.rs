//! The signed transfer URLs the LFS batch API hands out: PUT to upload, GET to download.
//! They carry their own authorisation (the Python client sends no credentials to them).

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::QueryPairs;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::Deserialize;
use wharf_core::Error;
use wharf_hub::UploadTicket;

#[derive(Deserialize)]
pub struct TransferPath {
    repo_id: i64,
    oid: String,
    size: u64,
}

fn ticket(p: TransferPath, q: &QueryPairs) -> ApiResult<UploadTicket> {
    let expires = q
        .get("expires")
        .and_then(|e| e.parse::<i64>().ok())
        .ok_or_else(|| Error::forbidden("Invalid or expired transfer URL"))?;
    let signature = q.get("sig").unwrap_or_default().to_string();
    Ok(UploadTicket {
        repo_id: p.repo_id,
        oid: p.oid,
        size: p.size,
        expires,
        principal: q.get("p").unwrap_or_default().to_string(),
        signature,
    })
}

pub async fn upload_object(
    State(s): State<AppState>,
    Path(p): Path<TransferPath>,
    q: QueryPairs,
    body: Body,
) -> ApiResult<Response> {
    let t = ticket(p, &q)?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    s.hub.lfs_upload(&t, Box::pin(stream)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn download_object(
    State(s): State<AppState>,
    Path(p): Path<TransferPath>,
    q: QueryPairs,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let t = ticket(p, &q)?;
    let size = t.size;
    let range = super::repo_paths::parse_range(&headers, size)?;
    let stream = s.hub.lfs_download(&t, range).await?;
    Ok(super::repo_paths::content_response(
        stream,
        size,
        range,
        HeaderMap::new(),
    ))
}
