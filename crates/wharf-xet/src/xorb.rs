//! Xorbs: bounded ingest of uploaded chunk streams, chunk tables, stored footers, and
//! chunk-by-chunk decoding for reads.
//!
//! An uploaded xorb is a sequence of chunks, each `u8 version (0) | u24 compressed length |
//! u8 scheme | u24 raw length | payload`, all little-endian (§1.6.1 of `docs/xet.md`). hf_xet
//! uploads it without the footer. [`ingest`] parses it in one pass with Wharf's own limits,
//! decompresses every chunk into a buffer capped at the header's raw length (the Xet crate's
//! decoders are not capped: a decompression bomb would allocate freely), recomputes every chunk
//! hash and the xorb hash, and builds the stored form: the chunk bytes verbatim followed by an
//! `XorbObjectInfoV1` footer (§1.6.2), which makes each stored xorb self-describing.
//!
//! The footer holds the raw chunk hashes, which prove possession of the data (§3.8): it is
//! never served. Fetches stay below [`ChunkTable::data_size`].

use std::io::{Cursor, Read};

use lz4_flex::frame::{FrameDecoder, FrameEncoder};
use xet_core_structures::merklehash::{MerkleHash, compute_data_hash, xorb_hash};
use xet_core_structures::xorb_object::{CompressionScheme, XorbObject, XorbObjectInfoV1};

use crate::error::{Result, XetError};
use crate::hash::XetHash;
use crate::limits::{
    CHUNK_HEADER_BYTES, MAX_CHUNK_BYTES, MAX_CHUNK_COMPRESSED_BYTES, MAX_XORB_CHUNKS,
    MAX_XORB_DATA_BYTES, MAX_XORB_FOOTER_BYTES, MAX_XORB_RAW_BYTES, MAX_XORB_UPLOAD_BYTES,
};

/// The first bytes of a xorb footer (`XorbObjectInfoV1::ident`). A chunk header can never start
/// with them (its version byte is 0), so meeting them means the chunk stream has ended.
const FOOTER_IDENT: &[u8; 7] = b"XETBLOB";

/// Compression schemes as stored in a chunk header.
const SCHEME_NONE: u8 = 0;
const SCHEME_LZ4: u8 = 1;
const SCHEME_BG4_LZ4: u8 = 2;

// ---------------------------------------------------------------------------------------------
// Chunk tables

/// Where each chunk of a stored xorb ends: `(physical end, raw end)` per chunk, both exclusive
/// and cumulative. Physical offsets count chunk headers; raw offsets count decompressed bytes.
///
/// Stored in the database as [`ChunkTable::to_blob`] (8 bytes per chunk, little-endian) so that
/// reconstruction planning never has to read a footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkTable {
    ends: Vec<(u32, u32)>,
}

impl ChunkTable {
    /// A table from its entries: at least one chunk, at most [`MAX_XORB_CHUNKS`], both offsets
    /// strictly increasing, no chunk larger than the limits allow.
    pub fn new(ends: Vec<(u32, u32)>) -> Result<ChunkTable> {
        if ends.is_empty() || ends.len() > MAX_XORB_CHUNKS {
            return Err(XetError::corrupt(format!(
                "chunk table with {} chunks",
                ends.len()
            )));
        }
        let mut prev = (0u32, 0u32);
        for &(phys, raw) in &ends {
            // Every chunk has a header, a non-empty payload and 1..=128 KiB of raw data.
            let ok = match (phys.checked_sub(prev.0), raw.checked_sub(prev.1)) {
                (Some(phys_len), Some(raw_len)) => {
                    (CHUNK_HEADER_BYTES + 1..=CHUNK_HEADER_BYTES + MAX_CHUNK_COMPRESSED_BYTES)
                        .contains(&(phys_len as usize))
                        && (1..=MAX_CHUNK_BYTES).contains(&(raw_len as usize))
                }
                _ => false,
            };
            if !ok {
                return Err(XetError::corrupt("chunk table offsets out of order"));
            }
            prev = (phys, raw);
        }
        Ok(ChunkTable { ends })
    }

    /// The table from its database form.
    pub fn from_blob(blob: &[u8]) -> Result<ChunkTable> {
        if !blob.len().is_multiple_of(8) || blob.len() / 8 > MAX_XORB_CHUNKS {
            return Err(XetError::corrupt("chunk table blob has a bad length"));
        }
        let ends = blob
            .chunks_exact(8)
            .map(|e| (le_u32(&e[0..4]), le_u32(&e[4..8])))
            .collect();
        ChunkTable::new(ends)
    }

    /// The database form: per chunk `u32 LE physical end, u32 LE raw end`.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ends.len() * 8);
        for &(phys, raw) in &self.ends {
            out.extend_from_slice(&phys.to_le_bytes());
            out.extend_from_slice(&raw.to_le_bytes());
        }
        out
    }

    /// The entries.
    pub fn ends(&self) -> &[(u32, u32)] {
        &self.ends
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Never true for a table built by [`ChunkTable::new`]; here for completeness.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of the chunk stream; the footer starts here and fetches must stay below it.
    pub fn data_size(&self) -> u64 {
        self.ends.last().map_or(0, |e| u64::from(e.0))
    }

    /// Total uncompressed bytes.
    pub fn raw_size(&self) -> u64 {
        self.ends.last().map_or(0, |e| u64::from(e.1))
    }

    fn check(&self, start: u32, end: u32) -> Result<()> {
        if start >= end || end as usize > self.ends.len() {
            return Err(XetError::ChunkRange {
                start,
                end,
                len: self.ends.len(),
            });
        }
        Ok(())
    }

    /// `(physical, raw)` offset where chunk `index` starts (= where chunk `index - 1` ends).
    /// Callers check `index <= len()` first.
    fn offset_before(&self, index: u32) -> (u32, u32) {
        match index.checked_sub(1) {
            Some(prev) => self.ends.get(prev as usize).copied().unwrap_or((0, 0)),
            None => (0, 0),
        }
    }

    /// Physical byte range of chunks `[start, end)`, **end inclusive** (the HTTP form).
    pub fn physical_range(&self, start: u32, end: u32) -> Result<(u64, u64)> {
        self.check(start, end)?;
        let a = u64::from(self.offset_before(start).0);
        let b = u64::from(self.offset_before(end).0);
        // b > a: every chunk has at least a header.
        Ok((a, b - 1))
    }

    /// Uncompressed bytes of chunks `[start, end)`.
    pub fn raw_len(&self, start: u32, end: u32) -> Result<u64> {
        self.check(start, end)?;
        Ok(u64::from(self.offset_before(end).1) - u64::from(self.offset_before(start).1))
    }

    /// Uncompressed offset (within the xorb) where chunk `index` starts; `index == len()` gives
    /// the raw size.
    pub fn raw_start(&self, index: u32) -> Result<u64> {
        if index as usize > self.ends.len() {
            return Err(XetError::ChunkRange {
                start: index,
                end: index,
                len: self.ends.len(),
            });
        }
        Ok(u64::from(self.offset_before(index).1))
    }

    /// Uncompressed length of one chunk.
    pub fn chunk_raw_len(&self, index: u32) -> Result<u64> {
        self.raw_len(index, index.saturating_add(1))
    }
}

// ---------------------------------------------------------------------------------------------
// Verified xorb metadata

/// What verification, planning and dedup need to know about one stored xorb: its chunk hashes
/// (secret: never sent to clients raw) and its chunk table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorbChunks {
    pub hash: XetHash,
    /// Raw chunk hashes, one per chunk.
    pub chunk_hashes: Vec<MerkleHash>,
    pub table: ChunkTable,
    /// Bytes in the store, footer included.
    pub stored_size: u64,
}

impl XorbChunks {
    /// Number of chunks.
    pub fn num_chunks(&self) -> usize {
        self.chunk_hashes.len()
    }

    /// Indices and hashes of the chunks that belong in the global dedup index
    /// ([`XetHash::is_dedup_eligible`]). The caller adds the first chunk of every file.
    pub fn dedup_eligible(&self) -> Vec<(u32, XetHash)> {
        self.chunk_hashes
            .iter()
            .enumerate()
            .filter(|(_, h)| crate::hash::is_dedup_eligible(h))
            .map(|(i, h)| (i as u32, XetHash::from_merkle(*h)))
            .collect()
    }
}

/// An uploaded xorb after [`ingest`]: verified, with its stored form ready to be written.
#[derive(Debug, Clone)]
pub struct IngestedXorb {
    pub hash: XetHash,
    /// Chunk bytes verbatim + footer + footer length: what goes into the blob store.
    pub stored: Vec<u8>,
    /// Bytes of the chunk stream (`stored[..data_size]`); the footer follows.
    pub data_size: u32,
    /// Total uncompressed bytes.
    pub raw_size: u64,
    pub table: ChunkTable,
    /// Raw chunk hashes, recomputed from the decompressed data.
    pub chunk_hashes: Vec<MerkleHash>,
}

impl IngestedXorb {
    /// The metadata view used by verification, planning and dedup.
    pub fn to_chunks(&self) -> XorbChunks {
        XorbChunks {
            hash: self.hash,
            chunk_hashes: self.chunk_hashes.clone(),
            table: self.table.clone(),
            stored_size: self.stored.len() as u64,
        }
    }

    /// Number of chunks.
    pub fn num_chunks(&self) -> usize {
        self.chunk_hashes.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Chunk headers and codecs

/// A parsed chunk header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkHeader {
    compressed_len: usize,
    scheme: u8,
    raw_len: usize,
}

enum HeaderOrFooter {
    Header(ChunkHeader),
    Footer,
}

fn le_u24(b: &[u8]) -> usize {
    usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16
}

fn le_u32(b: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[..4]);
    u32::from_le_bytes(w)
}

/// Parses and validates an 8-byte chunk header against Wharf's limits.
fn parse_header(h: &[u8; CHUNK_HEADER_BYTES]) -> Result<HeaderOrFooter> {
    if h[..FOOTER_IDENT.len()] == FOOTER_IDENT[..] {
        return Ok(HeaderOrFooter::Footer);
    }
    if h[0] != 0 {
        return Err(XetError::bad_xorb(format!(
            "unsupported chunk version {}",
            h[0]
        )));
    }
    let header = ChunkHeader {
        compressed_len: le_u24(&h[1..4]),
        scheme: h[4],
        raw_len: le_u24(&h[5..8]),
    };
    if !matches!(header.scheme, SCHEME_NONE | SCHEME_LZ4 | SCHEME_BG4_LZ4) {
        return Err(XetError::bad_xorb(format!(
            "unknown compression scheme {}",
            header.scheme
        )));
    }
    if header.raw_len == 0 || header.raw_len > MAX_CHUNK_BYTES {
        return Err(XetError::bad_xorb(format!(
            "chunk of {} bytes (limit {MAX_CHUNK_BYTES})",
            header.raw_len
        )));
    }
    if header.compressed_len == 0 || header.compressed_len > MAX_CHUNK_COMPRESSED_BYTES {
        return Err(XetError::bad_xorb(format!(
            "compressed chunk of {} bytes (limit {MAX_CHUNK_COMPRESSED_BYTES})",
            header.compressed_len
        )));
    }
    if header.scheme == SCHEME_NONE && header.compressed_len != header.raw_len {
        return Err(XetError::bad_xorb(
            "uncompressed chunk whose lengths disagree",
        ));
    }
    Ok(HeaderOrFooter::Header(header))
}

/// LZ4-frame decodes `payload` into `out`, refusing to produce more than `cap` bytes.
fn lz4_decode_capped(payload: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    out.reserve(cap);
    // Reading at most cap + 1 bytes tells "too long" apart from "exactly right" without
    // letting a bomb expand further.
    let limit = cap as u64 + 1;
    FrameDecoder::new(payload)
        .take(limit)
        .read_to_end(out)
        .map_err(|e| XetError::bad_xorb(format!("chunk does not decompress: {e}")))?;
    if out.len() != cap {
        return Err(XetError::bad_xorb(
            "chunk decompresses to a length other than its header says",
        ));
    }
    Ok(())
}

/// Decodes one chunk payload into `out` (cleared first), exactly `header.raw_len` bytes.
fn decode_payload(header: &ChunkHeader, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
    match header.scheme {
        SCHEME_NONE => {
            out.clear();
            out.extend_from_slice(payload);
            Ok(())
        }
        SCHEME_LZ4 => lz4_decode_capped(payload, header.raw_len, out),
        SCHEME_BG4_LZ4 => {
            let mut grouped = Vec::new();
            lz4_decode_capped(payload, header.raw_len, &mut grouped)?;
            bg4_regroup(&grouped, out);
            Ok(())
        }
        other => Err(XetError::bad_xorb(format!(
            "unknown compression scheme {other}"
        ))),
    }
}

/// Sizes of the four byte groups of an `n`-byte BG4 chunk: `n / 4` each, the first `n % 4`
/// groups one byte longer.
fn bg4_group_lens(n: usize) -> [usize; 4] {
    let (q, r) = (n / 4, n % 4);
    [0, 1, 2, 3].map(|g| q + usize::from(g < r))
}

/// Undoes byte grouping: `grouped` is group 0 (bytes 0, 4, 8, …), then groups 1, 2, 3.
fn bg4_regroup(grouped: &[u8], out: &mut Vec<u8>) {
    let n = grouped.len();
    let lens = bg4_group_lens(n);
    out.clear();
    out.resize(n, 0);
    let mut start = 0;
    for (g, len) in lens.iter().enumerate() {
        let group = &grouped[start..start + len];
        for (i, b) in group.iter().enumerate() {
            out[4 * i + g] = *b;
        }
        start += len;
    }
}

/// Inverse of [`bg4_regroup`].
fn bg4_split(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for g in 0..4 {
        out.extend(data.iter().skip(g).step_by(4));
    }
    out
}

fn lz4_encode(data: &[u8]) -> Result<Vec<u8>> {
    let mut enc = FrameEncoder::new(Vec::with_capacity(data.len() / 2 + 64));
    std::io::Write::write_all(&mut enc, data)
        .map_err(|e| XetError::Internal(format!("lz4 compression failed: {e}")))?;
    enc.finish()
        .map_err(|e| XetError::Internal(format!("lz4 compression failed: {e}")))
}

/// Appends one chunk, header included, to `out`, compressed the way hf_xet does it: the
/// scheme the Xet crate's heuristic picks for the data (LZ4 or byte-grouped LZ4), or no
/// compression when that does not make it smaller. Used by the LFS → Xet packer.
pub fn encode_chunk(raw: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if raw.is_empty() || raw.len() > MAX_CHUNK_BYTES {
        return Err(XetError::Internal(format!(
            "cannot encode a chunk of {} bytes",
            raw.len()
        )));
    }
    let (scheme, compressed) = match CompressionScheme::choose_from_data(raw) {
        CompressionScheme::ByteGrouping4LZ4 => (SCHEME_BG4_LZ4, lz4_encode(&bg4_split(raw))?),
        _ => (SCHEME_LZ4, lz4_encode(raw)?),
    };
    let (scheme, payload): (u8, &[u8]) = if compressed.len() < raw.len() {
        (scheme, &compressed)
    } else {
        (SCHEME_NONE, raw)
    };
    let clen = payload.len() as u32;
    let rlen = raw.len() as u32;
    out.push(0);
    out.extend_from_slice(&clen.to_le_bytes()[..3]);
    out.push(scheme);
    out.extend_from_slice(&rlen.to_le_bytes()[..3]);
    out.extend_from_slice(payload);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Ingest

/// An uploaded xorb after [`verify_upload`]: verified, with the footer Wharf stores after the
/// body's first `data_size` bytes. Lets a server store the body it already holds plus the footer
/// without copying the body into a second buffer (what [`ingest`] does).
#[derive(Debug, Clone)]
pub struct VerifiedXorb {
    pub hash: XetHash,
    /// Bytes of the chunk stream at the start of the body; anything after them (a client's own
    /// footer) is not stored.
    pub data_size: u32,
    /// Total uncompressed bytes.
    pub raw_size: u64,
    pub table: ChunkTable,
    /// Raw chunk hashes, recomputed from the decompressed data.
    pub chunk_hashes: Vec<MerkleHash>,
    /// `XorbObjectInfoV1` footer + its `u32` length: stored right after the chunk stream.
    pub footer: Vec<u8>,
}

impl VerifiedXorb {
    /// The metadata view used by verification, planning and dedup.
    pub fn to_chunks(&self) -> XorbChunks {
        XorbChunks {
            hash: self.hash,
            chunk_hashes: self.chunk_hashes.clone(),
            table: self.table.clone(),
            stored_size: self.stored_size(),
        }
    }

    /// Bytes of the stored form (chunk stream + footer).
    pub fn stored_size(&self) -> u64 {
        u64::from(self.data_size) + self.footer.len() as u64
    }

    /// Number of chunks.
    pub fn num_chunks(&self) -> usize {
        self.chunk_hashes.len()
    }
}

/// Verifies an uploaded xorb and builds its stored form.
///
/// Bounded: the body is at most [`MAX_XORB_UPLOAD_BYTES`], every chunk decompresses into a
/// buffer capped at its header's raw length (≤ 128 KiB), at most [`MAX_XORB_CHUNKS`] chunks and
/// [`MAX_XORB_RAW_BYTES`] raw bytes. A trailing footer (recognised by its `XETBLOB` ident) is
/// tolerated and discarded: Wharf writes its own. Errors are `BadRequest`s.
pub fn ingest(body: &[u8], expected: &XetHash) -> Result<IngestedXorb> {
    let v = verify_upload(body, expected)?;
    let data = &body[..v.data_size as usize];
    let mut stored = Vec::with_capacity(data.len() + v.footer.len());
    stored.extend_from_slice(data);
    stored.extend_from_slice(&v.footer);
    Ok(IngestedXorb {
        hash: v.hash,
        stored,
        data_size: v.data_size,
        raw_size: v.raw_size,
        table: v.table,
        chunk_hashes: v.chunk_hashes,
    })
}

/// [`ingest`] without building the stored form: the same checks and limits, and the footer to
/// store after `body[..data_size]`.
pub fn verify_upload(body: &[u8], expected: &XetHash) -> Result<VerifiedXorb> {
    if body.is_empty() {
        return Err(XetError::bad_xorb("empty body"));
    }
    if body.len() > MAX_XORB_UPLOAD_BYTES {
        return Err(XetError::TooLarge(format!(
            "xorb of {} bytes exceeds the limit of {MAX_XORB_UPLOAD_BYTES}",
            body.len()
        )));
    }

    let mut pos = 0usize;
    let mut raw_total = 0usize;
    let mut hashes = Vec::new();
    let mut pairs = Vec::new();
    let mut ends = Vec::new();
    let mut raw = Vec::with_capacity(MAX_CHUNK_BYTES);

    while pos < body.len() {
        let Some(header_bytes) = body.get(pos..pos + CHUNK_HEADER_BYTES) else {
            return Err(XetError::bad_xorb("truncated chunk header"));
        };
        let mut h = [0u8; CHUNK_HEADER_BYTES];
        h.copy_from_slice(header_bytes);
        let header = match parse_header(&h)? {
            HeaderOrFooter::Header(header) => header,
            HeaderOrFooter::Footer => break,
        };
        if hashes.len() == MAX_XORB_CHUNKS {
            return Err(XetError::TooLarge(format!(
                "xorb has more than {MAX_XORB_CHUNKS} chunks"
            )));
        }
        let start = pos + CHUNK_HEADER_BYTES;
        let end = start + header.compressed_len;
        raw_total += header.raw_len;
        if raw_total > MAX_XORB_RAW_BYTES {
            return Err(XetError::TooLarge(format!(
                "xorb holds more than {MAX_XORB_RAW_BYTES} uncompressed bytes"
            )));
        }
        if end > MAX_XORB_DATA_BYTES {
            return Err(XetError::TooLarge(format!(
                "xorb chunk data exceeds {MAX_XORB_DATA_BYTES} bytes"
            )));
        }
        let Some(payload) = body.get(start..end) else {
            return Err(XetError::bad_xorb("truncated chunk data"));
        };
        decode_payload(&header, payload, &mut raw)?;
        let chunk_hash = compute_data_hash(&raw);
        hashes.push(chunk_hash);
        pairs.push((chunk_hash, header.raw_len as u64));
        // Both fit in u32: end ≤ MAX_XORB_DATA_BYTES, raw_total ≤ MAX_XORB_RAW_BYTES.
        ends.push((end as u32, raw_total as u32));
        pos = end;
    }

    if hashes.is_empty() {
        return Err(XetError::bad_xorb("no chunks"));
    }
    let computed = XetHash::from_merkle(xorb_hash(&pairs));
    if computed != *expected {
        return Err(XetError::XorbHashMismatch);
    }

    let data_size = pos;
    let table =
        ChunkTable::new(ends).map_err(|_| XetError::bad_xorb("inconsistent chunk table"))?;
    let footer = build_footer(&computed, &hashes, &table)?;
    Ok(VerifiedXorb {
        hash: computed,
        data_size: data_size as u32,
        raw_size: raw_total as u64,
        table,
        chunk_hashes: hashes,
        footer,
    })
}

/// The `XorbObjectInfoV1` footer + its `u32` length (it does not depend on the chunk bytes
/// before it, only on the table and hashes).
fn build_footer(
    hash: &XetHash,
    chunk_hashes: &[MerkleHash],
    table: &ChunkTable,
) -> Result<Vec<u8>> {
    let mut info = XorbObjectInfoV1::default();
    info.xorb_hash = *hash.as_merkle();
    info.num_chunks = chunk_hashes.len() as u32;
    info.chunk_hashes = chunk_hashes.to_vec();
    info.chunk_boundary_offsets = table.ends().iter().map(|e| e.0).collect();
    info.unpacked_chunk_offsets = table.ends().iter().map(|e| e.1).collect();
    info.fill_in_boundary_offsets();

    let mut footer = Vec::with_capacity(info.serialized_length() + 4);
    XorbObject::serialize_given_info(&mut footer, info)
        .map_err(|e| XetError::Internal(format!("cannot write xorb footer: {e}")))?;
    Ok(footer)
}

// ---------------------------------------------------------------------------------------------
// Stored footers

/// Reads a stored xorb's footer from its tail, the bytes `[data_size, stored_size)`, and checks
/// it against itself and the hash it is stored under. Errors mean corrupt storage (`Internal`).
pub fn footer_from_tail(tail: &[u8], expected: &XetHash) -> Result<XorbChunks> {
    if tail.len() < 4 || tail.len() > MAX_XORB_FOOTER_BYTES {
        return Err(XetError::corrupt(format!(
            "xorb {expected}: footer of {} bytes",
            tail.len()
        )));
    }
    let info_len = le_u32(&tail[tail.len() - 4..]) as usize;
    if info_len + 4 != tail.len() {
        return Err(XetError::corrupt(format!(
            "xorb {expected}: footer length field disagrees with the tail"
        )));
    }
    let object = XorbObject::deserialize(&mut Cursor::new(tail))
        .map_err(|e| XetError::corrupt(format!("xorb {expected}: unreadable footer: {e}")))?;
    let info = object.info;
    let n = info.num_chunks as usize;
    if info.chunk_hashes.len() != n
        || info.chunk_boundary_offsets.len() != n
        || info.unpacked_chunk_offsets.len() != n
    {
        return Err(XetError::corrupt(format!(
            "xorb {expected}: footer sections disagree on the chunk count"
        )));
    }
    let table = ChunkTable::new(
        info.chunk_boundary_offsets
            .iter()
            .copied()
            .zip(info.unpacked_chunk_offsets.iter().copied())
            .collect(),
    )
    .map_err(|_| XetError::corrupt(format!("xorb {expected}: footer has a bad chunk table")))?;

    let mut pairs = Vec::with_capacity(n);
    for (i, h) in info.chunk_hashes.iter().enumerate() {
        pairs.push((*h, table.chunk_raw_len(i as u32)?));
    }
    let recomputed = XetHash::from_merkle(xorb_hash(&pairs));
    if recomputed != *expected || XetHash::from_merkle(info.xorb_hash) != *expected {
        return Err(XetError::corrupt(format!(
            "xorb {expected}: footer hashes do not match"
        )));
    }
    let stored_size = table.data_size() + tail.len() as u64;
    Ok(XorbChunks {
        hash: *expected,
        chunk_hashes: info.chunk_hashes,
        table,
        stored_size,
    })
}

// ---------------------------------------------------------------------------------------------
// Decoding for reads

/// Turns physical xorb bytes (whole chunks, in order, e.g. one term's fetched byte range) into
/// raw bytes, one chunk at a time.
///
/// Feed bytes with [`push`](ChunkDecoder::push) as they arrive, then drain decoded chunks with
/// [`next_chunk`](ChunkDecoder::next_chunk) until it returns `None`; each call decodes exactly one
/// chunk (≤ 128 KiB out, ≤ 256 KiB in), so memory stays bounded by what the caller pushes plus one
/// chunk even when the data compresses extremely well. Call [`finish`](ChunkDecoder::finish) at the
/// end of the range: leftover bytes mean the range did not end on a chunk boundary.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    pending: Vec<u8>,
    consumed: usize,
    chunks: u64,
    raw_bytes: u64,
}

impl ChunkDecoder {
    pub fn new() -> ChunkDecoder {
        ChunkDecoder::default()
    }

    /// Appends physical bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.consumed > 0 {
            self.pending.drain(..self.consumed);
            self.consumed = 0;
        }
        self.pending.extend_from_slice(data);
    }

    /// Decodes the next complete chunk, or `None` when more bytes are needed.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        let buf = &self.pending[self.consumed..];
        let Some(header_bytes) = buf.get(..CHUNK_HEADER_BYTES) else {
            return Ok(None);
        };
        let mut h = [0u8; CHUNK_HEADER_BYTES];
        h.copy_from_slice(header_bytes);
        let header = match parse_header(&h).map_err(as_corrupt)? {
            HeaderOrFooter::Header(header) => header,
            HeaderOrFooter::Footer => {
                return Err(XetError::corrupt("read reached a xorb footer"));
            }
        };
        let end = CHUNK_HEADER_BYTES + header.compressed_len;
        let Some(payload) = buf.get(CHUNK_HEADER_BYTES..end) else {
            return Ok(None);
        };
        let mut raw = Vec::new();
        decode_payload(&header, payload, &mut raw).map_err(as_corrupt)?;
        self.consumed += end;
        self.chunks += 1;
        self.raw_bytes += raw.len() as u64;
        Ok(Some(raw))
    }

    /// Chunks decoded so far.
    pub fn chunks_decoded(&self) -> u64 {
        self.chunks
    }

    /// Raw bytes produced so far.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }

    /// Errors if bytes of an incomplete chunk remain.
    pub fn finish(&self) -> Result<()> {
        if self.pending.len() > self.consumed {
            return Err(XetError::corrupt("xorb range ends inside a chunk"));
        }
        Ok(())
    }
}

/// A decode error while *reading* stored data is corruption on our side, not a bad request.
fn as_corrupt(e: XetError) -> XetError {
    match e {
        XetError::BadXorb(msg) => XetError::Corrupt(msg),
        other => other,
    }
}

/// Decodes whole chunks of `physical` into one buffer. For tests and small ranges; streaming
/// readers use [`ChunkDecoder`].
pub fn decode_chunks(physical: &[u8]) -> Result<Vec<u8>> {
    let mut decoder = ChunkDecoder::new();
    decoder.push(physical);
    let mut out = Vec::new();
    while let Some(chunk) = decoder.next_chunk()? {
        out.extend_from_slice(&chunk);
    }
    decoder.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            out.extend_from_slice(&s.to_le_bytes());
        }
        out.truncate(n);
        out
    }

    /// A xorb body from raw chunks, compressed like the packer does.
    fn body_of(chunks: &[Vec<u8>]) -> (Vec<u8>, XetHash) {
        let mut body = Vec::new();
        let mut pairs = Vec::new();
        for c in chunks {
            encode_chunk(c, &mut body).expect("encode");
            pairs.push((compute_data_hash(c), c.len() as u64));
        }
        (body, XetHash::from_merkle(xorb_hash(&pairs)))
    }

    fn header(clen: usize, scheme: u8, rlen: usize) -> Vec<u8> {
        let mut h = vec![0u8];
        h.extend_from_slice(&(clen as u32).to_le_bytes()[..3]);
        h.push(scheme);
        h.extend_from_slice(&(rlen as u32).to_le_bytes()[..3]);
        h
    }

    fn sample_chunks() -> Vec<Vec<u8>> {
        vec![
            xorshift(10_000, 1), // incompressible: scheme 0
            vec![7u8; 20_000],   // very compressible: LZ4
            (0..30_000u32)
                .flat_map(|i| (i as f32).to_le_bytes())
                .collect(), // floats: maybe BG4
            xorshift(3, 2),
        ]
    }

    #[test]
    fn ingest_round_trip_and_footer() {
        let chunks = sample_chunks();
        let (body, hash) = body_of(&chunks);
        let x = ingest(&body, &hash).expect("ingest");
        assert_eq!(x.hash, hash);
        assert_eq!(x.num_chunks(), chunks.len());
        assert_eq!(x.data_size as usize, body.len());
        assert_eq!(&x.stored[..body.len()], &body[..]);
        assert_eq!(
            x.raw_size,
            chunks.iter().map(|c| c.len() as u64).sum::<u64>()
        );
        assert_eq!(x.table.data_size(), body.len() as u64);
        assert_eq!(x.table.raw_size(), x.raw_size);

        // The stored form is what the Xet crate itself considers a valid xorb.
        let valid = XorbObject::validate_xorb_object(&mut Cursor::new(&x.stored), hash.as_merkle())
            .expect("validate");
        assert!(valid.is_some());

        // The footer can be read back from the tail alone.
        let tail = &x.stored[x.data_size as usize..];
        let back = footer_from_tail(tail, &hash).expect("footer");
        assert_eq!(back, x.to_chunks());
        assert!(footer_from_tail(tail, &XetHash::default()).is_err());
        assert!(footer_from_tail(&tail[1..], &hash).is_err());
        assert!(footer_from_tail(&[], &hash).is_err());
        let mut bad = tail.to_vec();
        bad[40] ^= 1; // inside the chunk hashes
        assert!(footer_from_tail(&bad, &hash).is_err());

        // Decoding the stream gives back the chunks.
        let all = decode_chunks(&body).expect("decode");
        assert_eq!(all, chunks.concat());
    }

    #[test]
    fn verify_upload_gives_the_footer_ingest_stores() {
        let (body, hash) = body_of(&sample_chunks());
        let x = ingest(&body, &hash).expect("ingest");
        let v = verify_upload(&body, &hash).expect("verify");
        assert_eq!(v.data_size, x.data_size);
        assert_eq!(v.footer, x.stored[x.data_size as usize..]);
        assert_eq!(v.to_chunks(), x.to_chunks());
        assert_eq!(v.num_chunks(), x.num_chunks());
        assert_eq!(
            verify_upload(&body, &XetHash::default()).err(),
            Some(XetError::XorbHashMismatch)
        );
    }

    #[test]
    fn ingest_tolerates_and_replaces_a_trailing_footer() {
        let (body, hash) = body_of(&sample_chunks());
        let first = ingest(&body, &hash).expect("ingest");
        let again = ingest(&first.stored, &hash).expect("ingest with footer");
        assert_eq!(again.stored, first.stored);
    }

    #[test]
    fn ingest_rejects_bad_bodies() {
        let chunks = sample_chunks();
        let (body, hash) = body_of(&chunks);

        assert!(matches!(ingest(&[], &hash), Err(XetError::BadXorb(_))));
        // Wrong hash in the URL.
        let other = XetHash::from_merkle(compute_data_hash(b"other"));
        assert_eq!(
            ingest(&body, &other).err(),
            Some(XetError::XorbHashMismatch)
        );
        // Truncated header and truncated data.
        assert!(matches!(
            ingest(&body[..5], &hash),
            Err(XetError::BadXorb(_))
        ));
        assert!(matches!(
            ingest(&body[..body.len() - 1], &hash),
            Err(XetError::BadXorb(_))
        ));
        // A flipped payload byte: either undecodable or a different hash, never accepted.
        let mut flipped = body.clone();
        flipped[100] ^= 0x40;
        assert!(ingest(&flipped, &hash).is_err());
        // Unknown scheme (including the crate's in-memory-only `Auto` = 99).
        for scheme in [3u8, 99, 255] {
            let mut b = body.clone();
            b[4] = scheme;
            assert!(matches!(ingest(&b, &hash), Err(XetError::BadXorb(_))));
        }
        // Version byte.
        let mut b = body.clone();
        b[0] = 1;
        assert!(matches!(ingest(&b, &hash), Err(XetError::BadXorb(_))));
        // Footer before any chunk.
        assert!(matches!(
            ingest(b"XETBLOB\x01rest", &hash),
            Err(XetError::BadXorb(_))
        ));
    }

    #[test]
    fn ingest_rejects_declared_sizes_beyond_limits() {
        let hash = XetHash::default();
        // Raw length over 128 KiB, compressed length over 256 KiB, zero raw length.
        for h in [
            header(10, SCHEME_LZ4, MAX_CHUNK_BYTES + 1),
            header(MAX_CHUNK_COMPRESSED_BYTES + 1, SCHEME_LZ4, 10),
            header(10, SCHEME_LZ4, 0),
            header(0xFF_FFFF, SCHEME_NONE, 0xFF_FFFF),
            header(5, SCHEME_NONE, 6),
        ] {
            let mut b = h.clone();
            b.extend_from_slice(&[0u8; 16]);
            assert!(
                matches!(ingest(&b, &hash), Err(XetError::BadXorb(_))),
                "{h:?}"
            );
        }
        // Body over the upload limit is refused before parsing.
        let huge = vec![0u8; MAX_XORB_UPLOAD_BYTES + 1];
        assert!(matches!(ingest(&huge, &hash), Err(XetError::TooLarge(_))));
    }

    #[test]
    fn ingest_rejects_decompression_bombs() {
        // An LZ4 frame that expands to 1 MiB while the header claims 1 KiB.
        let bomb = lz4_encode(&vec![0u8; 1 << 20]).expect("lz4");
        assert!(bomb.len() < MAX_CHUNK_COMPRESSED_BYTES);
        let mut b = header(bomb.len(), SCHEME_LZ4, 1024);
        b.extend_from_slice(&bomb);
        assert!(matches!(
            ingest(&b, &XetHash::default()),
            Err(XetError::BadXorb(_))
        ));
        let mut b = header(bomb.len(), SCHEME_BG4_LZ4, 1024);
        b.extend_from_slice(&bomb);
        assert!(matches!(
            ingest(&b, &XetHash::default()),
            Err(XetError::BadXorb(_))
        ));
        // And one that decodes to fewer bytes than claimed.
        let short = lz4_encode(&[1u8; 100]).expect("lz4");
        let mut b = header(short.len(), SCHEME_LZ4, 101);
        b.extend_from_slice(&short);
        assert!(matches!(
            ingest(&b, &XetHash::default()),
            Err(XetError::BadXorb(_))
        ));
    }

    #[test]
    fn ingest_rejects_too_many_chunks() {
        // 8193 one-byte stored chunks.
        let mut b = Vec::new();
        for i in 0..=MAX_XORB_CHUNKS {
            b.extend_from_slice(&header(1, SCHEME_NONE, 1));
            b.push(i as u8);
        }
        assert!(matches!(
            ingest(&b, &XetHash::default()),
            Err(XetError::TooLarge(_))
        ));
    }

    #[test]
    fn ingest_rejects_too_many_raw_bytes() {
        // 513 chunks of 128 KiB zeros, LZ4-compressed: tiny body, > 64 MiB raw.
        let payload = lz4_encode(&vec![0u8; MAX_CHUNK_BYTES]).expect("lz4");
        let mut b = Vec::new();
        for _ in 0..=(MAX_XORB_RAW_BYTES / MAX_CHUNK_BYTES) {
            b.extend_from_slice(&header(payload.len(), SCHEME_LZ4, MAX_CHUNK_BYTES));
            b.extend_from_slice(&payload);
        }
        assert!(b.len() < MAX_XORB_UPLOAD_BYTES);
        assert!(matches!(
            ingest(&b, &XetHash::default()),
            Err(XetError::TooLarge(_))
        ));
    }

    #[test]
    fn bg4_matches_the_crate() {
        for n in [0usize, 1, 2, 3, 4, 5, 6, 7, 8, 1001, 4096] {
            let data = xorshift(n, n as u64 + 3);
            let split = bg4_split(&data);
            let crate_split =
                xet_core_structures::xorb_object::byte_grouping::bg4::bg4_split(&data);
            assert_eq!(split, crate_split, "n={n}");
            let mut back = Vec::new();
            bg4_regroup(&split, &mut back);
            assert_eq!(back, data);
        }
    }

    #[test]
    fn decoding_matches_the_crate_for_every_scheme() {
        for scheme in [
            CompressionScheme::None,
            CompressionScheme::LZ4,
            CompressionScheme::ByteGrouping4LZ4,
        ] {
            let raw: Vec<u8> = (0..20_000u32)
                .flat_map(|i| (i % 251).to_le_bytes())
                .collect();
            let mut body = Vec::new();
            xet_core_structures::xorb_object::serialize_chunk(&raw, &mut body, scheme)
                .expect("crate serialize");
            assert_eq!(decode_chunks(&body).expect("decode"), raw, "{scheme:?}");
        }
    }

    #[test]
    fn chunk_decoder_streams_byte_by_byte() {
        let chunks = sample_chunks();
        let (body, _) = body_of(&chunks);
        let mut d = ChunkDecoder::new();
        let mut out = Vec::new();
        for b in &body {
            d.push(std::slice::from_ref(b));
            while let Some(c) = d.next_chunk().expect("decode") {
                out.push(c);
            }
        }
        d.finish().expect("ends on a boundary");
        assert_eq!(out, chunks);
        assert_eq!(d.chunks_decoded(), chunks.len() as u64);

        let mut d = ChunkDecoder::new();
        d.push(&body[..body.len() - 1]);
        while d.next_chunk().expect("decode").is_some() {}
        assert!(d.finish().is_err(), "partial chunk left");

        let mut d = ChunkDecoder::new();
        d.push(b"XETBLOB\x01");
        assert!(matches!(d.next_chunk(), Err(XetError::Corrupt(_))));
    }

    #[test]
    fn chunk_table_ranges_and_blob() {
        let t = ChunkTable::new(vec![(108, 100), (158, 300), (1166, 1300)]).expect("table");
        assert_eq!(t.physical_range(0, 3).expect("r"), (0, 1165));
        assert_eq!(t.physical_range(1, 2).expect("r"), (108, 157));
        assert_eq!(t.physical_range(2, 3).expect("r"), (158, 1165));
        assert_eq!(t.raw_len(0, 3).expect("r"), 1300);
        assert_eq!(t.raw_len(1, 3).expect("r"), 1200);
        assert_eq!(t.raw_start(2).expect("r"), 300);
        assert_eq!(t.raw_start(3).expect("r"), 1300);
        assert!(t.raw_start(4).is_err());
        assert_eq!(t.chunk_raw_len(1).expect("r"), 200);
        for (s, e) in [
            (0, 0),
            (2, 1),
            (0, 4),
            (3, 3),
            (u32::MAX, u32::MAX),
            (0, u32::MAX),
        ] {
            assert!(t.physical_range(s, e).is_err(), "{s}..{e}");
            assert!(t.raw_len(s, e).is_err(), "{s}..{e}");
        }
        assert!(t.chunk_raw_len(u32::MAX).is_err());
        let blob = t.to_blob();
        assert_eq!(blob.len(), 24);
        assert_eq!(ChunkTable::from_blob(&blob).expect("blob"), t);
        assert!(ChunkTable::from_blob(&blob[..23]).is_err());
        assert!(ChunkTable::from_blob(&[]).is_err());
        // Non-increasing offsets.
        assert!(ChunkTable::new(vec![(108, 100), (108, 300)]).is_err());
        assert!(ChunkTable::new(vec![(108, 100), (200, 100)]).is_err());
        // A "chunk" that is all header.
        assert!(ChunkTable::new(vec![(8, 1)]).is_err());
        assert!(ChunkTable::from_blob(&vec![0u8; 8 * (MAX_XORB_CHUNKS + 1)]).is_err());
    }
}
