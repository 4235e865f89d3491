//! Property checks for the `xorb` and `shard` fuzz targets (`fuzz/fuzz_targets/`) and the small
//! valid inputs their corpora start from, shared with the corpus replay in
//! `tests/fuzz_corpus.rs`. Not part of Wharf's API. Each check panics when a property fails.

use std::sync::LazyLock;

use xet_core_structures::merklehash::{compute_data_hash, xorb_hash};

use crate::error::XetError;
use crate::hash::XetHash;
use crate::shard::{
    FileVerifier, ShardFile, build_upload, describe_file, parse_upload, verify_file,
};
use crate::xorb::{
    ChunkDecoder, ChunkTable, XorbChunks, decode_chunks, encode_chunk, footer_from_tail, ingest,
    verify_upload,
};

// ---------------------------------------------------------------------------------------------
// xorb

/// Piece sizes the streaming decoder is fed with, in turn.
const PIECES: [usize; 5] = [1, 3, 8, 61, 1000];

/// Every xorb reader on one byte string:
///
/// - the chunk decoder gives the same chunks fed whole or in pieces, and [`decode_chunks`]
///   their concatenation;
/// - a stream that decodes is accepted by [`verify_upload`] under the hash of its chunks
///   (unless it is over a limit) and refused under any other; its footer reads back to the
///   same chunk metadata and [`ingest`] of the stored form is stable;
/// - a stream that does not decode is never accepted;
/// - [`footer_from_tail`] and [`ChunkTable::from_blob`] never panic, and a table that parses
///   writes back to the same bytes with consistent ranges.
pub fn check_xorb(data: &[u8]) {
    let whole = decode_in_pieces(data, &[usize::MAX]);
    let pieces = decode_in_pieces(data, &PIECES);
    assert_eq!(
        whole.is_ok(),
        pieces.is_ok(),
        "streaming changes the outcome"
    );
    if let (Ok(a), Ok(b)) = (&whole, &pieces) {
        assert_eq!(a, b, "streaming changes the chunks");
    }
    match decode_chunks(data) {
        Ok(raw) => assert_eq!(Some(raw), whole.as_ref().ok().map(|c| c.concat())),
        Err(_) => assert!(whole.is_err()),
    }
    check_upload(data, whole.ok());
    let _ = footer_from_tail(data, &XetHash::default());
    check_chunk_table(data);
}

/// Decodes `data` chunk by chunk, pushing it in pieces of the given sizes (cycled); `Err`
/// when a chunk does not decode or the data ends inside one.
fn decode_in_pieces(data: &[u8], sizes: &[usize]) -> Result<Vec<Vec<u8>>, XetError> {
    let mut decoder = ChunkDecoder::new();
    let mut chunks = Vec::new();
    let mut rest = data;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, after) = rest.split_at(size.min(rest.len()));
        decoder.push(piece);
        rest = after;
        while let Some(chunk) = decoder.next_chunk()? {
            chunks.push(chunk);
        }
    }
    decoder.finish()?;
    assert_eq!(decoder.chunks_decoded(), chunks.len() as u64);
    Ok(chunks)
}

/// [`verify_upload`] and [`ingest`] against what the decoder made of the same bytes.
fn check_upload(data: &[u8], decoded: Option<Vec<Vec<u8>>>) {
    let wrong = verify_upload(data, &XetHash::default());
    let Some(chunks) = decoded.filter(|c| !c.is_empty()) else {
        // Unless a footer ident ends the chunk stream early, bytes that do not decode are
        // refused for what they are, before any hash comparison.
        if !data.windows(7).any(|w| w == b"XETBLOB") {
            assert!(
                !matches!(wrong, Ok(_) | Err(XetError::XorbHashMismatch)),
                "{wrong:?}"
            );
        }
        return;
    };
    assert!(
        matches!(
            wrong,
            Err(XetError::XorbHashMismatch | XetError::TooLarge(_))
        ),
        "a decodable xorb under the wrong hash: {wrong:?}"
    );
    let pairs: Vec<_> = chunks
        .iter()
        .map(|c| (compute_data_hash(c), c.len() as u64))
        .collect();
    let hash = XetHash::from_merkle(xorb_hash(&pairs));
    let verified = match verify_upload(data, &hash) {
        Ok(verified) => verified,
        Err(XetError::TooLarge(_)) => return,
        Err(e) => panic!("a decodable xorb is refused under its own hash: {e}"),
    };
    assert_eq!(verified.data_size as usize, data.len());
    assert_eq!(verified.raw_size, pairs.iter().map(|p| p.1).sum::<u64>());
    assert_eq!(verified.num_chunks(), chunks.len());
    assert!(
        pairs
            .iter()
            .map(|p| p.0)
            .eq(verified.chunk_hashes.iter().copied())
    );
    assert_eq!(
        footer_from_tail(&verified.footer, &hash),
        Ok(verified.to_chunks())
    );

    let stored = ingest(data, &hash).map(|x| x.stored);
    let expected = [data, &verified.footer].concat();
    assert_eq!(stored.as_ref().ok(), Some(&expected));
    let again = ingest(&expected, &hash).map(|x| x.stored);
    assert_eq!(
        again.ok(),
        Some(expected),
        "ingesting the stored form is stable"
    );
}

/// [`ChunkTable::from_blob`] on arbitrary bytes, and the table's range queries.
fn check_chunk_table(data: &[u8]) {
    let Ok(table) = ChunkTable::from_blob(data) else {
        return;
    };
    assert_eq!(table.to_blob(), data);
    let len = table.len() as u32;
    assert!(len > 0);
    assert_eq!(table.raw_len(0, len), Ok(table.raw_size()));
    assert_eq!(table.physical_range(0, len), Ok((0, table.data_size() - 1)));
    for start in [0, 1, len / 2, len.saturating_sub(1), len, u32::MAX] {
        for end in [
            start.saturating_add(1),
            len,
            len.saturating_add(1),
            u32::MAX,
        ] {
            let valid = start < end && end <= len;
            assert_eq!(table.physical_range(start, end).is_ok(), valid);
            assert_eq!(table.raw_len(start, end).is_ok(), valid);
        }
        assert_eq!(table.raw_start(start).is_ok(), start <= len);
        assert_eq!(table.chunk_raw_len(start).is_ok(), start < len);
    }
}

// ---------------------------------------------------------------------------------------------
// shard

/// The xorb every seed shard refers to, so that verification can get past its first term.
pub static FUZZ_XORB: LazyLock<XorbChunks> = LazyLock::new(|| {
    let (body, hash) = fuzz_xorb_body();
    match ingest(&body, &hash) {
        Ok(xorb) => xorb.to_chunks(),
        Err(e) => panic!("the fuzz xorb does not ingest: {e}"),
    }
});

/// Four small chunks (random, repetitive, float-like, tiny): one per compression choice.
fn fuzz_xorb_chunks() -> Vec<Vec<u8>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let random: Vec<u8> = (0..600)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let floats = (0..256u32)
        .flat_map(|i| (i as f32 * 0.25).to_le_bytes())
        .collect();
    vec![random, vec![b'w'; 900], floats, b"tail".to_vec()]
}

/// The chunk stream of [`FUZZ_XORB`] (as a client uploads it) and its hash.
pub fn fuzz_xorb_body() -> (Vec<u8>, XetHash) {
    let chunks = fuzz_xorb_chunks();
    let mut body = Vec::new();
    for chunk in &chunks {
        if let Err(e) = encode_chunk(chunk, &mut body) {
            panic!("cannot encode a fuzz chunk: {e}");
        }
    }
    let pairs: Vec<_> = chunks
        .iter()
        .map(|c| (compute_data_hash(c), c.len() as u64))
        .collect();
    (body, XetHash::from_merkle(xorb_hash(&pairs)))
}

/// [`parse_upload`] and verification of what it parsed: every parsed file either fails
/// verification or verifies to its declared size (against [`FUZZ_XORB`] as the only known
/// xorb), the step-by-step [`FileVerifier`] agrees with [`verify_file`], and a parsed shard
/// rebuilt with [`build_upload`] parses back to the same files.
pub fn check_shard(data: &[u8]) {
    let Ok(shard) = parse_upload(data) else {
        return;
    };
    let referenced = shard.referenced_xorbs();
    let unique: std::collections::HashSet<_> = referenced.iter().collect();
    assert_eq!(unique.len(), referenced.len());
    assert_eq!(
        shard.total_terms(),
        shard.files.iter().map(|f| f.terms.len()).sum::<usize>()
    );
    for file in &shard.files {
        check_verification(file);
    }
    let rebuilt = build_upload(&shard.files, &[&FUZZ_XORB]);
    let reparsed = rebuilt.and_then(|bytes| parse_upload(&bytes));
    let reparsed = reparsed.map(|s| (s.files, s.cas_xorbs));
    assert_eq!(reparsed, Ok((shard.files.clone(), vec![FUZZ_XORB.hash])));
}

fn check_verification(file: &ShardFile) {
    let lookup = |hash: &XetHash| (*hash == FUZZ_XORB.hash).then_some(&*FUZZ_XORB);
    let whole = verify_file(file, lookup);
    let stepwise = FileVerifier::new(file).and_then(|mut verifier| {
        while let Some(term) = verifier.next_term() {
            verifier.verify_next(lookup(&term.xorb))?;
        }
        verifier.finish()
    });
    assert_eq!(whole, stepwise);
    if let Ok(size) = whole {
        assert_eq!(size, file.declared_size());
    }
}

/// Seed inputs for the `xorb` and `shard` corpora: small valid xorbs and shards (and a chunk
/// table), named for the corpus directory.
pub fn seed_inputs(target: &str) -> Vec<(&'static str, Vec<u8>)> {
    let (body, hash) = fuzz_xorb_body();
    match target {
        "xorb" => {
            let stored = ingest(&body, &hash).map(|x| x.stored).unwrap_or_default();
            let one_chunk_len = 8 + usize::from(body[1]) + (usize::from(body[2]) << 8);
            vec![
                ("seed-xorb-body", body.clone()),
                ("seed-xorb-stored", stored),
                (
                    "seed-xorb-one-chunk",
                    body.get(..one_chunk_len).unwrap_or_default().to_vec(),
                ),
                ("seed-chunk-table", FUZZ_XORB.table.to_blob()),
            ]
        }
        "shard" => {
            let xorb = &*FUZZ_XORB;
            let sha = Some("ab".repeat(32));
            let files = [
                describe_file(&[(xorb, 0, 4)], sha.clone()),
                describe_file(&[(xorb, 1, 3), (xorb, 0, 1)], None),
            ];
            let files: Vec<ShardFile> = files.into_iter().filter_map(Result::ok).collect();
            let shard = |files: &[ShardFile], cas: &[&XorbChunks]| {
                build_upload(files, cas).unwrap_or_default()
            };
            vec![
                ("seed-shard-one-file", shard(&files[..1], &[xorb])),
                ("seed-shard-two-files", shard(&files, &[xorb])),
                ("seed-shard-no-cas", shard(&files[1..], &[])),
            ]
        }
        _ => Vec::new(),
    }
}
