//! Content-defined chunking and xorb packing, for converting LFS objects to Xet (§3.10 of
//! `docs/xet.md`). Produces byte-for-byte the chunks hf_xet produces, so identical content gets
//! identical chunk, xorb and file hashes whichever way it arrived.
//!
//! CDC: a gear hash `h = (h << 1) + TABLE[byte]` (wrapping, `gearhash::DEFAULT_TABLE`); a chunk
//! ends after the byte where `size ≥ 8 KiB && (size ≥ 128 KiB || h & 0xFFFF_0000_0000_0000 == 0)`;
//! `h` restarts from 0 after every boundary; the last partial chunk is emitted as is. Because the
//! hash only depends on the last 64 bytes seen, the first `8 KiB − 65` bytes of a chunk need not
//! be hashed at all (the spec's skip-ahead; results are identical).

use sha2::{Digest, Sha256};
use xet_core_structures::merklehash::{MerkleHash, compute_data_hash, file_hash, xorb_hash};

use crate::error::{Result, XetError};
use crate::hash::XetHash;
use crate::limits::{MAX_XORB_CHUNKS, MAX_XORB_RAW_BYTES};
use crate::shard::Term;
use crate::xorb::{IngestedXorb, encode_chunk, verify_upload};

/// Target (average) chunk size.
pub const TARGET_CHUNK: usize = 64 * 1024;
/// No boundary before this many bytes.
pub const MIN_CHUNK: usize = TARGET_CHUNK / 8;
/// A boundary at this many bytes at the latest.
pub const MAX_CHUNK: usize = TARGET_CHUNK * 2;
/// Boundary test mask: the top 16 bits (`(TARGET − 1) << leading_zeros`).
pub const BOUNDARY_MASK: u64 = 0xFFFF_0000_0000_0000;
/// The gear hash only remembers this many bytes.
const HASH_WINDOW: usize = 64;

/// Streaming content-defined chunker. Memory: at most one chunk (128 KiB) is buffered.
#[derive(Clone)]
pub struct Chunker {
    hasher: gearhash::Hasher<'static>,
    /// Bytes of the current, unfinished chunk.
    partial: Vec<u8>,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker")
            .field("partial", &self.partial.len())
            .finish()
    }
}

impl Default for Chunker {
    fn default() -> Self {
        Chunker::new()
    }
}

impl Chunker {
    pub fn new() -> Chunker {
        Chunker {
            hasher: gearhash::Hasher::new(&gearhash::DEFAULT_TABLE),
            partial: Vec::with_capacity(MAX_CHUNK),
        }
    }

    /// Feeds `data`; calls `emit` with every chunk completed by it, in order.
    pub fn update<E>(
        &mut self,
        mut data: &[u8],
        mut emit: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        while !data.is_empty() {
            let have = self.partial.len();
            match self.next_boundary(have, data) {
                Some(cut) => {
                    if self.partial.is_empty() {
                        emit(&data[..cut])?;
                    } else {
                        self.partial.extend_from_slice(&data[..cut]);
                        emit(&self.partial)?;
                        self.partial.clear();
                    }
                    data = &data[cut..];
                }
                None => {
                    self.partial.extend_from_slice(data);
                    data = &[];
                }
            }
        }
        Ok(())
    }

    /// Emits the last, partial chunk (if any). The chunker can be reused afterwards.
    pub fn finish<E>(&mut self, mut emit: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        self.hasher.set_hash(0);
        if self.partial.is_empty() {
            return Ok(());
        }
        let r = emit(&self.partial);
        self.partial.clear();
        r
    }

    /// Where in `data` the current chunk (which already holds `have` bytes) ends, if it does.
    fn next_boundary(&mut self, have: usize, data: &[u8]) -> Option<usize> {
        // Never let a chunk exceed MAX_CHUNK.
        let limit = data.len().min(MAX_CHUNK - have);
        // Bytes before chunk offset MIN − 65 cannot influence any boundary decision.
        let mut i = if have + HASH_WINDOW < MIN_CHUNK {
            (MIN_CHUNK - have - HASH_WINDOW - 1).min(limit)
        } else {
            0
        };
        while i < limit {
            match self.hasher.next_match(&data[i..limit], BOUNDARY_MASK) {
                Some(k) => {
                    i += k;
                    if have + i >= MIN_CHUNK {
                        self.hasher.set_hash(0);
                        return Some(i);
                    }
                }
                None => i = limit,
            }
        }
        if have + limit == MAX_CHUNK {
            self.hasher.set_hash(0);
            return Some(limit);
        }
        None
    }
}

/// Chunk end offsets of a whole buffer (for tests and small inputs).
pub fn chunk_boundaries(data: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = 0usize;
    let mut chunker = Chunker::new();
    let mut record = |c: &[u8]| -> Result<(), std::convert::Infallible> {
        pos += c.len();
        ends.push(pos);
        Ok(())
    };
    // Infallible: the callback never fails.
    let _ = chunker.update(data, &mut record);
    let _ = chunker.finish(&mut record);
    ends
}

// ---------------------------------------------------------------------------------------------
// Packing

/// Collects chunks into one xorb's chunk stream.
#[derive(Debug, Default)]
struct XorbBuilder {
    body: Vec<u8>,
    pairs: Vec<(MerkleHash, u64)>,
    raw_bytes: usize,
}

impl XorbBuilder {
    fn fits(&self, chunk_len: usize) -> bool {
        self.pairs.len() < MAX_XORB_CHUNKS && self.raw_bytes + chunk_len <= MAX_XORB_RAW_BYTES
    }

    fn add(&mut self, chunk: &[u8], hash: MerkleHash) -> Result<()> {
        encode_chunk(chunk, &mut self.body)?;
        self.pairs.push((hash, chunk.len() as u64));
        self.raw_bytes += chunk.len();
        Ok(())
    }

    /// Seals the xorb and runs it through [`verify_upload`] (the checks of [`crate::xorb::ingest`]) as a self-check (decompression, chunk
    /// hashes, xorb hash). Returns the xorb and the file's term for it.
    fn seal(&mut self) -> Result<Option<(IngestedXorb, Term)>> {
        if self.pairs.is_empty() {
            return Ok(None);
        }
        let hash = XetHash::from_merkle(xorb_hash(&self.pairs));
        let v = verify_upload(&self.body, &hash)
            .map_err(|e| XetError::Internal(format!("packed xorb failed its self-check: {e}")))?;
        // The stored form is the body itself plus the footer: no second copy of up to 64 MiB.
        let mut stored = std::mem::take(&mut self.body);
        stored.truncate(v.data_size as usize);
        stored.extend_from_slice(&v.footer);
        let x = IngestedXorb {
            hash: v.hash,
            stored,
            data_size: v.data_size,
            raw_size: v.raw_size,
            table: v.table,
            chunk_hashes: v.chunk_hashes,
        };
        let term = Term {
            xorb: hash,
            start: 0,
            end: self.pairs.len() as u32,
            // ≤ MAX_XORB_RAW_BYTES.
            raw_len: self.raw_bytes as u32,
        };
        *self = XorbBuilder::default();
        Ok(Some((x, term)))
    }
}

/// A file chunked and packed into xorbs of its own (one object never shares a xorb with
/// another, so repositories never share xorbs by accident).
#[derive(Debug)]
pub struct PackedFile {
    /// Xorbs not yet taken with [`FilePacker::take_xorbs`].
    pub xorbs: Vec<IngestedXorb>,
    /// The file's terms, one per xorb, in order.
    pub terms: Vec<Term>,
    pub file_hash: XetHash,
    /// Standard hex sha256 of the bytes (the LFS oid): compare it with the oid being converted.
    pub sha256: String,
    pub size: u64,
}

/// Streams one file through CDC into xorbs.
///
/// ```text
/// let mut p = FilePacker::new();
/// for block in blob { p.update(&block)?; for x in p.take_xorbs() { store(x) } }
/// let packed = p.finish()?;   // remaining xorbs + terms + file hash + sha256
/// ```
///
/// Memory: one xorb being built (≤ 64 MiB), sealed xorbs until taken, and one `(hash, size)`
/// pair per chunk of the file for the file hash.
#[derive(Debug, Default)]
pub struct FilePacker {
    chunker: Chunker,
    builder: XorbBuilder,
    sealed: Vec<IngestedXorb>,
    terms: Vec<Term>,
    chunks: Vec<(MerkleHash, u64)>,
    sha256: Sha256,
    size: u64,
}

impl FilePacker {
    pub fn new() -> FilePacker {
        FilePacker::default()
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.sha256.update(data);
        self.size += data.len() as u64;
        let FilePacker {
            chunker,
            builder,
            sealed,
            terms,
            chunks,
            ..
        } = self;
        chunker.update(data, |c| add_chunk(c, builder, sealed, terms, chunks))
    }

    /// Xorbs completed so far, ready to store (in order).
    pub fn take_xorbs(&mut self) -> Vec<IngestedXorb> {
        std::mem::take(&mut self.sealed)
    }

    /// Flushes the last chunk and xorb and computes the file hash.
    pub fn finish(mut self) -> Result<PackedFile> {
        let FilePacker {
            chunker,
            builder,
            sealed,
            terms,
            chunks,
            ..
        } = &mut self;
        chunker.finish(|c| add_chunk(c, builder, sealed, terms, chunks))?;
        if let Some((x, term)) = builder.seal()? {
            sealed.push(x);
            terms.push(term);
        }
        Ok(PackedFile {
            xorbs: std::mem::take(&mut self.sealed),
            terms: std::mem::take(&mut self.terms),
            file_hash: XetHash::from_merkle(file_hash(&self.chunks)),
            sha256: hex::encode(std::mem::take(&mut self.sha256).finalize()),
            size: self.size,
        })
    }
}

fn add_chunk(
    chunk: &[u8],
    builder: &mut XorbBuilder,
    sealed: &mut Vec<IngestedXorb>,
    terms: &mut Vec<Term>,
    chunks: &mut Vec<(MerkleHash, u64)>,
) -> Result<()> {
    let hash = compute_data_hash(chunk);
    if !builder.fits(chunk.len())
        && let Some((x, term)) = builder.seal()?
    {
        sealed.push(x);
        terms.push(term);
    }
    builder.add(chunk, hash)?;
    chunks.push((hash, chunk.len() as u64));
    Ok(())
}

/// Packs a whole in-memory file.
pub fn pack(data: &[u8]) -> Result<PackedFile> {
    let mut p = FilePacker::new();
    p.update(data)?;
    p.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference chunker: the spec's rule, byte by byte, no skip-ahead, no SIMD.
    fn reference_boundaries(data: &[u8]) -> Vec<usize> {
        let mut ends = Vec::new();
        let mut h = 0u64;
        let mut size = 0usize;
        for (i, b) in data.iter().enumerate() {
            h = (h << 1).wrapping_add(gearhash::DEFAULT_TABLE[*b as usize]);
            size += 1;
            if size >= MIN_CHUNK && (size >= MAX_CHUNK || h & BOUNDARY_MASK == 0) {
                ends.push(i + 1);
                h = 0;
                size = 0;
            }
        }
        if size > 0 {
            ends.push(data.len());
        }
        ends
    }

    #[test]
    fn matches_the_reference_rule() {
        let data = crate::testdata::det_bin();
        let data = &data[..700_000];
        assert_eq!(chunk_boundaries(data), reference_boundaries(data));
        // Constant data: only MAX_CHUNK boundaries (or MIN ones, if the fixed point matches).
        let zeros = vec![0u8; 600_000];
        assert_eq!(chunk_boundaries(&zeros), reference_boundaries(&zeros));
        assert_eq!(chunk_boundaries(&[]), Vec::<usize>::new());
        assert_eq!(chunk_boundaries(&[1, 2, 3]), vec![3]);
    }

    #[test]
    fn streaming_in_any_piece_size_gives_the_same_chunks() {
        let data = crate::testdata::det_bin();
        let data = &data[..900_000];
        let whole = chunk_boundaries(data);
        for piece in [1usize, 7, 64, 65, 8_127, 8_192, 100_000, 131_072] {
            let mut ends = Vec::new();
            let mut pos = 0;
            let mut c = Chunker::new();
            let mut rec = |x: &[u8]| -> Result<(), ()> {
                pos += x.len();
                ends.push(pos);
                Ok(())
            };
            for p in data.chunks(piece) {
                c.update(p, &mut rec).expect("update");
            }
            c.finish(&mut rec).expect("finish");
            assert_eq!(ends, whole, "piece size {piece}");
        }
    }

    #[test]
    fn xorbs_are_cut_at_the_chunk_limit() {
        // 8193 + 1 tiny chunks would need more than one xorb: use the builder directly.
        let mut b = XorbBuilder::default();
        let mut sealed = Vec::new();
        let mut terms = Vec::new();
        let mut chunks = Vec::new();
        for i in 0..(MAX_XORB_CHUNKS + 3) {
            let c = (i as u32).to_le_bytes();
            add_chunk(&c, &mut b, &mut sealed, &mut terms, &mut chunks).expect("add");
        }
        assert_eq!(sealed.len(), 1);
        assert_eq!(sealed[0].num_chunks(), MAX_XORB_CHUNKS);
        assert_eq!(terms[0].end as usize, MAX_XORB_CHUNKS);
        let (last, term) = b.seal().expect("seal").expect("non-empty");
        assert_eq!(last.num_chunks(), 3);
        assert_eq!(term.raw_len, 12);
    }
}
