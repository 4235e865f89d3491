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
    let logits = rows(&head.forward(&e.hidden)?)?;
    let seq = e.enc.get_sequence_ids();
    let special = e.enc.get_special_tokens_mask();
    let in_ctx: Vec<bool> = (0..logits.len())
        .map(|i| seq[i] == Some(1) && special[i] == 0)
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
    let mut spans: Vec<(f32, usize, usize)> = Vec::new();
    for i in (0..ps.len()).filter(|&i| in_ctx[i]) {
        for j in (i..(i + max_len).min(pe.len())).filter(|&j| in_ctx[j]) {
            spans.push((ps[i] * pe[j], i, j));
        }
    }
    spans.sort_by(|a, b| b.0.total_cmp(&a.0));
    spans.truncate(top_k);
    let chars: Vec<(usize, char)> = context.char_indices().collect();
    let byte_at = |c: usize| chars.get(c).map_or(context.len(), |(b, _)| *b);
    let offsets = e.enc.get_offsets();
    let mut answers: Vec<Value> = spans
        .into_iter()
        .map(|(score, i, j)| {
            let (start, end) = (offsets[i].0, offsets[j].1);
            let text = context.get(byte_at(start)..byte_at(end)).unwrap_or("");
            json!({"score": score as f64, "start": start, "end": end, "answer": text})
        })
        .collect();
    if impossible {
        let null_score = (ps[0] * pe[0]) as f64;
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
