//! A bounded reader for the header of a GGUF file (llama.cpp's model format): magic, version,
//! metadata key/values and tensor infos, plus what a model page shows from them (architecture,
//! context length, parameter count). Pure: it reads a byte prefix the caller took from a file
//! it does not trust, and never panics or allocates more than a small multiple of that prefix.
//!
//! Layout (versions 2 and 3, little-endian): `"GGUF" | u32 version | u64 tensor_count |
//! u64 kv_count | kv_count × (string key | u32 type | value) | tensor_count × (string name |
//! u32 n_dims | n_dims × u64 dim | u32 ggml_type | u64 offset)`, where a string is
//! `u64 len | len bytes of UTF-8` and an array value is `u32 type | u64 count | count × value`.
//! Tensor data follows at an aligned offset; this reader stops before it.
//!
//! Every count and length is checked against the bytes left (at the smallest size its items
//! can take) and against a hard cap *before* anything is allocated for it.

use std::collections::HashSet;

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Most metadata key/value pairs accepted.
pub const MAX_METADATA_KVS: u64 = 1 << 20;
/// Most tensors accepted.
pub const MAX_TENSORS: u64 = 1 << 20;
/// Longest key or tensor name, in bytes (GGUF's own limit for keys).
pub const MAX_NAME_BYTES: u64 = 65_535;
/// Longest string value (chat templates are the long ones: tens of KiB).
pub const MAX_STRING_BYTES: u64 = 16 << 20;
/// Most elements in one array (vocabularies hold a few hundred thousand tokens).
pub const MAX_ARRAY_LEN: u64 = 1 << 24;
/// Deepest nesting of arrays inside arrays.
pub const MAX_ARRAY_DEPTH: usize = 4;
/// Most dimensions of one tensor (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

/// Why a GGUF header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GgufError {
    #[error("not a GGUF file (bad magic)")]
    BadMagic,
    #[error("unsupported GGUF version {0} (only 2 and 3 are read)")]
    UnsupportedVersion(u32),
    #[error("GGUF header is truncated: {needed} more bytes needed at offset {offset}")]
    Truncated { offset: usize, needed: u64 },
    #[error("GGUF header declares {count} {what}, more than the limit of {limit}")]
    TooMany {
        what: &'static str,
        count: u64,
        limit: u64,
    },
    #[error("GGUF string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: usize },
    #[error("unknown GGUF value type {0}")]
    UnknownValueType(u32),
    #[error("GGUF boolean with value {0}")]
    BadBool(u8),
    #[error("GGUF arrays nested more than {MAX_ARRAY_DEPTH} deep")]
    NestingTooDeep,
    #[error("duplicate GGUF metadata key {0:?}")]
    DuplicateKey(String),
    #[error("duplicate GGUF tensor {0:?}")]
    DuplicateTensor(String),
    #[error("tensor {name:?} has {dims} dimensions (limit {MAX_DIMS})")]
    TooManyDims { name: String, dims: u32 },
    #[error("GGUF parameter count overflows")]
    ParameterOverflow,
}

/// A typed metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(GgufArray),
}

/// An array value, stored per element type so that a million-token vocabulary costs what its
/// bytes cost, not a million enum values.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<GgufArray>),
}

impl GgufArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            GgufArray::U8(v) => v.len(),
            GgufArray::I8(v) => v.len(),
            GgufArray::U16(v) => v.len(),
            GgufArray::I16(v) => v.len(),
            GgufArray::U32(v) => v.len(),
            GgufArray::I32(v) => v.len(),
            GgufArray::U64(v) => v.len(),
            GgufArray::I64(v) => v.len(),
            GgufArray::F32(v) => v.len(),
            GgufArray::F64(v) => v.len(),
            GgufArray::Bool(v) => v.len(),
            GgufArray::String(v) => v.len(),
            GgufArray::Array(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl GgufValue {
    /// The value as a non-negative integer, whatever its integer type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(u64::from(v)),
            GgufValue::U16(v) => Some(u64::from(v)),
            GgufValue::U32(v) => Some(u64::from(v)),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }
}

/// One tensor's description (its data is not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    /// `ggml_type` (F32 = 0, F16 = 1, Q4_0 = 2, …); not checked against a list, new types
    /// appear often.
    pub ggml_type: u32,
    /// Offset of the data, relative to the start of the (aligned) data section.
    pub offset: u64,
}

/// A parsed GGUF header.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, GgufValue)>,
    pub tensors: Vec<GgufTensorInfo>,
    /// Bytes of the header (up to the end of the tensor infos, before alignment padding).
    pub header_len: usize,
    /// Σ over tensors of the product of their dimensions.
    pub parameter_count: u64,
}

impl GgufHeader {
    /// The value of a metadata key.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `general.architecture` (`llama`, `qwen2`, …).
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(GgufValue::as_str)
    }

    /// `{architecture}.context_length`; without an architecture, the first `*.context_length`.
    pub fn context_length(&self) -> Option<u64> {
        match self.architecture() {
            Some(arch) => self.get(&format!("{arch}.context_length"))?.as_u64(),
            None => self
                .metadata
                .iter()
                .find(|(k, _)| k.ends_with(".context_length"))?
                .1
                .as_u64(),
        }
    }
}

/// Parses the header at the start of `bytes` (a prefix of the file is enough when it holds the
/// whole header; otherwise the result is [`GgufError::Truncated`]).
pub fn parse_gguf_header(bytes: &[u8]) -> Result<GgufHeader, GgufError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    if r.take(4)? != GGUF_MAGIC {
        return Err(GgufError::BadMagic);
    }
    let version = r.u32()?;
    if !matches!(version, 2 | 3) {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let tensor_count = r.u64()?;
    let kv_count = r.u64()?;
    let metadata = read_metadata(&mut r, kv_count)?;
    let tensors = read_tensor_infos(&mut r, tensor_count)?;
    let parameter_count = count_parameters(&tensors)?;
    Ok(GgufHeader {
        version,
        metadata,
        tensors,
        header_len: r.pos,
        parameter_count,
    })
}

/// Σ of the dimension products, failing on overflow.
fn count_parameters(tensors: &[GgufTensorInfo]) -> Result<u64, GgufError> {
    tensors.iter().try_fold(0u64, |total, t| {
        let elements = t
            .dims
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(*d))
            .ok_or(GgufError::ParameterOverflow)?;
        total
            .checked_add(elements)
            .ok_or(GgufError::ParameterOverflow)
    })
}

// Smallest encoded sizes, used to bound declared counts by the bytes left.
/// key (8-byte length, empty) + type + a 1-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// name (8-byte length, empty) + n_dims + type + offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

fn read_metadata(r: &mut Reader<'_>, count: u64) -> Result<Vec<(String, GgufValue)>, GgufError> {
    r.check_count("metadata entries", count, MIN_KV_BYTES, MAX_METADATA_KVS)?;
    let mut out = Vec::with_capacity(count as usize);
    let mut seen = HashSet::with_capacity(count as usize);
    for _ in 0..count {
        let key = r.string(MAX_NAME_BYTES)?;
        let value_type = r.u32()?;
        let value = read_value(r, value_type, 0)?;
        if !seen.insert(key.clone()) {
            return Err(GgufError::DuplicateKey(key));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn read_tensor_infos(r: &mut Reader<'_>, count: u64) -> Result<Vec<GgufTensorInfo>, GgufError> {
    r.check_count("tensors", count, MIN_TENSOR_INFO_BYTES, MAX_TENSORS)?;
    let mut out = Vec::with_capacity(count as usize);
    let mut seen = HashSet::with_capacity(count as usize);
    for _ in 0..count {
        let info = read_tensor_info(r)?;
        if !seen.insert(info.name.clone()) {
            return Err(GgufError::DuplicateTensor(info.name));
        }
        out.push(info);
    }
    Ok(out)
}

fn read_tensor_info(r: &mut Reader<'_>) -> Result<GgufTensorInfo, GgufError> {
    let name = r.string(MAX_NAME_BYTES)?;
    let n_dims = r.u32()?;
    if n_dims > MAX_DIMS {
        return Err(GgufError::TooManyDims { name, dims: n_dims });
    }
    let dims = (0..n_dims)
        .map(|_| r.u64())
        .collect::<Result<Vec<_>, _>>()?;
    let ggml_type = r.u32()?;
    let offset = r.u64()?;
    Ok(GgufTensorInfo {
        name,
        dims,
        ggml_type,
        offset,
    })
}

// Value type codes.
const T_U8: u32 = 0;
const T_I8: u32 = 1;
const T_U16: u32 = 2;
const T_I16: u32 = 3;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const T_I64: u32 = 11;
const T_F64: u32 = 12;

/// Reads one value of type `value_type`; `depth` counts the arrays around it.
fn read_value(r: &mut Reader<'_>, value_type: u32, depth: usize) -> Result<GgufValue, GgufError> {
    Ok(match value_type {
        T_U8 => GgufValue::U8(r.u8()?),
        T_I8 => GgufValue::I8(i8::from_le_bytes(r.array()?)),
        T_U16 => GgufValue::U16(u16::from_le_bytes(r.array()?)),
        T_I16 => GgufValue::I16(i16::from_le_bytes(r.array()?)),
        T_U32 => GgufValue::U32(r.u32()?),
        T_I32 => GgufValue::I32(i32::from_le_bytes(r.array()?)),
        T_F32 => GgufValue::F32(f32::from_le_bytes(r.array()?)),
        T_BOOL => GgufValue::Bool(r.bool()?),
        T_STRING => GgufValue::String(r.string(MAX_STRING_BYTES)?),
        T_ARRAY => GgufValue::Array(read_array(r, depth + 1)?),
        T_U64 => GgufValue::U64(r.u64()?),
        T_I64 => GgufValue::I64(i64::from_le_bytes(r.array()?)),
        T_F64 => GgufValue::F64(f64::from_le_bytes(r.array()?)),
        other => return Err(GgufError::UnknownValueType(other)),
    })
}

/// Smallest encoded size of one element of type `t` (strings: an empty one; arrays: an empty
/// one, type + count).
fn min_element_bytes(t: u32) -> Result<u64, GgufError> {
    Ok(match t {
        T_U8 | T_I8 | T_BOOL => 1,
        T_U16 | T_I16 => 2,
        T_U32 | T_I32 | T_F32 => 4,
        T_U64 | T_I64 | T_F64 | T_STRING => 8,
        T_ARRAY => 4 + 8,
        other => return Err(GgufError::UnknownValueType(other)),
    })
}

/// Reads `u32 type | u64 count | elements`; `depth` is this array's nesting level (1 = a
/// top-level array value).
fn read_array(r: &mut Reader<'_>, depth: usize) -> Result<GgufArray, GgufError> {
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufError::NestingTooDeep);
    }
    let element_type = r.u32()?;
    let count = r.u64()?;
    r.check_count(
        "array elements",
        count,
        min_element_bytes(element_type)?,
        MAX_ARRAY_LEN,
    )?;
    // check_count bounded `count` by the bytes left, so these allocations are too.
    let n = count as usize;
    Ok(match element_type {
        T_U8 => GgufArray::U8(r.take(n)?.to_vec()),
        T_I8 => GgufArray::I8(repeat(n, || Ok(i8::from_le_bytes(r.array()?)))?),
        T_U16 => GgufArray::U16(repeat(n, || Ok(u16::from_le_bytes(r.array()?)))?),
        T_I16 => GgufArray::I16(repeat(n, || Ok(i16::from_le_bytes(r.array()?)))?),
        T_U32 => GgufArray::U32(repeat(n, || r.u32())?),
        T_I32 => GgufArray::I32(repeat(n, || Ok(i32::from_le_bytes(r.array()?)))?),
        T_F32 => GgufArray::F32(repeat(n, || Ok(f32::from_le_bytes(r.array()?)))?),
        T_BOOL => GgufArray::Bool(repeat(n, || r.bool())?),
        T_STRING => GgufArray::String(repeat(n, || r.string(MAX_STRING_BYTES))?),
        T_ARRAY => GgufArray::Array(repeat(n, || read_array(r, depth + 1))?),
        T_U64 => GgufArray::U64(repeat(n, || r.u64())?),
        T_I64 => GgufArray::I64(repeat(n, || Ok(i64::from_le_bytes(r.array()?)))?),
        T_F64 => GgufArray::F64(repeat(n, || Ok(f64::from_le_bytes(r.array()?)))?),
        other => return Err(GgufError::UnknownValueType(other)),
    })
}

/// Calls `read` `n` times; `n` was already bounded by the input's size.
fn repeat<T>(
    n: usize,
    mut read: impl FnMut() -> Result<T, GgufError>,
) -> Result<Vec<T>, GgufError> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(read()?);
    }
    Ok(out)
}

/// A cursor that never reads past the end of its buffer.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn truncated(&self, needed: u64) -> GgufError {
        GgufError::Truncated {
            offset: self.pos,
            needed: needed.saturating_sub(self.remaining() as u64),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], GgufError> {
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or_else(|| self.truncated(n as u64))?;
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, GgufError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn bool(&mut self) -> Result<bool, GgufError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(GgufError::BadBool(other)),
        }
    }

    /// `u64 len | len bytes of UTF-8`, at most `max` bytes.
    fn string(&mut self, max: u64) -> Result<String, GgufError> {
        let len = self.u64()?;
        if len > max {
            return Err(GgufError::TooMany {
                what: "string bytes",
                count: len,
                limit: max,
            });
        }
        if len > self.remaining() as u64 {
            return Err(self.truncated(len));
        }
        let offset = self.pos;
        let bytes = self.take(len as usize)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 { offset })
    }

    /// Refuses `count` items of at least `min_bytes` each when they cannot fit in what is left
    /// or exceed `limit`; after this, allocating `count` slots is bounded by the input size.
    fn check_count(
        &self,
        what: &'static str,
        count: u64,
        min_bytes: u64,
        limit: u64,
    ) -> Result<(), GgufError> {
        if count > limit {
            return Err(GgufError::TooMany { what, count, limit });
        }
        let needed = count.saturating_mul(min_bytes);
        if needed > self.remaining() as u64 {
            return Err(self.truncated(needed));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes GGUF bytes by hand, field by field.
    #[derive(Default)]
    struct Writer(Vec<u8>);

    impl Writer {
        fn header(version: u32, tensors: u64, kvs: u64) -> Writer {
            let mut w = Writer::default();
            w.0.extend_from_slice(b"GGUF");
            w.u32(version).u64(tensors).u64(kvs);
            w
        }
        fn u32(&mut self, v: u32) -> &mut Writer {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn u64(&mut self, v: u64) -> &mut Writer {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn str(&mut self, s: &str) -> &mut Writer {
            self.u64(s.len() as u64);
            self.0.extend_from_slice(s.as_bytes());
            self
        }
        fn kv_str(&mut self, key: &str, value: &str) -> &mut Writer {
            self.str(key).u32(T_STRING).str(value)
        }
        fn kv_u32(&mut self, key: &str, value: u32) -> &mut Writer {
            self.str(key).u32(T_U32).u32(value)
        }
        fn tensor(&mut self, name: &str, dims: &[u64], ggml_type: u32, offset: u64) -> &mut Writer {
            self.str(name).u32(dims.len() as u32);
            for d in dims {
                self.u64(*d);
            }
            self.u32(ggml_type).u64(offset)
        }
    }

    fn tiny_llama() -> Vec<u8> {
        let mut w = Writer::header(3, 2, 5);
        w.kv_str("general.architecture", "llama")
            .kv_str("general.name", "tiny")
            .kv_u32("llama.context_length", 2048);
        // tokenizer.ggml.tokens: an array of 3 strings.
        w.str("tokenizer.ggml.tokens")
            .u32(T_ARRAY)
            .u32(T_STRING)
            .u64(3);
        w.str("<s>").str("</s>").str("a");
        // A nested array of two u8 arrays, and a bool.
        w.str("x.nested").u32(T_ARRAY).u32(T_ARRAY).u64(2);
        w.u32(T_U8).u64(2);
        w.0.extend_from_slice(&[1, 2]);
        w.u32(T_U8).u64(0);
        w.tensor("token_embd.weight", &[64, 3], 0, 0)
            .tensor("output_norm.weight", &[64], 0, 768);
        w.0
    }

    #[test]
    fn reads_a_small_model() {
        let bytes = tiny_llama();
        let h = parse_gguf_header(&bytes).expect("valid");
        assert_eq!(h.version, 3);
        assert_eq!(h.architecture(), Some("llama"));
        assert_eq!(h.context_length(), Some(2048));
        assert_eq!(h.parameter_count, 64 * 3 + 64);
        assert_eq!(h.header_len, bytes.len());
        assert_eq!(h.tensors[1].name, "output_norm.weight");
        assert_eq!(h.tensors[1].offset, 768);
        let tokens = h.get("tokenizer.ggml.tokens");
        assert_eq!(
            tokens,
            Some(&GgufValue::Array(GgufArray::String(vec![
                "<s>".into(),
                "</s>".into(),
                "a".into()
            ])))
        );
        assert_eq!(
            h.get("x.nested"),
            Some(&GgufValue::Array(GgufArray::Array(vec![
                GgufArray::U8(vec![1, 2]),
                GgufArray::U8(vec![])
            ])))
        );
        // Trailing tensor data does not matter.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0xAA; 100]);
        assert_eq!(
            parse_gguf_header(&longer).map(|h| h.header_len),
            Ok(bytes.len())
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = tiny_llama();
        for cut in 0..bytes.len() {
            let err = parse_gguf_header(&bytes[..cut]).expect_err("truncated");
            assert!(
                matches!(err, GgufError::Truncated { .. } | GgufError::BadMagic),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn context_length_without_architecture() {
        let mut w = Writer::header(2, 0, 1);
        w.str("bert.context_length").u32(T_I32).u32(512);
        let h = parse_gguf_header(&w.0).expect("valid");
        assert_eq!(h.architecture(), None);
        assert_eq!(h.context_length(), Some(512));
        assert_eq!(h.parameter_count, 0);
    }

    #[test]
    fn rejects_bad_magic_and_versions() {
        assert_eq!(
            parse_gguf_header(b"GGML\x03\0\0\0"),
            Err(GgufError::BadMagic)
        );
        for version in [0, 1, 4, u32::MAX] {
            let w = Writer::header(version, 0, 0);
            assert_eq!(
                parse_gguf_header(&w.0),
                Err(GgufError::UnsupportedVersion(version))
            );
        }
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        for (tensors, kvs) in [
            (0, u64::MAX),
            (u64::MAX, 0),
            (0, MAX_METADATA_KVS),
            (1 << 40, 0),
        ] {
            let w = Writer::header(3, tensors, kvs);
            let err = parse_gguf_header(&w.0).expect_err("refused");
            assert!(
                matches!(err, GgufError::TooMany { .. } | GgufError::Truncated { .. }),
                "{err}"
            );
        }
        // An array claiming 2^24 u64s in 20 bytes, and one over the hard cap.
        for count in [MAX_ARRAY_LEN, MAX_ARRAY_LEN + 1, u64::MAX] {
            let mut w = Writer::header(3, 0, 1);
            w.str("k").u32(T_ARRAY).u32(T_U64).u64(count).u64(0);
            let err = parse_gguf_header(&w.0).expect_err("refused");
            assert!(
                matches!(err, GgufError::TooMany { .. } | GgufError::Truncated { .. }),
                "{err}"
            );
        }
        // A string whose length is past the end, and one over the cap.
        for len in [100, MAX_STRING_BYTES + 1, u64::MAX] {
            let mut w = Writer::header(3, 0, 1);
            w.str("k").u32(T_STRING).u64(len);
            assert!(parse_gguf_header(&w.0).is_err());
        }
    }

    #[test]
    fn rejects_malformed_values() {
        let mut w = Writer::header(3, 0, 1);
        w.str("k").u32(13).u32(0);
        assert_eq!(
            parse_gguf_header(&w.0),
            Err(GgufError::UnknownValueType(13))
        );

        let mut w = Writer::header(3, 0, 1);
        w.str("k").u32(T_BOOL);
        w.0.push(2);
        assert_eq!(parse_gguf_header(&w.0), Err(GgufError::BadBool(2)));

        let mut w = Writer::header(3, 0, 1);
        w.str("k").u32(T_STRING).u64(2);
        w.0.extend_from_slice(&[0xff, 0xfe]);
        assert!(matches!(
            parse_gguf_header(&w.0),
            Err(GgufError::InvalidUtf8 { .. })
        ));

        let mut w = Writer::header(3, 0, 2);
        w.kv_u32("k", 1).kv_u32("k", 2);
        assert_eq!(
            parse_gguf_header(&w.0),
            Err(GgufError::DuplicateKey("k".into()))
        );

        let mut w = Writer::header(3, 0, 1);
        w.str("k").u32(T_ARRAY);
        for _ in 0..MAX_ARRAY_DEPTH {
            w.u32(T_ARRAY).u64(1);
        }
        w.u32(T_U8).u64(0);
        assert_eq!(parse_gguf_header(&w.0), Err(GgufError::NestingTooDeep));
    }

    #[test]
    fn rejects_malformed_tensors() {
        let mut w = Writer::header(3, 1, 0);
        w.tensor("t", &[1, 1, 1, 1, 1], 0, 0);
        assert!(matches!(
            parse_gguf_header(&w.0),
            Err(GgufError::TooManyDims { dims: 5, .. })
        ));

        let mut w = Writer::header(3, 2, 0);
        w.tensor("t", &[1], 0, 0).tensor("t", &[2], 0, 32);
        assert_eq!(
            parse_gguf_header(&w.0),
            Err(GgufError::DuplicateTensor("t".into()))
        );

        let mut w = Writer::header(3, 1, 0);
        w.tensor("t", &[u64::MAX, 2], 0, 0);
        assert_eq!(parse_gguf_header(&w.0), Err(GgufError::ParameterOverflow));

        let mut w = Writer::header(3, 2, 0);
        w.tensor("a", &[u64::MAX], 0, 0).tensor("b", &[1], 0, 0);
        assert_eq!(parse_gguf_header(&w.0), Err(GgufError::ParameterOverflow));
    }
}
