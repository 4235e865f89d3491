//! Safetensors loading (read into memory: mmap would need `unsafe`), sharded checkpoints,
//! dtype conversion to f32 and weight-name prefix detection. Headers are read and checked
//! first ([`Checkpoint`]); tensors only once the model's shapes and size have been accepted.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::error::{InferenceError, Result, load_err};
use crate::limits::{MAX_SAFETENSORS_HEADER, MAX_SHARDS, MAX_TENSOR_DIMS, MAX_TENSORS};

/// All tensors of a checkpoint, as f32 on the CPU.
pub(crate) struct Weights {
    pub map: HashMap<String, Tensor>,
}

impl Weights {
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
        prefix_of(self.map.keys(), marker)
    }

    /// A VarBuilder over these tensors, for candle-transformers models.
    pub fn var_builder(&self) -> VarBuilder<'static> {
        VarBuilder::from_tensors(self.map.clone(), DType::F32, &Device::Cpu)
    }
}

fn prefix_of<'a>(names: impl Iterator<Item = &'a String>, marker: &str) -> Result<String> {
    let mut found: BTreeSet<&str> = BTreeSet::new();
    for key in names {
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
        .ok_or_else(|| InferenceError::Load(format!("no tensor named *{marker} in the weights")))
}

/// One tensor as the safetensors header describes it.
#[derive(serde::Deserialize)]
struct TensorEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// A tensor of a checkpoint, known from its file's header: nothing of it is read yet.
#[derive(Debug, Clone)]
pub(crate) struct TensorInfo {
    /// Index into [`Checkpoint::files`].
    file: usize,
    dtype: DType,
    pub shape: Vec<usize>,
    /// Byte range in the file (absolute).
    start: u64,
    end: u64,
}

/// The tensors of a checkpoint as its headers declare them. Opening reads the headers only,
/// so every shape can be checked against config.json and the memory of the model counted
/// against the server's budget before a byte of weights is allocated.
pub(crate) struct Checkpoint {
    files: Vec<PathBuf>,
    pub tensors: HashMap<String, TensorInfo>,
}

impl Checkpoint {
    /// `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
    pub fn open_dir(dir: &Path) -> Result<Checkpoint> {
        let single = dir.join("model.safetensors");
        let files = if single.is_file() {
            vec![single]
        } else {
            shard_files(dir)?
        };
        Checkpoint::open(files)
    }

    /// One safetensors file (e.g. a sentence-transformers Dense module).
    pub fn open_file(path: &Path) -> Result<Checkpoint> {
        Checkpoint::open(vec![path.to_path_buf()])
    }

    fn open(files: Vec<PathBuf>) -> Result<Checkpoint> {
        let mut tensors = HashMap::new();
        for (index, path) in files.iter().enumerate() {
            for (name, info) in read_header(path, index)? {
                if tensors.len() >= MAX_TENSORS {
                    return Err(InferenceError::Load(format!(
                        "the checkpoint has more than {MAX_TENSORS} tensors"
                    )));
                }
                if tensors.insert(name.clone(), info).is_some() {
                    return Err(InferenceError::Load(format!(
                        "tensor {name} is stored twice in the checkpoint"
                    )));
                }
            }
        }
        Ok(Checkpoint { files, tensors })
    }

    /// The shape of a tensor, if the checkpoint has it.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// See [`Weights::prefix_of`].
    pub fn prefix_of(&self, marker: &str) -> Result<String> {
        prefix_of(self.tensors.keys(), marker)
    }

    /// Bytes the tensors will take once read and converted to f32. Element counts were checked
    /// against the file's length when the header was read, so the sum cannot overflow in
    /// practice; it saturates all the same.
    pub fn f32_bytes(&self) -> u64 {
        self.tensors
            .values()
            .map(|t| (t.shape.iter().product::<usize>() as u64).saturating_mul(4))
            .fold(0u64, u64::saturating_add)
    }

    /// Reads every tensor, converted to f32, one at a time in file order: the peak is the
    /// tensors plus one raw tensor, not twice the checkpoint.
    pub fn read(self) -> Result<Weights> {
        use std::io::{Read, Seek, SeekFrom};
        let mut by_file: Vec<(String, TensorInfo)> = self.tensors.into_iter().collect();
        by_file.sort_by_key(|(_, t)| (t.file, t.start));
        let mut map = HashMap::with_capacity(by_file.len());
        let mut buf = Vec::new();
        let mut open: Option<(usize, std::fs::File)> = None;
        for (name, t) in by_file {
            let path = self.files.get(t.file).ok_or_else(|| {
                InferenceError::Internal(format!("tensor {name}: no file {}", t.file))
            })?;
            let bad = |why: String| InferenceError::Load(format!("{}: {why}", path.display()));
            let file = match &mut open {
                Some((i, f)) if *i == t.file => f,
                _ => {
                    let f =
                        std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
                    &mut open.insert((t.file, f)).1
                }
            };
            buf.resize((t.end - t.start) as usize, 0);
            file.seek(SeekFrom::Start(t.start))
                .and_then(|_| file.read_exact(&mut buf))
                .map_err(|e| bad(format!("tensor {name}: {e}")))?;
            let raw =
                Tensor::from_raw_buffer(&buf, t.dtype, &t.shape, &Device::Cpu).map_err(load_err)?;
            let tensor = if t.dtype == DType::F32 {
                raw
            } else {
                raw.to_dtype(DType::F32).map_err(load_err)?
            };
            map.insert(name, tensor);
        }
        Ok(Weights { map })
    }
}

/// Reads and checks one file's header: every tensor's dtype, shape and byte range, each range
/// inside the file and as long as its shape says.
fn read_header(path: &Path, index: usize) -> Result<Vec<(String, TensorInfo)>> {
    use std::io::Read;
    let bad = |why: String| InferenceError::Load(format!("{}: {why}", path.display()));
    let mut file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let file_len = file.metadata().map_err(|e| bad(e.to_string()))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("not a safetensors file (too short)".into()))?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_SAFETENSORS_HEADER || header_len.saturating_add(8) > file_len {
        return Err(bad(format!(
            "safetensors header length {header_len} is invalid (at most {MAX_SAFETENSORS_HEADER} \
             bytes, inside the file)"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|e| bad(format!("cannot read the header: {e}")))?;
    let mut entries: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("the safetensors header is not valid JSON: {e}")))?;
    entries.remove("__metadata__");
    let data_start = 8 + header_len;
    entries
        .into_iter()
        .map(|(name, v)| {
            let entry = serde_json::from_value::<TensorEntry>(v)
                .map_err(|e| bad(format!("tensor {name}: {e}")))?;
            let info = tensor_info(&entry, index, data_start, file_len)
                .map_err(|why| bad(format!("tensor {name}: {why}")))?;
            Ok((name, info))
        })
        .collect()
}

fn tensor_info(
    entry: &TensorEntry,
    file: usize,
    data_start: u64,
    file_len: u64,
) -> std::result::Result<TensorInfo, String> {
    let dtype = safetensors_dtype(&entry.dtype)
        .ok_or_else(|| format!("dtype {} is not supported", entry.dtype))?;
    if entry.shape.len() > MAX_TENSOR_DIMS {
        return Err(format!("{} dimensions", entry.shape.len()));
    }
    let elems = entry
        .shape
        .iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d))
        .ok_or("shape overflows")?;
    let expected = (elems as u64).saturating_mul(dtype.size_in_bytes() as u64);
    let [start, end] = entry.data_offsets;
    let (start, end) = (
        data_start.saturating_add(start),
        data_start.saturating_add(end),
    );
    if end < start || end - start != expected || end > file_len {
        return Err("data offsets do not match its shape".into());
    }
    Ok(TensorInfo {
        file,
        dtype,
        shape: entry.shape.clone(),
        start,
        end,
    })
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
fn shard_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index_path = dir.join("model.safetensors.index.json");
    if !index_path.is_file() {
        return Err(InferenceError::Load(
            "neither model.safetensors nor model.safetensors.index.json found".into(),
        ));
    }
    let index = crate::config::read_json(dir, "model.safetensors.index.json")?;
    let map = index
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| {
            InferenceError::Load("model.safetensors.index.json has no weight_map".into())
        })?;
    let names: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
    if names.len() > MAX_SHARDS {
        return Err(InferenceError::Load(format!(
            "model.safetensors.index.json names more than {MAX_SHARDS} shards"
        )));
    }
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

    fn load_file(path: &Path) -> Result<HashMap<String, Tensor>> {
        Ok(Checkpoint::open_file(path)?.read()?.map)
    }

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
