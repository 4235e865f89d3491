//! The Xet storage domain of Wharf (`docs/xet.md`): pure, synchronous, no HTTP, no database.
//! Callers run the heavier functions (`xorb::ingest`, shard verification, packing) in
//! `spawn_blocking`.
//!
//! | module | owns |
//! |---|---|
//! | [`hash`] | [`XetHash`] and its strict string form |
//! | [`limits`] | Wharf's own bounds (never the Xet crate's environment-tunable ones) |
//! | [`xorb`] | bounded xorb ingest, chunk tables, stored footers, chunk-by-chunk decoding |
//! | [`shard`] | bounded parsing of uploaded shards and per-file verification |
//! | [`recon`] | reconstruction planning and the v1/v2 JSON answers |
//! | [`dedup`] | the HMAC-keyed global-dedup answer |
//! | [`chunker`] | content-defined chunking and xorb packing (LFS → Xet conversion) |
//! | [`token`] | Xet access tokens and fetch-URL signatures |
//! | [`testdata`] | the deterministic test inputs of §1.7 and their expected hashes |
//!
//! Untrusted bytes (uploaded xorbs and shards, tokens) only go through this crate's own
//! bounded parsers; the `xet-core-structures` crate is used for hashing, compression choice,
//! footer and dedup-shard serialisation of data Wharf already verified.

pub mod chunker;
pub mod dedup;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod hash;
pub mod limits;
pub mod recon;
pub mod shard;
pub mod testdata;
pub mod token;
pub mod xorb;

pub use error::{Result, XetError};
pub use hash::XetHash;
/// The Xet crate's hash type, re-exported so callers need no direct dependency on it.
pub use xet_core_structures::merklehash::MerkleHash;
