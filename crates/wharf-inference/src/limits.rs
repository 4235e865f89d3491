//! Hard limits on every size a repository or a request declares, checked before anything is
//! sized from it. A failed allocation aborts a Rust process (it is not an error), so a
//! checkpoint whose config.json declares a billion layers, or a request that expands a 16 MiB
//! template per label, must be refused before the allocation, never after.
//!
//! Checkpoint limits sit well above every published model the server could run on a CPU; the
//! memory a model really takes is bounded by the server's memory budget on top of them (see
//! [`ModelMemory`]). Request limits bound one request's work whatever model serves it.

use serde_json::Value;

use crate::error::{InferenceError, Result, bad};

// ------------------------------------------------------------------ checkpoint limits

/// Transformer layers (the largest open models have about 130).
pub(crate) const MAX_LAYERS: usize = 256;
/// Width of the hidden states (Llama 3 405B: 16 384).
pub(crate) const MAX_HIDDEN: usize = 32_768;
/// Width of the feed-forward layer (Llama 3 405B: 53 248).
pub(crate) const MAX_INTERMEDIATE: usize = 262_144;
/// Vocabulary rows (Gemma: 256 000; XLM-R: 250 002).
pub(crate) const MAX_VOCAB: usize = 1 << 20;
/// Attention heads.
pub(crate) const MAX_HEADS: usize = 1024;
/// Width of one attention head (rotary tables are sized by it).
pub(crate) const MAX_HEAD_DIM: usize = 1024;
/// Rows of a learned position table.
pub(crate) const MAX_POSITIONS: usize = 1 << 17;
/// Rows of a token-type table (BERT: 2).
pub(crate) const MAX_TOKEN_TYPES: usize = 1024;
/// Outputs of a classification head.
pub(crate) const MAX_LABELS: usize = 1 << 16;
/// Tensors in one checkpoint (all shards together), and dimensions of one tensor.
pub(crate) const MAX_TENSORS: usize = 1 << 16;
pub(crate) const MAX_TENSOR_DIMS: usize = 8;
/// A safetensors header (names, dtypes, shapes, offsets): 8 MiB holds far more than 65 536
/// tensors' entries.
pub(crate) const MAX_SAFETENSORS_HEADER: u64 = 8 << 20;
/// Shards named by model.safetensors.index.json.
pub(crate) const MAX_SHARDS: usize = 1024;
/// config.json, tokenizer_config.json and the other JSON side files (a config.json with a
/// million labels is 20 MB: refused here, before parsing).
pub(crate) const MAX_JSON_FILE: u64 = 4 << 20;
/// tokenizer.json (the largest common ones, Gemma's and XLM-R's, are about 17 MB).
pub(crate) const MAX_TOKENIZER_FILE: u64 = 64 << 20;
/// A loaded tokenizer is counted at this many times its file size: its vocabulary maps, merges
/// and added-token tries are larger than their JSON (all-MiniLM-L6-v2's 466 KB tokenizer.json
/// added 5.9 MB of RSS once loaded, a 4 MB 200k-token BPE one 44 MB: 11-13x).
pub(crate) const TOKENIZER_MEMORY_FACTOR: u64 = 12;
/// sentence-transformers modules listed in modules.json.
pub(crate) const MAX_MODULES: usize = 16;
/// Longest sequence (prompt + generated) a decoder runs, whatever its config allows: bounds the
/// rotary tables, the KV cache and the prefill's attention scores.
pub(crate) const MAX_CONTEXT: usize = 4096;
/// Memory one generation request may take beyond the model (KV cache, prefill attention): a
/// decoder whose requests would need more at its full context runs a shorter one.
pub(crate) const MAX_REQUEST_MEMORY: u64 = 1 << 30;
/// Shortest context a decoder is served with; below it the model is refused.
pub(crate) const MIN_CONTEXT: usize = 64;

// ------------------------------------------------------------------ request limits

/// Texts (or text pairs) one request may carry.
pub(crate) const MAX_INPUTS: usize = 256;
/// A text is cut to this many bytes per token of the model's input length before it is
/// tokenized: tokens beyond the length are dropped anyway, and tokenizing a 16 MiB text whole
/// only to keep its first 512 tokens costs hundreds of MB. Real text averages 3-6 bytes a token.
pub(crate) const MAX_BYTES_PER_TOKEN: usize = 32;
/// Tokens one request may send through the encoder, after truncation (32 inputs of 512): with
/// BERT-base's width their hidden states are 48 MB.
pub(crate) const MAX_REQUEST_TOKENS: usize = 16_384;
/// Numbers in a per-token feature-extraction answer (tokens x hidden): each becomes a JSON value.
pub(crate) const MAX_ANSWER_VALUES: usize = 1 << 21;
/// zero-shot-classification: candidate labels, and the bytes of a label and of the template
/// (each (text, label) pair carries the template expanded with the label).
pub(crate) const MAX_CANDIDATE_LABELS: usize = 64;
pub(crate) const MAX_LABEL_BYTES: usize = 512;
pub(crate) const MAX_TEMPLATE_BYTES: usize = 1024;
/// question-answering: bytes of context, and windows of the model's input read from it.
pub(crate) const MAX_QA_CONTEXT_BYTES: usize = 64 << 10;
pub(crate) const MAX_QA_WINDOWS: usize = 32;
/// fill-mask: mask tokens in one input, answers (masks x top_k) in one request, bytes of a
/// target word.
pub(crate) const MAX_MASKS: usize = 16;
pub(crate) const MAX_FILL_MASK_ANSWERS: usize = 4096;
pub(crate) const MAX_TARGET_BYTES: usize = 256;
/// text-generation: tokens generated per request, stop sequences and their length.
pub(crate) const MAX_NEW_TOKENS: usize = 512;
pub(crate) const MAX_STOP_SEQUENCES: usize = 8;
pub(crate) const MAX_STOP_BYTES: usize = 256;
/// Tokens of hidden states held at once while a batch of encoder requests is answered: the
/// requests of a batch are finished group by group, so a batch of 32 large requests holds one
/// group's hidden states, not all of them.
pub(crate) const MAX_GROUP_TOKENS: usize = MAX_REQUEST_TOKENS;

// ------------------------------------------------------------------ checks

/// A size declared by config.json, checked against its hard limit.
pub(crate) fn check_size(what: &str, value: usize, max: usize) -> Result<usize> {
    if value > max {
        return Err(InferenceError::Load(format!(
            "config.json declares {what} = {value}, above this server's limit of {max}"
        )));
    }
    Ok(value)
}

/// Like [`check_size`], and also refuses zero.
pub(crate) fn check_positive(what: &str, value: usize, max: usize) -> Result<usize> {
    if value == 0 {
        return Err(InferenceError::Load(format!(
            "config.json declares {what} = 0"
        )));
    }
    check_size(what, value, max)
}

/// The first `max_bytes` of `text`, cut at a character boundary.
pub(crate) fn clip_start(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The last `max_bytes` of `text`, cut at a character boundary (a prompt keeps its end).
pub(crate) fn clip_end(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut start = text.len() - max_bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Refuses a request string longer than `max` bytes.
pub(crate) fn check_bytes(what: &str, text: &str, max: usize) -> Result<()> {
    if text.len() > max {
        return Err(bad(format!(
            "{what} is too long: {} bytes, at most {max}",
            text.len()
        )));
    }
    Ok(())
}

/// The unsigned integer under the first of `keys` that is present, checked against `max`.
/// A key present with a value that is not an unsigned integer (a negative or fractional
/// count) is an error rather than silently ignored.
pub(crate) fn config_usize(cfg: &Value, keys: &[&str], max: usize) -> Result<Option<usize>> {
    let Some((key, v)) = keys
        .iter()
        .find_map(|k| cfg.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
    else {
        return Ok(None);
    };
    let n = v
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            InferenceError::Load(format!("config.json: {key} must be a non-negative integer"))
        })?;
    check_size(key, n, max).map(Some)
}

/// What a loaded model holds in memory, estimated from the checkpoint's headers and config
/// before any tensor is read, and compared with the server's budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ModelMemory {
    /// Every tensor of the checkpoint (and of sentence-transformers modules) as f32.
    pub weights: u64,
    /// Tables derived from the config rather than read from the checkpoint (rotary sin/cos).
    pub tables: u64,
    /// The loaded tokenizer.
    pub tokenizer: u64,
}

impl ModelMemory {
    pub fn total(&self) -> u64 {
        self.weights
            .saturating_add(self.tables)
            .saturating_add(self.tokenizer)
    }

    /// Refuses a model larger than `budget` bytes.
    pub fn check(&self, budget: u64) -> Result<()> {
        let total = self.total();
        if total > budget {
            return Err(InferenceError::TooLarge(format!(
                "the model needs about {} MB of memory (weights {} MB, tables {} MB, tokenizer \
                 {} MB); this server's inference budget is {} MB",
                mb(total),
                mb(self.weights),
                mb(self.tables),
                mb(self.tokenizer),
                mb(budget)
            )));
        }
        Ok(())
    }
}

fn mb(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// Size of a file of the snapshot, refused above `max` (read before the file is).
pub(crate) fn file_size(path: &std::path::Path, max: u64) -> Result<u64> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    let len = std::fs::metadata(path)
        .map_err(|e| InferenceError::Load(format!("cannot read {name}: {e}")))?
        .len();
    if len > max {
        return Err(InferenceError::Load(format!(
            "{name} is {len} bytes, above this server's limit of {max}"
        )));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clipping_keeps_characters_whole() {
        assert_eq!(clip_start("héllo", 2), "h");
        assert_eq!(clip_start("héllo", 3), "hé");
        assert_eq!(clip_start("abc", 10), "abc");
        assert_eq!(clip_end("abcé", 1), "");
        assert_eq!(clip_end("abcé", 2), "é");
        assert_eq!(clip_end("abcé", 3), "cé");
    }

    #[test]
    fn config_sizes_are_checked() {
        let cfg = json!({"num_hidden_layers": 1_000_000_000u64, "n": -1, "ok": 12, "f": 1.5});
        assert!(config_usize(&cfg, &["num_hidden_layers"], MAX_LAYERS).is_err());
        assert!(config_usize(&cfg, &["n"], 10).is_err());
        assert!(config_usize(&cfg, &["f"], 10).is_err());
        assert_eq!(
            config_usize(&cfg, &["missing", "ok"], 12).ok(),
            Some(Some(12))
        );
        assert_eq!(config_usize(&cfg, &["missing"], 12).ok(), Some(None));
        assert!(check_positive("x", 0, 5).is_err());
    }

    #[test]
    fn memory_over_budget_is_refused() {
        let m = ModelMemory {
            weights: 3 << 20,
            tables: 1 << 20,
            tokenizer: 0,
        };
        assert!(m.check(4 << 20).is_ok());
        let err = m.check((4 << 20) - 1).expect_err("over");
        assert!(matches!(err, InferenceError::TooLarge(ref s) if s.contains("budget is 4 MB")));
    }
}
