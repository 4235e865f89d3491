//! End to end without a server: chunk and pack files, ingest every xorb as an upload, build the
//! shard a client would send, parse and verify it, plan full and ranged reconstructions and
//! reassemble the bytes the way hf_xet (and Wharf's own resolve fallback) would. Then the
//! rejection cases: every one must be an error, never a panic or an unbounded allocation.

use std::collections::HashMap;
use std::io::Cursor;
use std::time::Duration;

use xet_core_structures::merklehash::{MerkleHash, compute_data_hash, xorb_hash};
use xet_core_structures::metadata_shard::shard_format::MDBShardInfo;

use wharf_xet::chunker::{Chunker, FilePacker, pack};
use wharf_xet::dedup::answer;
use wharf_xet::limits::{MAX_FILE_CHUNKS, MAX_SHARD_BYTES, MAX_SHARD_CHUNKS, MAX_TERMS_PER_FILE};
use wharf_xet::recon::{Plan, ReconstructionV2, plan, required_xorbs};
use wharf_xet::shard::{
    FileVerifier, ShardFile, Term, UploadedShard, build_upload, describe_file, parse_upload,
    verify_file,
};
use wharf_xet::testdata::{det_bin, floats_bin};
use wharf_xet::xorb::{ChunkDecoder, ChunkTable, IngestedXorb, XorbChunks, encode_chunk, ingest};
use wharf_xet::{XetError, XetHash};

// ---------------------------------------------------------------------------------------------
// Fixture: a "store" of ingested xorbs built the way an uploading client would.

struct Store {
    stored: HashMap<XetHash, Vec<u8>>,
    chunks: HashMap<XetHash, XorbChunks>,
}

impl Store {
    fn new() -> Store {
        Store {
            stored: HashMap::new(),
            chunks: HashMap::new(),
        }
    }

    /// Upload: the client sends the footer-less chunk stream under its hash.
    fn upload(&mut self, body: &[u8], hash: &XetHash) -> IngestedXorb {
        let x = ingest(body, hash).expect("upload ingests");
        self.stored.insert(x.hash, x.stored.clone());
        self.chunks.insert(x.hash, x.to_chunks());
        x
    }

    fn tables(&self) -> HashMap<XetHash, ChunkTable> {
        self.chunks
            .iter()
            .map(|(h, c)| (*h, c.table.clone()))
            .collect()
    }

    fn get(&self, h: &XetHash) -> Option<&XorbChunks> {
        self.chunks.get(h)
    }
}

/// Chunks `data` with CDC and packs the chunks into xorbs of at most `per_xorb` chunks (small,
/// to get several xorbs without megabytes of data), uploading each. Returns the chunk list
/// `(xorb, index)` in file order.
fn upload_in_small_xorbs(
    store: &mut Store,
    data: &[u8],
    per_xorb: usize,
) -> Vec<(XetHash, u32, u32)> {
    let mut raw_chunks: Vec<Vec<u8>> = Vec::new();
    let mut c = Chunker::new();
    let mut push = |x: &[u8]| -> Result<(), ()> {
        raw_chunks.push(x.to_vec());
        Ok(())
    };
    c.update(data, &mut push).expect("chunk");
    c.finish(&mut push).expect("chunk");

    let mut parts = Vec::new();
    for group in raw_chunks.chunks(per_xorb) {
        let mut body = Vec::new();
        let mut pairs = Vec::new();
        for chunk in group {
            encode_chunk(chunk, &mut body).expect("encode");
            pairs.push((compute_data_hash(chunk), chunk.len() as u64));
        }
        let hash = XetHash::from_merkle(xorb_hash(&pairs));
        let x = store.upload(&body, &hash);
        parts.push((x.hash, 0, x.num_chunks() as u32));
    }
    parts
}

fn describe(store: &Store, parts: &[(XetHash, u32, u32)], data: &[u8]) -> ShardFile {
    let refs: Vec<(&XorbChunks, u32, u32)> = parts
        .iter()
        .map(|(h, s, e)| (store.get(h).expect("uploaded"), *s, *e))
        .collect();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(data))
    };
    describe_file(&refs, Some(sha)).expect("describe")
}

/// A fetched and decoded range: xorb, chunk range, decoded chunks.
type Fetched = (XetHash, (u32, u32), Vec<Vec<u8>>);

/// Reassembles a plan the way hf_xet does: fetch each signed byte range, decode it into chunks,
/// cut each term's chunks out of its fetch, check `unpacked_length`, skip
/// `offset_into_first_range`, stop at the range end.
fn reassemble_like_the_client(store: &Store, p: &Plan) -> Vec<u8> {
    // Fetch + decode every fetch once.
    let mut fetched: Vec<Fetched> = Vec::new();
    for f in &p.fetches {
        let stored = &store.stored[&f.xorb];
        let data_size = store.chunks[&f.xorb].table.data_size();
        assert!(f.bytes.1 < data_size, "fetches never reach into the footer");
        let bytes = &stored[f.bytes.0 as usize..=f.bytes.1 as usize];
        let mut d = ChunkDecoder::new();
        d.push(bytes);
        let mut chunks = Vec::new();
        while let Some(c) = d.next_chunk().expect("decode") {
            chunks.push(c);
        }
        d.finish().expect("whole chunks");
        assert_eq!(chunks.len() as u32, f.chunks.1 - f.chunks.0);
        fetched.push((f.xorb, f.chunks, chunks));
    }
    let mut out = Vec::new();
    for (i, t) in p.terms.iter().enumerate() {
        let (_, range, chunks) = fetched
            .iter()
            .find(|(x, r, _)| *x == t.term.xorb && r.0 <= t.term.start && t.term.end <= r.1)
            .expect("every term lies inside one fetch");
        let from = (t.term.start - range.0) as usize;
        let to = (t.term.end - range.0) as usize;
        let term_bytes: Vec<u8> = chunks[from..to].concat();
        assert_eq!(term_bytes.len() as u32, t.term.raw_len, "unpacked_length");
        let skip = if i == 0 {
            p.offset_into_first_range as usize
        } else {
            0
        };
        out.extend_from_slice(&term_bytes[skip..]);
    }
    out.truncate(p.content_length() as usize);
    out
}

/// Reassembles a plan the way Wharf's resolve fallback would: read each term's physical range,
/// decode chunk by chunk, apply `emit_windows`.
fn reassemble_like_the_server(store: &Store, p: &Plan) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, (skip, take)) in p.terms.iter().zip(p.emit_windows()) {
        let stored = &store.stored[&t.term.xorb];
        let mut d = ChunkDecoder::new();
        let mut produced = Vec::new();
        // Feed in odd-sized pieces, as a blob stream would.
        for piece in stored[t.bytes.0 as usize..=t.bytes.1 as usize].chunks(7_777) {
            d.push(piece);
            while let Some(c) = d.next_chunk().expect("decode") {
                produced.extend_from_slice(&c);
            }
        }
        d.finish().expect("whole chunks");
        out.extend_from_slice(&produced[skip as usize..(skip + take) as usize]);
    }
    out
}

fn check_read(store: &Store, terms: &[Term], data: &[u8], range: Option<(u64, Option<u64>)>) {
    let needed = required_xorbs(terms, range).expect("required");
    let all = store.tables();
    let tables: HashMap<XetHash, ChunkTable> =
        needed.iter().map(|h| (*h, all[h].clone())).collect();
    let p = plan(terms, &tables, range).expect("plan");
    let (a, b) = match range {
        None => (0, data.len() as u64 - 1),
        Some((a, end)) => (a, end.unwrap_or(u64::MAX).min(data.len() as u64 - 1)),
    };
    let expected = &data[a as usize..=b as usize];
    assert_eq!(p.content_length(), expected.len() as u64, "{range:?}");
    assert!(
        reassemble_like_the_client(store, &p) == expected,
        "client read {range:?}"
    );
    assert!(
        reassemble_like_the_server(store, &p) == expected,
        "server read {range:?}"
    );
    // The JSON answer carries the same shape.
    let v2 = ReconstructionV2::from_plan(&p, |x, (s, e)| format!("/fetch/{x}?r={s}-{e}"));
    assert_eq!(v2.terms.len(), p.terms.len());
    assert_eq!(
        v2.xorbs.values().map(Vec::len).sum::<usize>(),
        p.fetches.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn upload_verify_and_read_back() {
    // Two files with several xorbs each; the second also reuses ranges of the first's xorbs
    // (what a deduplicating client would send).
    let mut data = det_bin();
    data.truncate(2_000_000);
    let floats = floats_bin();

    let mut store = Store::new();
    let parts = upload_in_small_xorbs(&mut store, &data, 9);
    assert!(parts.len() >= 3, "several xorbs: {}", parts.len());
    let fparts = upload_in_small_xorbs(&mut store, &floats, 20);

    let file_a = describe(&store, &parts, &data);
    // File B = a's second xorb chunks 2..7, then all of floats, then a's first xorb chunks 0..3
    // and 5..9 (a gap: two fetches of one xorb).
    let (x0, x1) = (parts[0].0, parts[1].0);
    let mut b_parts = vec![(x1, 2, 7)];
    b_parts.extend(fparts.iter().copied());
    b_parts.extend([(x0, 0, 3), (x0, 5, 9)]);
    let b_bytes = {
        let mut out = Vec::new();
        for (h, s, e) in &b_parts {
            let t = &store.get(h).expect("xorb").table;
            let (p0, p1) = t.physical_range(*s, *e).expect("range");
            out.extend(
                wharf_xet::xorb::decode_chunks(&store.stored[h][p0 as usize..=p1 as usize])
                    .expect("decode"),
            );
        }
        out
    };
    let file_b = describe(&store, &b_parts, &b_bytes);

    // The client's shard: both files, CAS info for the xorbs it uploaded.
    let cas: Vec<&XorbChunks> = store.chunks.values().collect();
    let body = build_upload(&[file_a.clone(), file_b.clone()], &cas).expect("build");
    let parsed: UploadedShard = parse_upload(&body).expect("parse");
    assert_eq!(parsed.files, vec![file_a.clone(), file_b.clone()]);
    assert_eq!(parsed.cas_xorbs.len(), store.chunks.len());
    let mut referenced = parsed.referenced_xorbs();
    referenced.sort();
    let mut all: Vec<XetHash> = store.chunks.keys().copied().collect();
    all.sort();
    assert_eq!(referenced, all);

    assert_eq!(
        verify_file(&parsed.files[0], |h| store.get(h)).expect("a verifies"),
        data.len() as u64
    );
    // Term-by-term with on-demand loading gives the same answer.
    let mut v = FileVerifier::new(&parsed.files[1]).expect("verifier");
    let mut loads = 0;
    while let Some(t) = v.next_term() {
        loads += 1;
        let owned = store.get(&t.xorb).cloned();
        v.verify_next(owned.as_ref()).expect("term verifies");
    }
    assert_eq!(loads, b_parts.len());
    assert_eq!(v.finish().expect("b verifies"), b_bytes.len() as u64);

    // Reads: full, ranged, single bytes, boundaries, past EOF.
    for (terms, bytes) in [(&file_a.terms, &data), (&file_b.terms, &b_bytes)] {
        let n = bytes.len() as u64;
        check_read(&store, terms, bytes, None);
        check_read(&store, terms, bytes, Some((0, Some(n - 1))));
        check_read(&store, terms, bytes, Some((0, Some(n + 1_000_000))));
        check_read(&store, terms, bytes, Some((0, Some(0))));
        check_read(&store, terms, bytes, Some((n - 1, None)));
        check_read(&store, terms, bytes, Some((n / 3, Some(n / 3 + 100_000))));
        check_read(&store, terms, bytes, Some((12_345, Some(n - 54_321))));
        let first_term = u64::from(terms[0].raw_len);
        check_read(
            &store,
            terms,
            bytes,
            Some((first_term - 1, Some(first_term))),
        );
        check_read(&store, terms, bytes, Some((first_term, Some(first_term))));
        let tables = store.tables();
        assert_eq!(
            plan(terms, &tables, Some((n, None))),
            Err(XetError::RangeNotSatisfiable { size: n })
        );
    }

    // The gap in file B gives two fetches of x0, merged nowhere across the gap.
    let p = plan(&file_b.terms, &store.tables(), None).expect("plan");
    let x0_fetches: Vec<_> = p.fetches.iter().filter(|f| f.xorb == x0).collect();
    assert_eq!(x0_fetches.len(), 2);
    assert_eq!(
        (x0_fetches[0].chunks, x0_fetches[1].chunks),
        ((0, 3), (5, 9))
    );
}

#[test]
fn packer_streams_like_the_one_shot_pack() {
    let data = floats_bin();
    let whole = pack(&data).expect("pack");
    let mut p = FilePacker::new();
    let mut taken = Vec::new();
    for piece in data.chunks(333_333) {
        p.update(piece).expect("update");
        taken.extend(p.take_xorbs());
    }
    let rest = p.finish().expect("finish");
    taken.extend(rest.xorbs);
    assert_eq!(rest.file_hash, whole.file_hash);
    assert_eq!(rest.sha256, whole.sha256);
    assert_eq!(rest.terms, whole.terms);
    assert_eq!(
        taken.iter().map(|x| &x.stored).collect::<Vec<_>>(),
        whole.xorbs.iter().map(|x| &x.stored).collect::<Vec<_>>()
    );
    // Empty file: no xorb, no term, the all-zero file hash, and it verifies as size 0.
    let empty = pack(&[]).expect("pack");
    assert!(empty.xorbs.is_empty() && empty.terms.is_empty());
    assert_eq!(empty.file_hash, XetHash::default());
    let f = describe_file(&[], None).expect("describe");
    assert_eq!(verify_file(&f, |_| None).expect("verifies"), 0);
}

// ---------------------------------------------------------------------------------------------
// Dedup answer

#[test]
fn dedup_answer_is_keyed_and_usable() {
    let mut data = det_bin();
    data.truncate(1_500_000);
    let packed = pack(&data).expect("pack");
    let x = packed.xorbs[0].to_chunks();
    let key = [7u8; 32];
    let shard = answer(std::slice::from_ref(&x), key, Duration::from_secs(3600)).expect("answer");

    let info = MDBShardInfo::load_from_reader(&mut Cursor::new(&shard)).expect("a full shard");
    assert_eq!(info.metadata.chunk_hash_hmac_key, MerkleHash::from(key));
    assert!(info.metadata.shard_key_expiry > 0 && info.metadata.shard_key_expiry < u64::MAX);
    // The client's query: its own raw chunk hashes from chunk 5 on match xorb chunks 5...
    let (matched, entry) = info
        .chunk_hash_dedup_query(&mut Cursor::new(&shard), &x.chunk_hashes[5..])
        .expect("query")
        .expect("match");
    assert_eq!(matched, x.num_chunks() - 5);
    assert_eq!(XetHash::from_merkle(entry.xorb_hash), x.hash);
    assert_eq!(
        (entry.chunk_index_start, entry.chunk_index_end),
        (5, x.num_chunks() as u32)
    );
    assert_eq!(
        u64::from(entry.unpacked_segment_bytes),
        x.table.raw_len(5, x.num_chunks() as u32).expect("len")
    );
    // ...and no raw chunk hash appears anywhere in the answer.
    for h in &x.chunk_hashes {
        assert!(!shard.windows(32).any(|w| w == h.as_bytes()));
    }
    // A fresh key gives different bytes; a zero key or no xorbs is refused.
    let other = answer(
        std::slice::from_ref(&x),
        [8u8; 32],
        Duration::from_secs(3600),
    )
    .expect("answer");
    assert_ne!(other[..200], shard[..200]);
    assert!(answer(std::slice::from_ref(&x), [0u8; 32], Duration::from_secs(1)).is_err());
    assert!(answer(&[], key, Duration::from_secs(1)).is_err());
    // Dedup eligibility helper: only eligible hashes.
    assert!(
        x.dedup_eligible().iter().all(|(i, h)| h.is_dedup_eligible()
            && XetHash::from_merkle(x.chunk_hashes[*i as usize]) == *h)
    );
}

// ---------------------------------------------------------------------------------------------
// Rejections

struct Fixture {
    store: Store,
    file: ShardFile,
    body: Vec<u8>,
}

fn fixture() -> Fixture {
    let mut data = det_bin();
    data.truncate(600_000);
    let mut store = Store::new();
    let parts = upload_in_small_xorbs(&mut store, &data, 4);
    let file = describe(&store, &parts, &data);
    let cas: Vec<&XorbChunks> = store.chunks.values().collect();
    let body = build_upload(std::slice::from_ref(&file), &cas).expect("build");
    Fixture { store, file, body }
}

/// Offset of term `i`'s record in a one-file shard body.
fn term_offset(i: usize) -> usize {
    48 + 48 + 48 * i
}

fn verify_body(f: &Fixture, body: &[u8]) -> Result<u64, XetError> {
    let parsed = parse_upload(body)?;
    let file = parsed
        .files
        .first()
        .ok_or(XetError::Internal("no file".into()))?;
    verify_file(file, |h| f.store.get(h))
}

#[test]
fn shard_format_rejections() {
    let f = fixture();
    assert!(verify_body(&f, &f.body).is_ok());

    // Truncated anywhere: an error, never a panic.
    for cut in 0..f.body.len() {
        assert!(parse_upload(&f.body[..cut]).is_err(), "cut at {cut}");
    }
    // Trailing garbage without an announced footer.
    let mut b = f.body.clone();
    b.push(0);
    assert!(matches!(parse_upload(&b), Err(XetError::BadShard(_))));
    // Bad tag, version, footer size.
    let mut b = f.body.clone();
    b[0] ^= 1;
    assert!(matches!(parse_upload(&b), Err(XetError::BadShard(_))));
    for version in [0u64, 1, 3, u64::MAX] {
        let mut b = f.body.clone();
        b[32..40].copy_from_slice(&version.to_le_bytes());
        assert!(
            matches!(parse_upload(&b), Err(XetError::BadShard(_))),
            "{version}"
        );
    }
    let mut b = f.body.clone();
    b[40..48].copy_from_slice(&7u64.to_le_bytes());
    assert!(parse_upload(&b).is_err());
    // An announced 200-byte footer must be there; lookup tables before it are ignored.
    let mut b = f.body.clone();
    b[40..48].copy_from_slice(&200u64.to_le_bytes());
    assert!(parse_upload(&b).is_err());
    b.extend_from_slice(&[0u8; 24 + 200]);
    assert_eq!(
        parse_upload(&b).expect("with footer").files,
        vec![f.file.clone()]
    );
    // Oversized body: refused before parsing.
    let mut huge = f.body.clone();
    huge.resize(MAX_SHARD_BYTES + 1, 0);
    assert!(matches!(parse_upload(&huge), Err(XetError::TooLarge(_))));
    // Empty.
    assert!(parse_upload(&[]).is_err());
}

#[test]
fn huge_declared_counts_fail_without_allocating() {
    let f = fixture();
    // File header: num_entries = u32::MAX (and just over the per-file limit).
    for n in [u32::MAX, MAX_TERMS_PER_FILE as u32 + 1, 1_000_000] {
        let mut b = f.body.clone();
        b[48 + 36..48 + 40].copy_from_slice(&n.to_le_bytes());
        assert!(parse_upload(&b).is_err(), "{n}");
    }
    // CAS header: num_entries = u32::MAX.
    let cas_at = f.body.len()
        - 48
        - f.store
            .chunks
            .values()
            .map(|x| 48 * (x.num_chunks() + 1))
            .sum::<usize>();
    let mut b = f.body.clone();
    b[cas_at + 36..cas_at + 40].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(parse_upload(&b), Err(XetError::BadShard(_))));
    // Terms declaring billions of chunks: refused before any per-chunk allocation.
    let mut file = f.file.clone();
    for t in &mut file.terms {
        t.start = 0;
        t.end = u32::MAX;
    }
    assert!(matches!(
        FileVerifier::new(&file),
        Err(XetError::TooLarge(_))
    ));
    assert!(u64::from(u32::MAX) > MAX_FILE_CHUNKS);
    // The same inside a shard is refused at parse time (per-shard chunk budget).
    let body = build_upload(&[file], &[]).expect("build");
    assert!(matches!(parse_upload(&body), Err(XetError::TooLarge(_))));
    // Many files each within the per-file limit still hit the per-shard budget.
    let files: Vec<ShardFile> = (0..=(MAX_SHARD_CHUNKS / MAX_FILE_CHUNKS))
        .map(|i| {
            let mut file = f.file.clone();
            file.file_hash = XetHash::from_merkle(compute_data_hash(&i.to_le_bytes()));
            file.terms.truncate(1);
            file.verification.truncate(1);
            file.terms[0].end = MAX_FILE_CHUNKS as u32;
            file
        })
        .collect();
    let body = build_upload(&files, &[]).expect("build");
    assert!(matches!(parse_upload(&body), Err(XetError::TooLarge(_))));
}

#[test]
fn verification_rejections() {
    let f = fixture();
    let n_terms = f.file.terms.len();
    assert!(n_terms >= 3);
    let same_message = |r: Result<u64, XetError>, term: usize| match r {
        Err(XetError::TermDoesNotVerify { term: t, file }) => {
            assert_eq!(t, term);
            assert_eq!(file, f.file.file_hash.to_string());
        }
        other => panic!("expected TermDoesNotVerify for term {term}, got {other:?}"),
    };

    // Missing verification flag.
    let mut b = f.body.clone();
    b[48 + 32 + 3] &= 0x7f; // clear bit 31 of the flags
    assert!(matches!(parse_upload(&b), Err(XetError::BadShard(_))));

    // Flipped byte in a verification (range) hash.
    let mut b = f.body.clone();
    b[term_offset(n_terms) + 5] ^= 1; // first verification record
    same_message(verify_body(&f, &b), 0);

    // Wrong unpacked_segment_bytes, start, end; out-of-range indices.
    for (field, value) in [
        (36usize, 1u32),
        (40, 1),
        (44, 2),
        (44, 10_000),
        (40, u32::MAX),
        (44, u32::MAX),
        (40, 4),
    ] {
        let mut b = f.body.clone();
        let at = term_offset(1) + field;
        b[at..at + 4].copy_from_slice(&value.to_le_bytes());
        match verify_body(&f, &b) {
            Err(XetError::TermDoesNotVerify { term, .. }) => assert_eq!(term, 1),
            Err(XetError::TooLarge(_)) => {}
            other => panic!("field {field} = {value}: {other:?}"),
        }
    }

    // A term naming a xorb Wharf does not have: the very same message as a bad hash.
    let mut b = f.body.clone();
    let at = term_offset(2);
    b[at..at + 32].copy_from_slice(compute_data_hash(b"nope").as_bytes());
    same_message(verify_body(&f, &b), 2);

    // Wrong file hash (every term fine).
    let mut b = f.body.clone();
    b[48] ^= 1;
    assert!(matches!(
        verify_body(&f, &b),
        Err(XetError::FileHashMismatch(_))
    ));

    // Terms reordered: each verifies, the file hash does not.
    let mut file = f.file.clone();
    file.terms.swap(0, 1);
    file.verification.swap(0, 1);
    assert!(matches!(
        verify_file(&file, |h| f.store.get(h)),
        Err(XetError::FileHashMismatch(_))
    ));

    // Verification list shorter than the terms.
    let mut file = f.file.clone();
    file.verification.pop();
    assert!(matches!(
        FileVerifier::new(&file),
        Err(XetError::BadShard(_))
    ));

    // A lookup that returns the wrong xorb for a hash is treated as unknown.
    let other = f
        .store
        .chunks
        .values()
        .find(|x| x.hash != f.file.terms[0].xorb)
        .expect("other");
    same_message(verify_file(&f.file, |_| Some(other)), 0);
}

#[test]
fn corrupted_xorb_uploads_are_rejected() {
    let mut data = det_bin();
    data.truncate(300_000);
    let packed = pack(&data).expect("pack");
    let x = &packed.xorbs[0];
    let body = &x.stored[..x.data_size as usize];
    // Any flipped byte in the chunk stream: error (bad header, undecodable or wrong hash).
    for at in (0..body.len())
        .step_by(997)
        .chain([0, 1, 4, 5, 7, 8, body.len() - 1])
    {
        let mut b = body.to_vec();
        b[at] ^= 0x10;
        assert!(ingest(&b, &x.hash).is_err(), "flip at {at}");
    }
    // The right bytes under another xorb's hash.
    let other = XetHash::from_merkle(compute_data_hash(b"x"));
    assert_eq!(ingest(body, &other).err(), Some(XetError::XorbHashMismatch));
    // Truncated at every chunk boundary but the last: a valid stream of a *different* xorb.
    for &(end, _) in &x.table.ends()[..x.num_chunks() - 1] {
        assert_eq!(
            ingest(&body[..end as usize], &x.hash).err(),
            Some(XetError::XorbHashMismatch)
        );
    }
}

/// Deterministic mutation fuzzing: thousands of corrupted shards, xorbs and fetch ranges must
/// give results or errors, never panics.
#[test]
fn mutations_never_panic() {
    let mut s: u64 = 0x0123_4567_89ab_cdef;
    let mut rand = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let extremes = [0u32, 1, 2, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, u32::MAX];

    let f = fixture();
    for _ in 0..3000 {
        let mut b = f.body.clone();
        for _ in 0..1 + rand() % 3 {
            let at = (rand() as usize) % b.len();
            if rand() % 2 == 0 {
                b[at] ^= 1 << (rand() % 8);
            } else {
                let at = at & !3;
                let v = extremes[(rand() as usize) % extremes.len()];
                let end = (at + 4).min(b.len());
                b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
            }
        }
        if rand() % 4 == 0 {
            let cut = (rand() as usize) % b.len();
            b.truncate(cut);
        }
        if let Ok(parsed) = parse_upload(&b) {
            for file in &parsed.files {
                if let Ok(size) = verify_file(file, |h| f.store.get(h)) {
                    // Anything that verifies must also plan and read back consistently.
                    let p =
                        plan(&file.terms, &f.store.tables(), None).expect("verified → plannable");
                    assert_eq!(p.content_length(), size);
                }
            }
        }
    }

    let x = &pack(&floats_bin()[..300_000]).expect("pack").xorbs[0];
    let body = &x.stored[..x.data_size as usize];
    for _ in 0..500 {
        let mut b = body.to_vec();
        let at = (rand() as usize) % b.len();
        b[at] = rand() as u8;
        let _ = ingest(&b, &x.hash);
        let mut d = ChunkDecoder::new();
        d.push(&b[(rand() as usize) % b.len()..]);
        while let Ok(Some(_)) = d.next_chunk() {}
        let _ = d.finish();
    }
    for _ in 0..500 {
        let a = rand() % 400_000;
        let end = if rand() % 2 == 0 {
            Some(rand() % 400_000)
        } else {
            None
        };
        let _ = plan(&f.file.terms, &f.store.tables(), Some((a, end)));
    }
}
