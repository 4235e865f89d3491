//! The header of a safetensors file: its length prefix, its JSON tensor list and the parameter
//! counts derived from it. Pure functions over bytes a caller read from a file it does not
//! trust (any uploaded `*.safetensors`); no IO.
//!
//! Layout: `u64 LE n | n bytes of JSON | tensor data`. The JSON is an object mapping each tensor
//! name to `{"dtype": "F32", "shape": [..], "data_offsets": [..]}`, plus an optional
//! `__metadata__` object of strings.

use std::collections::BTreeMap;

use serde_json::Value;

/// A header larger than this is not read (the format's own reader refuses 100 MB).
pub const MAX_SAFETENSORS_HEADER: u64 = 100 << 20;

/// One tensor of a safetensors header: name, dtype, shape.
pub type TensorInfo = (String, String, Vec<u64>);

/// Why a safetensors header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetensorsError {
    /// Fewer than the 8 bytes of the length prefix.
    #[error("safetensors file shorter than its 8-byte length prefix")]
    NoLengthPrefix,
    /// The announced header length is 0, over [`MAX_SAFETENSORS_HEADER`] or past the file's end.
    #[error("safetensors header length {len} is invalid for a file of {file_size} bytes")]
    BadLength { len: u64, file_size: u64 },
    /// The header is not a JSON object.
    #[error("safetensors header is not a JSON object")]
    NotAnObject,
    /// A tensor entry without a string `dtype` or an array of non-negative integers as `shape`.
    #[error("tensor {0:?} has no valid dtype or shape")]
    BadTensor(String),
    /// A tensor's element count, or a dtype's total, does not fit in a `u64`.
    #[error("parameter count overflows")]
    Overflow,
}

/// The header length announced by a file's first 8 bytes, checked against the limit and the
/// file's size (`file_size`, which may be larger than `prefix`).
pub fn header_len(prefix: &[u8], file_size: u64) -> Result<u64, SafetensorsError> {
    let raw: [u8; 8] = prefix
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(SafetensorsError::NoLengthPrefix)?;
    let len = u64::from_le_bytes(raw);
    let fits = len.checked_add(8).is_some_and(|total| total <= file_size);
    if len == 0 || len > MAX_SAFETENSORS_HEADER || !fits {
        return Err(SafetensorsError::BadLength { len, file_size });
    }
    Ok(len)
}

/// Parses a safetensors JSON header into its tensors (name, dtype, shape), skipping
/// `__metadata__`. Any malformed tensor entry makes the whole header invalid.
pub fn parse_header(json: &[u8]) -> Result<Vec<TensorInfo>, SafetensorsError> {
    let map: serde_json::Map<String, Value> =
        serde_json::from_slice(json).map_err(|_| SafetensorsError::NotAnObject)?;
    let mut out = Vec::with_capacity(map.len());
    for (name, info) in map {
        if name == "__metadata__" {
            continue;
        }
        match tensor_fields(&info) {
            Some((dtype, shape)) => out.push((name, dtype, shape)),
            None => return Err(SafetensorsError::BadTensor(name)),
        }
    }
    Ok(out)
}

/// The `dtype` and `shape` of one tensor entry, when both are well-formed.
fn tensor_fields(info: &Value) -> Option<(String, Vec<u64>)> {
    let dtype = info.get("dtype")?.as_str()?.to_owned();
    let shape = info
        .get("shape")?
        .as_array()?
        .iter()
        .map(Value::as_u64)
        .collect::<Option<Vec<u64>>>()?;
    Some((dtype, shape))
}

/// Elements per dtype over `tensors` (a scalar, shape `[]`, counts 1).
pub fn count_parameters(tensors: &[TensorInfo]) -> Result<BTreeMap<String, u64>, SafetensorsError> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (_, dtype, shape) in tensors {
        let elements = element_count(shape)?;
        let slot = counts.entry(dtype.clone()).or_default();
        *slot = slot
            .checked_add(elements)
            .ok_or(SafetensorsError::Overflow)?;
    }
    Ok(counts)
}

/// Elements of one tensor. A zero dimension makes it empty whatever the others are, so
/// `[huge, 2, 0]` is 0 elements, not an overflow (found by fuzzing: the order of the dimensions
/// must not decide the answer).
fn element_count(shape: &[u64]) -> Result<u64, SafetensorsError> {
    if shape.contains(&0) {
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1u64, |acc, d| acc.checked_mul(*d))
        .ok_or(SafetensorsError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefix() {
        assert_eq!(
            header_len(&[0; 4], 100),
            Err(SafetensorsError::NoLengthPrefix)
        );
        assert_eq!(header_len(&5u64.to_le_bytes(), 13), Ok(5));
        assert!(header_len(&5u64.to_le_bytes(), 12).is_err(), "past the end");
        assert!(header_len(&0u64.to_le_bytes(), 100).is_err());
        assert!(header_len(&u64::MAX.to_le_bytes(), u64::MAX).is_err());
        assert!(header_len(&(MAX_SAFETENSORS_HEADER + 1).to_le_bytes(), u64::MAX).is_err());
        assert_eq!(
            header_len(&MAX_SAFETENSORS_HEADER.to_le_bytes(), u64::MAX),
            Ok(MAX_SAFETENSORS_HEADER)
        );
    }

    #[test]
    fn header_json() {
        assert_eq!(parse_header(b"[]"), Err(SafetensorsError::NotAnObject));
        assert_eq!(parse_header(b"{"), Err(SafetensorsError::NotAnObject));
        assert_eq!(
            parse_header(br#"{"a": {"dtype": "F32"}}"#),
            Err(SafetensorsError::BadTensor("a".into()))
        );
        assert!(parse_header(br#"{"a": {"dtype": "F32", "shape": [-1]}}"#).is_err());
        assert!(parse_header(br#"{"a": {"dtype": 3, "shape": [1]}}"#).is_err());
        assert_eq!(
            parse_header(br#"{"__metadata__": {"x": "y"}}"#),
            Ok(Vec::new())
        );
        let tensors = parse_header(
            br#"{"__metadata__": {"format": "pt"},
                 "b": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]},
                 "a": {"dtype": "F32", "shape": [], "data_offsets": [12, 16]}}"#,
        )
        .expect("valid header");
        assert_eq!(
            tensors,
            vec![
                ("a".to_owned(), "F32".to_owned(), vec![]),
                ("b".to_owned(), "BF16".to_owned(), vec![2, 3]),
            ]
        );
    }

    #[test]
    fn parameter_counts() {
        let tensors = vec![
            ("a".to_owned(), "F32".to_owned(), vec![2, 3]),
            ("b".to_owned(), "F32".to_owned(), vec![]),
            ("c".to_owned(), "I8".to_owned(), vec![5, 0]),
        ];
        let counts = count_parameters(&tensors).expect("counts");
        assert_eq!(counts.get("F32"), Some(&7));
        assert_eq!(counts.get("I8"), Some(&0));
        let huge = vec![("x".to_owned(), "F16".to_owned(), vec![u64::MAX, 2])];
        assert_eq!(count_parameters(&huge), Err(SafetensorsError::Overflow));
        let empty = vec![("x".to_owned(), "F8".to_owned(), vec![u64::MAX, 2, 0])];
        assert_eq!(count_parameters(&empty).expect("empty")["F8"], 0);
        let sum = vec![
            ("x".to_owned(), "F16".to_owned(), vec![u64::MAX]),
            ("y".to_owned(), "F16".to_owned(), vec![1]),
        ];
        assert_eq!(count_parameters(&sum), Err(SafetensorsError::Overflow));
    }
}
