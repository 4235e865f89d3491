//! Safetensors loading (read into memory: mmap would need `unsafe`), sharded checkpoints,
//! dtype conversion to f32 and weight-name prefix detection.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::error::{InferenceError, Result, load_err};

/// All tensors of a checkpoint, as f32 on the CPU.
pub(crate) struct Weights {
    pub map: HashMap<String, Tensor>,
}

impl Weights {
    /// Loads `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
    pub fn load_dir(dir: &Path) -> Result<Weights> {
        let single = dir.join("model.safetensors");
        let files = if single.is_file() {
            vec![single]
        } else {
            shard_files(dir)?
        };
        let mut map = HashMap::new();
        for file in files {
            map.extend(load_file(&file)?);
        }
        Ok(Weights { map })
    }

    /// Loads one safetensors file (e.g. a sentence-transformers Dense module).
    pub fn load_file(path: &Path) -> Result<Weights> {
        Ok(Weights {
            map: load_file(path)?,
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// A tensor that must exist.
    pub fn get(&self, name: &str) -> Result<Tensor> {
        self.map
            .get(name)
            .cloned()
            .ok_or_else(|| InferenceError::Load(format!("tensor {name} missing from the weights")))
    }

    /// Removes a tensor that must exist, so that a layer converting it to its own layout does
    /// not hold two copies while the rest loads.
    pub fn take(&mut self, name: &str) -> Result<Tensor> {
        self.map
            .remove(name)
            .ok_or_else(|| InferenceError::Load(format!("tensor {name} missing from the weights")))
    }

    /// The first of several names that exists.
    pub fn get_any(&self, names: &[&str]) -> Result<Tensor> {
        names
            .iter()
            .find_map(|n| self.map.get(*n).cloned())
            .ok_or_else(|| InferenceError::Load(format!("none of the tensors {names:?} exists")))
    }

    /// The prefix (`""`, `"bert."`, `"roberta."`, `"transformer."`...) under which `marker`
    /// (e.g. `embeddings.word_embeddings.weight`) is stored.
    pub fn prefix_of(&self, marker: &str) -> Result<String> {
        let mut found: BTreeSet<&str> = BTreeSet::new();
        for key in self.map.keys() {
            if let Some(prefix) = key.strip_suffix(marker)
                && (prefix.is_empty() || prefix.ends_with('.'))
            {
                found.insert(prefix);
            }
        }
        // Shortest first: a bare model wins over a nested copy.
        found
            .into_iter()
            .min_by_key(|p| p.len())
            .map(str::to_string)
            .ok_or_else(|| {
                InferenceError::Load(format!("no tensor named *{marker} in the weights"))
            })
    }

    /// Bytes the tensors take in memory.
    pub fn bytes(&self) -> u64 {
        self.map
            .values()
            .map(|t| (t.elem_count() * t.dtype().size_in_bytes()) as u64)
            .sum()
    }

    /// A VarBuilder over these tensors, for candle-transformers models.
    pub fn var_builder(&self) -> VarBuilder<'static> {
        VarBuilder::from_tensors(self.map.clone(), DType::F32, &Device::Cpu)
    }
}

/// Largest safetensors header accepted (the format's own reference limit).
const MAX_HEADER: u64 = 100 * 1024 * 1024;

/// One tensor as the safetensors header describes it.
#[derive(serde::Deserialize)]
struct TensorEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// Reads a safetensors file tensor by tensor (header first, then each tensor's byte range), so
/// loading never holds the whole file and all of its converted tensors at once: the peak is the
/// tensors plus one raw tensor, not twice the checkpoint.
fn load_file(path: &Path) -> Result<HashMap<String, Tensor>> {
    use std::io::{Read, Seek, SeekFrom};
    let bad = |why: String| InferenceError::Load(format!("{}: {why}", path.display()));
    let mut file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let file_len = file.metadata().map_err(|e| bad(e.to_string()))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("not a safetensors file (too short)".into()))?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER || header_len.saturating_add(8) > file_len {
        return Err(bad(format!(
            "safetensors header length {header_len} is invalid"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|e| bad(format!("cannot read the header: {e}")))?;
    let mut entries: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("the safetensors header is not valid JSON: {e}")))?;
    entries.remove("__metadata__");
    let data_start = 8 + header_len;
    let mut tensors: Vec<(String, TensorEntry)> = entries
        .into_iter()
        .map(|(name, v)| {
            serde_json::from_value::<TensorEntry>(v)
                .map(|e| (name.clone(), e))
                .map_err(|e| bad(format!("tensor {name}: {e}")))
        })
        .collect::<Result<_>>()?;
    // In file order, so the reads are sequential.
    tensors.sort_by_key(|(_, e)| e.data_offsets[0]);
    let mut out = HashMap::with_capacity(tensors.len());
    let mut buf = Vec::new();
    for (name, entry) in tensors {
        let dtype = safetensors_dtype(&entry.dtype).ok_or_else(|| {
            bad(format!(
                "tensor {name}: dtype {} is not supported",
                entry.dtype
            ))
        })?;
        let [start, end] = entry.data_offsets;
        let elems = entry
            .shape
            .iter()
            .try_fold(1usize, |n, d| n.checked_mul(*d))
            .ok_or_else(|| bad(format!("tensor {name}: shape overflows")))?;
        let expected = (elems as u64).saturating_mul(dtype.size_in_bytes() as u64);
        if end < start || end - start != expected || data_start.saturating_add(end) > file_len {
            return Err(bad(format!(
                "tensor {name}: data offsets do not match its shape"
            )));
        }
        buf.resize((end - start) as usize, 0);
        file.seek(SeekFrom::Start(data_start + start))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| bad(format!("tensor {name}: {e}")))?;
        let t =
            Tensor::from_raw_buffer(&buf, dtype, &entry.shape, &Device::Cpu).map_err(load_err)?;
        let t = if dtype == DType::F32 {
            t
        } else {
            t.to_dtype(DType::F32).map_err(load_err)?
        };
        out.insert(name, t);
    }
    Ok(out)
}

fn safetensors_dtype(name: &str) -> Option<DType> {
    Some(match name {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "I64" => DType::I64,
        "U32" => DType::U32,
        "U8" => DType::U8,
        _ => return None,
    })
}

/// The distinct shard files named by `model.safetensors.index.json`, checked to stay inside `dir`.
fn shard_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let index_path = dir.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index_path).map_err(|_| {
        InferenceError::Load(
            "neither model.safetensors nor model.safetensors.index.json found".into(),
        )
    })?;
    let index: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| InferenceError::Load(format!("model.safetensors.index.json: {e}")))?;
    let map = index
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| {
            InferenceError::Load("model.safetensors.index.json has no weight_map".into())
        })?;
    let names: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
    names
        .into_iter()
        .map(|name| {
            // Shard names come from the repo: never let them climb out of the snapshot.
            if name.contains('/') || name.contains('\\') || name.starts_with('.') {
                return Err(InferenceError::Load(format!("bad shard name {name:?}")));
            }
            Ok(dir.join(name))
        })
        .collect()
}

#[cfg(test)]
mod load_tests {
    use super::*;

    fn write(dir: &Path, header: &str, data: &[u8]) -> std::path::PathBuf {
        let path = dir.join("model.safetensors");
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    #[test]
    fn reads_tensors_and_converts_to_f32() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut data: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        data.extend_from_slice(&half::bf16::from_f32(3.0).to_le_bytes());
        let header = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[8,10]}}"#;
        let map = load_file(&write(dir.path(), header, &data)).unwrap_or_else(|e| panic!("{e}"));
        let a = map["a"].to_vec1::<f32>().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a, vec![1.5, -2.0]);
        assert_eq!(map["b"].dtype(), DType::F32);
        assert_eq!(
            map["b"].flatten_all().and_then(|t| t.to_vec1::<f32>()).ok(),
            Some(vec![3.0])
        );
    }

    #[test]
    fn broken_files_are_load_errors() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cases: [(&str, &[u8]); 5] = [
            // Offsets past the end of the file.
            (
                r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                &[0; 8],
            ),
            // Offsets that disagree with the shape.
            (
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            // Unknown dtype, not JSON, shape overflow.
            (
                r#"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#,
                &[0; 1],
            ),
            ("{not json", &[]),
            (
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#,
                &[],
            ),
        ];
        for (header, data) in cases {
            let err = load_file(&write(dir.path(), header, data));
            assert!(matches!(err, Err(InferenceError::Load(_))), "{header}");
        }
        // A header length larger than the file.
        let path = dir.path().join("short.safetensors");
        std::fs::write(&path, u64::MAX.to_le_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(load_file(&path), Err(InferenceError::Load(_))));
    }
}
