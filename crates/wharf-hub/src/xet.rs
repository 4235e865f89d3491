//! Xet storage (`docs/xet.md`): access tokens for the CAS, xorb and shard uploads, the
//! reconstruction answers and signed xorb range fetches that Xet clients download through.
//!
//! Rules kept here:
//! * Nothing is visible before it is verified: a xorb row exists only once its object is
//!   durable; a file is registered (and its sha256 linked to the token's repository) only after
//!   every term verified against stored xorbs and Wharf recomputed the sha256 from the bytes.
//! * Possession, not knowledge: a shard term must carry the range hash of the raw chunk hashes,
//!   which only a holder of the data can compute; raw chunk hashes never leave Wharf.
//! * Reading is per repository: a Xet token reads only files whose sha256 its repository owns,
//!   and a file it may not read answers exactly like a missing one.
//! * No existence oracles: a term naming an unknown xorb fails with the same message as a wrong
//!   verification hash, and xorb uploads always answer `was_inserted: true`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use wharf_blob::{ByteRange, ByteStream, Space};
use wharf_core::{Error, ErrorKind, Result, time::now_ms};
use wharf_meta::{NewXetFile, Repo, XetChunkRef, XetSource, XetTerm, XetVisibility, XetXorb};
use wharf_xet::limits::{
    DEDUP_KEY_TTL, FETCH_TTL, MAX_SHARD_BYTES, MAX_XORB_UPLOAD_BYTES, TOKEN_TTL,
};
use wharf_xet::recon::{ReconstructionV1, ReconstructionV2};
use wharf_xet::shard::{FileVerifier, ShardFile, UploadedShard};
use wharf_xet::token::{Scope, TokenClaims};
use wharf_xet::xorb::{self, XorbChunks};
use wharf_xet::{XetError, XetHash};

use crate::access::Need;
use crate::delegation::Principal;
use crate::xet_read::{self, term_of};
use crate::{Caller, Hub, RepoAddress, blocking};

pub use wharf_xet::token::Scope as XetScope;

/// What the token endpoints answer.
#[derive(Debug, Clone)]
pub struct XetTokenGrant {
    pub access_token: String,
    /// Expiry, epoch seconds.
    pub exp: i64,
    /// Base URL of the CAS API (`{public base}/api/xet`).
    pub cas_url: String,
}

/// A CAS request's verified Xet token and the repository it is bound to.
#[derive(Debug, Clone)]
pub struct XetCaller {
    pub repo: Repo,
    pub claims: TokenClaims,
    /// Whose repositories' Xet data dedup answers may reveal: what the token's user can read.
    pub visibility: XetVisibility,
}

/// Progress of a shard registration, for the v2 endpoint's NDJSON events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardProgress {
    Validating { verified: u64, total: u64 },
    Committing(&'static str),
}

/// A parsed (not yet verified) shard upload, with the memory reserved for it.
#[derive(Debug)]
pub struct ShardUpload {
    shard: UploadedShard,
    /// Held until the shard is registered or refused.
    memory: crate::MemoryReservation,
}

/// The answer of `GET /v1|v2/reconstructions/{file}`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum XetReconstruction {
    V1(ReconstructionV1),
    V2(ReconstructionV2),
}

/// The signed parameters of a fetch URL, as the client sent them back.
#[derive(Debug, Clone)]
pub struct XetFetchUrl {
    pub xorb: String,
    /// The signed byte range of the xorb's chunk stream (inclusive).
    pub range: (u64, u64),
    pub exp: i64,
    /// The repository and principal the URL was issued for: `{repo_id}.{principal}`.
    pub binding: String,
    pub sig: String,
}

/// A signed fetch: the xorb bytes to send back.
pub struct XetFetch {
    pub body: ByteStream,
    pub range: ByteRange,
    /// Bytes of the xorb's chunk stream (the total in `Content-Range`).
    pub data_size: u64,
}

/// Work bound of shard registration. Recomputing a new file's sha256 decodes every byte of it,
/// while a shard spends 96 bytes per term, so a tiny shard could name the same chunks over and
/// over. The chunks the new files of one shard reference, counted with repetition, may exceed
/// the distinct chunks they use at most this many times…
const MAX_CHUNK_REUSE: u64 = 64;
/// …plus this many references (about 4 GiB of repeated content at the average chunk size), so
/// that legitimately repetitive files (runs of zeros) still register.
const CHUNK_REUSE_ALLOWANCE: u64 = 1 << 16;
/// Stored footers (chunk hashes) kept per shard verification: terms mostly walk xorbs in order.
const FOOTER_CACHE: usize = 32;
/// Answer when a file is unknown or not readable by the token's repository: the same in both
/// cases.
const FILE_NOT_FOUND: &str = "Xet file not found";
/// The earliest a dedup miss is answered.
const DEDUP_MISS_FLOOR: std::time::Duration = std::time::Duration::from_millis(25);
/// Most xorbs described in one dedup answer.
const DEDUP_XORBS: i64 = 4;
/// Further xorbs of the files those belong to, per dedup answer (64 xorbs ≈ 4 GiB of a file,
/// an answer of about 3 MiB).
const DEDUP_SIBLING_XORBS: i64 = 64;

fn now_secs() -> i64 {
    now_ms() / 1000
}

fn not_found_file() -> Error {
    Error::new(ErrorKind::NotFound, FILE_NOT_FOUND)
}

/// Recently loaded chunk hashes of stored xorbs, keyed by hash (first in, first out).
struct FooterCache {
    entries: HashMap<XetHash, Arc<XorbChunks>>,
    order: VecDeque<XetHash>,
}

impl FooterCache {
    fn new() -> FooterCache {
        FooterCache {
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl Hub {
    // --- tokens ---------------------------------------------------------------------------

    /// `GET /api/{t}/{id}/xet-{read|write}-token/{rev}`: a short-lived token for the CAS, bound
    /// to this repository. Writing needs what a commit needs; reading what `resolve` needs.
    /// With `create_pr` the revision is not checked (the client sends `None`).
    pub async fn xet_token(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        scope: XetScope,
        create_pr: bool,
        base_url: &str,
    ) -> Result<XetTokenGrant> {
        let need = match scope {
            Scope::Read => Need::Read,
            Scope::Write => Need::Write,
        };
        let need = if need == Need::Read {
            Need::Download
        } else {
            need
        };
        let handle = self.repo(caller, addr, need).await?;
        let rev = if create_pr && scope == Scope::Write {
            rev.to_string()
        } else {
            self.resolve_revision(&handle, rev).await?
        };
        let exp = now_secs() + TOKEN_TTL.as_secs() as i64;
        let claims = TokenClaims {
            scope,
            repo_id: handle.repo.id,
            user_id: caller.user.as_ref().map(|u| u.id),
            token_id: caller.token_id,
            rev,
            exp,
        };
        Ok(XetTokenGrant {
            access_token: self.xet_signer.issue(&claims)?,
            exp,
            cas_url: format!("{}/api/xet", base_url.trim_end_matches('/')),
        })
    }

    /// Checks a CAS request's bearer token for `need`. The access decision is taken again now
    /// for the user and hub token it was issued to (visibility, membership, the gate or the
    /// token itself may have changed since); losing access, like a bad or expired token, is a
    /// 401 so that the client asks the hub for a new token and gets the hub's own answer.
    pub async fn xet_caller(&self, token: &str, need: XetScope) -> Result<XetCaller> {
        let claims = self.xet_signer.verify(token, now_secs())?;
        claims.require(need)?;
        let invalid = || Error::from(XetError::InvalidToken);
        let principal = Principal {
            user_id: claims.user_id,
            token_id: claims.token_id,
        };
        let repo_need = match need {
            Scope::Read => Need::Download,
            Scope::Write => Need::Write,
        };
        let (caller, repo) = self
            .recheck_delegation(principal, claims.repo_id, repo_need)
            .await?
            .ok_or_else(invalid)?;
        let visibility = XetVisibility {
            namespaces: caller.visible_namespaces(),
            see_all: caller.sees_everything(),
        };
        Ok(XetCaller {
            repo,
            claims,
            visibility,
        })
    }

    // --- xorb upload ----------------------------------------------------------------------

    /// `POST /v1/xorbs/default/{hash}`: verifies the chunk stream against `hash` (every chunk
    /// decompressed, bounded, and hashed), stores it durably with Wharf's footer, then records
    /// it. Re-uploading a known xorb is verified the same way and stores nothing new. `declared`
    /// is the request's `Content-Length`. The body's size (at most 64 MiB) is reserved from the
    /// server's memory budget before it is read, and it must arrive at a minimal pace.
    pub async fn xet_put_xorb(
        &self,
        xc: &XetCaller,
        hash: &str,
        body: ByteStream,
        declared: Option<u64>,
    ) -> Result<()> {
        xc.claims.require(Scope::Write)?;
        let expected = XetHash::parse(hash)?;
        let _slot = self.upload_slot(xc.claims.user_id.unwrap_or(0))?;
        let mut memory = self.reserve_memory(1 << 20).await?;
        let body = collect_body(body, declared, MAX_XORB_UPLOAD_BYTES, &mut memory).await?;
        let checked = body.clone();
        let verified = blocking(move || Ok(xorb::verify_upload(&checked, &expected)?)).await?;
        let chunks = verified.to_chunks();
        let parts = vec![
            body.slice(..verified.data_size as usize),
            Bytes::from(verified.footer),
        ];
        self.record_xorb(chunks, verified.raw_size, verified.data_size, parts)
            .await
    }

    /// Records a verified xorb, once: its bytes in the blob store, then its row and the chunks
    /// it offers for dedup. Shared by client uploads and the LFS-to-Xet conversion.
    pub(crate) async fn record_xorb(
        &self,
        chunks: XorbChunks,
        raw_size: u64,
        data_size: u32,
        parts: Vec<Bytes>,
    ) -> Result<()> {
        let key = chunks.hash.to_string();
        // A touch, not a read: garbage collection keeps a xorb touched after its cutoff, and a
        // xorb whose row it already removed is stored again below (see storage.rs).
        if self.meta.touch_xet_xorb(&key, now_ms()).await? {
            return Ok(());
        }
        let dedup: Vec<XetChunkRef> = chunks
            .dedup_eligible()
            .into_iter()
            .map(|(index, chunk)| XetChunkRef {
                chunk_hash: chunk.to_string(),
                xorb_hash: key.clone(),
                chunk_index: i64::from(index),
            })
            .collect();
        let row = XetXorb {
            hash: key.clone(),
            num_chunks: chunks.num_chunks() as i64,
            raw_size: raw_size as i64,
            data_size: i64::from(data_size),
            stored_size: chunks.stored_size as i64,
            chunk_ends: chunks.table.to_blob(),
            created_at: now_ms(),
        };
        self.blobs
            .put_checked(Space::Xorb, &key, parts.clone())
            .await?;
        self.meta.insert_xet_xorb(&row, &dedup).await?;
        // `put_checked` keeps a file already there; if that was a stray (no row) that garbage
        // collection took away before the row above existed, store it again.
        if self.blobs.size_keyed(Space::Xorb, &key).await?.is_none() {
            self.blobs.put_checked(Space::Xorb, &key, parts).await?;
        }
        Ok(())
    }

    // --- shard upload ---------------------------------------------------------------------

    /// Reads and parses an uploaded shard (at most 64 MiB; malformed input is a `BadRequest`).
    /// `declared` is the request's `Content-Length`.
    pub async fn xet_parse_shard(
        &self,
        body: ByteStream,
        declared: Option<u64>,
    ) -> Result<ShardUpload> {
        let mut memory = self.reserve_memory(1 << 20).await?;
        let body = collect_body(body, declared, MAX_SHARD_BYTES, &mut memory).await?;
        let parsed = blocking(move || Ok(wharf_xet::shard::parse_upload(&body)?)).await?;
        Ok(ShardUpload {
            shard: parsed,
            memory,
        })
    }

    /// Verifies every file of the shard and registers them for the token's repository: each
    /// term against the stored xorb it names, the file hash, then the sha256 recomputed from
    /// the reconstructed bytes (compared with the one the shard declares). Only when everything
    /// verified are the files recorded and their (sha256, size) linked to the repository, in
    /// one transaction, so the following commit may reference them. Returns whether anything
    /// was new (the `result` of the answer).
    pub async fn xet_register_shard(
        &self,
        xc: &XetCaller,
        upload: ShardUpload,
        progress: &(dyn Fn(ShardProgress) + Send + Sync),
    ) -> Result<bool> {
        xc.claims.require(Scope::Write)?;
        let ShardUpload {
            shard,
            memory: _memory,
        } = upload;
        let _slot = self
            .xet_slots
            .acquire()
            .await
            .map_err(|_| Error::internal("Xet verification slots closed"))?;

        // Rows of the xorbs the terms name; unknown ones fail their term, like a bad hash.
        let term_xorbs: Vec<String> = shard
            .referenced_xorbs()
            .iter()
            .map(XetHash::to_string)
            .collect();
        let rows: HashMap<XetHash, XetXorb> = self
            .meta
            .xet_xorbs(&term_xorbs)
            .await?
            .into_iter()
            .filter_map(|r| Some((XetHash::parse(&r.hash).ok()?, r)))
            .collect();

        let total = shard.total_terms() as u64;
        let mut verified = 0u64;
        progress(ShardProgress::Validating { verified, total });
        let mut cache = FooterCache::new();
        let mut first_chunks = HashMap::new();
        for file in &shard.files {
            let mut v = FileVerifier::new(file)?;
            let mut index = 0usize;
            while let Some(term) = v.next_term() {
                let chunks = match rows.get(&term.xorb) {
                    Some(row) => Some(self.xorb_chunks(&mut cache, row).await?),
                    None => None,
                };
                v.verify_next(chunks.as_deref())?;
                if index == 0
                    && let Some(c) = &chunks
                    && let Some(h) = c.chunk_hashes.get(term.start as usize)
                {
                    first_chunks.insert(file.file_hash, (term.xorb, term.start, *h));
                }
                index += 1;
                verified += 1;
                if verified.is_multiple_of(64) {
                    progress(ShardProgress::Validating { verified, total });
                    tokio::task::yield_now().await;
                }
            }
            v.finish()?;
        }
        progress(ShardProgress::Validating { verified, total });

        // Known files keep their verified sha256; new ones are reconstructed and hashed.
        let mut known = HashMap::new();
        let mut fresh = Vec::new();
        for file in &shard.files {
            match self.meta.xet_file(&file.file_hash.to_string()).await? {
                Some(f) => {
                    known.insert(file.file_hash, (f.sha256, f.size));
                }
                None => fresh.push(file),
            }
        }
        check_reuse(&fresh)?;
        let mut new_files = Vec::with_capacity(shard.files.len());
        for file in &shard.files {
            let (sha256, size) = match known.remove(&file.file_hash) {
                Some(done) => done,
                None => {
                    let terms = file.terms.clone();
                    let size = file.declared_size();
                    (self.sha256_of_terms(&terms).await?, size as i64)
                }
            };
            if let Some(declared) = &file.sha256
                && declared != &sha256
            {
                return Err(Error::bad_request(format!(
                    "file {} does not have the sha256 the shard declares",
                    file.file_hash
                )));
            }
            new_files.push(NewXetFile {
                file_hash: file.file_hash.to_string(),
                sha256,
                size,
                source: XetSource::Xet,
                terms: file
                    .terms
                    .iter()
                    .map(|t| XetTerm {
                        xorb_hash: t.xorb.to_string(),
                        chunk_start: i64::from(t.start),
                        chunk_end: i64::from(t.end),
                        raw_size: i64::from(t.raw_len),
                    })
                    .collect(),
                created_at: now_ms(),
            });
        }
        let dedup: Vec<XetChunkRef> = first_chunks
            .into_values()
            .map(|(xorb, index, chunk)| XetChunkRef {
                chunk_hash: XetHash::from_merkle(chunk).to_string(),
                xorb_hash: xorb.to_string(),
                chunk_index: i64::from(index),
            })
            .collect();

        progress(ShardProgress::Committing("uploading"));
        let outcome = self
            .meta
            .register_xet_files(Some(xc.repo.id), &new_files, &dedup)
            .await?;
        progress(ShardProgress::Committing("syncing"));
        Ok(outcome.files_added + outcome.links_added > 0)
    }

    /// The verified chunk hashes of a stored xorb, from its footer (cached per request).
    async fn xorb_chunks(&self, cache: &mut FooterCache, row: &XetXorb) -> Result<Arc<XorbChunks>> {
        let hash = XetHash::parse(&row.hash)
            .map_err(|_| Error::internal(format!("stored xorb hash is corrupt: {}", row.hash)))?;
        if let Some(c) = cache.entries.get(&hash) {
            return Ok(c.clone());
        }
        let (start, end) = (row.data_size as u64, row.stored_size as u64);
        if end <= start {
            return Err(Error::internal(format!("xorb {hash} has no footer")));
        }
        let mut tail = Vec::with_capacity((end - start) as usize);
        let mut s = self
            .blobs
            .read_keyed(
                Space::Xorb,
                &row.hash,
                Some(ByteRange {
                    start,
                    end: end - 1,
                }),
            )
            .await?;
        while let Some(piece) = s.next().await {
            tail.extend_from_slice(&piece.map_err(Error::internal)?);
        }
        let chunks = Arc::new(blocking(move || Ok(xorb::footer_from_tail(&tail, &hash)?)).await?);
        if cache.order.len() >= FOOTER_CACHE
            && let Some(old) = cache.order.pop_front()
        {
            cache.entries.remove(&old);
        }
        cache.order.push_back(hash);
        cache.entries.insert(hash, chunks.clone());
        Ok(chunks)
    }

    /// The sha256 (hex) of the file made of `terms`, recomputed from the stored xorbs.
    async fn sha256_of_terms(&self, terms: &[wharf_xet::shard::Term]) -> Result<String> {
        let plan = xet_read::plan_file(self.meta.as_ref(), terms, None).await?;
        let mut stream = xet_read::plan_stream(self.blobs.clone(), &plan);
        let mut hasher = Sha256::new();
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            hasher = blocking(move || {
                hasher.update(&piece);
                Ok(hasher)
            })
            .await?;
        }
        Ok(hex::encode(hasher.finalize()))
    }

    // --- global dedup ---------------------------------------------------------------------

    /// `GET /v1/chunks/{prefix}/{chunk}`: a shard describing the visible xorbs that hold this
    /// chunk, their chunk hashes keyed with a fresh random key (the client keys its own to find
    /// matches; raw chunk hashes never leave Wharf). A chunk unknown and a chunk only in xorbs
    /// the caller may not see answer the same 404.
    pub async fn xet_dedup(&self, xc: &XetCaller, prefix: &str, chunk: &str) -> Result<Vec<u8>> {
        if !matches!(prefix, "default" | "default-merkledb") {
            return Err(Error::bad_request(format!("Unknown prefix '{prefix}'")));
        }
        let chunk = XetHash::parse(chunk)?;
        let started = tokio::time::Instant::now();
        let hashes = self
            .meta
            .xet_dedup_lookup(&chunk.to_string(), &xc.visibility, DEDUP_XORBS)
            .await?;
        if hashes.is_empty() {
            // A chunk stored only where the caller may not look costs the lookup more than an
            // unknown one; answering both no sooner than a fixed floor keeps the difference
            // (whether anyone stored this data) out of the timing.
            tokio::time::sleep_until(started + DEDUP_MISS_FLOOR).await;
            return Err(Error::new(ErrorKind::NotFound, "Not found"));
        }
        // Like the Hub, which answers with the whole shard of the upload that holds the chunk:
        // one match (a file's first chunk is always queried) dedups the rest of that file, not
        // only the xorb it is in. Same visibility rule, so nothing more is revealed.
        let mut hashes = hashes;
        for sibling in self
            .meta
            .xet_dedup_siblings(&hashes, &xc.visibility, DEDUP_SIBLING_XORBS)
            .await?
        {
            if !hashes.contains(&sibling) {
                hashes.push(sibling);
            }
        }
        let rows = self.meta.xet_xorbs(&hashes).await?;
        let mut cache = FooterCache::new();
        let mut xorbs = Vec::with_capacity(rows.len());
        for row in &rows {
            xorbs.push(XorbChunks::clone(
                &*self.xorb_chunks(&mut cache, row).await?,
            ));
        }
        let mut key = [0u8; 32];
        while key == [0u8; 32] {
            getrandom::fill(&mut key).map_err(Error::internal)?;
        }
        blocking(move || Ok(wharf_xet::dedup::answer(&xorbs, key, DEDUP_KEY_TTL)?)).await
    }

    // --- downloads ------------------------------------------------------------------------

    /// `GET /v1|v2/reconstructions/{file}`: which xorb chunk ranges make up bytes `range` of a
    /// file the token's repository owns, with one signed fetch URL per merged range.
    pub async fn xet_reconstruction(
        &self,
        xc: &XetCaller,
        file_hash: &str,
        range: Option<(u64, Option<u64>)>,
        base_url: &str,
        v2: bool,
    ) -> Result<XetReconstruction> {
        let hash = XetHash::parse(file_hash)?;
        let key = hash.to_string();
        if !self.meta.repo_has_xet_file(xc.repo.id, &key).await? {
            return Err(not_found_file());
        }
        let file = self.meta.xet_file(&key).await?.ok_or_else(not_found_file)?;
        let terms = file.terms.iter().map(term_of).collect::<Result<Vec<_>>>()?;
        let plan = xet_read::plan_file(self.meta.as_ref(), &terms, range).await?;
        let exp = now_secs() + FETCH_TTL.as_secs() as i64;
        let base = base_url.trim_end_matches('/');
        let binding = fetch_binding(xc);
        let sign = |xorb: &XetHash, (a, b): (u64, u64)| {
            let sig = self.xet_signer.fetch_sig(xorb, a, b, exp, &binding);
            format!("{base}/api/xet/fetch/{xorb}?r={a}-{b}&exp={exp}&g={binding}&sig={sig}")
        };
        Ok(if v2 {
            XetReconstruction::V2(ReconstructionV2::from_plan(&plan, sign))
        } else {
            XetReconstruction::V1(ReconstructionV1::from_plan(&plan, sign))
        })
    }

    /// `GET /api/xet/fetch/{xorb}?r=a-b&exp=…&sig=…`: bytes of a stored xorb's chunk stream,
    /// within the signed range. The URL authorises itself (clients send no token with it).
    /// `requested` is the request's `Range` (start, optional inclusive end); it must lie inside
    /// the signed range.
    pub async fn xet_fetch(
        &self,
        url: &XetFetchUrl,
        requested: Option<(u64, Option<u64>)>,
    ) -> Result<XetFetch> {
        let refused = || Error::forbidden("Invalid or expired fetch URL");
        let hash = XetHash::parse(&url.xorb).map_err(|_| refused())?;
        let (a, b) = url.range;
        if !self
            .xet_signer
            .verify_fetch(&hash, a, b, url.exp, &url.binding, &url.sig, now_secs())
        {
            return Err(refused());
        }
        let (repo_id, principal) = parse_fetch_binding(&url.binding).ok_or_else(refused)?;
        if self
            .recheck_delegation(principal, repo_id, Need::Download)
            .await?
            .is_none()
        {
            return Err(refused());
        }
        let (start, end) = match requested {
            None => (a, b),
            Some((s, e)) => (s, e.unwrap_or(b)),
        };
        if start < a || end > b || end < start {
            return Err(Error::forbidden(
                "The requested range is outside the signed one",
            ));
        }
        let key = hash.to_string();
        let row = self
            .meta
            .xet_xorb(&key)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "Not found"))?;
        let data_size = row.data_size as u64;
        if end >= data_size {
            return Err(refused());
        }
        let range = ByteRange { start, end };
        let body = self
            .blobs
            .read_keyed(Space::Xorb, &key, Some(range))
            .await?;
        Ok(XetFetch {
            body,
            range,
            data_size,
        })
    }

    /// The hash of the registered Xet file holding LFS object `oid`, if any.
    pub(crate) async fn xet_hash_of(&self, oid: &str) -> Result<Option<String>> {
        Ok(self
            .meta
            .xet_hashes_for_sha256s(&[oid.to_string()])
            .await?
            .remove(oid))
    }

    /// Streams (a range of) the registered Xet file `file_hash`.
    pub(crate) async fn read_xet_file(
        &self,
        file_hash: &str,
        range: Option<ByteRange>,
    ) -> Result<ByteStream> {
        let file = self
            .meta
            .xet_file(file_hash)
            .await?
            .ok_or_else(|| Error::entry_not_found(file_hash))?;
        let terms = file.terms.iter().map(term_of).collect::<Result<Vec<_>>>()?;
        let range = range.map(|r| (r.start, Some(r.end)));
        let plan = xet_read::plan_file(self.meta.as_ref(), &terms, range).await?;
        Ok(xet_read::as_byte_stream(xet_read::plan_stream(
            self.blobs.clone(),
            &plan,
        )))
    }
}

/// What a fetch URL is bound to: the token's repository and principal, `{repo_id}.{principal}`.
fn fetch_binding(xc: &XetCaller) -> String {
    let principal = Principal {
        user_id: xc.claims.user_id,
        token_id: xc.claims.token_id,
    };
    format!("{}.{}", xc.repo.id, principal.encode())
}

fn parse_fetch_binding(binding: &str) -> Option<(i64, Principal)> {
    let (repo, principal) = binding.split_once('.')?;
    Some((repo.parse().ok()?, Principal::decode(principal)?))
}

/// Reads a whole request body of at most `limit` bytes into one buffer. It must keep the
/// minimal upload pace (`uploads::paced`), and `memory` grows with what was read, so a slow
/// client holds only what it sent. More than `limit` is `PayloadTooLarge`; an interrupted or
/// too slow body is a `BadRequest`.
async fn collect_body(
    body: ByteStream,
    declared: Option<u64>,
    limit: usize,
    memory: &mut crate::MemoryReservation,
) -> Result<Bytes> {
    let too_large = || {
        Error::new(
            ErrorKind::PayloadTooLarge,
            format!("Request body larger than {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = crate::uploads::paced(body);
    let mut buf = Vec::new();
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| Error::bad_request(format!("Upload interrupted: {e}")))?;
        if buf.len() + piece.len() > limit {
            return Err(too_large());
        }
        memory.cover((buf.len() + piece.len()) as u64).await?;
        if buf.is_empty() {
            // Sized once the client proved it sends: an announced length costs nothing before.
            buf.reserve(declared.map_or(0, |n| n as usize).min(limit));
        }
        buf.extend_from_slice(&piece);
    }
    Ok(Bytes::from(buf))
}

/// Refuses a shard whose new files repeat their chunks far more than real files do (see
/// [`MAX_CHUNK_REUSE`]). Called after verification, so every range lies inside its xorb.
fn check_reuse(files: &[&ShardFile]) -> Result<()> {
    let mut total = 0u64;
    let mut ranges: HashMap<XetHash, Vec<(u32, u32)>> = HashMap::new();
    let mut seen = HashSet::new();
    for f in files {
        if !seen.insert(f.file_hash) {
            continue;
        }
        for t in &f.terms {
            total += u64::from(t.end.saturating_sub(t.start));
            ranges.entry(t.xorb).or_default().push((t.start, t.end));
        }
    }
    let mut distinct = 0u64;
    for rs in ranges.values_mut() {
        rs.sort_unstable();
        let mut cur: Option<(u32, u32)> = None;
        for &(s, e) in rs.iter() {
            match cur {
                Some((cs, ce)) if s <= ce => cur = Some((cs, ce.max(e))),
                Some((cs, ce)) => {
                    distinct += u64::from(ce - cs);
                    cur = Some((s, e));
                }
                None => cur = Some((s, e)),
            }
        }
        if let Some((cs, ce)) = cur {
            distinct += u64::from(ce - cs);
        }
    }
    if total > distinct.saturating_mul(MAX_CHUNK_REUSE) + CHUNK_REUSE_ALLOWANCE {
        return Err(Error::bad_request(format!(
            "the shard's files reference {total} chunks but only {distinct} distinct ones"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::test_support::{collect, hub, user_caller};
    use crate::{CommitHeader, CommitOp, SettingsUpdate};
    use wharf_core::{RepoType, Role};
    use wharf_xet::chunker::{PackedFile, pack};
    use wharf_xet::shard::{build_upload, describe_file};

    const BASE: &str = "http://hub.test";

    fn data(n: usize, seed: u64) -> Vec<u8> {
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

    /// The body hf_xet uploads for a xorb: its chunk stream without the footer.
    fn upload_body(x: &wharf_xet::xorb::IngestedXorb) -> Bytes {
        Bytes::copy_from_slice(&x.stored[..x.data_size as usize])
    }

    /// A request body as it arrives: in pieces.
    fn stream(b: Bytes) -> ByteStream {
        let pieces: Vec<std::io::Result<Bytes>> = b
            .chunks(100_000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(pieces).boxed()
    }

    async fn put_xorb(hub: &Hub, xc: &XetCaller, hash: &str, body: Bytes) -> Result<()> {
        let n = body.len() as u64;
        hub.xet_put_xorb(xc, hash, stream(body), Some(n)).await
    }

    async fn parse(hub: &Hub, body: Vec<u8>) -> Result<ShardUpload> {
        hub.xet_parse_shard(stream(Bytes::from(body)), None).await
    }

    /// The shard a client sends for a packed file (terms and verification as it computes them).
    fn shard_of(packed: &PackedFile) -> (ShardFile, Vec<u8>) {
        let chunks: Vec<XorbChunks> = packed.xorbs.iter().map(|x| x.to_chunks()).collect();
        let parts: Vec<(&XorbChunks, u32, u32)> = packed
            .terms
            .iter()
            .zip(&chunks)
            .map(|(t, c)| (c, t.start, t.end))
            .collect();
        let file = describe_file(&parts, Some(packed.sha256.clone())).expect("describe");
        let refs: Vec<&XorbChunks> = chunks.iter().collect();
        let body = build_upload(std::slice::from_ref(&file), &refs).expect("shard");
        (file, body)
    }

    async fn write_caller(hub: &Hub, caller: &Caller, repo: &str) -> XetCaller {
        let addr = RepoAddress::new(RepoType::Model, caller.name().expect("user"), repo);
        let grant = hub
            .xet_token(caller, &addr, "main", Scope::Write, false, BASE)
            .await
            .expect("write token");
        assert_eq!(grant.cas_url, "http://hub.test/api/xet");
        hub.xet_caller(&grant.access_token, Scope::Write)
            .await
            .expect("xet caller")
    }

    async fn upload(hub: &Hub, xc: &XetCaller, packed: &PackedFile) -> bool {
        for x in &packed.xorbs {
            put_xorb(hub, xc, &x.hash.to_string(), upload_body(x))
                .await
                .expect("xorb");
        }
        let (_, body) = shard_of(packed);
        let upload = parse(hub, body).await.expect("parse");
        hub.xet_register_shard(xc, upload, &|_| {})
            .await
            .expect("shard")
    }

    #[tokio::test]
    async fn upload_commit_and_read_back() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        hub.create_repo(&alice, RepoType::Model, None, "m", true)
            .await
            .expect("repo");
        let xc = write_caller(&hub, &alice, "m").await;
        let content = data(700_000, 7);
        let packed = pack(&content).expect("pack");
        assert!(upload(&hub, &xc, &packed).await, "something new");
        assert!(!upload(&hub, &xc, &packed).await, "idempotent: nothing new");

        // The commit's ownership check passes for the sha256 the shard registered.
        let addr = RepoAddress::new(RepoType::Model, "alice", "m");
        let ops = vec![CommitOp::LfsFile {
            path: "w.bin".into(),
            oid: packed.sha256.clone(),
            size: Some(content.len() as i64),
        }];
        hub.commit(&alice, &addr, "main", CommitHeader::default(), ops, false)
            .await
            .expect("commit");

        // resolve reconstructs from the xorbs (no LFS blob exists), whole and ranged.
        let (_, file) = hub
            .resolve_file(&alice, &addr, "main", "w.bin")
            .await
            .expect("resolve");
        let file = file.expect("exists");
        assert!(matches!(file.source, crate::FileSource::Xet { .. }));
        assert_eq!(file.xet_hash, Some(packed.file_hash.to_string()));
        assert_eq!(file.size, content.len() as u64);
        assert_eq!(
            collect(hub.read_file(&file, None).await.expect("read")).await,
            content
        );
        for (a, b) in [
            (0u64, 0u64),
            (100, 199),
            (65_000, 300_123),
            (699_990, 699_999),
        ] {
            let part = hub
                .read_file(&file, Some(ByteRange { start: a, end: b }))
                .await
                .expect("range");
            assert_eq!(
                collect(part).await,
                content[a as usize..=b as usize],
                "{a}-{b}"
            );
        }
        // The tree listing knows the Xet hash.
        let page = hub
            .tree(&alice, &addr, "main", "", false, false, 0, 100)
            .await
            .expect("tree");
        assert_eq!(
            page.xet_hashes.get(&packed.sha256),
            Some(&packed.file_hash.to_string())
        );
    }

    #[tokio::test]
    async fn tokens_follow_repository_access() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let bob = user_caller(&hub, "bob").await;
        hub.create_repo(&alice, RepoType::Model, None, "secret", true)
            .await
            .expect("repo");
        let addr = RepoAddress::new(RepoType::Model, "alice", "secret");
        // Bob sees nothing: both scopes answer like a missing repository.
        for scope in [Scope::Read, Scope::Write] {
            let e = hub
                .xet_token(&bob, &addr, "main", scope, false, BASE)
                .await
                .expect_err("bob");
            assert_eq!(e.kind, ErrorKind::RepoNotFound);
        }
        // Unknown revision.
        let e = hub
            .xet_token(&alice, &addr, "nope", Scope::Read, false, BASE)
            .await
            .expect_err("rev");
        assert_eq!(e.kind, ErrorKind::RevisionNotFound);
        // PR uploads skip the revision check.
        hub.xet_token(&alice, &addr, "None", Scope::Write, true, BASE)
            .await
            .expect("create_pr");
        // A read-only hub token gets no write token.
        let mut reader = alice.clone();
        reader.scope = Some(Role::Read);
        let e = hub
            .xet_token(&reader, &addr, "main", Scope::Write, false, BASE)
            .await
            .expect_err("read only");
        assert_eq!(e.kind, ErrorKind::Forbidden);

        // A read token cannot write; garbage is a 401.
        let read = hub
            .xet_token(&alice, &addr, "main", Scope::Read, false, BASE)
            .await
            .expect("read");
        let e = hub
            .xet_caller(&read.access_token, Scope::Write)
            .await
            .expect_err("scope");
        assert_eq!(e.kind, ErrorKind::Forbidden);
        let e = hub
            .xet_caller("hf_not_a_xet_token", Scope::Read)
            .await
            .expect_err("garbage");
        assert_eq!(e.kind, ErrorKind::Unauthorized);

        // Tokens stop working once the repository is gone.
        hub.delete_repo(&alice, &addr).await.expect("delete");
        let e = hub
            .xet_caller(&read.access_token, Scope::Read)
            .await
            .expect_err("deleted");
        assert_eq!(e.kind, ErrorKind::Unauthorized);
    }

    #[tokio::test]
    async fn anonymous_read_tokens_lose_access_when_the_repo_turns_private() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        hub.create_repo(&alice, RepoType::Model, None, "open", false)
            .await
            .expect("repo");
        let addr = RepoAddress::new(RepoType::Model, "alice", "open");
        let grant = hub
            .xet_token(
                &Caller::anonymous(),
                &addr,
                "main",
                Scope::Read,
                false,
                BASE,
            )
            .await
            .expect("anonymous read");
        hub.xet_caller(&grant.access_token, Scope::Read)
            .await
            .expect("valid");
        hub.update_settings(
            &alice,
            &addr,
            SettingsUpdate {
                private: Some(true),
                gated: None,
            },
        )
        .await
        .expect("private");
        let e = hub
            .xet_caller(&grant.access_token, Scope::Read)
            .await
            .expect_err("now private");
        assert_eq!(e.kind, ErrorKind::Unauthorized);
    }

    #[tokio::test]
    async fn corrupt_xorbs_and_shards_store_nothing() {
        let (dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        hub.create_repo(&alice, RepoType::Model, None, "m", false)
            .await
            .expect("repo");
        let xc = write_caller(&hub, &alice, "m").await;
        let content = data(300_000, 3);
        let packed = pack(&content).expect("pack");
        let x = &packed.xorbs[0];
        let key = x.hash.to_string();

        // A flipped byte, a truncated body, another xorb's hash: 400 and nothing stored.
        let mut flipped = upload_body(x).to_vec();
        flipped[200] ^= 0x55;
        let body = upload_body(x);
        let other = XetHash::from_merkle(wharf_xet::MerkleHash::default()).to_string();
        for (hash, bad) in [
            (key.as_str(), Bytes::from(flipped)),
            (key.as_str(), body.slice(..body.len() - 3)),
            (other.as_str(), body.clone()),
        ] {
            let e = put_xorb(&hub, &xc, hash, bad).await.expect_err("bad xorb");
            assert_eq!(e.kind, ErrorKind::BadRequest);
        }
        let e = put_xorb(&hub, &xc, "ABC", body.clone())
            .await
            .expect_err("bad hash");
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(hub.meta.xet_xorb(&key).await.expect("row").is_none());
        let xorbs = dir.path().join("data/xet/xorbs");
        assert_eq!(walk(&xorbs), 0, "no object stored");

        // A shard whose xorb was never uploaded and one with a wrong verification hash fail
        // with the same message: nothing says whether the xorb exists.
        let (file, shard) = shard_of(&packed);
        let unknown = hub
            .xet_register_shard(
                &xc,
                parse(&hub, shard.clone()).await.expect("parse"),
                &|_| {},
            )
            .await
            .expect_err("unknown xorb");
        put_xorb(&hub, &xc, &key, body).await.expect("good xorb");
        let mut forged = file.clone();
        forged.verification[0] = wharf_xet::MerkleHash::default();
        let forged_body = build_upload(&[forged], &[]).expect("shard");
        let wrong = hub
            .xet_register_shard(&xc, parse(&hub, forged_body).await.expect("parse"), &|_| {})
            .await
            .expect_err("wrong verification");
        assert_eq!(unknown.kind, ErrorKind::BadRequest);
        assert_eq!(unknown.message, wrong.message);

        // A shard declaring another sha256 than its bytes have.
        let mut lying = file.clone();
        lying.sha256 = Some("0".repeat(64));
        let lying_body = build_upload(&[lying], &[]).expect("shard");
        let e = hub
            .xet_register_shard(&xc, parse(&hub, lying_body).await.expect("parse"), &|_| {})
            .await
            .expect_err("sha256");
        assert_eq!(e.kind, ErrorKind::BadRequest);

        // Garbage is refused by the parser.
        let e = parse(&hub, b"not a shard at all, not even close......".to_vec())
            .await
            .expect_err("garbage");
        assert_eq!(e.kind, ErrorKind::BadRequest);
        // Bodies over the limits are refused while they are read.
        let e = parse(&hub, vec![0u8; MAX_SHARD_BYTES + 1])
            .await
            .expect_err("too large");
        assert_eq!(e.kind, ErrorKind::PayloadTooLarge);
        let e = hub
            .xet_put_xorb(&xc, &key, stream(Bytes::new()), Some(u64::MAX))
            .await
            .expect_err("declared too large");
        assert_eq!(e.kind, ErrorKind::PayloadTooLarge);

        // None of it registered anything or linked anything to the repository.
        assert!(
            hub.meta
                .xet_file(&packed.file_hash.to_string())
                .await
                .expect("file")
                .is_none()
        );
        assert_eq!(
            hub.meta
                .repo_lfs_object(xc.repo.id, &packed.sha256)
                .await
                .expect("link"),
            None
        );
        assert_eq!(
            hub.meta
                .repo_lfs_object(xc.repo.id, &"0".repeat(64))
                .await
                .expect("link"),
            None
        );
    }

    fn walk(dir: &std::path::Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() { walk(&p) } else { 1 }
            })
            .sum()
    }

    #[tokio::test]
    async fn reconstruction_and_fetch_are_per_repository() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let bob = user_caller(&hub, "bob").await;
        hub.create_repo(&alice, RepoType::Model, None, "private", true)
            .await
            .expect("repo");
        hub.create_repo(&bob, RepoType::Model, None, "own", false)
            .await
            .expect("repo");
        let content = data(500_000, 11);
        let packed = pack(&content).expect("pack");
        let alice_w = write_caller(&hub, &alice, "private").await;
        upload(&hub, &alice_w, &packed).await;
        let file = packed.file_hash.to_string();

        let read = |caller: Caller, ns: &'static str, name: &'static str| {
            let hub = &hub;
            async move {
                let addr = RepoAddress::new(RepoType::Model, ns, name);
                let g = hub
                    .xet_token(&caller, &addr, "main", Scope::Read, false, BASE)
                    .await
                    .expect("token");
                hub.xet_caller(&g.access_token, Scope::Read)
                    .await
                    .expect("caller")
            }
        };
        let alice_r = read(alice.clone(), "alice", "private").await;
        let bob_r = read(bob.clone(), "bob", "own").await;

        // Alice reconstructs: one term, one fetch of the whole chunk stream.
        let XetReconstruction::V2(v2) = hub
            .xet_reconstruction(&alice_r, &file, Some((0, Some(1 << 40))), BASE, true)
            .await
            .expect("v2")
        else {
            panic!("v2 answer expected");
        };
        assert_eq!(v2.terms.len(), 1);
        let fetches = v2.xorbs.values().next().expect("fetch");
        let url = &fetches[0].url;
        let (a, b) = (
            fetches[0].ranges[0].bytes.start,
            fetches[0].ranges[0].bytes.end,
        );
        assert!(url.starts_with("http://hub.test/api/xet/fetch/"));
        let XetReconstruction::V1(v1) = hub
            .xet_reconstruction(&alice_r, &file, None, BASE, false)
            .await
            .expect("v1")
        else {
            panic!("v1 answer expected");
        };
        assert_eq!(v1.terms, v2.terms);
        let e = hub
            .xet_reconstruction(&alice_r, &file, Some((500_000, None)), BASE, true)
            .await
            .expect_err("416");
        assert_eq!(e.kind, ErrorKind::RangeNotSatisfiable);

        // Bob, with a valid token for his own repo, gets exactly what a missing file gets.
        let missing = XetHash::from_merkle(wharf_xet::MerkleHash::default()).to_string();
        let theirs = hub
            .xet_reconstruction(&bob_r, &file, None, BASE, true)
            .await
            .expect_err("not bob's");
        let nothing = hub
            .xet_reconstruction(&bob_r, &missing, None, BASE, true)
            .await
            .expect_err("missing");
        assert_eq!(
            (theirs.kind, &theirs.message),
            (nothing.kind, &nothing.message)
        );
        assert_eq!(theirs.kind, ErrorKind::NotFound);

        // The signed URL fetches exactly its range, and nothing else.
        let query: HashMap<&str, &str> = url
            .split_once('?')
            .expect("query")
            .1
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let xorb = packed.xorbs[0].hash.to_string();
        let exp: i64 = query["exp"].parse().expect("exp");
        let sig = query["sig"];
        let binding = query["g"].to_string();
        let url_of = |range: (u64, u64), exp: i64, sig: &str| XetFetchUrl {
            xorb: xorb.clone(),
            range,
            exp,
            binding: binding.clone(),
            sig: sig.to_string(),
        };
        let f = hub
            .xet_fetch(&url_of((a, b), exp, sig), Some((a, Some(b))))
            .await
            .expect("fetch");
        let physical = collect(f.body).await;
        assert_eq!(physical, packed.xorbs[0].stored[a as usize..=b as usize]);
        assert_eq!(
            wharf_xet::xorb::decode_chunks(&physical).expect("decode"),
            content
        );
        for (signed, requested, exp) in [
            ((a, b + 1), Some((a, Some(b))), exp), // tampered range
            ((a, b), Some((a, Some(b + 1))), exp), // Range beyond the signed one
            ((a, b), Some((b, Some(a))), exp),     // backwards
            ((a, b), None, exp + 1),               // tampered expiry
        ] {
            let e = hub
                .xet_fetch(&url_of(signed, exp, sig), requested)
                .await
                .err()
                .expect("refused");
            assert_eq!(e.kind, ErrorKind::Forbidden);
        }
        let expired = hub
            .xet_signer
            .fetch_sig(&packed.xorbs[0].hash, a, b, 1, &binding);
        let e = hub
            .xet_fetch(&url_of((a, b), 1, &expired), None)
            .await
            .err()
            .expect("expired");
        assert_eq!(e.kind, ErrorKind::Forbidden);
        // A validly signed range reaching into the footer is refused too.
        let stored = packed.xorbs[0].stored.len() as u64;
        let into_footer =
            hub.xet_signer
                .fetch_sig(&packed.xorbs[0].hash, 0, stored - 1, exp, &binding);
        let e = hub
            .xet_fetch(&url_of((0, stored - 1), exp, &into_footer), None)
            .await
            .err()
            .expect("footer");
        assert_eq!(e.kind, ErrorKind::Forbidden);
    }

    #[tokio::test]
    async fn dedup_answers_only_what_the_caller_can_read() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let bob = user_caller(&hub, "bob").await;
        hub.create_repo(&alice, RepoType::Model, None, "private", true)
            .await
            .expect("repo");
        hub.create_repo(&alice, RepoType::Model, None, "other", true)
            .await
            .expect("repo");
        hub.create_repo(&bob, RepoType::Model, None, "own", false)
            .await
            .expect("repo");
        let packed = pack(&data(400_000, 5)).expect("pack");
        let alice_w = write_caller(&hub, &alice, "private").await;
        let first = XetHash::from_merkle(packed.xorbs[0].chunk_hashes[0]).to_string();

        // Nothing is answered for a xorb no registered file uses yet.
        for x in &packed.xorbs {
            put_xorb(&hub, &alice_w, &x.hash.to_string(), upload_body(x))
                .await
                .expect("xorb");
        }
        let e = hub
            .xet_dedup(&alice_w, "default", &first)
            .await
            .expect_err("no file yet");
        assert_eq!(e.kind, ErrorKind::NotFound);
        upload(&hub, &alice_w, &packed).await;

        // Alice, from another of her repositories, finds it (both prefixes).
        let alice_other = write_caller(&hub, &alice, "other").await;
        for prefix in ["default", "default-merkledb"] {
            let shard = hub
                .xet_dedup(&alice_other, prefix, &first)
                .await
                .expect("hit");
            assert!(shard.len() > 200, "a full shard with its footer");
            // Raw chunk hashes never appear in the answer.
            let raw = packed.xorbs[0].chunk_hashes[0];
            assert!(!shard.windows(32).any(|w| w == raw.as_bytes()));
        }
        let e = hub
            .xet_dedup(&alice_other, "elsewhere", &first)
            .await
            .expect_err("prefix");
        assert_eq!(e.kind, ErrorKind::BadRequest);

        // Bob gets what an unknown chunk gets, until the repository is public.
        let bob_w = write_caller(&hub, &bob, "own").await;
        let unknown = XetHash::from_merkle(wharf_xet::MerkleHash::default()).to_string();
        let hidden = hub
            .xet_dedup(&bob_w, "default", &first)
            .await
            .expect_err("hidden");
        let missing = hub
            .xet_dedup(&bob_w, "default", &unknown)
            .await
            .expect_err("missing");
        assert_eq!(
            (hidden.kind, &hidden.message),
            (missing.kind, &missing.message)
        );
        let addr = RepoAddress::new(RepoType::Model, "alice", "private");
        hub.update_settings(
            &alice,
            &addr,
            SettingsUpdate {
                private: Some(false),
                gated: None,
            },
        )
        .await
        .expect("public");
        let bob_w = write_caller(&hub, &bob, "own").await;
        hub.xet_dedup(&bob_w, "default", &first)
            .await
            .expect("now visible");
    }

    #[tokio::test]
    async fn a_file_sharing_chunks_with_a_stored_one_registers() {
        // What a client does after a dedup hit: its shard names chunks of an existing xorb
        // and of its own new one; the sha256 is recomputed across both.
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        hub.create_repo(&alice, RepoType::Model, None, "m", false)
            .await
            .expect("repo");
        let xc = write_caller(&hub, &alice, "m").await;
        let a = data(300_000, 21);
        let b = data(200_000, 22);
        let pa = pack(&a).expect("pack a");
        let pb = pack(&b).expect("pack b");
        upload(&hub, &xc, &pa).await;
        for x in &pb.xorbs {
            put_xorb(&hub, &xc, &x.hash.to_string(), upload_body(x))
                .await
                .expect("xorb b");
        }
        let ca = pa.xorbs[0].to_chunks();
        let cb = pb.xorbs[0].to_chunks();
        let whole = [a.as_slice(), b.as_slice()].concat();
        let sha = hex::encode(Sha256::digest(&whole));
        let file = describe_file(
            &[
                (&ca, 0, ca.num_chunks() as u32),
                (&cb, 0, cb.num_chunks() as u32),
            ],
            Some(sha.clone()),
        )
        .expect("describe");
        let body = build_upload(std::slice::from_ref(&file), &[&cb]).expect("shard");
        let up = parse(&hub, body).await.expect("parse");
        assert!(
            hub.xet_register_shard(&xc, up, &|_| {})
                .await
                .expect("register")
        );
        let got = collect(
            hub.read_xet_file(&file.file_hash.to_string(), None)
                .await
                .expect("read"),
        )
        .await;
        assert_eq!(got, whole);
        assert_eq!(
            hub.meta
                .repo_lfs_object(xc.repo.id, &sha)
                .await
                .expect("link"),
            Some(whole.len() as i64)
        );
    }

    /// A body that stops arriving is cut off once it falls behind the upload pace, instead of
    /// holding its memory reservation for ever; what it reserved is what it sent.
    #[tokio::test(start_paused = true)]
    async fn slow_upload_bodies_are_cut_off() {
        let budget = crate::budget::MemoryBudget::default();
        let mut memory = budget.reserve(1).await.expect("reserve");
        let first = futures::stream::once(async { Ok(Bytes::from_static(b"abc")) });
        let body: ByteStream = first.chain(futures::stream::pending()).boxed();
        let e = collect_body(body, Some(64 << 20), 64 << 20, &mut memory)
            .await
            .expect_err("too slow");
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(e.message.contains("too slow"));
        assert_eq!(
            memory.bytes(),
            1 << 20,
            "an announced 64 MiB reserved nothing more"
        );
    }

    #[test]
    fn repeated_chunks_are_bounded() {
        let x = XetHash::from_merkle(wharf_xet::MerkleHash::default());
        let term = |start, end| wharf_xet::shard::Term {
            xorb: x,
            start,
            end,
            raw_len: 0,
        };
        let file = |terms: Vec<wharf_xet::shard::Term>| ShardFile {
            file_hash: x,
            verification: vec![wharf_xet::MerkleHash::default(); terms.len()],
            terms,
            sha256: None,
        };
        // A normal file: every chunk once.
        let normal = file(vec![term(0, 8192)]);
        assert!(check_reuse(&[&normal]).is_ok());
        // Runs of the same chunk within the allowance are fine.
        let zeros = file(vec![term(0, 1); 60_000]);
        assert!(check_reuse(&[&zeros]).is_ok());
        // The same 8192 chunks named thousands of times are not.
        let bomb = file(vec![term(0, 8192); 100]);
        assert!(check_reuse(&[&bomb]).is_err());
        // Overlapping and touching ranges count once.
        let overlapping = file(vec![term(0, 10), term(5, 20), term(20, 30)]);
        assert!(check_reuse(&[&overlapping]).is_ok());
    }
}
