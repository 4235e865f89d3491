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
    crate::limits::file_size(&path, crate::limits::MAX_JSON_FILE)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| InferenceError::Load(format!("cannot read {name}: {e}")))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| InferenceError::Load(format!("{name} is not valid JSON: {e}")))
}

pub(crate) fn read_json(dir: &Path, name: &str) -> Result<Value> {
    read_json_opt(dir, name)?.ok_or_else(|| InferenceError::Load(format!("{name} is missing")))
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

/// The names of a head's `count` outputs: `id2label` when it names exactly those ids (keys are
/// stringified ids), else `LABEL_i`. `count` comes from the head's weights (checked against
/// [`crate::limits::MAX_LABELS`]), never from config.json's `num_labels`: a config cannot
/// make the server build a billion label names.
pub(crate) fn labels(cfg: &Value, count: usize) -> Vec<String> {
    let named = cfg
        .get("id2label")
        .and_then(Value::as_object)
        .filter(|map| map.len() == count)
        .and_then(|map| {
            (0..count)
                .map(|i| map.get(&i.to_string())?.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
        });
    named.unwrap_or_else(|| (0..count).map(|i| format!("LABEL_{i}")).collect())
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
