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
use crate::limits::{
    MAX_ANSWER_VALUES, MAX_CANDIDATE_LABELS, MAX_FILL_MASK_ANSWERS, MAX_GROUP_TOKENS, MAX_HIDDEN,
    MAX_LABEL_BYTES, MAX_MASKS, MAX_MODULES, MAX_QA_CONTEXT_BYTES, MAX_REQUEST_TOKENS,
    MAX_TARGET_BYTES, MAX_TEMPLATE_BYTES, check_bytes,
};
use crate::model::{EncoderModel, Head};
use crate::params::{MAX_INPUTS, Params, string_list, texts};
use crate::task::Task;
use crate::tokenize::Item;
use crate::weights::Checkpoint;

mod classify;
mod embed;
mod fill_mask;
mod qa;
mod token;

pub use classify::legacy_zero_shot_answer;
pub(crate) use classify::nli_ids;
use classify::*;
use embed::*;
pub(crate) use embed::{Pooling, module_bytes};
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
///
/// Requests are answered group by group, a group holding at most [`MAX_GROUP_TOKENS`] tokens
/// by its requests' upper bounds (a larger request forms a group alone): the hidden states of a
/// group are dropped before the next one is encoded, so a batch of large requests holds one
/// group's states, not all of them. Small requests still share forward passes.
pub(crate) fn run(m: &EncoderModel, reqs: &[(Task, &Value)]) -> Vec<Result<Value>> {
    let mut answers: Vec<Option<Result<Value>>> = (0..reqs.len()).map(|_| None).collect();
    let mut group: Vec<(usize, Job)> = Vec::new();
    let mut bound = 0usize;
    for (i, (task, body)) in reqs.iter().enumerate() {
        let job = match prepare(m, *task, body) {
            Ok(job) => job,
            Err(e) => {
                answers[i] = Some(Err(e));
                continue;
            }
        };
        let tokens = token_bound(m, &job);
        if !group.is_empty() && bound.saturating_add(tokens) > MAX_GROUP_TOKENS {
            answer_group(m, std::mem::take(&mut group), &mut answers);
            bound = 0;
        }
        bound = bound.saturating_add(tokens);
        group.push((i, job));
    }
    answer_group(m, group, &mut answers);
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(InferenceError::Internal("no answer".into()))))
        .collect()
}

/// Most tokens a request can make: its items are truncated to the model's input length, and a
/// question-answering context makes at most [`crate::limits::MAX_QA_WINDOWS`] windows.
fn token_bound(m: &EncoderModel, job: &Job) -> usize {
    match job.kind {
        Kind::Qa { .. } => MAX_GROUP_TOKENS,
        _ => job.items.len().saturating_mul(m.tok.max_tokens),
    }
}

/// Tokenizes, checks, encodes and answers one group of requests.
fn answer_group(m: &EncoderModel, group: Vec<(usize, Job)>, answers: &mut [Option<Result<Value>>]) {
    if group.is_empty() {
        return;
    }
    let items: Vec<&Item> = group.iter().flat_map(|(_, j)| j.items.iter()).collect();
    let mut tokenized = match tokenize(m, &items) {
        Ok(t) => t.into_iter(),
        Err(e) => {
            for (i, _) in &group {
                answers[*i] = Some(Err(e.clone()));
            }
            return;
        }
    };
    let mut accepted: Vec<(usize, Job)> = Vec::with_capacity(group.len());
    let mut windows: Vec<Vec<Encoding>> = Vec::new();
    for (i, job) in group {
        let mine: Vec<Vec<Encoding>> = tokenized.by_ref().take(job.items.len()).collect();
        match check_tokens(m, &job, &mine) {
            Ok(()) => {
                windows.extend(mine);
                accepted.push((i, job));
            }
            Err(e) => answers[i] = Some(Err(e)),
        }
    }
    let encoded = match encode_all(m, windows) {
        Ok(e) => e,
        Err(e) => {
            for (i, _) in accepted {
                answers[i] = Some(Err(e.clone()));
            }
            return;
        }
    };
    let mut rest = encoded.as_slice();
    for (i, job) in accepted {
        let (mine, tail) = rest.split_at(job.items.len().min(rest.len()));
        rest = tail;
        answers[i] = Some(finish(m, job.kind, mine));
    }
}

/// Refuses a request whose tokens (after truncation, QA windows included) exceed
/// [`MAX_REQUEST_TOKENS`], or whose per-token embeddings would exceed [`MAX_ANSWER_VALUES`].
fn check_tokens(m: &EncoderModel, job: &Job, encs: &[Vec<Encoding>]) -> Result<()> {
    let tokens: usize = encs.iter().flatten().map(|e| e.len().max(1)).sum();
    if tokens > MAX_REQUEST_TOKENS {
        return Err(bad(format!(
            "this request has {tokens} tokens after truncation; at most {MAX_REQUEST_TOKENS} per \
             request"
        )));
    }
    let per_token = !(m.sentence_transformers || m.task == Task::SentenceSimilarity);
    if matches!(job.kind, Kind::Features { .. }) && per_token {
        let values = tokens.saturating_mul(m.enc.cfg.hidden);
        if values > MAX_ANSWER_VALUES {
            return Err(bad(format!(
                "the answer would hold {values} numbers (tokens x hidden size); at most \
                 {MAX_ANSWER_VALUES} per request"
            )));
        }
    }
    Ok(())
}

/// Per item its encodings: one, except for long question-answering contexts (windows).
fn tokenize(m: &EncoderModel, items: &[&Item]) -> Result<Vec<Vec<Encoding>>> {
    if m.task == Task::QuestionAnswering {
        return items
            .iter()
            .map(|item| match item {
                Item::Pair(q, c) => m.tok.encode_windows(q, c),
                Item::Single(_) => m.tok.encode(&[(*item).clone()]),
            })
            .collect();
    }
    let owned: Vec<Item> = items.iter().map(|i| (*i).clone()).collect();
    Ok(m.tok.encode(&owned)?.into_iter().map(|e| vec![e]).collect())
}

/// Runs tokenized items in packed batches (sequences end to end, no padding) and returns
/// per-item hidden states in the original order, with the further windows of long
/// question-answering contexts.
fn encode_all(m: &EncoderModel, per_item: Vec<Vec<Encoding>>) -> Result<Vec<Encoded>> {
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
            let (mut t, single) = texts(inputs, m.tok.max_bytes)?;
            let normalize = p.bool("normalize")?.unwrap_or(false);
            if let Some(name) = p.str("prompt_name")? {
                let prompt = m
                    .prompts
                    .get(name)
                    .ok_or_else(|| bad(format!("unknown prompt_name {name:?}")))?;
                t.iter_mut()
                    .for_each(|s| *s = m.tok.clip(&format!("{prompt}{s}")));
            }
            Ok(Job {
                items: singles(t),
                kind: Kind::Features { single, normalize },
            })
        }
        Task::SentenceSimilarity => prepare_similarity(m, inputs),
        Task::FillMask => prepare_fill_mask(m, &p, inputs),
        Task::TextClassification => prepare_text_cls(m, &p, inputs),
        Task::TokenClassification => prepare_token_cls(m, &p, inputs),
        Task::ZeroShotClassification => prepare_zero_shot(m, &p, inputs),
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
