//! The global-dedup answer (`GET /v1/chunks/{prefix}/{chunk}`, §1.6.3 of `docs/xet.md`).
//!
//! The answer is a *full* shard: header, empty file section, a CAS section listing the matched
//! xorbs with every chunk hash replaced by `blake3_keyed(key, chunk_hash)`, the xorb and chunk
//! lookup tables, and the 200-byte footer carrying the key and its expiry. The client keys its
//! own chunk hashes with the same key, finds matches, and references those chunk ranges in its
//! next shard, which Wharf then verifies like any other. Raw chunk hashes never leave Wharf: a
//! fresh random key per answer keeps answers unlinkable and useless as a hash oracle.
//!
//! Built with the Xet crate's in-memory shard and keyed export (the format hf_xet accepts,
//! VERIFIED in §0.5); the input is Wharf's own verified metadata, never client bytes.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use xet_core_structures::merklehash::MerkleHash;
use xet_core_structures::metadata_shard::shard_format::MDBShardInfo;
use xet_core_structures::metadata_shard::shard_in_memory::MDBInMemoryShard;
use xet_core_structures::metadata_shard::xorb_structs::{
    MDBXorbInfo, XorbChunkSequenceEntry, XorbChunkSequenceHeader,
};

use crate::error::{Result, XetError};
use crate::xorb::XorbChunks;

/// Builds the keyed dedup shard for `xorbs` (typically the few visible xorbs holding the
/// queried chunk). `key` must be fresh random bytes (never all zeros: an all-zero key means "not
/// keyed" to the crate, which would publish raw chunk hashes); `valid_for` is usually
/// [`crate::limits::DEDUP_KEY_TTL`].
pub fn answer(xorbs: &[XorbChunks], key: [u8; 32], valid_for: Duration) -> Result<Vec<u8>> {
    if key == [0u8; 32] {
        return Err(XetError::Internal(
            "dedup answer needs a non-zero key".into(),
        ));
    }
    if xorbs.is_empty() {
        return Err(XetError::Internal("dedup answer without xorbs".into()));
    }
    let mut shard = MDBInMemoryShard::default();
    for x in xorbs {
        shard
            .add_xorb_block(Arc::new(xorb_block(x)?))
            .map_err(|e| XetError::Internal(format!("dedup shard: {e}")))?;
    }
    let plain = shard
        .to_bytes()
        .map_err(|e| XetError::Internal(format!("dedup shard: {e}")))?;
    let mut out = Vec::with_capacity(plain.len());
    MDBShardInfo::export_as_keyed_shard_streaming(
        &mut Cursor::new(plain),
        &mut out,
        MerkleHash::from(key),
        valid_for,
        false,
        true,
        true,
    )
    .map_err(|e| XetError::Internal(format!("dedup shard export: {e}")))?;
    Ok(out)
}

/// The CAS-info block of one xorb. All values are range-checked here because the crate's
/// constructors `unwrap()` their `u32` conversions.
fn xorb_block(x: &XorbChunks) -> Result<MDBXorbInfo> {
    let n = x.chunk_hashes.len();
    if n == 0 || n != x.table.len() {
        return Err(XetError::corrupt(format!(
            "xorb {}: {} chunk hashes for {} table entries",
            x.hash,
            n,
            x.table.len()
        )));
    }
    let raw_size = u32::try_from(x.table.raw_size())
        .map_err(|_| XetError::corrupt(format!("xorb {}: raw size overflows", x.hash)))?;
    let stored = u32::try_from(x.stored_size)
        .map_err(|_| XetError::corrupt(format!("xorb {}: stored size overflows", x.hash)))?;
    let mut metadata = XorbChunkSequenceHeader::new(*x.hash.as_merkle(), n as u32, raw_size);
    metadata.num_bytes_on_disk = stored;
    let mut chunks = Vec::with_capacity(n);
    for (i, h) in x.chunk_hashes.iter().enumerate() {
        let i = i as u32;
        // Both ≤ the raw size, which fits in u32.
        let start = x.table.raw_start(i)? as u32;
        let len = x.table.chunk_raw_len(i)? as u32;
        chunks.push(XorbChunkSequenceEntry::new(*h, len, start));
    }
    Ok(MDBXorbInfo { metadata, chunks })
}
