//! Xet hashes and their strict string form.
//!
//! A Xet hash is 32 bytes, but it is *printed* as four little-endian `u64`s in hex
//! (`MerkleHash::hex()`), not as the hex of its bytes: bytes `00 01 … 1f` print as
//! `0706050403020100 0f0e0d0c0b0a0908 …` (§0.1 of `docs/xet.md`). Every hash in a URL, a JSON body,
//! `X-Xet-Hash` or `xetHash` uses this form. Wharf accepts exactly 64 *lowercase* hex characters so
//! that one object never has two keys (the crate's own parser also accepts uppercase).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use xet_core_structures::merklehash::MerkleHash;

use crate::error::{Result, XetError};

/// How often a chunk is eligible for the global dedup index: when its hash, read as the
/// little-endian `u64` of bytes 24..32, is a multiple of this (the crate's
/// `MDB_SHARD_GLOBAL_DEDUP_CHUNK_MODULUS`, fixed here so no environment variable can change it).
pub const GLOBAL_DEDUP_MODULUS: u64 = 1024;

/// A Xet hash (xorb, file or chunk) with Wharf's strict string form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct XetHash(MerkleHash);

impl XetHash {
    /// Parses exactly 64 lowercase hex characters.
    pub fn parse(s: &str) -> Result<XetHash> {
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(XetError::InvalidHash);
        }
        MerkleHash::from_hex(s)
            .map(XetHash)
            .map_err(|_| XetError::InvalidHash)
    }

    /// Wraps a hash computed by the Xet crate.
    pub fn from_merkle(h: MerkleHash) -> XetHash {
        XetHash(h)
    }

    /// The Xet crate's type, for hashing and shard building.
    pub fn as_merkle(&self) -> &MerkleHash {
        &self.0
    }

    /// The 32 raw bytes (in storage order, not print order).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.into()
    }

    /// The hash from its 32 raw bytes (storage order).
    pub fn from_bytes(bytes: [u8; 32]) -> XetHash {
        XetHash(MerkleHash::from(bytes))
    }

    /// The printed form (64 lowercase hex characters).
    pub fn hex(&self) -> String {
        self.0.hex()
    }

    /// Whether a chunk with this hash belongs in the global dedup index (besides the first
    /// chunk of every file, which always does).
    pub fn is_dedup_eligible(&self) -> bool {
        is_dedup_eligible(&self.0)
    }
}

/// See [`XetHash::is_dedup_eligible`].
pub fn is_dedup_eligible(h: &MerkleHash) -> bool {
    let bytes: [u8; 32] = (*h).into();
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&bytes[24..32]);
    u64::from_le_bytes(tail) % GLOBAL_DEDUP_MODULUS == 0
}

/// The LFS oid (standard sha256 hex) of a sha256 stored in a shard's metadata extension.
///
/// Shards store the sha256 as a `MerkleHash`, so its *printed* form is the usual hex digest;
/// `hex::encode` of the raw bytes would give a byte-swapped, wrong value (§0.2).
pub fn sha256_hex_of_shard_field(stored: &MerkleHash) -> String {
    stored.hex()
}

/// The shard-field form of a sha256 digest (what hf_xet writes): the inverse of
/// [`sha256_hex_of_shard_field`].
pub fn sha256_to_shard_field(digest: [u8; 32]) -> MerkleHash {
    MerkleHash::from_be_bytes(digest)
}

impl From<MerkleHash> for XetHash {
    fn from(h: MerkleHash) -> Self {
        XetHash(h)
    }
}

impl From<XetHash> for MerkleHash {
    fn from(h: XetHash) -> Self {
        h.0
    }
}

impl FromStr for XetHash {
    type Err = XetError;
    fn from_str(s: &str) -> Result<Self> {
        XetHash::parse(s)
    }
}

impl fmt::Display for XetHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.hex())
    }
}

impl fmt::Debug for XetHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "XetHash({})", self.0.hex())
    }
}

impl Serialize for XetHash {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.hex())
    }
}

impl<'de> Deserialize<'de> for XetHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        XetHash::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_prints_as_little_endian_words() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let h = XetHash::from_bytes(bytes);
        let s = h.to_string();
        assert_eq!(
            s,
            "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918"
        );
        let back = XetHash::parse(&s).expect("round trip");
        assert_eq!(back, h);
        assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn rejects_non_canonical_strings() {
        let good = "93e872e700b1fcf63bd4ececb99dcb92c82930236775c0cd3177c3b1a9f08df6";
        assert!(XetHash::parse(good).is_ok());
        assert_eq!(
            XetHash::parse(&good.to_uppercase()),
            Err(XetError::InvalidHash)
        );
        assert!(XetHash::parse(&good[..63]).is_err());
        assert!(XetHash::parse(&format!("{good}0")).is_err());
        assert!(XetHash::parse(&format!("{}g", &good[..63])).is_err());
        assert!(XetHash::parse("").is_err());
        // 64 bytes but multi-byte characters must not panic on slicing.
        assert!(XetHash::parse(&"é".repeat(32)).is_err());
        assert!(XetHash::parse(&format!("+{}", &good[1..])).is_err());
    }

    #[test]
    fn sha256_shard_field_round_trip() {
        // §0.2: the printed form is the digest; the raw bytes are byte-swapped per word.
        let digest_hex = "880154ea3ae95b95b5e9c3616be45bbda2bef90ff1abfd38f8be88e1b8653ff7";
        let mut digest = [0u8; 32];
        hex::decode_to_slice(digest_hex, &mut digest).expect("hex");
        let field = sha256_to_shard_field(digest);
        assert_eq!(sha256_hex_of_shard_field(&field), digest_hex);
        assert!(hex::encode(field.as_bytes()).starts_with("955be93aea540188"));
    }

    #[test]
    fn serde_uses_the_printed_form() {
        let h = XetHash::parse("5d8d74fff21a49bf3e66d5854e81bd6c2efea4e757846885a66a7666e038733f")
            .expect("hash");
        let json = serde_json::to_string(&h).expect("json");
        assert_eq!(
            json,
            "\"5d8d74fff21a49bf3e66d5854e81bd6c2efea4e757846885a66a7666e038733f\""
        );
        let back: XetHash = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, h);
        assert!(serde_json::from_str::<XetHash>("\"ABC\"").is_err());
    }

    #[test]
    fn dedup_eligibility_uses_the_last_word() {
        let mut bytes = [0xffu8; 32];
        bytes[24..32].copy_from_slice(&(1024u64 * 7).to_le_bytes());
        assert!(XetHash::from_bytes(bytes).is_dedup_eligible());
        bytes[24..32].copy_from_slice(&(1024u64 * 7 + 1).to_le_bytes());
        assert!(!XetHash::from_bytes(bytes).is_dedup_eligible());
    }
}
