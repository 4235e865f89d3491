//! Reading the NDJSON commit body (`POST /api/{t}/{id}/commit/{rev}`) as it arrives: the
//! route checked write access before, the body keeps the hub's minimal upload pace, its size is
//! capped and the memory it takes is reserved as it grows. The line format itself is
//! [`wharf_core::commit_lines`].

use axum::body::Body;
use futures::StreamExt;
use wharf_core::commit_lines::CommitParser;
use wharf_core::{Error, ErrorKind, Result};
use wharf_hub::{CommitHeader, CommitOp, MemoryReservation};

pub use wharf_core::commit_lines::MAX_LINE;

/// Reads a commit body as it streams in: at most `limit` bytes in all, each line parsed as soon
/// as it is complete, and `memory` grows with what was read.
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
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| Error::bad_request(format!("The commit body was interrupted: {e}")))?;
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!("The commit body is larger than {} MiB", limit >> 20),
            ));
        }
        memory.cover(total as u64).await?;
        parser.feed(&chunk)?;
    }
    parser.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ndjson::MAX_LINE;

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
