//! Typed access to the request body: `{"inputs": ..., "parameters": {...}}`.

use serde_json::Value;

use crate::error::{Result, bad};
pub(crate) use crate::limits::MAX_INPUTS;
use crate::limits::clip_start;

/// The request's `parameters` (older clients put some keys at the top level, which are accepted too).
pub(crate) struct Params<'a> {
    body: &'a Value,
    params: Option<&'a serde_json::Map<String, Value>>,
}

impl<'a> Params<'a> {
    pub fn new(body: &'a Value) -> Result<Params<'a>> {
        if !body.is_object() {
            return Err(bad(
                "the request body must be a JSON object with an \"inputs\" key",
            ));
        }
        let params = match body.get("parameters") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(bad("\"parameters\" must be an object")),
        };
        Ok(Params { body, params })
    }

    pub fn inputs(&self) -> Result<&'a Value> {
        self.body
            .get("inputs")
            .filter(|v| !v.is_null())
            .ok_or_else(|| bad("missing \"inputs\""))
    }

    fn raw(&self, key: &str) -> Option<&'a Value> {
        self.params
            .and_then(|p| p.get(key))
            .or_else(|| self.body.get(key))
            .filter(|v| !v.is_null())
    }

    pub fn usize(&self, key: &str) -> Result<Option<usize>> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| bad(format!("parameter {key} must be a non-negative integer"))),
        }
    }

    pub fn f64(&self, key: &str) -> Result<Option<f64>> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| bad(format!("parameter {key} must be a number"))),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| bad(format!("parameter {key} must be a boolean"))),
        }
    }

    pub fn str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| bad(format!("parameter {key} must be a string"))),
        }
    }

    /// A list of at most [`MAX_INPUTS`] strings; a single string counts as a one-element list,
    /// or is split on commas when `split_commas` (zero-shot `candidate_labels` accepts
    /// "a, b, c"). The strings are whole: callers bound their length.
    pub fn strings(&self, key: &str, split_commas: bool) -> Result<Option<Vec<String>>> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::String(s)) if split_commas => {
                // Counted while splitting: "a,a,a,…" in 16 MiB would be eight million strings.
                let parts: Vec<String> = s
                    .split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .take(MAX_INPUTS + 1)
                    .map(str::to_string)
                    .collect();
                if parts.len() > MAX_INPUTS {
                    return Err(too_many(key));
                }
                Ok(Some(parts))
            }
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(v) => string_list(v, key, usize::MAX).map(Some),
        }
    }
}

fn too_many(what: &str) -> crate::error::InferenceError {
    bad(format!("{what}: at most {MAX_INPUTS} items per request"))
}

/// A list of at most [`MAX_INPUTS`] strings, each cut to `max_bytes` (at a character boundary).
pub(crate) fn string_list(v: &Value, what: &str, max_bytes: usize) -> Result<Vec<String>> {
    let arr = v
        .as_array()
        .ok_or_else(|| bad(format!("{what} must be a string or a list of strings")))?;
    if arr.len() > MAX_INPUTS {
        return Err(too_many(what));
    }
    arr.iter()
        .map(|x| {
            x.as_str()
                .map(|s| clip_start(s, max_bytes).to_string())
                .ok_or_else(|| bad(format!("{what} must contain only strings")))
        })
        .collect()
}

/// `inputs` as one or several texts, each cut to `max_bytes`; the flag says whether a single
/// string was sent.
pub(crate) fn texts(inputs: &Value, max_bytes: usize) -> Result<(Vec<String>, bool)> {
    match inputs {
        Value::String(s) => Ok((vec![clip_start(s, max_bytes).to_string()], true)),
        Value::Array(_) => {
            let v = string_list(inputs, "inputs", max_bytes)?;
            if v.is_empty() {
                return Err(bad("inputs is an empty list"));
            }
            Ok((v, false))
        }
        _ => Err(bad("inputs must be a string or a list of strings")),
    }
}
