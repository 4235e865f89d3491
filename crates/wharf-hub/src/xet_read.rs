//! Reading a Xet file back as bytes, on the server: the reconstruction plan's terms are read
//! from the stored xorbs one physical range at a time and decoded chunk by chunk, so memory
//! stays bounded (one read buffer plus at most [`RAW_BATCH`] of output and one chunk) whatever
//! the file size or compression ratio. Serves `resolve` and LFS downloads of files that exist
//! only in Xet storage, and the sha256 recomputation of shard registration.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use wharf_blob::{BlobStore, ByteRange, ByteStream, Space};
use wharf_core::{Error, Result};
use wharf_meta::{XetTerm, XetXorb};
use wharf_xet::XetHash;
use wharf_xet::recon::{self, Plan};
use wharf_xet::shard::Term;
use wharf_xet::xorb::{ChunkDecoder, ChunkTable};

/// Most decoded bytes produced by one blocking decode step (and so one stream item).
const RAW_BATCH: usize = 1 << 20;

/// Converts a stored term row into the domain's term. Rows were written from verified shards,
/// so a failure here is corruption on our side.
pub(crate) fn term_of(row: &XetTerm) -> Result<Term> {
    let corrupt = || Error::internal(format!("stored Xet term is corrupt: {row:?}"));
    Ok(Term {
        xorb: XetHash::parse(&row.xorb_hash).map_err(|_| corrupt())?,
        start: u32::try_from(row.chunk_start).map_err(|_| corrupt())?,
        end: u32::try_from(row.chunk_end).map_err(|_| corrupt())?,
        raw_len: u32::try_from(row.raw_size).map_err(|_| corrupt())?,
    })
}

/// The chunk table of a stored xorb row.
pub(crate) fn table_of(row: &XetXorb) -> Result<ChunkTable> {
    ChunkTable::from_blob(&row.chunk_ends).map_err(Error::from)
}

/// Parses the chunk tables of `rows` keyed by hash.
pub(crate) fn tables_of(rows: &[XetXorb]) -> Result<HashMap<XetHash, ChunkTable>> {
    rows.iter()
        .map(|r| {
            let hash = XetHash::parse(&r.hash)
                .map_err(|_| Error::internal(format!("stored xorb hash is corrupt: {}", r.hash)))?;
            Ok((hash, table_of(r)?))
        })
        .collect()
}

/// One kept term being read: its physical bytes come in, its windowed raw bytes go out.
struct TermRead {
    xorb: XetHash,
    input: ByteStream,
    input_done: bool,
    decoder: ChunkDecoder,
    /// Raw bytes of this term decoded so far.
    produced: u64,
    /// Of the term's raw output: skip this many bytes, then emit `take`.
    skip: u64,
    take: u64,
    emitted: u64,
}

struct ReadState {
    blobs: Arc<dyn BlobStore>,
    pending: std::vec::IntoIter<(XetHash, ByteRange, u64, u64)>,
    current: Option<TermRead>,
}

/// Decodes complete chunks of `t` until `RAW_BATCH` bytes of windowed output are ready, the
/// window is satisfied, or more input is needed. Runs on a blocking thread.
fn decode_batch(mut t: TermRead) -> (TermRead, Result<Vec<u8>>) {
    let mut out = Vec::new();
    while out.len() < RAW_BATCH && t.emitted < t.take {
        let chunk = match t.decoder.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return (t, Err(Error::from(e))),
        };
        let start = t.produced;
        let end = start + chunk.len() as u64;
        t.produced = end;
        // The part of [start, end) inside the window [skip, skip + take), minus what was
        // already emitted.
        let from = start.max(t.skip + t.emitted);
        let to = end.min(t.skip + t.take);
        if from < to {
            // Both offsets fall inside this chunk.
            out.extend_from_slice(&chunk[(from - start) as usize..(to - start) as usize]);
            t.emitted += to - from;
        }
    }
    (t, Ok(out))
}

impl ReadState {
    async fn next_item(&mut self) -> Option<Result<Bytes>> {
        loop {
            if self.current.is_none() {
                let (xorb, range, skip, take) = self.pending.next()?;
                let input = match self
                    .blobs
                    .read_keyed(Space::Xorb, &xorb.to_string(), Some(range))
                    .await
                {
                    Ok(s) => s,
                    Err(e) => return Some(Err(missing_xorb(&xorb, e))),
                };
                self.current = Some(TermRead {
                    xorb,
                    input,
                    input_done: false,
                    decoder: ChunkDecoder::new(),
                    produced: 0,
                    skip,
                    take,
                    emitted: 0,
                });
            }
            let Some(t) = self.current.take() else {
                continue;
            };
            if t.emitted >= t.take {
                continue; // this term is done; the next one is opened above
            }
            let (mut t, decoded) = match tokio::task::spawn_blocking(move || decode_batch(t)).await
            {
                Ok(done) => done,
                Err(e) => return Some(Err(Error::internal(e))),
            };
            let out = match decoded {
                Ok(out) => out,
                Err(e) => return Some(Err(e)),
            };
            if !out.is_empty() {
                self.current = Some(t);
                return Some(Ok(Bytes::from(out)));
            }
            if t.emitted >= t.take {
                continue;
            }
            if t.input_done {
                return Some(Err(Error::internal(format!(
                    "xorb {} ended before its term was complete",
                    t.xorb
                ))));
            }
            match t.input.next().await {
                Some(Ok(bytes)) => t.decoder.push(&bytes),
                Some(Err(e)) => return Some(Err(Error::internal(e))),
                None => t.input_done = true,
            }
            self.current = Some(t);
        }
    }
}

fn missing_xorb(xorb: &XetHash, e: Error) -> Error {
    if e.kind == wharf_core::ErrorKind::EntryNotFound {
        Error::internal(format!("stored xorb {xorb} is missing from the blob store"))
    } else {
        e
    }
}

/// The bytes `plan` describes, in order, as a stream of at most 1 MiB pieces.
pub(crate) fn plan_stream(
    blobs: Arc<dyn BlobStore>,
    plan: &Plan,
) -> futures::stream::BoxStream<'static, Result<Bytes>> {
    let pending: Vec<(XetHash, ByteRange, u64, u64)> = plan
        .terms
        .iter()
        .zip(plan.emit_windows())
        .filter(|(_, (_, take))| *take > 0)
        .map(|(t, (skip, take))| {
            let range = ByteRange {
                start: t.bytes.0,
                end: t.bytes.1,
            };
            (t.term.xorb, range, skip, take)
        })
        .collect();
    let state = ReadState {
        blobs,
        pending: pending.into_iter(),
        current: None,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next_item().await?;
        Some((item, state))
    })
    .boxed()
}

/// Plans bytes `range` of the file made of `terms` (loading only the chunk tables it needs).
pub(crate) async fn plan_file(
    meta: &dyn wharf_meta::MetaStore,
    terms: &[Term],
    range: Option<(u64, Option<u64>)>,
) -> Result<Plan> {
    let needed: Vec<String> = recon::required_xorbs(terms, range)?
        .iter()
        .map(XetHash::to_string)
        .collect();
    let rows = meta.xet_xorbs(&needed).await?;
    if rows.len() != needed.len() {
        return Err(Error::internal(
            "a stored Xet file uses a xorb that has no row",
        ));
    }
    let tables = tables_of(&rows)?;
    Ok(recon::plan(terms, &tables, range)?)
}

/// The stream as the blob store's `ByteStream` (errors become I/O errors, which abort the
/// response; they are logged here because nobody else will see them).
pub(crate) fn as_byte_stream(s: futures::stream::BoxStream<'static, Result<Bytes>>) -> ByteStream {
    s.map(|item| {
        item.map_err(|e| {
            tracing::error!(error = %e, "reading a Xet file failed");
            std::io::Error::other(e.to_string())
        })
    })
    .boxed()
}
