//! feature-extraction and sentence-similarity: sentence-transformers pooling and embeddings.

use super::*;

/// Sentence-transformers pooling: mode from 1_Pooling, optional Dense layers, optional Normalize.
pub(crate) struct Pooling {
    mode: PoolMode,
    dense: Vec<(Lin, Option<Act>)>,
    normalize: bool,
}

#[derive(Clone, Copy)]
pub(super) enum PoolMode {
    Mean,
    Cls,
    Max,
}

impl Pooling {
    /// Reads modules.json; plain models pool by mean without normalising. `hidden` is the
    /// encoder's width: each Dense layer must read the width the one before it writes.
    pub fn load(dir: &Path, is_st: bool, hidden: usize) -> Result<Pooling> {
        let mut p = Pooling {
            mode: PoolMode::Mean,
            dense: Vec::new(),
            normalize: false,
        };
        if !is_st {
            return Ok(p);
        }
        let mut width = hidden;
        for (ty, path) in modules(dir)? {
            if ty.ends_with(".Pooling") {
                p.mode = pool_mode(&read_json(&module_dir(dir, &path)?, "config.json")?);
            } else if ty.ends_with(".Dense") {
                let (lin, act) = load_dense(&module_dir(dir, &path)?)?;
                lin.check(&format!("the Dense module {path}"), width, MAX_HIDDEN)?;
                width = lin.out_dim();
                p.dense.push((lin, act));
            } else if ty.ends_with(".Normalize") {
                p.normalize = true;
            }
        }
        Ok(p)
    }

    /// The sentence embedding of one item's hidden states (tokens, hidden).
    fn apply(&self, hidden: &Tensor) -> Result<Tensor> {
        let mut v = match self.mode {
            PoolMode::Mean => hidden.mean_keepdim(0)?,
            PoolMode::Max => hidden.max_keepdim(0)?,
            PoolMode::Cls => hidden.narrow(0, 0, 1)?,
        };
        for (lin, act) in &self.dense {
            v = lin.forward(&v)?;
            if let Some(a) = act {
                v = a.apply(&v)?;
            }
        }
        Ok(v)
    }
}

/// (type, path) of each module in modules.json, at most [`MAX_MODULES`].
fn modules(dir: &Path) -> Result<Vec<(String, String)>> {
    let modules = read_json(dir, "modules.json")?;
    let list = modules.as_array().map_or(&[][..], Vec::as_slice);
    if list.len() > MAX_MODULES {
        return Err(InferenceError::Load(format!(
            "modules.json lists {} modules, at most {MAX_MODULES}",
            list.len()
        )));
    }
    Ok(list
        .iter()
        .map(|m| {
            let field = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (field("type"), field("path"))
        })
        .collect())
}

/// Bytes the sentence-transformers Dense modules will take as f32, from their headers.
pub(crate) fn module_bytes(dir: &Path, is_st: bool) -> Result<u64> {
    if !is_st {
        return Ok(0);
    }
    let mut total = 0u64;
    for (ty, path) in modules(dir)? {
        if ty.ends_with(".Dense") {
            let file = module_dir(dir, &path)?.join("model.safetensors");
            total = total.saturating_add(Checkpoint::open_file(&file)?.f32_bytes());
        }
    }
    Ok(total)
}

pub(super) fn module_dir(dir: &Path, path: &str) -> Result<std::path::PathBuf> {
    let rel = Path::new(path);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(InferenceError::Load(format!(
            "modules.json: bad module path {path:?}"
        )));
    }
    Ok(dir.join(rel))
}

pub(super) fn pool_mode(cfg: &Value) -> PoolMode {
    let on = |k: &str| cfg.get(k).and_then(Value::as_bool).unwrap_or(false);
    if on("pooling_mode_cls_token") {
        PoolMode::Cls
    } else if on("pooling_mode_max_tokens") {
        PoolMode::Max
    } else {
        PoolMode::Mean
    }
}

pub(super) fn load_dense(dir: &Path) -> Result<(Lin, Option<Act>)> {
    let cfg = read_json_opt(dir, "config.json")?.unwrap_or(Value::Null);
    let ws = Checkpoint::open_file(&dir.join("model.safetensors"))?.read()?;
    let act = match cfg
        .get("activation_function")
        .and_then(Value::as_str)
        .unwrap_or("torch.nn.modules.activation.Tanh")
    {
        a if a.ends_with("Identity") => None,
        a if a.ends_with("Tanh") => Some(Act::Tanh),
        a if a.ends_with("ReLU") => Some(Act::Relu),
        a if a.ends_with("GELU") => Some(Act::Gelu),
        a => {
            return Err(InferenceError::Unsupported(format!(
                "Dense activation {a} is not supported"
            )));
        }
    };
    Ok((Lin::load(&ws, "linear")?, act))
}

/// Sentence embeddings (n, d), normalised when the model or the request says so.
pub(super) fn embeddings(m: &EncoderModel, encs: &[Encoded], normalize: bool) -> Result<Tensor> {
    let pooled: Vec<Tensor> = encs
        .iter()
        .map(|e| m.pooling.apply(&e.hidden))
        .collect::<Result<_>>()?;
    let t = Tensor::cat(&pooled, 0)?;
    if normalize || m.pooling.normalize {
        l2_normalize(&t)
    } else {
        Ok(t)
    }
}

pub(super) fn finish_features(
    m: &EncoderModel,
    encs: &[Encoded],
    single: bool,
    normalize: bool,
) -> Result<Value> {
    if m.sentence_transformers || m.task == Task::SentenceSimilarity {
        let per: Vec<Value> = rows(&embeddings(m, encs, normalize)?)?
            .into_iter()
            .map(|r| Value::Array(r.into_iter().map(f).collect()))
            .collect();
        return Ok(one_or_list(per, single));
    }
    // Plain encoders answer token embeddings, (1, tokens, hidden) per text, as transformers does.
    let per: Vec<Value> = encs
        .iter()
        .map(|e| {
            let toks: Vec<Value> = rows(&e.hidden)?
                .into_iter()
                .map(|r| Value::Array(r.into_iter().map(f).collect()))
                .collect();
            Ok(json!([toks]))
        })
        .collect::<Result<_>>()?;
    Ok(one_or_list(per, single))
}

pub(super) fn prepare_similarity(m: &EncoderModel, inputs: &Value) -> Result<Job> {
    let source = inputs
        .get("source_sentence")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("sentence-similarity inputs need \"source_sentence\" (a string)"))?;
    let sentences = string_list(
        inputs
            .get("sentences")
            .ok_or_else(|| bad("sentence-similarity inputs need \"sentences\""))?,
        "sentences",
        m.tok.max_bytes,
    )?;
    let mut items = vec![Item::Single(m.tok.clip(source))];
    items.extend(singles(sentences));
    Ok(Job {
        items,
        kind: Kind::Similarity,
    })
}

pub(super) fn finish_similarity(m: &EncoderModel, encs: &[Encoded]) -> Result<Value> {
    let e = l2_normalize(&embeddings(m, encs, true)?)?;
    let n = e.dims()[0];
    if n < 2 {
        return Ok(json!([]));
    }
    let scores = e
        .narrow(0, 1, n - 1)?
        .matmul(&e.narrow(0, 0, 1)?.t()?)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok(Value::Array(scores.into_iter().map(f).collect()))
}
