//! fill-mask: vocabulary scores at each mask position.

use super::*;

pub(super) fn prepare_fill_mask(m: &EncoderModel, p: &Params, inputs: &Value) -> Result<Job> {
    let (t, single) = texts(inputs, m.tok.max_bytes)?;
    let (mask, _) = m
        .tok
        .mask
        .clone()
        .ok_or_else(|| InferenceError::Internal("no mask token".into()))?;
    let masks: Vec<usize> = t.iter().map(|s| s.matches(mask.as_str()).count()).collect();
    if let Some(i) = masks.iter().position(|&n| n == 0) {
        let shown: String = t
            .get(i)
            .map_or("", String::as_str)
            .chars()
            .take(100)
            .collect();
        return Err(bad(format!(
            "No mask_token ({mask}) found on the input: {shown:?}"
        )));
    }
    if masks.iter().any(|&n| n > MAX_MASKS) {
        return Err(bad(format!(
            "at most {MAX_MASKS} mask tokens ({mask}) per input"
        )));
    }
    let vocab = m.enc.vocab_size();
    let top_k = p.usize("top_k")?.unwrap_or(5).clamp(1, vocab.min(1000));
    let targets = match p.strings("targets", false)? {
        None => None,
        Some(ts) if ts.is_empty() => return Err(bad("targets is empty")),
        Some(ts) => Some(
            ts.iter()
                .map(|s| {
                    check_bytes("a target", s, MAX_TARGET_BYTES)?;
                    target_id(m, s)
                })
                .collect::<Result<Vec<u32>>>()?,
        ),
    };
    // Each answer decodes its whole filled-in sequence: bounded per request.
    let per_mask = targets.as_ref().map_or(top_k, |t| t.len().min(top_k));
    let answers = masks.iter().sum::<usize>().saturating_mul(per_mask);
    if answers > MAX_FILL_MASK_ANSWERS {
        return Err(bad(format!(
            "this request asks for {answers} answers (masks x top_k); at most \
             {MAX_FILL_MASK_ANSWERS}"
        )));
    }
    Ok(Job {
        items: singles(t),
        kind: Kind::FillMask {
            single,
            top_k,
            targets,
        },
    })
}

/// A target word's id: the vocabulary entry, else its first token.
pub(super) fn target_id(m: &EncoderModel, target: &str) -> Result<u32> {
    if let Some(id) = m.tok.tk.token_to_id(target) {
        return Ok(id);
    }
    let enc = m
        .tok
        .tk
        .encode(target, false)
        .map_err(|e| InferenceError::Internal(e.to_string()))?;
    enc.get_ids()
        .first()
        .copied()
        .ok_or_else(|| bad(format!("target {target:?} has no tokens")))
}

pub(super) fn fill_mask_one(
    m: &EncoderModel,
    e: &Encoded,
    top_k: usize,
    targets: Option<&[u32]>,
) -> Result<Value> {
    let Head::Mlm(head) = &m.head else {
        return Err(InferenceError::Unsupported(
            "this model has no fill-mask head".into(),
        ));
    };
    let mask_id = m.tok.mask.as_ref().map(|(_, id)| *id).unwrap_or(u32::MAX);
    let ids = e.enc.get_ids();
    let positions: Vec<u32> = (0..ids.len() as u32)
        .filter(|&i| ids[i as usize] == mask_id)
        .collect();
    if positions.is_empty() {
        return Err(bad(
            "the mask token was truncated away: the input is too long",
        ));
    }
    let pos = Tensor::from_slice(&positions, positions.len(), &Device::Cpu)?;
    let logits = rows(&head.forward(&e.hidden.index_select(&pos, 0)?)?)?;
    let mut per_mask = Vec::with_capacity(positions.len());
    for (&p, l) in positions.iter().zip(logits) {
        let probs = softmax(&l);
        let candidates: Vec<u32> = match targets {
            Some(t) => t.to_vec(),
            None => top_indices(&probs, top_k),
        };
        let mut out: Vec<(f32, u32)> = candidates
            .into_iter()
            .filter_map(|id| probs.get(id as usize).map(|s| (*s, id)))
            .collect();
        out.sort_by(|a, b| b.0.total_cmp(&a.0));
        out.truncate(top_k);
        let mut filled = ids.to_vec();
        let answers = out
            .into_iter()
            .map(|(score, id)| {
                filled[p as usize] = id;
                Ok(json!({
                    "score": score as f64,
                    "token": id,
                    "token_str": m.tok.decode(&[id], false)?,
                    "sequence": m.tok.decode(&filled, true)?,
                }))
            })
            .collect::<Result<Vec<Value>>>()?;
        per_mask.push(Value::Array(answers));
    }
    Ok(one_or_list(per_mask, true))
}

/// Indices of the k largest values, largest first.
pub(super) fn top_indices(v: &[f32], k: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..v.len() as u32).collect();
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    idx.select_nth_unstable_by(k - 1, |a, b| v[*b as usize].total_cmp(&v[*a as usize]));
    idx.truncate(k);
    idx.sort_by(|a, b| v[*b as usize].total_cmp(&v[*a as usize]));
    idx
}
