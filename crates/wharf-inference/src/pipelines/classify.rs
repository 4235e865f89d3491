//! text-classification and zero-shot-classification (NLI heads).

use super::*;

pub(super) fn prepare_text_cls(m: &EncoderModel, p: &Params, inputs: &Value) -> Result<Job> {
    let (t, _) = match inputs {
        // {"text": ..., "text_pair": ...} is the pipeline's pair form.
        Value::Object(o) => {
            let text = o
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("inputs.text must be a string"))?;
            let pair = o.get("text_pair").and_then(Value::as_str);
            let item = match pair {
                Some(b) => Item::Pair(m.tok.clip(text), m.tok.clip(b)),
                None => Item::Single(m.tok.clip(text)),
            };
            return Ok(Job {
                items: vec![item],
                kind: text_cls_kind(p)?,
            });
        }
        other => texts(other, m.tok.max_bytes)?,
    };
    Ok(Job {
        items: singles(t),
        kind: text_cls_kind(p)?,
    })
}

pub(super) fn text_cls_kind(p: &Params) -> Result<Kind> {
    let func = match p.str("function_to_apply")? {
        None => None,
        Some("softmax") => Some(Func::Softmax),
        Some("sigmoid") => Some(Func::Sigmoid),
        Some("none") => Some(Func::None),
        Some(o) => {
            return Err(bad(format!(
                "function_to_apply {o:?}: use softmax, sigmoid or none"
            )));
        }
    };
    Ok(Kind::TextCls {
        top_k: p.usize("top_k")?,
        func,
    })
}

/// Classification logits of each item's first token.
pub(super) fn cls_logits(m: &EncoderModel, encs: &[Encoded]) -> Result<Vec<Vec<f32>>> {
    let Head::Cls(head) = &m.head else {
        return Err(InferenceError::Unsupported(
            "this model has no classification head".into(),
        ));
    };
    let firsts: Vec<Tensor> = encs
        .iter()
        .map(|e| e.hidden.narrow(0, 0, 1))
        .collect::<candle_core::Result<_>>()?;
    rows(&head.forward(&Tensor::cat(&firsts, 0)?)?)
}

pub(super) fn classify(
    m: &EncoderModel,
    logits: &[f32],
    func: Option<Func>,
    top_k: Option<usize>,
) -> Vec<Value> {
    let func = func.unwrap_or(if m.multi_label || logits.len() == 1 {
        Func::Sigmoid
    } else {
        Func::Softmax
    });
    let scores = match func {
        Func::Softmax => softmax(logits),
        Func::Sigmoid => logits.iter().map(|&x| sigmoid(x)).collect(),
        Func::None => logits.to_vec(),
    };
    let mut pairs: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
    pairs.sort_by(|a, b| b.1.total_cmp(&a.1));
    pairs.truncate(top_k.unwrap_or(usize::MAX).max(1));
    pairs
        .into_iter()
        .map(|(i, s)| json!({"label": label(m, i), "score": s as f64}))
        .collect()
}

pub(super) fn label(m: &EncoderModel, i: usize) -> String {
    m.labels
        .get(i)
        .cloned()
        .unwrap_or_else(|| format!("LABEL_{i}"))
}

/// Every size is checked before the (text, label) pairs are built: each pair carries the text
/// and the template expanded with the label.
pub(super) fn prepare_zero_shot(m: &EncoderModel, p: &Params, inputs: &Value) -> Result<Job> {
    let (t, single) = texts(inputs, m.tok.max_bytes)?;
    let labels = p
        .strings("candidate_labels", true)?
        .filter(|l| !l.is_empty())
        .ok_or_else(|| bad("zero-shot-classification needs parameters.candidate_labels"))?;
    if labels.len() > MAX_CANDIDATE_LABELS {
        return Err(bad(format!(
            "at most {MAX_CANDIDATE_LABELS} candidate_labels per request, got {}",
            labels.len()
        )));
    }
    if labels.len().saturating_mul(t.len()) > MAX_INPUTS {
        return Err(bad(format!(
            "at most {MAX_INPUTS} (text, label) pairs per request"
        )));
    }
    for l in &labels {
        check_bytes("a candidate label", l, MAX_LABEL_BYTES)?;
    }
    let template = p
        .str("hypothesis_template")?
        .unwrap_or("This example is {}.");
    check_bytes("hypothesis_template", template, MAX_TEMPLATE_BYTES)?;
    if !template.contains("{}") {
        return Err(bad("hypothesis_template must contain {}"));
    }
    let multi = p
        .bool("multi_label")?
        .or(p.bool("multi_class")?)
        .unwrap_or(false);
    let items = t
        .iter()
        .flat_map(|text| {
            labels
                .iter()
                .map(move |l| Item::Pair(text.clone(), template.replace("{}", l)))
        })
        .collect();
    Ok(Job {
        items,
        kind: Kind::ZeroShot {
            single,
            labels,
            multi,
        },
    })
}

/// Indices of the entailment and (if any) contradiction labels of an NLI head.
pub(crate) fn nli_ids(m: &EncoderModel) -> Result<(usize, Option<usize>)> {
    let find = |p: &str| {
        m.labels
            .iter()
            .position(|l| l.to_lowercase().starts_with(p))
    };
    let ent = find("entail").ok_or_else(|| {
        InferenceError::Unsupported(
            "zero-shot-classification needs an NLI model whose labels include entailment".into(),
        )
    })?;
    Ok((ent, find("contra")))
}

pub(super) fn finish_zero_shot(
    m: &EncoderModel,
    encs: &[Encoded],
    labels: &[String],
    multi: bool,
    single: bool,
) -> Result<Value> {
    let (ent, contra) = nli_ids(m)?;
    let logits = cls_logits(m, encs)?;
    let per: Vec<Value> = logits
        .chunks(labels.len())
        .map(|chunk| {
            let scores: Vec<f32> = if multi {
                chunk
                    .iter()
                    .map(|l| match contra {
                        Some(c) => softmax(&[l[c], l[ent]])[1],
                        None => softmax(l)[ent],
                    })
                    .collect()
            } else {
                softmax(&chunk.iter().map(|l| l[ent]).collect::<Vec<f32>>())
            };
            let mut pairs: Vec<(&String, f32)> = labels.iter().zip(scores).collect();
            pairs.sort_by(|a, b| b.1.total_cmp(&a.1));
            Value::Array(
                pairs
                    .into_iter()
                    .map(|(l, s)| json!({"label": l, "score": s as f64}))
                    .collect(),
            )
        })
        .collect();
    Ok(one_or_list(per, single))
}

/// The answer shape huggingface_hub < 1.0 expects for zero-shot-classification
/// (`{"sequence", "labels", "scores"}`), built from this crate's `[{label, score}]` answer.
pub fn legacy_zero_shot_answer(sequence: &str, answer: &Value) -> Value {
    let items = answer.as_array().cloned().unwrap_or_default();
    let labels: Vec<Value> = items
        .iter()
        .map(|i| i.get("label").cloned().unwrap_or(Value::Null))
        .collect();
    let scores: Vec<Value> = items
        .iter()
        .map(|i| i.get("score").cloned().unwrap_or(Value::Null))
        .collect();
    json!({"sequence": sequence, "labels": labels, "scores": scores})
}
