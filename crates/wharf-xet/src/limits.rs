//! Wharf's own limits for Xet data. They are constants on purpose: the Xet crate's equivalents
//! read `HF_XET_*` environment variables in debug builds (§0.14 of `docs/xet.md`), and Wharf must
//! enforce the same bounds whatever the environment says.

use std::time::Duration;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Size of a chunk header in a xorb: `u8 version | u24 compressed | u8 scheme | u24 raw`.
pub const CHUNK_HEADER_BYTES: usize = 8;

/// Largest uncompressed chunk (the CDC maximum, 2 × the 64 KiB target).
pub const MAX_CHUNK_BYTES: usize = 128 * KIB;

/// Largest compressed chunk payload (the crate's rule: 2 × the largest chunk).
pub const MAX_CHUNK_COMPRESSED_BYTES: usize = 2 * MAX_CHUNK_BYTES;

/// Most chunks in one xorb.
pub const MAX_XORB_CHUNKS: usize = 8192;

/// Most uncompressed bytes in one xorb (hf_xet cuts xorbs on this, raw).
pub const MAX_XORB_RAW_BYTES: usize = 64 * MIB;

/// Most bytes of a xorb's chunk stream (headers + payloads): incompressible chunks are stored
/// raw, so a full xorb is its raw size plus one header per chunk.
pub const MAX_XORB_DATA_BYTES: usize = MAX_XORB_RAW_BYTES + MAX_XORB_CHUNKS * CHUNK_HEADER_BYTES;

/// Largest xorb footer Wharf writes or reads back (`XorbObjectInfoV1` for the maximum chunk
/// count: 92 fixed bytes + 40 per chunk, plus the trailing `u32` length).
pub const MAX_XORB_FOOTER_BYTES: usize = 92 + 40 * MAX_XORB_CHUNKS + 4;

/// Largest body accepted on `POST /v1/xorbs/…`: a full chunk stream plus a footer that some
/// clients may append (hf_xet 1.8.0 sends none). Use this as the route's body limit.
pub const MAX_XORB_UPLOAD_BYTES: usize = MAX_XORB_DATA_BYTES + MAX_XORB_FOOTER_BYTES;

/// Largest shard accepted on `POST /v1/shards` and `/v2/shards`.
pub const MAX_SHARD_BYTES: usize = 64 * MIB;

/// Most terms in one file of a shard. A shard's size bounds it anyway (96 bytes per verified
/// term); this keeps one file's database rows in a sane range.
pub const MAX_TERMS_PER_FILE: usize = 1 << 20;

/// Most chunks one file may reference in total. Verification holds one `(hash, size)` pair per
/// chunk (40 bytes, twice while hashing), so this caps it near 320 MiB; at the 64 KiB average
/// chunk size it allows files of about 256 GiB.
pub const MAX_FILE_CHUNKS: u64 = 1 << 22;

/// Most chunks all files of one shard may reference together: verification costs a little
/// hashing per referenced chunk, so this bounds the work one shard can ask for (about 1 TiB of
/// file data at the average chunk size).
pub const MAX_SHARD_CHUNKS: u64 = 1 << 24;

/// Lifetime of a Xet access token (`exp` = issue time + this).
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Lifetime of a signed fetch URL.
pub const FETCH_TTL: Duration = Duration::from_secs(3600);

/// Lifetime of the HMAC key in a dedup answer (`shard_key_expiry`).
pub const DEDUP_KEY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Longest Xet token string accepted before any decoding.
pub const MAX_TOKEN_BYTES: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_xorbs_fit_u32_offsets() {
        // Chunk tables and footers store offsets as u32.
        assert!(MAX_XORB_DATA_BYTES + MAX_XORB_FOOTER_BYTES < u32::MAX as usize);
        assert_eq!(MAX_XORB_FOOTER_BYTES, 327_776);
    }
}
