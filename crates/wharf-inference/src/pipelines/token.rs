//! token-classification with the pipeline's aggregation strategies.

use super::*;

pub(super) fn prepare_token_cls(m: &EncoderModel, p: &Params, inputs: &Value) -> Result<Job> {
    let (t, single) = texts(inputs, m.tok.max_bytes)?;
    let agg = match p.str("aggregation_strategy")?.unwrap_or("simple") {
        "none" => Agg::None,
        "simple" => Agg::Simple,
        "first" => Agg::First,
        "average" => Agg::Average,
        "max" => Agg::Max,
        o => {
            return Err(bad(format!(
                "aggregation_strategy {o:?}: use none, simple, first, average or max"
            )));
        }
    };
    let ignore = p
        .strings("ignore_labels", false)?
        .unwrap_or_else(|| vec!["O".to_string()]);
    Ok(Job {
        items: singles(t),
        kind: Kind::TokenCls {
            single,
            agg,
            ignore,
        },
    })
}

/// A token or word with its predicted label, before grouping into entities.
pub(super) struct Unit {
    label: usize,
    score: f32,
    ids: Vec<u32>,
    start: usize,
    end: usize,
    index: usize,
    token: String,
}

pub(super) fn token_cls_one(
    m: &EncoderModel,
    e: &Encoded,
    agg: Agg,
    ignore: &[String],
) -> Result<Value> {
    let Head::PerToken(head) = &m.head else {
        return Err(InferenceError::Unsupported(
            "this model has no token-classification head".into(),
        ));
    };
    let probs: Vec<Vec<f32>> = rows(&head.forward(&e.hidden)?)?
        .iter()
        .map(|l| softmax(l))
        .collect();
    let enc = &e.enc;
    let real: Vec<usize> = (0..enc.len())
        .filter(|&i| enc.get_special_tokens_mask()[i] == 0)
        .collect();
    let units = match agg {
        Agg::None | Agg::Simple => real
            .iter()
            .map(|&i| token_unit(enc, &probs[i], i))
            .collect(),
        _ => word_units(enc, &probs, &real, agg),
    };
    if agg == Agg::None {
        let out = units
            .into_iter()
            .filter(|u| !ignore.contains(&label(m, u.label)))
            .map(|u| {
                json!({"entity": label(m, u.label), "score": u.score as f64, "index": u.index,
                       "word": u.token, "start": u.start, "end": u.end})
            })
            .collect();
        return Ok(Value::Array(out));
    }
    let mut out = Vec::new();
    for group in group_entities(m, units) {
        let tag = entity_tag(&label(m, group[0].label)).1.to_string();
        if ignore.contains(&tag) {
            continue;
        }
        let ids: Vec<u32> = group.iter().flat_map(|u| u.ids.iter().copied()).collect();
        let score = group.iter().map(|u| u.score).sum::<f32>() / group.len() as f32;
        out.push(json!({
            "entity_group": tag,
            "score": score as f64,
            "word": m.tok.decode(&ids, true)?.trim().to_string(),
            "start": group[0].start,
            "end": group[group.len() - 1].end,
        }));
    }
    Ok(Value::Array(out))
}

pub(super) fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

pub(super) fn token_unit(enc: &Encoding, probs: &[f32], i: usize) -> Unit {
    let label = argmax(probs);
    let (start, end) = enc.get_offsets()[i];
    Unit {
        label,
        score: probs[label],
        ids: vec![enc.get_ids()[i]],
        start,
        end,
        index: i,
        token: enc.get_tokens()[i].clone(),
    }
}

/// Word-level predictions (first / average / max over a word's sub-tokens).
pub(super) fn word_units(
    enc: &Encoding,
    probs: &[Vec<f32>],
    real: &[usize],
    agg: Agg,
) -> Vec<Unit> {
    let words = enc.get_word_ids();
    let mut out: Vec<Unit> = Vec::new();
    let mut i = 0;
    while i < real.len() {
        let mut j = i + 1;
        while j < real.len() && words[real[j]].is_some() && words[real[j]] == words[real[i]] {
            j += 1;
        }
        let toks = &real[i..j];
        let p: Vec<f32> = match agg {
            Agg::Average => {
                let mut acc = vec![0.0; probs[toks[0]].len()];
                for &t in toks {
                    acc.iter_mut()
                        .zip(&probs[t])
                        .for_each(|(a, b)| *a += b / toks.len() as f32);
                }
                acc
            }
            Agg::Max => {
                let best = toks.iter().max_by(|a, b| {
                    let (pa, pb) = (&probs[**a], &probs[**b]);
                    pa[argmax(pa)].total_cmp(&pb[argmax(pb)])
                });
                probs[*best.unwrap_or(&toks[0])].clone()
            }
            _ => probs[toks[0]].clone(),
        };
        let mut u = token_unit(enc, &p, toks[0]);
        u.ids = toks.iter().map(|&t| enc.get_ids()[t]).collect();
        u.end = enc.get_offsets()[toks[toks.len() - 1]].1;
        out.push(u);
        i = j;
    }
    out
}

/// ("B" | "I", type) of a label such as "B-PER"; labels without a prefix count as "I".
pub(super) fn entity_tag(label: &str) -> (&str, &str) {
    match label.split_once('-') {
        Some((bi @ ("B" | "I"), t)) => (bi, t),
        _ => ("I", label),
    }
}

/// Consecutive units of one type form an entity; a "B-" starts a new one.
pub(super) fn group_entities(m: &EncoderModel, units: Vec<Unit>) -> Vec<Vec<Unit>> {
    let mut groups: Vec<Vec<Unit>> = Vec::new();
    for u in units {
        let l = label(m, u.label);
        let (bi, tag) = entity_tag(&l);
        let joins = groups.last().and_then(|g| g.last()).is_some_and(|last| {
            let ll = label(m, last.label);
            entity_tag(&ll).1 == tag && bi != "B"
        });
        match groups.last_mut() {
            Some(g) if joins => g.push(u),
            _ => groups.push(vec![u]),
        }
    }
    groups
}
