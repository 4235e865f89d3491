//! Uploaded shards: a bounded parser and the per-file verification.
//!
//! Layout (§1.6.3 of `docs/xet.md`, little-endian, every record 48 bytes):
//!
//! ```text
//! header        32-byte tag | u64 version (2) | u64 footer_size (0 on upload)
//! file section  per file: file_hash | u32 flags | u32 n | 8 unused
//!                         n × (xorb_hash | u32 flags | u32 unpacked_len | u32 chunk_start | u32 chunk_end)
//!                         if flags bit 31: n × (range_hash | 16 unused)      verification
//!                         if flags bit 30: 1 × (sha256 | 16 unused)          metadata extension
//!               bookend:  32 × 0xff | 16 × 0
//! CAS section   per xorb: xorb_hash | u32 flags | u32 n | u32 raw_bytes | u32 bytes_on_disk
//!                         n × (chunk_hash | u32 raw_start | u32 raw_len | u32 flags | u32 unused)
//!               bookend:  32 × 0xff | 16 × 0
//! [lookup tables and a 200-byte footer, only when footer_size != 0]
//! ```
//!
//! The parser is Wharf's own, over a byte slice: every declared count is checked against the
//! bytes actually left before anything is allocated, and nothing indexes past the input. (The
//! Xet crate's `MDBMinimalShard::from_reader` passes no size limit, so a huge `num_entries`
//! drives a huge allocation.) The CAS section is untrusted: only its xorb hashes are kept (they
//! must exist); its chunk entries are skipped, and dedup is indexed only from xorbs Wharf
//! verified itself.

use std::collections::HashSet;

use xet_core_structures::merklehash::{MerkleHash, file_hash};
use xet_core_structures::metadata_shard::chunk_verification::range_hash_from_chunks;

use crate::error::{Result, XetError};
use crate::hash::{XetHash, sha256_hex_of_shard_field};
use crate::limits::{MAX_FILE_CHUNKS, MAX_SHARD_BYTES, MAX_SHARD_CHUNKS, MAX_TERMS_PER_FILE};
use crate::xorb::XorbChunks;

/// The tag every shard starts with (`MDB_SHARD_HEADER_TAG`).
pub const SHARD_HEADER_TAG: [u8; 32] = [
    b'H', b'F', b'R', b'e', b'p', b'o', b'M', b'e', b't', b'a', b'D', b'a', b't', b'a', 0, 85, 105,
    103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169,
];
/// The only shard header version.
pub const SHARD_VERSION: u64 = 2;
/// Size of the full-shard footer (`MDBShardFileFooter`).
pub const SHARD_FOOTER_BYTES: u64 = 200;

const RECORD: usize = 48;
const HEADER: usize = 48;
const FLAG_VERIFICATION: u32 = 1 << 31;
const FLAG_METADATA_EXT: u32 = 1 << 30;

/// One term of a file: chunks `[start, end)` of `xorb`, `raw_len` bytes once decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub xorb: XetHash,
    pub start: u32,
    pub end: u32,
    pub raw_len: u32,
}

/// One file of an uploaded shard, as declared (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFile {
    pub file_hash: XetHash,
    pub terms: Vec<Term>,
    /// One range hash per term (required: shards without verification are refused).
    pub verification: Vec<MerkleHash>,
    /// The sha256 (LFS oid, standard hex) from the metadata extension, when present. Declared,
    /// not checked: the caller recomputes it from the reconstructed bytes.
    pub sha256: Option<String>,
}

impl ShardFile {
    /// Declared size: Σ of the terms' raw lengths.
    pub fn declared_size(&self) -> u64 {
        self.terms.iter().map(|t| u64::from(t.raw_len)).sum()
    }

    /// Declared number of chunks: Σ of the terms' chunk counts (malformed ranges count 0).
    pub fn declared_chunks(&self) -> u64 {
        self.terms
            .iter()
            .map(|t| u64::from(t.end.saturating_sub(t.start)))
            .sum()
    }
}

/// A parsed upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedShard {
    /// Files in shard order, first occurrence of each file hash only.
    pub files: Vec<ShardFile>,
    /// Xorbs listed in the CAS-info section (possibly none: a fully deduplicated upload).
    pub cas_xorbs: Vec<XetHash>,
}

impl UploadedShard {
    /// Every xorb the shard refers to (terms ∪ CAS info), each once, in first-seen order. All
    /// must exist before the shard is accepted.
    pub fn referenced_xorbs(&self) -> Vec<XetHash> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let terms = self
            .files
            .iter()
            .flat_map(|f| f.terms.iter().map(|t| t.xorb));
        for x in terms.chain(self.cas_xorbs.iter().copied()) {
            if seen.insert(x) {
                out.push(x);
            }
        }
        out
    }

    /// Number of terms over all files (for progress reporting).
    pub fn total_terms(&self) -> usize {
        self.files.iter().map(|f| f.terms.len()).sum()
    }
}

/// A cursor over the shard body that never reads past its end.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| XetError::bad_shard("truncated"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn record(&mut self) -> Result<Record<'a>> {
        Ok(Record(self.take(RECORD)?))
    }
}

/// One 48-byte record: a 32-byte hash and four u32 fields (or a u64 pair).
struct Record<'a>(&'a [u8]);

impl Record<'_> {
    fn hash_bytes(&self) -> [u8; 32] {
        let mut h = [0u8; 32];
        h.copy_from_slice(&self.0[..32]);
        h
    }
    fn hash(&self) -> XetHash {
        XetHash::from_bytes(self.hash_bytes())
    }
    fn is_bookend(&self) -> bool {
        self.0[..32].iter().all(|&b| b == 0xff)
    }
    fn u32_at(&self, i: usize) -> u32 {
        let off = 32 + 4 * i;
        let mut w = [0u8; 4];
        w.copy_from_slice(&self.0[off..off + 4]);
        u32::from_le_bytes(w)
    }
}

fn le_u64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Parses an uploaded shard: header (tag, version 2), file section, CAS section, and — only if
/// the header announces a footer — trailing lookup tables plus footer, which are ignored. Every
/// file must carry verification entries. Errors are `BadRequest`s.
pub fn parse_upload(body: &[u8]) -> Result<UploadedShard> {
    if body.len() > MAX_SHARD_BYTES {
        return Err(XetError::TooLarge(format!(
            "shard of {} bytes exceeds the limit of {MAX_SHARD_BYTES}",
            body.len()
        )));
    }
    let mut r = Reader { buf: body, pos: 0 };
    let header = r.take(HEADER)?;
    if header[..32] != SHARD_HEADER_TAG {
        return Err(XetError::bad_shard("not a shard (wrong tag)"));
    }
    let version = le_u64(&header[32..40]);
    if version != SHARD_VERSION {
        return Err(XetError::bad_shard(format!(
            "unsupported shard version {version}"
        )));
    }
    let footer_size = le_u64(&header[40..48]);
    if footer_size != 0 && footer_size != SHARD_FOOTER_BYTES {
        return Err(XetError::bad_shard(format!(
            "unexpected footer size {footer_size}"
        )));
    }

    // File section.
    let mut files = Vec::new();
    let mut seen_files = HashSet::new();
    let mut chunks = 0u64;
    loop {
        let h = r.record()?;
        if h.is_bookend() {
            break;
        }
        let file = parse_file(&mut r, &h)?;
        if seen_files.insert(file.file_hash) {
            chunks += file.declared_chunks();
            if chunks > MAX_SHARD_CHUNKS {
                return Err(XetError::TooLarge(format!(
                    "shard references more than {MAX_SHARD_CHUNKS} chunks"
                )));
            }
            files.push(file);
        }
    }

    // CAS section: keep the xorb hashes, skip the (untrusted) chunk entries.
    let mut cas_xorbs = Vec::new();
    let mut seen_xorbs = HashSet::new();
    loop {
        let h = r.record()?;
        if h.is_bookend() {
            break;
        }
        let n = h.u32_at(1) as usize;
        let bytes = n
            .checked_mul(RECORD)
            .filter(|&b| b <= r.remaining())
            .ok_or_else(|| XetError::bad_shard("CAS entry count beyond the end of the shard"))?;
        r.take(bytes)?;
        let xorb = h.hash();
        if seen_xorbs.insert(xorb) {
            cas_xorbs.push(xorb);
        }
    }

    // After the CAS bookend: nothing, unless the header announced lookup tables + footer.
    let rest = r.remaining() as u64;
    match footer_size {
        0 if rest != 0 => {
            return Err(XetError::bad_shard(format!(
                "{rest} unexpected bytes after the CAS section"
            )));
        }
        SHARD_FOOTER_BYTES if rest < SHARD_FOOTER_BYTES => {
            return Err(XetError::bad_shard("truncated footer"));
        }
        _ => {}
    }

    Ok(UploadedShard { files, cas_xorbs })
}

fn parse_file(r: &mut Reader<'_>, h: &Record<'_>) -> Result<ShardFile> {
    let file_hash = h.hash();
    let flags = h.u32_at(0);
    let n = h.u32_at(1) as usize;
    if flags & FLAG_VERIFICATION == 0 {
        return Err(XetError::bad_shard(format!(
            "file {file_hash} has no verification entries"
        )));
    }
    if n > MAX_TERMS_PER_FILE {
        return Err(XetError::TooLarge(format!(
            "file {file_hash} declares {n} terms (limit {MAX_TERMS_PER_FILE})"
        )));
    }
    let has_ext = flags & FLAG_METADATA_EXT != 0;
    // Check the whole record against what is left before allocating anything.
    let needed = (2 * n + usize::from(has_ext)) * RECORD;
    if needed > r.remaining() {
        return Err(XetError::bad_shard(format!(
            "file {file_hash} declares {n} terms beyond the end of the shard"
        )));
    }
    let mut terms = Vec::with_capacity(n);
    for _ in 0..n {
        let e = r.record()?;
        terms.push(Term {
            xorb: e.hash(),
            raw_len: e.u32_at(1),
            start: e.u32_at(2),
            end: e.u32_at(3),
        });
    }
    let mut verification = Vec::with_capacity(n);
    for _ in 0..n {
        verification.push(MerkleHash::from(r.record()?.hash_bytes()));
    }
    let sha256 = if has_ext {
        let ext = r.record()?;
        Some(sha256_hex_of_shard_field(&MerkleHash::from(
            ext.hash_bytes(),
        )))
    } else {
        None
    };
    Ok(ShardFile {
        file_hash,
        terms,
        verification,
        sha256,
    })
}

// ---------------------------------------------------------------------------------------------
// Verification

/// Verifies one file term by term, so that the caller can load each xorb's chunk hashes on
/// demand (e.g. through a small cache) instead of holding every referenced xorb at once.
///
/// ```text
/// let mut v = FileVerifier::new(&file)?;
/// while let Some(term) = v.next_term() {
///     let chunks = cache.get(&term.xorb);          // None if Wharf has no such xorb
///     v.verify_next(chunks.as_ref())?;
/// }
/// let size = v.finish()?;
/// ```
///
/// Each term must name a known xorb, a chunk range inside it, the right raw length and the right
/// verification hash (`range_hash_from_chunks` over the raw chunk hashes — only a holder of the
/// data can compute it). All failures give the same message. Finally the chunks of all terms
/// must hash to the declared file hash.
#[derive(Debug)]
pub struct FileVerifier<'f> {
    file: &'f ShardFile,
    next: usize,
    chunks: Vec<(MerkleHash, u64)>,
    size: u64,
}

impl<'f> FileVerifier<'f> {
    /// Starts verifying `file`. Fails early (without allocating per chunk) when the file
    /// declares more than [`MAX_FILE_CHUNKS`] chunks or its verification list does not match.
    pub fn new(file: &'f ShardFile) -> Result<FileVerifier<'f>> {
        if file.verification.len() != file.terms.len() {
            return Err(XetError::bad_shard(format!(
                "file {} has {} terms but {} verification entries",
                file.file_hash,
                file.terms.len(),
                file.verification.len()
            )));
        }
        let declared = file.declared_chunks();
        if declared > MAX_FILE_CHUNKS {
            return Err(XetError::TooLarge(format!(
                "file {} references {declared} chunks (limit {MAX_FILE_CHUNKS})",
                file.file_hash
            )));
        }
        // Reserve only a little up front: the list grows with terms that actually verify, so a
        // shard declaring many chunks of xorbs it cannot prove costs nothing.
        Ok(FileVerifier {
            file,
            next: 0,
            chunks: Vec::with_capacity(declared.min(1 << 16) as usize),
            size: 0,
        })
    }

    /// The term to verify next, or `None` when all are done.
    pub fn next_term(&self) -> Option<&'f Term> {
        self.file.terms.get(self.next)
    }

    /// Verifies the next term against the xorb it names (`None`: Wharf does not have it).
    pub fn verify_next(&mut self, xorb: Option<&XorbChunks>) -> Result<()> {
        let index = self.next;
        let term = self
            .file
            .terms
            .get(index)
            .ok_or_else(|| XetError::Internal("no term left to verify".into()))?;
        let fail = || XetError::TermDoesNotVerify {
            file: self.file.file_hash.to_string(),
            term: index,
        };
        let xorb = xorb.filter(|x| x.hash == term.xorb).ok_or_else(fail)?;
        let (s, e) = (term.start as usize, term.end as usize);
        let hashes = xorb
            .chunk_hashes
            .get(s..e)
            .filter(|h| !h.is_empty())
            .ok_or_else(fail)?;
        let raw_len = xorb
            .table
            .raw_len(term.start, term.end)
            .map_err(|_| fail())?;
        if raw_len != u64::from(term.raw_len) {
            return Err(fail());
        }
        let expected = self.file.verification.get(index).ok_or_else(fail)?;
        if range_hash_from_chunks(hashes) != *expected {
            return Err(fail());
        }
        for (i, h) in hashes.iter().enumerate() {
            let len = xorb
                .table
                .chunk_raw_len(term.start + i as u32)
                .map_err(|_| fail())?;
            self.chunks.push((*h, len));
        }
        self.size += raw_len;
        self.next += 1;
        Ok(())
    }

    /// Checks the file hash once every term has been verified; returns the file size.
    pub fn finish(self) -> Result<u64> {
        if self.next != self.file.terms.len() {
            return Err(XetError::Internal(
                "file verification finished early".into(),
            ));
        }
        if XetHash::from_merkle(file_hash(&self.chunks)) != self.file.file_hash {
            return Err(XetError::FileHashMismatch(self.file.file_hash.to_string()));
        }
        Ok(self.size)
    }
}

/// Verifies a whole file with a lookup from xorb hash to its verified chunk hashes; returns
/// the file size. See [`FileVerifier`] for the rules and for on-demand loading.
pub fn verify_file<'a>(
    file: &ShardFile,
    mut chunks_of: impl FnMut(&XetHash) -> Option<&'a XorbChunks>,
) -> Result<u64> {
    let mut v = FileVerifier::new(file)?;
    while let Some(term) = v.next_term() {
        let xorb = chunks_of(&term.xorb);
        v.verify_next(xorb)?;
    }
    v.finish()
}

// ---------------------------------------------------------------------------------------------
// Building shards (the client's side), for tests and tools

/// Serialises files and CAS entries in the upload format hf_xet sends (header with
/// `footer_size = 0`, file section with verification and sha256 extension, CAS section, no
/// footer). Wharf never stores or serves shards; this exists so tests and tools can produce
/// exactly what a client would. Fails only on a `sha256` that is not 64 hex characters.
pub fn build_upload(files: &[ShardFile], cas: &[&XorbChunks]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    out.extend_from_slice(&SHARD_HEADER_TAG);
    out.extend_from_slice(&SHARD_VERSION.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    let record = |out: &mut Vec<u8>, hash: &[u8], words: [u32; 4]| {
        out.extend_from_slice(hash);
        for w in words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    };
    for f in files {
        let mut flags = FLAG_VERIFICATION;
        if f.sha256.is_some() {
            flags |= FLAG_METADATA_EXT;
        }
        record(
            &mut out,
            &f.file_hash.to_bytes(),
            [flags, f.terms.len() as u32, 0, 0],
        );
        for t in &f.terms {
            record(&mut out, &t.xorb.to_bytes(), [0, t.raw_len, t.start, t.end]);
        }
        for v in &f.verification {
            record(&mut out, v.as_bytes(), [0; 4]);
        }
        if let Some(sha) = &f.sha256 {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(sha, &mut digest)
                .map_err(|_| XetError::Internal(format!("bad sha256 {sha:?}")))?;
            let field = crate::hash::sha256_to_shard_field(digest);
            record(&mut out, field.as_bytes(), [0; 4]);
        }
    }
    record(&mut out, &[0xff; 32], [0; 4]);
    for x in cas {
        let n = x.chunk_hashes.len() as u32;
        record(
            &mut out,
            &x.hash.to_bytes(),
            [0, n, x.table.raw_size() as u32, 0],
        );
        for (i, h) in x.chunk_hashes.iter().enumerate() {
            let i = i as u32;
            let start = x.table.raw_start(i).unwrap_or(0) as u32;
            let len = x.table.chunk_raw_len(i).unwrap_or(0) as u32;
            record(&mut out, h.as_bytes(), [start, len, 0, 0]);
        }
    }
    record(&mut out, &[0xff; 32], [0; 4]);
    Ok(out)
}

/// The `ShardFile` a client would declare for chunks `[start, end)` of the given xorbs, in
/// order (one term per entry), with the correct verification and file hashes.
pub fn describe_file(
    parts: &[(&XorbChunks, u32, u32)],
    sha256: Option<String>,
) -> Result<ShardFile> {
    let mut terms = Vec::with_capacity(parts.len());
    let mut verification = Vec::with_capacity(parts.len());
    let mut chunks = Vec::new();
    for &(x, start, end) in parts {
        let raw_len = x.table.raw_len(start, end)?;
        let hashes =
            x.chunk_hashes
                .get(start as usize..end as usize)
                .ok_or(XetError::ChunkRange {
                    start,
                    end,
                    len: x.chunk_hashes.len(),
                })?;
        for (i, h) in hashes.iter().enumerate() {
            chunks.push((*h, x.table.chunk_raw_len(start + i as u32)?));
        }
        verification.push(range_hash_from_chunks(hashes));
        terms.push(Term {
            xorb: x.hash,
            start,
            end,
            raw_len: u32::try_from(raw_len)
                .map_err(|_| XetError::Internal("term too long".into()))?,
        });
    }
    Ok(ShardFile {
        file_hash: XetHash::from_merkle(file_hash(&chunks)),
        terms,
        verification,
        sha256,
    })
}
