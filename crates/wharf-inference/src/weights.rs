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

fn load_file(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path)
        .map_err(|e| InferenceError::Load(format!("cannot read {}: {e}", path.display())))?;
    let raw = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| {
        InferenceError::Load(format!(
            "{} is not a valid safetensors file: {e}",
            path.display()
        ))
    })?;
    raw.into_iter()
        .map(|(name, t)| {
            let t = if t.dtype() == DType::F32 {
                t
            } else {
                t.to_dtype(DType::F32).map_err(load_err)?
            };
            Ok((name, t))
        })
        .collect()
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
