//! The tokenizer of a snapshot, configured once at load (truncation, no padding: the encoder packs
//! sequences end to end).

use std::path::Path;

use serde_json::Value;
use tokenizers::{
    Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::config::read_json_opt;
use crate::error::{InferenceError, Result};
use crate::limits::{
    MAX_BYTES_PER_TOKEN, MAX_QA_WINDOWS, MAX_TOKENIZER_FILE, TOKENIZER_MEMORY_FACTOR, clip_start,
    file_size,
};
use crate::tokenizer_check;

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
    /// Bytes of one text kept before tokenizing (see [`MAX_BYTES_PER_TOKEN`]); unbounded for
    /// decoders, whose prompts are cut by the generation code.
    pub max_bytes: usize,
    /// Tokens one item is truncated to (unbounded for decoders).
    pub max_tokens: usize,
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
        let path = dir.join("tokenizer.json");
        file_size(&path, MAX_TOKENIZER_FILE)?;
        tokenizer_check::check_file(&path)?;
        let mut tk = Tokenizer::from_file(&path)
            .map_err(|e| InferenceError::Load(format!("tokenizer.json: {e}")))?;
        tokenizer_check::check_loaded(&tk)?;
        let tok_cfg = read_json_opt(dir, "tokenizer_config.json")?;
        let specials = read_json_opt(dir, "special_tokens_map.json")?;
        tk.with_padding(None);
        let mut qa = None;
        let mut max_bytes = usize::MAX;
        let mut max_tokens = usize::MAX;
        if let Some(max_len) = max_len {
            let max_len = model_max_length(tok_cfg.as_ref()).map_or(max_len, |m| m.min(max_len));
            max_tokens = max_len;
            max_bytes = max_len.saturating_mul(MAX_BYTES_PER_TOKEN);
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
            max_bytes,
            max_tokens,
            mask,
            pad_id,
            qa,
        })
    }

    /// Memory the loaded tokenizer is counted at, from its file's size (refused above
    /// [`MAX_TOKENIZER_FILE`]).
    pub fn memory(dir: &Path) -> Result<u64> {
        let len = file_size(&dir.join("tokenizer.json"), MAX_TOKENIZER_FILE)?;
        Ok(len.saturating_mul(TOKENIZER_MEMORY_FACTOR))
    }

    /// `text` cut to the bytes this model can read (at a character boundary).
    pub fn clip(&self, text: &str) -> String {
        clip_start(text, self.max_bytes).to_string()
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
        // A question longer than a window is refused below anyway: one far longer is refused
        // before it is tokenized. (The context's length is checked by the QA pipeline.)
        if question.len() > qa.window.saturating_mul(MAX_BYTES_PER_TOKEN) {
            return Err(question_too_long(qa.window));
        }
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
            .ok_or_else(|| question_too_long(qa.window))?;
        c.truncate(room, QA_STRIDE.min(room / 2), TruncationDirection::Right);
        let rest = c.take_overflowing();
        if rest.len() >= MAX_QA_WINDOWS {
            return Err(InferenceError::BadInput(format!(
                "the context is too long: it makes {} windows of {} tokens, at most \
                 {MAX_QA_WINDOWS} per request",
                rest.len() + 1,
                qa.window
            )));
        }
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

fn question_too_long(window: usize) -> InferenceError {
    InferenceError::BadInput(format!(
        "the question is too long: this model reads {window} tokens at a time"
    ))
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
