//! The tokenizer of a snapshot, configured once at load (truncation, no padding: the encoder packs
//! sequences end to end).

use std::path::Path;

use serde_json::Value;
use tokenizers::{
    Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::config::read_json_opt;
use crate::error::{InferenceError, Result};

/// Question answering reads long contexts in windows of this many tokens overlapping by
/// `QA_STRIDE`, the transformers pipeline's defaults (`max_seq_len`, `doc_stride`).
const QA_WINDOW: usize = 384;
const QA_STRIDE: usize = 128;

/// One encoder input: a text or a text pair (NLI, question answering).
#[derive(Debug, Clone)]
pub(crate) enum Item {
    Single(String),
    Pair(String, String),
}

pub(crate) struct TextTokenizer {
    pub tk: Tokenizer,
    /// The mask token and its id, when the model has one.
    pub mask: Option<(String, u32)>,
    pub pad_id: u32,
    /// Question-answering models: windowing of long contexts.
    qa: Option<QaWindows>,
}

struct QaWindows {
    /// The same tokenizer without truncation: question and context are cut by us.
    tk: Tokenizer,
    /// Tokens per window, special tokens included.
    window: usize,
}

impl TextTokenizer {
    /// Loads tokenizer.json; `max_len` caps inputs (None leaves the file's own truncation).
    /// With `qa_windows` (question-answering models), [`TextTokenizer::encode_windows`] reads
    /// long contexts in overlapping windows.
    pub fn load(
        dir: &Path,
        max_len: Option<usize>,
        pad_id: u32,
        qa_windows: bool,
    ) -> Result<TextTokenizer> {
        let mut tk = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| InferenceError::Load(format!("tokenizer.json: {e}")))?;
        let tok_cfg = read_json_opt(dir, "tokenizer_config.json")?;
        let specials = read_json_opt(dir, "special_tokens_map.json")?;
        tk.with_padding(None);
        let mut qa = None;
        if let Some(max_len) = max_len {
            let max_len = model_max_length(tok_cfg.as_ref()).map_or(max_len, |m| m.min(max_len));
            if qa_windows {
                let mut untruncated = tk.clone();
                untruncated
                    .with_truncation(None)
                    .map_err(|e| InferenceError::Load(format!("tokenizer truncation: {e}")))?;
                qa = Some(QaWindows {
                    tk: untruncated,
                    window: max_len.min(QA_WINDOW),
                });
            }
            let params = TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            };
            tk.with_truncation(Some(params))
                .map_err(|e| InferenceError::Load(format!("tokenizer truncation: {e}")))?;
        }
        let mask = mask_token(&tk, tok_cfg.as_ref(), specials.as_ref());
        Ok(TextTokenizer {
            tk,
            mask,
            pad_id,
            qa,
        })
    }

    /// Encodes items with character offsets (the Hub reports character positions).
    pub fn encode(&self, items: &[Item]) -> Result<Vec<Encoding>> {
        let inputs: Vec<tokenizers::EncodeInput> = items
            .iter()
            .map(|it| match it {
                Item::Single(s) => s.as_str().into(),
                Item::Pair(a, b) => (a.as_str(), b.as_str()).into(),
            })
            .collect();
        self.tk
            .encode_batch_char_offsets(inputs, true)
            .map_err(|e| InferenceError::Internal(format!("tokenizer: {e}")))
    }

    /// A question and a context as one or more windows `[question | context part]`, the parts
    /// overlapping by up to `QA_STRIDE` tokens, as the transformers pipeline reads long contexts
    /// (tokenizers' own overflow of a truncated pair kept only the last part here, so the
    /// context is cut by us and each window assembled by the tokenizer's post-processor).
    pub fn encode_windows(&self, question: &str, context: &str) -> Result<Vec<Encoding>> {
        let Some(qa) = &self.qa else {
            let pair = Item::Pair(question.to_string(), context.to_string());
            return self.encode(&[pair]);
        };
        let encode = |s: &str| {
            qa.tk
                .encode_char_offsets(s, false)
                .map_err(|e| InferenceError::Internal(format!("tokenizer: {e}")))
        };
        let q = encode(question)?;
        let mut c = encode(context)?;
        let added = qa
            .tk
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(true));
        let room = qa
            .window
            .checked_sub(q.len() + added)
            .filter(|&r| r >= 2)
            .ok_or_else(|| {
                InferenceError::BadInput(format!(
                    "the question is too long: this model reads {} tokens at a time",
                    qa.window
                ))
            })?;
        c.truncate(room, QA_STRIDE.min(room / 2), TruncationDirection::Right);
        let rest = c.take_overflowing();
        std::iter::once(c)
            .chain(rest)
            .map(|part| {
                qa.tk
                    .post_process(q.clone(), Some(part), true)
                    .map_err(|e| InferenceError::Internal(format!("tokenizer: {e}")))
            })
            .collect()
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.tk
            .decode(ids, skip_special)
            .map_err(|e| InferenceError::Internal(format!("decode: {e}")))
    }
}

fn model_max_length(tok_cfg: Option<&Value>) -> Option<usize> {
    let v = tok_cfg?.get("model_max_length")?.as_f64()?;
    // Tokenizers without a limit store 1e30 here.
    (1.0..1e7).contains(&v).then_some(v as usize)
}

fn special_name(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn mask_token(
    tk: &Tokenizer,
    tok_cfg: Option<&Value>,
    specials: Option<&Value>,
) -> Option<(String, u32)> {
    let named = special_name(tok_cfg.and_then(|c| c.get("mask_token")))
        .or_else(|| special_name(specials.and_then(|c| c.get("mask_token"))));
    named
        .into_iter()
        .chain(["[MASK]".to_string(), "<mask>".to_string()])
        .find_map(|name| tk.token_to_id(&name).map(|id| (name, id)))
}
