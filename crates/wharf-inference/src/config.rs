//! Reading config.json and friends, with the defaults Hugging Face applies when keys are omitted.

use std::path::Path;

use serde_json::Value;

use crate::error::{InferenceError, Result};

/// Reads a JSON file of the snapshot; `None` when absent.
pub(crate) fn read_json_opt(dir: &Path, name: &str) -> Result<Option<Value>> {
    let path = dir.join(name);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| InferenceError::Load(format!("cannot read {name}: {e}")))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| InferenceError::Load(format!("{name} is not valid JSON: {e}")))
}

pub(crate) fn read_json(dir: &Path, name: &str) -> Result<Value> {
    read_json_opt(dir, name)?.ok_or_else(|| InferenceError::Load(format!("{name} is missing")))
}

/// The first of several keys holding an unsigned integer.
pub(crate) fn usize_key(cfg: &Value, keys: &[&str]) -> Option<usize> {
    keys.iter()
        .find_map(|k| cfg.get(*k).and_then(Value::as_u64))
        .map(|v| v as usize)
}

pub(crate) fn req_usize(cfg: &Value, keys: &[&str]) -> Result<usize> {
    usize_key(cfg, keys)
        .ok_or_else(|| InferenceError::Load(format!("config.json lacks {}", keys.join(" / "))))
}

pub(crate) fn str_key<'a>(cfg: &'a Value, key: &str) -> Option<&'a str> {
    cfg.get(key).and_then(Value::as_str)
}

/// Activation functions used by the supported architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    Gelu,
    GeluTanh,
    Relu,
    Tanh,
}

impl Act {
    pub fn parse(name: &str) -> Result<Act> {
        match name {
            "gelu" | "gelu_python" => Ok(Act::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "gelu_approximate" => {
                Ok(Act::GeluTanh)
            }
            "relu" => Ok(Act::Relu),
            "tanh" => Ok(Act::Tanh),
            other => Err(InferenceError::Unsupported(format!(
                "activation {other:?} is not supported"
            ))),
        }
    }

    pub fn apply(&self, xs: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        match self {
            Act::Gelu => crate::fastmath::gelu_erf(xs),
            Act::GeluTanh => xs.gelu(),
            Act::Relu => xs.relu(),
            Act::Tanh => xs.tanh(),
        }
    }
}

/// Labels by id from `id2label` (keys are stringified ids), or `LABEL_i` for `num_labels`.
pub(crate) fn labels(cfg: &Value) -> Vec<String> {
    if let Some(map) = cfg.get("id2label").and_then(Value::as_object) {
        let mut pairs: Vec<(usize, String)> = map
            .iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string())))
            .collect();
        pairs.sort();
        if !pairs.is_empty() && pairs.iter().enumerate().all(|(i, (k, _))| i == *k) {
            return pairs.into_iter().map(|(_, v)| v).collect();
        }
    }
    let n = usize_key(cfg, &["num_labels"]).unwrap_or(2);
    (0..n).map(|i| format!("LABEL_{i}")).collect()
}

/// Token ids that end generation: generation_config.json wins over config.json.
pub(crate) fn eos_ids(cfg: &Value, gen_cfg: Option<&Value>) -> Vec<u32> {
    let from = |v: &Value| -> Vec<u32> {
        match v.get("eos_token_id") {
            Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_u64)
                .map(|x| x as u32)
                .collect(),
            _ => Vec::new(),
        }
    };
    let ids = gen_cfg.map(from).unwrap_or_default();
    if ids.is_empty() { from(cfg) } else { ids }
}
