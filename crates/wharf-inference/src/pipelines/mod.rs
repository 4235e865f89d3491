//! Encoder task pipelines: parse a body into encoder items, run every item of every request in
//! packed batches (no padding), then shape each request's answer as the Hub does.

use std::path::{Component, Path};

use candle_core::{Device, Tensor};
use serde_json::{Value, json};
use tokenizers::Encoding;

use crate::config::{Act, read_json, read_json_opt};
use crate::encoder::Packed;
use crate::encoder::{Lin, l2_normalize, rows, sigmoid, softmax};
use crate::error::{InferenceError, Result, bad};
use crate::model::{EncoderModel, Head};
use crate::params::{MAX_INPUTS, Params, string_list, texts};
use crate::task::Task;
use crate::tokenize::Item;
use crate::weights::Weights;

mod classify;
mod embed;
mod fill_mask;
mod qa;
mod token;

pub use classify::legacy_zero_shot_answer;
pub(crate) use classify::nli_ids;
use classify::*;
pub(crate) use embed::Pooling;
use embed::*;
use fill_mask::*;
use qa::*;
use token::*;

/// Sequences per forward pass, and tokens per pass: bound the memory of one pass.
const MAX_BATCH_ROWS: usize = 64;
const MAX_BATCH_TOKENS: usize = 4096;

/// One encoded item: its encoding and its hidden states (tokens, hidden) without padding.
struct Encoded {
    enc: Encoding,
    hidden: Tensor,
    /// Further windows of a long question-answering context, in order (empty otherwise).
    windows: Vec<Encoded>,
}

/// A parsed request: the items to encode and how to shape the answer.
struct Job {
    items: Vec<Item>,
    kind: Kind,
}

enum Kind {
    Features {
        single: bool,
        normalize: bool,
    },
    Similarity,
    FillMask {
        single: bool,
        top_k: usize,
        targets: Option<Vec<u32>>,
    },
    TextCls {
        top_k: Option<usize>,
        func: Option<Func>,
    },
    TokenCls {
        single: bool,
        agg: Agg,
        ignore: Vec<String>,
    },
    ZeroShot {
        single: bool,
        labels: Vec<String>,
        multi: bool,
    },
    Qa {
        top_k: usize,
        max_len: usize,
        context: String,
        impossible: bool,
    },
}

#[derive(Clone, Copy, PartialEq)]
enum Func {
    Softmax,
    Sigmoid,
    None,
}

#[derive(Clone, Copy, PartialEq)]
enum Agg {
    None,
    Simple,
    First,
    Average,
    Max,
}

/// Runs requests of one encoder model together; one result per request, same order.
pub(crate) fn run(m: &EncoderModel, reqs: &[(Task, &Value)]) -> Vec<Result<Value>> {
    let jobs: Vec<Result<Job>> = reqs.iter().map(|(t, b)| prepare(m, *t, b)).collect();
    let items: Vec<&Item> = jobs.iter().flatten().flat_map(|j| j.items.iter()).collect();
    let encoded = match encode_all(m, &items) {
        Ok(e) => e,
        Err(e) => return jobs.into_iter().map(|j| j.and(Err(dup(&e)))).collect(),
    };
    let mut rest = encoded.as_slice();
    jobs.into_iter()
        .map(|job| {
            let job = job?;
            let (mine, tail) = rest.split_at(job.items.len());
            rest = tail;
            finish(m, job.kind, mine)
        })
        .collect()
}

fn dup(e: &InferenceError) -> InferenceError {
    match e {
        InferenceError::Unsupported(s) => InferenceError::Unsupported(s.clone()),
        InferenceError::BadInput(s) => InferenceError::BadInput(s.clone()),
        InferenceError::Load(s) => InferenceError::Load(s.clone()),
        InferenceError::Internal(s) => InferenceError::Internal(s.clone()),
    }
}

/// Tokenizes all items, runs them in packed batches (sequences end to end, no padding) and
/// returns per-item hidden states in the original order. A question-answering model also runs
/// the overflow windows of long contexts.
fn encode_all(m: &EncoderModel, items: &[&Item]) -> Result<Vec<Encoded>> {
    // Per item its windows: one, except for long question-answering contexts.
    let per_item: Vec<Vec<Encoding>> = if m.task == Task::QuestionAnswering {
        items
            .iter()
            .map(|item| match item {
                Item::Pair(q, c) => m.tok.encode_windows(q, c),
                Item::Single(_) => m.tok.encode(&[(*item).clone()]),
            })
            .collect::<Result<_>>()?
    } else {
        let owned: Vec<Item> = items.iter().map(|i| (*i).clone()).collect();
        m.tok.encode(&owned)?.into_iter().map(|e| vec![e]).collect()
    };
    let seqs: Vec<&Encoding> = per_item.iter().flatten().collect();
    let mut hidden: Vec<Option<Tensor>> = vec![None; seqs.len()];
    let order: Vec<usize> = (0..seqs.len()).collect();
    for chunk in chunks_by_budget(&order, |i| seqs[i].len().max(1)) {
        let batch: Vec<&Encoding> = chunk.iter().map(|&i| seqs[i]).collect();
        let packed = Packed::new(&batch, m.tok.pad_id);
        let out = m.enc.forward(&packed)?;
        for ((&i, start), len) in chunk.iter().zip(packed.starts()).zip(&packed.lens) {
            hidden[i] = Some(out.narrow(0, start, *len)?);
        }
    }
    let mut hidden = hidden.into_iter();
    let mut take = |enc: Encoding| -> Result<Encoded> {
        let hidden = hidden
            .next()
            .flatten()
            .ok_or_else(|| InferenceError::Internal("item not encoded".into()))?;
        Ok(Encoded {
            enc,
            hidden,
            windows: Vec::new(),
        })
    };
    per_item
        .into_iter()
        .map(|windows| {
            let mut windows = windows.into_iter();
            let first = windows
                .next()
                .ok_or_else(|| InferenceError::Internal("item not tokenized".into()))?;
            let mut item = take(first)?;
            item.windows = windows.map(&mut take).collect::<Result<_>>()?;
            Ok(item)
        })
        .collect()
}

/// Splits item indices into consecutive batches within the row and token budgets.
fn chunks_by_budget(order: &[usize], len: impl Fn(usize) -> usize) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (end, &i) in order.iter().enumerate() {
        let rows = end - start;
        if rows > 0 && (rows == MAX_BATCH_ROWS || tokens + len(i) > MAX_BATCH_TOKENS) {
            out.push(&order[start..end]);
            (start, tokens) = (end, 0);
        }
        tokens += len(i);
    }
    if start < order.len() {
        out.push(&order[start..]);
    }
    out
}

fn prepare(m: &EncoderModel, task: Task, body: &Value) -> Result<Job> {
    let p = Params::new(body)?;
    let inputs = p.inputs()?;
    match task {
        Task::FeatureExtraction => {
            let (mut t, single) = texts(inputs)?;
            let normalize = p.bool("normalize")?.unwrap_or(false);
            if let Some(name) = p.str("prompt_name")? {
                let prompt = m
                    .prompts
                    .get(name)
                    .ok_or_else(|| bad(format!("unknown prompt_name {name:?}")))?;
                t.iter_mut().for_each(|s| s.insert_str(0, prompt));
            }
            Ok(Job {
                items: singles(t),
                kind: Kind::Features { single, normalize },
            })
        }
        Task::SentenceSimilarity => prepare_similarity(inputs),
        Task::FillMask => prepare_fill_mask(m, &p, inputs),
        Task::TextClassification => prepare_text_cls(&p, inputs),
        Task::TokenClassification => prepare_token_cls(&p, inputs),
        Task::ZeroShotClassification => prepare_zero_shot(&p, inputs),
        Task::QuestionAnswering => prepare_qa(&p, inputs),
        Task::TextGeneration => Err(InferenceError::Unsupported(
            "text-generation needs a decoder model".into(),
        )),
    }
}

fn finish(m: &EncoderModel, kind: Kind, encs: &[Encoded]) -> Result<Value> {
    match kind {
        Kind::Features { single, normalize } => finish_features(m, encs, single, normalize),
        Kind::Similarity => finish_similarity(m, encs),
        Kind::FillMask {
            single,
            top_k,
            targets,
        } => {
            let per: Vec<Value> = encs
                .iter()
                .map(|e| fill_mask_one(m, e, top_k, targets.as_deref()))
                .collect::<Result<_>>()?;
            Ok(one_or_list(per, single))
        }
        Kind::TextCls { top_k, func } => {
            let logits = cls_logits(m, encs)?;
            let per = logits
                .iter()
                .map(|l| Value::Array(classify(m, l, func, top_k)))
                .collect();
            Ok(Value::Array(per))
        }
        Kind::TokenCls {
            single,
            agg,
            ignore,
        } => {
            let per: Vec<Value> = encs
                .iter()
                .map(|e| token_cls_one(m, e, agg, &ignore))
                .collect::<Result<_>>()?;
            Ok(one_or_list(per, single))
        }
        Kind::ZeroShot {
            single,
            labels,
            multi,
        } => finish_zero_shot(m, encs, &labels, multi, single),
        Kind::Qa {
            top_k,
            max_len,
            context,
            impossible,
        } => {
            let e = encs
                .first()
                .ok_or_else(|| InferenceError::Internal("no QA item".into()))?;
            qa_one(m, e, &context, top_k, max_len, impossible)
        }
    }
}

fn singles(t: Vec<String>) -> Vec<Item> {
    t.into_iter().map(Item::Single).collect()
}

fn one_or_list(mut per: Vec<Value>, single: bool) -> Value {
    if single && per.len() == 1 {
        per.remove(0)
    } else {
        Value::Array(per)
    }
}

/// An f32 as a JSON number with the shortest digits that read back as the same f32 (what the
/// Hub's Rust embedding server writes), rather than the 17 digits of its f64 widening: half the
/// bytes for an embedding answer, and half the client's parsing.
fn f(x: f32) -> Value {
    let mut digits = String::with_capacity(16);
    // Writing to a String cannot fail.
    let _ = std::fmt::Write::write_fmt(&mut digits, format_args!("{x}"));
    json!(digits.parse::<f64>().unwrap_or(x as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_with_the_shortest_f32_digits() {
        assert_eq!(f(0.1).to_string(), "0.1");
        assert_eq!(f(0.018_211_624).to_string(), "0.018211624");
        assert_eq!(f(-3.0e-8).to_string(), "-3e-8");
        for x in [0.1f32, 1.0 / 3.0, -7.5e-12, 123_456.79, f32::MAX] {
            let back = f(x).as_f64().unwrap_or(f64::NAN) as f32;
            assert_eq!(back, x, "{x} reads back");
        }
        assert_eq!(f(f32::NAN), Value::Null);
    }

    #[test]
    fn batches_respect_row_and_token_budgets() {
        let lens = [10, 10, 10, 500, 500, 500, 500, 500, 500, 500, 500, 500];
        let order: Vec<usize> = (0..lens.len()).collect();
        let chunks = chunks_by_budget(&order, |i| lens[i]);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), lens.len());
        for c in &chunks {
            let tokens: usize = c.iter().map(|&i| lens[i]).sum();
            assert!(c.len() <= MAX_BATCH_ROWS && (c.len() == 1 || tokens <= MAX_BATCH_TOKENS));
        }
        let many: Vec<usize> = (0..130).collect();
        assert_eq!(chunks_by_budget(&many, |_| 5).len(), 3);
        assert_eq!(chunks_by_budget(&[0, 1], |_| 9000).len(), 2);
        assert!(chunks_by_budget(&[], |_| 5).is_empty());
    }
}
