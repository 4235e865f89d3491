//! question-answering: span search over the context tokens.

use super::*;

pub(super) fn prepare_qa(p: &Params, inputs: &Value) -> Result<Job> {
    // Older clients sent question/context at the top level of the body.
    let get = |k: &str| -> Result<String> {
        let nested = inputs.get(k).and_then(Value::as_str);
        let top = if nested.is_none() { p.str(k)? } else { None };
        nested
            .or(top)
            .map(str::to_string)
            .ok_or_else(|| bad(format!("question-answering inputs need \"{k}\" (a string)")))
    };
    let (question, context) = (get("question")?, get("context")?);
    // The whole context is read (in windows), so it is bounded rather than cut.
    check_bytes("the context", &context, MAX_QA_CONTEXT_BYTES)?;
    let top_k = p.usize("top_k")?.unwrap_or(1).clamp(1, 20);
    let max_len = p.usize("max_answer_len")?.unwrap_or(15).max(1);
    let impossible = p.bool("handle_impossible_answer")?.unwrap_or(false);
    Ok(Job {
        items: vec![Item::Pair(question, context.clone())],
        kind: Kind::Qa {
            top_k,
            max_len,
            context,
            impossible,
        },
    })
}

/// A candidate answer: score and character span in the context.
struct Span {
    score: f32,
    start: usize,
    end: usize,
}

pub(super) fn qa_one(
    m: &EncoderModel,
    e: &Encoded,
    context: &str,
    top_k: usize,
    max_len: usize,
    impossible: bool,
) -> Result<Value> {
    let Head::PerToken(head) = &m.head else {
        return Err(InferenceError::Unsupported(
            "this model has no question-answering head".into(),
        ));
    };
    // A long context was read in overlapping windows: spans from all of them compete, each
    // scored within its window; the "no answer" score is the lowest of the windows'.
    let mut spans = Vec::new();
    let mut null_score = f32::INFINITY;
    for w in std::iter::once(e).chain(&e.windows) {
        let (window_spans, null) = window_spans(head, w, top_k, max_len)?;
        spans.extend(window_spans);
        null_score = null_score.min(null);
    }
    spans.sort_by(|a, b| b.score.total_cmp(&a.score));
    // Overlapping windows find the same span twice: keep its best score.
    let mut seen = std::collections::HashSet::new();
    spans.retain(|s| seen.insert((s.start, s.end)));
    spans.truncate(top_k);
    let chars: Vec<(usize, char)> = context.char_indices().collect();
    let byte_at = |c: usize| chars.get(c).map_or(context.len(), |(b, _)| *b);
    let mut answers: Vec<Value> = spans
        .into_iter()
        .map(|s| {
            let text = context.get(byte_at(s.start)..byte_at(s.end)).unwrap_or("");
            json!({"score": s.score as f64, "start": s.start, "end": s.end, "answer": text})
        })
        .collect();
    if impossible {
        let null_score = null_score as f64;
        if answers
            .first()
            .is_none_or(|a| a["score"].as_f64().unwrap_or(0.0) < null_score)
        {
            answers.insert(
                0,
                json!({"score": null_score, "start": 0, "end": 0, "answer": ""}),
            );
            answers.truncate(top_k);
        }
    }
    if answers.is_empty() {
        return Err(bad("the context is empty or was truncated away"));
    }
    Ok(if top_k == 1 {
        answers.remove(0)
    } else {
        Value::Array(answers)
    })
}

/// The best `top_k` spans of one window and its "no answer" score.
fn window_spans(head: &Lin, w: &Encoded, top_k: usize, max_len: usize) -> Result<(Vec<Span>, f32)> {
    let logits = rows(&head.forward(&w.hidden)?)?;
    let seq = w.enc.get_sequence_ids();
    let special = w.enc.get_special_tokens_mask();
    let in_ctx: Vec<bool> = (0..logits.len())
        .map(|i| seq.get(i) == Some(&Some(1)) && special.get(i) == Some(&0))
        .collect();
    // Softmax over the context tokens and the first token (the "no answer" slot).
    let masked = |col: usize| -> Vec<f32> {
        let v: Vec<f32> = logits
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if in_ctx[i] || i == 0 {
                    l[col]
                } else {
                    -10_000.0
                }
            })
            .collect();
        softmax(&v)
    };
    let (ps, pe) = (masked(0), masked(1));
    let offsets = w.enc.get_offsets();
    let mut spans: Vec<Span> = Vec::new();
    for i in (0..ps.len()).filter(|&i| in_ctx[i]) {
        for j in (i..(i + max_len).min(pe.len())).filter(|&j| in_ctx[j]) {
            spans.push(Span {
                score: ps[i] * pe[j],
                start: offsets[i].0,
                end: offsets[j].1,
            });
        }
    }
    spans.sort_by(|a, b| b.score.total_cmp(&a.score));
    spans.truncate(top_k);
    let null = ps.first().zip(pe.first()).map_or(0.0, |(s, e)| s * e);
    Ok((spans, null))
}
