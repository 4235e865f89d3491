//! The cross-checked vectors of §1.7 of `docs/xet.md`: Wharf's chunker and packer must produce
//! exactly what hf_xet 1.8.0 produced for the same bytes, and Wharf must parse and verify the
//! shards hf_xet actually uploaded.

use wharf_xet::XetHash;
use wharf_xet::chunker::{chunk_boundaries, pack};
use wharf_xet::shard::{build_upload, describe_file, parse_upload, verify_file};
use wharf_xet::testdata::*;
use wharf_xet::xorb::XorbChunks;

const DET_SHARD: &[u8] = include_bytes!("fixtures/det.hf_xet-1.8.0.shard");
const FLOATS_SHARD: &[u8] = include_bytes!("fixtures/floats.hf_xet-1.8.0.shard");

fn sizes(ends: &[usize]) -> Vec<usize> {
    let mut prev = 0;
    ends.iter()
        .map(|&e| {
            let s = e - prev;
            prev = e;
            s
        })
        .collect()
}

fn hash(s: &str) -> XetHash {
    XetHash::parse(s).expect("test vector is a valid hash")
}

#[test]
fn det_bin_chunks_and_hashes() {
    let data = det_bin();
    assert_eq!(data.len(), DET_SIZE);
    let ends = chunk_boundaries(&data);
    assert_eq!(ends.len(), DET_CHUNKS);
    assert_eq!(sizes(&ends)[..5], DET_FIRST_SIZES);
    assert_eq!(
        XetHash::from_merkle(xet_core_structures::merklehash::compute_data_hash(
            &data[..ends[0]]
        ))
        .to_string(),
        DET_FIRST_CHUNK_HASH
    );

    let packed = pack(&data).expect("pack");
    assert_eq!(packed.size, DET_SIZE as u64);
    assert_eq!(packed.sha256, DET_SHA256);
    assert_eq!(packed.file_hash, hash(DET_FILE_HASH));
    assert_eq!(packed.xorbs.len(), 1);
    let x = &packed.xorbs[0];
    assert_eq!(x.hash, hash(DET_XORB_HASH));
    assert_eq!(x.num_chunks(), DET_CHUNKS);
    assert_eq!(x.raw_size, DET_SIZE as u64);
    // Random data does not compress: every chunk is stored raw behind its 8-byte header.
    assert_eq!(x.data_size as usize, DET_SIZE + 8 * DET_CHUNKS);
    assert_eq!(packed.terms.len(), 1);
    assert_eq!(packed.terms[0].xorb, x.hash);
    assert_eq!(
        (packed.terms[0].start, packed.terms[0].end),
        (0, DET_CHUNKS as u32)
    );
}

#[test]
fn floats_bin_chunks_and_hashes() {
    let data = floats_bin();
    assert_eq!(data.len(), FLOATS_SIZE);
    let ends = chunk_boundaries(&data);
    assert_eq!(ends.len(), FLOATS_CHUNKS);
    assert_eq!(sizes(&ends)[..5], FLOATS_FIRST_SIZES);

    let packed = pack(&data).expect("pack");
    assert_eq!(packed.sha256, FLOATS_SHA256);
    assert_eq!(packed.file_hash, hash(FLOATS_FILE_HASH));
    assert_eq!(packed.xorbs.len(), 1);
    let x = &packed.xorbs[0];
    assert_eq!(x.hash, hash(FLOATS_XORB_HASH));
    // Same compression choices as hf_xet (BG4 + LZ4 for every chunk): same bytes on the wire,
    // same stored size.
    assert_eq!(x.data_size as usize, FLOATS_UPLOADED_BYTES);
    assert_eq!(x.stored.len(), FLOATS_STORED_BYTES);
    assert!(
        (0..FLOATS_CHUNKS).all(|i| {
            let start = if i == 0 {
                0
            } else {
                x.table.ends()[i - 1].0 as usize
            };
            x.stored[start + 4] == 2
        }),
        "every chunk uses scheme 2 (BG4+LZ4)"
    );
}

/// Checks a real hf_xet shard against Wharf's parse, verification and shard builder.
fn check_real_shard(
    shard: &[u8],
    data: &[u8],
    file_hash: &str,
    xorb_hash: &str,
    sha256: &str,
    chunks: usize,
) {
    let packed = pack(data).expect("pack");
    let xorb: XorbChunks = packed.xorbs[0].to_chunks();

    let parsed = parse_upload(shard).expect("hf_xet's shard parses");
    assert_eq!(parsed.files.len(), 1);
    assert_eq!(parsed.cas_xorbs, vec![hash(xorb_hash)]);
    assert_eq!(parsed.referenced_xorbs(), vec![hash(xorb_hash)]);
    let f = &parsed.files[0];
    assert_eq!(f.file_hash, hash(file_hash));
    assert_eq!(f.sha256.as_deref(), Some(sha256));
    assert_eq!(f.terms.len(), 1);
    assert_eq!(f.terms[0].xorb, hash(xorb_hash));
    assert_eq!((f.terms[0].start, f.terms[0].end), (0, chunks as u32));
    assert_eq!(u64::from(f.terms[0].raw_len), data.len() as u64);
    assert_eq!(f.declared_size(), data.len() as u64);

    // hf_xet's verification hashes check out against the chunk hashes Wharf computed itself.
    let size = verify_file(f, |h| (*h == xorb.hash).then_some(&xorb)).expect("verifies");
    assert_eq!(size, data.len() as u64);

    // And Wharf's shard builder produces the very same bytes hf_xet sent.
    let described =
        describe_file(&[(&xorb, 0, chunks as u32)], Some(sha256.to_string())).expect("describe");
    assert_eq!(&described, f);
    assert_eq!(build_upload(&[described], &[&xorb]).expect("build"), shard);

    // Without the xorb (unknown to Wharf), the same shard fails verification.
    assert!(verify_file(f, |_| None).is_err());
}

#[test]
fn real_hf_xet_shard_for_det_bin() {
    check_real_shard(
        DET_SHARD,
        &det_bin(),
        DET_FILE_HASH,
        DET_XORB_HASH,
        DET_SHA256,
        DET_CHUNKS,
    );
}

#[test]
fn real_hf_xet_shard_for_floats_bin() {
    check_real_shard(
        FLOATS_SHARD,
        &floats_bin(),
        FLOATS_FILE_HASH,
        FLOATS_XORB_HASH,
        FLOATS_SHA256,
        FLOATS_CHUNKS,
    );
}
