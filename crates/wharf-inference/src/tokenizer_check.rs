//! Refuses a tokenizer.json that could make one request allocate without bound, before and
//! after the tokenizers library loads it:
//!
//! - a normalizer, pre-tokenizer or decoder chain that multiplies the text's length: forty
//!   `Replace("a", "aa")` steps (or forty `ByteLevel` pre-tokenizers, each turning a two-byte
//!   character into two) in a `Sequence` turn one byte into a terabyte, an allocation that aborts;
//! - a `Precompiled` character map whose header declares a larger table than it holds (the
//!   loader reserves the declared size up front);
//! - a Unigram vocabulary with very long pieces: the lattice of one word holds a node per
//!   (position, matching piece), so pieces of every length from 1 to 10 000 make a 16 KB word
//!   a hundred million nodes.
//!
//! Growth is bounded with an affine model `out <= a * in + b` per step, composed over the
//! chain; the bounds are conservative (a regex replacement may match the empty string at
//! every position), and far above what real tokenizers need (BERT's normalizer counts 18).

use std::path::Path;

use serde_json::Value;
use tokenizers::{ModelWrapper, Tokenizer};

use crate::error::{InferenceError, Result};

/// Largest factor by which a normalizer or decoder chain may grow a text.
pub(crate) const MAX_TEXT_GROWTH: f64 = 256.0;
/// Largest number of bytes a chain may add whatever the text (`Prepend` and the like).
const MAX_TEXT_ADDED: f64 = 65_536.0;
/// Longest Unigram piece, in characters (SentencePiece's default limit is 16).
pub(crate) const MAX_UNIGRAM_PIECE_CHARS: usize = 64;
/// Unicode normalization grows a character's UTF-8 bytes at most this much (U+FDFA's NFKD).
const UNICODE_GROWTH: f64 = 18.0;
/// Lowercasing grows a character's bytes at most this much (U+0130 → "i̇").
const LOWERCASE_GROWTH: f64 = 3.0;

/// The parts of tokenizer.json checked before the library sees it; the rest (vocabulary,
/// merges) is skipped without being built.
#[derive(serde::Deserialize)]
struct Parts {
    #[serde(default)]
    normalizer: Option<Value>,
    #[serde(default)]
    pre_tokenizer: Option<Value>,
    #[serde(default)]
    decoder: Option<Value>,
}

/// `out <= a * in + b`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Growth {
    a: f64,
    b: f64,
}

impl Growth {
    const SAME: Growth = Growth { a: 1.0, b: 0.0 };

    fn times(a: f64) -> Growth {
        Growth { a, b: 0.0 }
    }

    /// This step applied after `first`.
    fn after(self, first: Growth) -> Growth {
        Growth {
            a: self.a * first.a,
            b: self.a * first.b + self.b,
        }
    }
}

/// Checks the normalizer, pre-tokenizer and decoder of `tokenizer.json` before it is loaded.
pub(crate) fn check_file(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InferenceError::Load(format!("cannot read tokenizer.json: {e}")))?;
    let parts: Parts = serde_json::from_str(&text)
        .map_err(|e| InferenceError::Load(format!("tokenizer.json: {e}")))?;
    for (what, step) in [
        ("normalizer", &parts.normalizer),
        ("pre-tokenizer", &parts.pre_tokenizer),
        ("decoder", &parts.decoder),
    ] {
        let Some(step) = step.as_ref().filter(|v| !v.is_null()) else {
            continue;
        };
        let g = growth(step)?;
        if !(g.a <= MAX_TEXT_GROWTH && g.b <= MAX_TEXT_ADDED) {
            return Err(InferenceError::Load(format!(
                "tokenizer.json: the {what} can grow a text {:.0} times (plus {:.0} bytes); \
                 this server allows {MAX_TEXT_GROWTH} times",
                g.a, g.b
            )));
        }
    }
    Ok(())
}

/// Checks what the loaded tokenizer built (its model's vocabulary).
pub(crate) fn check_loaded(tk: &Tokenizer) -> Result<()> {
    if let ModelWrapper::Unigram(u) = tk.get_model()
        && let Some((piece, _)) = u
            .iter()
            .find(|(piece, _)| piece.chars().count() > MAX_UNIGRAM_PIECE_CHARS)
    {
        return Err(InferenceError::Load(format!(
            "tokenizer.json: the Unigram piece {:?}... is longer than {MAX_UNIGRAM_PIECE_CHARS} \
             characters",
            piece.chars().take(16).collect::<String>()
        )));
    }
    Ok(())
}

/// How much one normalizer, pre-tokenizer or decoder (or a sequence of them) can grow a text.
fn growth(step: &Value) -> Result<Growth> {
    let kind = step.get("type").and_then(Value::as_str).unwrap_or("");
    let text = |key: &str| step.get(key).and_then(Value::as_str).unwrap_or("");
    Ok(match kind {
        "Sequence" => {
            let steps = ["normalizers", "pretokenizers", "decoders"]
                .iter()
                .find_map(|k| step.get(*k).and_then(Value::as_array));
            let mut total = Growth::SAME;
            for s in steps.into_iter().flatten() {
                total = growth(s)?.after(total);
            }
            total
        }
        "Replace" => replace_growth(step)?,
        "Prepend" => Growth {
            a: 1.0,
            b: text("prepend").len() as f64,
        },
        "Precompiled" => Growth::times(precompiled_growth(text("precompiled_charsmap"))?),
        "NFC" | "NFD" | "NFKC" | "NFKD" => Growth::times(UNICODE_GROWTH),
        // Chinese characters get a space on each side; accents are stripped after NFD.
        "BertNormalizer" => Growth::times(UNICODE_GROWTH * LOWERCASE_GROWTH),
        "Lowercase" => Growth::times(LOWERCASE_GROWTH),
        // A byte becomes one character of at most two bytes.
        "ByteLevel" => Growth::times(2.0),
        // Spaces become a replacement character (up to four bytes), and one may be prepended.
        "Metaspace" => Growth { a: 4.0, b: 4.0 },
        // These only remove, map one character to one, or join tokens.
        "Strip" | "StripAccents" | "Nmt" | "BPEDecoder" | "WordPiece" | "CTC" | "Fuse"
        | "ByteFallback" => Growth::SAME,
        // Pre-tokenizers that only split the text.
        "BertPreTokenizer" | "CharDelimiterSplit" | "Whitespace" | "WhitespaceSplit" | "Split"
        | "Punctuation" | "Digits" | "UnicodeScripts" | "FixedLength" => Growth::SAME,
        other => {
            return Err(InferenceError::Load(format!(
                "tokenizer.json: unknown normalizer, pre-tokenizer or decoder {other:?}"
            )));
        }
    })
}

/// A `Replace`: every match of a non-empty string becomes `content`; a regex may match the
/// empty string, so it may insert `content` between any two bytes.
fn replace_growth(step: &Value) -> Result<Growth> {
    let content = step
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or("")
        .len() as f64;
    let pattern = step.get("pattern");
    let literal = pattern
        .and_then(|p| p.get("String"))
        .and_then(Value::as_str);
    Ok(match literal {
        Some(s) if !s.is_empty() => Growth::times((content / s.len() as f64).max(1.0)),
        _ => Growth::times(1.0 + content),
    })
}

/// The longest replacement of a SentencePiece character map, per input byte. The map is a
/// little-endian u32 trie size, the trie, then NUL-separated replacement strings.
fn precompiled_growth(base64: &str) -> Result<f64> {
    let bad = || InferenceError::Load("tokenizer.json: precompiled_charsmap is malformed".into());
    let bytes = decode_base64(base64).ok_or_else(bad)?;
    let (size, rest) = bytes.split_first_chunk::<4>().ok_or_else(bad)?;
    let trie = u32::from_le_bytes(*size) as usize;
    let strings = rest.get(trie..).ok_or_else(bad)?;
    let longest = strings
        .split(|b| *b == 0)
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    Ok((longest as f64).max(1.0))
}

/// Standard base64 (padding optional); None when malformed.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() / 4 * 3 + 3);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | value(c)?;
        }
        let bits = chunk.len() * 6;
        acc <<= 24 - bits;
        let keep = bits / 8;
        if keep == 0 {
            return None;
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + keep]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_decodes() {
        assert_eq!(decode_base64("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("").as_deref(), Some(&b""[..]));
        assert!(decode_base64("a").is_none() && decode_base64("a$==").is_none());
    }

    #[test]
    fn real_chains_pass_and_doubling_chains_do_not() {
        let llama = json!({"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]});
        let g = growth(&llama).expect("llama");
        assert_eq!(g, Growth { a: 3.0, b: 9.0 });
        let bert = json!({"type": "BertNormalizer", "lowercase": true});
        assert!(growth(&bert).expect("bert").a <= MAX_TEXT_GROWTH);
        let double = json!({"type": "Replace", "pattern": {"String": "a"}, "content": "aa"});
        let chain = json!({"type": "Sequence", "normalizers": vec![double; 40]});
        assert!(growth(&chain).expect("chain").a > 1e12);
        let empty_regex = json!({"type": "Replace", "pattern": {"Regex": ""}, "content": "xyz"});
        assert_eq!(growth(&empty_regex).expect("regex").a, 4.0);
        assert!(growth(&json!({"type": "Mystery"})).is_err());
        let gpt2 = json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated"},
            {"type": "ByteLevel", "add_prefix_space": false}]});
        assert_eq!(growth(&gpt2).expect("gpt2").a, 2.0);
        let bytes =
            json!({"type": "Sequence", "pretokenizers": vec![json!({"type": "ByteLevel"}); 40]});
        assert!(growth(&bytes).expect("byte levels").a > MAX_TEXT_GROWTH);
    }

    #[test]
    fn precompiled_maps_are_read_from_their_header() {
        // Trie of 4 bytes, then the replacements "ab" and "abcdef".
        let mut map = 4u32.to_le_bytes().to_vec();
        map.extend_from_slice(&[0, 0, 0, 0]);
        map.extend_from_slice(b"ab\0abcdef\0");
        assert_eq!(precompiled_growth(&encode(&map)).ok(), Some(6.0));
        // A trie size larger than the map is refused before anything is reserved for it.
        let mut lying = u32::MAX.to_le_bytes().to_vec();
        lying.extend_from_slice(b"ab");
        assert!(precompiled_growth(&encode(&lying)).is_err());
    }

    fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut acc = 0u32;
            for (i, b) in chunk.iter().enumerate() {
                acc |= (*b as u32) << (16 - 8 * i);
            }
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((acc >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
