//! Decoder-only language models: GPT-2 (written here on candle tensors: candle has none) and the
//! Llama family (candle-transformers' Llama, Qwen2 and Mistral), behind one step function with a
//! per-request KV cache so that one loaded model serves concurrent requests.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::LayerNorm;
use candle_transformers::models::{llama, mistral, qwen2};
use serde_json::{Value, json};

use crate::config::{Act, eos_ids, read_json_opt, str_key};
use crate::error::{InferenceError, Result, load_err};
use crate::limits::{
    MAX_CONTEXT, MAX_HEAD_DIM, MAX_HEADS, MAX_HIDDEN, MAX_INTERMEDIATE, MAX_LAYERS, MAX_POSITIONS,
    MAX_REQUEST_MEMORY, MAX_VOCAB, MIN_CONTEXT, ModelMemory, check_positive, config_usize,
};
use crate::tokenize::TextTokenizer;
use crate::weights::{Checkpoint, Weights};

pub(crate) struct DecoderModel {
    net: Net,
    pub tok: TextTokenizer,
    pub eos: Vec<u32>,
    /// Longest sequence this model can take.
    pub max_context: usize,
}

enum Net {
    Gpt2(Gpt2),
    Llama(llama::Llama, llama::Config),
    Qwen2(qwen2::ModelForCausalLM),
    Mistral(mistral::Model),
}

/// Per-request state: the KV cache (candle's Qwen2/Mistral keep it inside a model copy; their
/// tensors are reference-counted, so the copy is cheap).
pub(crate) enum Session {
    Gpt2(Vec<Option<(Tensor, Tensor)>>),
    Llama(Box<llama::Cache>),
    Qwen2(Box<qwen2::ModelForCausalLM>),
    Mistral(Box<mistral::Model>),
}

impl DecoderModel {
    /// Checks config.json against the limits and the checkpoint's headers, counts the model's
    /// memory against `budget`, and only then reads the weights and builds the network.
    pub fn load(
        dir: &Path,
        cfg: &Value,
        model_type: &str,
        budget: u64,
    ) -> Result<(DecoderModel, u64)> {
        let ck = Checkpoint::open_dir(dir)?;
        let shape = match model_type {
            "gpt2" => check_gpt2(cfg, &ck)?,
            _ => check_rope_family(cfg, model_type, &ck)?,
        };
        let memory = ModelMemory {
            weights: ck.f32_bytes(),
            tables: shape.table_bytes(),
            tokenizer: TextTokenizer::memory(dir)?,
        };
        memory.check(budget)?;
        let max_context = shape.context;
        let mut ws = ck.read()?;
        let net = match model_type {
            "gpt2" => Net::Gpt2(Gpt2::load(&ws, cfg)?),
            "llama" => load_llama(&mut ws, cfg, max_context)?,
            "qwen2" => {
                let mut c: qwen2::Config = parse_cfg(cfg, &qwen2_defaults(cfg))?;
                // candle sizes its rotary tables by this: never beyond the context we run.
                c.max_position_embeddings = max_context;
                Net::Qwen2(qwen2::ModelForCausalLM::new(&c, ws.var_builder()).map_err(load_err)?)
            }
            "mistral" => {
                let mut c: mistral::Config = parse_cfg(cfg, &mistral_defaults(cfg))?;
                c.max_position_embeddings = max_context;
                tie_lm_head(&mut ws, "model.embed_tokens.weight");
                Net::Mistral(mistral::Model::new(&c, ws.var_builder()).map_err(load_err)?)
            }
            other => {
                return Err(InferenceError::Unsupported(format!(
                    "decoder {other:?} is not supported"
                )));
            }
        };
        let gen_cfg = read_json_opt(dir, "generation_config.json")?;
        let tok = TextTokenizer::load(dir, None, 0, false)?;
        let mut eos = eos_ids(cfg, gen_cfg.as_ref());
        if eos.is_empty() {
            eos = ["</s>", "<|endoftext|>", "<|end_of_text|>", "<|im_end|>"]
                .iter()
                .filter_map(|t| tok.tk.token_to_id(t))
                .collect();
        }
        Ok((
            DecoderModel {
                net,
                tok,
                eos,
                max_context,
            },
            memory.total(),
        ))
    }

    pub fn session(&self) -> Result<Session> {
        Ok(match &self.net {
            Net::Gpt2(g) => Session::Gpt2(vec![None; g.blocks.len()]),
            Net::Llama(_, c) => {
                let mut c = c.clone();
                c.max_position_embeddings = self.max_context;
                Session::Llama(Box::new(llama::Cache::new(
                    true,
                    DType::F32,
                    &c,
                    &Device::Cpu,
                )?))
            }
            Net::Qwen2(m) => {
                let mut m = m.clone();
                m.clear_kv_cache();
                Session::Qwen2(Box::new(m))
            }
            Net::Mistral(m) => {
                let mut m = m.clone();
                m.clear_kv_cache();
                Session::Mistral(Box::new(m))
            }
        })
    }

    /// Feeds `tokens` (at positions `pos..`) and returns the next-token logits (vocab,).
    pub fn step(&self, s: &mut Session, tokens: &[u32], pos: usize) -> Result<Tensor> {
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let logits = match (&self.net, s) {
            (Net::Gpt2(g), Session::Gpt2(cache)) => g.forward(&input, pos, cache)?,
            (Net::Llama(m, _), Session::Llama(cache)) => m.forward(&input, pos, cache)?,
            (Net::Qwen2(_), Session::Qwen2(m)) => m.forward(&input, pos)?,
            (Net::Mistral(_), Session::Mistral(m)) => m.forward(&input, pos)?,
            _ => return Err(InferenceError::Internal("session of another model".into())),
        };
        Ok(logits.flatten_all()?.to_dtype(DType::F32)?)
    }
}

/// Fills keys HF omits (or sets to null) before handing the config to candle's serde structs.
fn parse_cfg<T: serde::de::DeserializeOwned>(cfg: &Value, defaults: &[(&str, Value)]) -> Result<T> {
    let mut v = cfg.clone();
    if let Some(o) = v.as_object_mut() {
        for (k, d) in defaults {
            if o.get(*k).is_none_or(Value::is_null) {
                o.insert((*k).to_string(), d.clone());
            }
        }
    }
    serde_json::from_value(v)
        .map_err(|e| InferenceError::Unsupported(format!("config.json not understood: {e}")))
}

fn common_defaults(cfg: &Value) -> Vec<(&'static str, Value)> {
    let heads = cfg
        .get("num_attention_heads")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    vec![
        ("num_key_value_heads", json!(heads)),
        ("rope_theta", json!(10000.0)),
        ("rms_norm_eps", json!(1e-6)),
        ("hidden_act", json!("silu")),
        ("max_position_embeddings", json!(2048)),
    ]
}

fn qwen2_defaults(cfg: &Value) -> Vec<(&'static str, Value)> {
    let mut d = common_defaults(cfg);
    let max_pos = cfg
        .get("max_position_embeddings")
        .and_then(Value::as_u64)
        .unwrap_or(32768);
    let layers = cfg
        .get("num_hidden_layers")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    d.extend([
        ("sliding_window", json!(max_pos)),
        ("max_window_layers", json!(layers)),
        ("use_sliding_window", json!(false)),
        ("tie_word_embeddings", json!(false)),
    ]);
    d
}

fn mistral_defaults(cfg: &Value) -> Vec<(&'static str, Value)> {
    common_defaults(cfg)
}

/// Tied output layer: alias `lm_head.weight` to the input embeddings when the checkpoint has none.
fn tie_lm_head(ws: &mut Weights, embed: &str) {
    if !ws.has("lm_head.weight")
        && let Some(t) = ws.map.get(embed).cloned()
    {
        ws.map.insert("lm_head.weight".to_string(), t);
    }
}

fn load_llama(ws: &mut Weights, cfg: &Value, max_context: usize) -> Result<Net> {
    let lc: llama::LlamaConfig = parse_cfg(cfg, &common_defaults(cfg))?;
    let mut c = lc.into_config(false);
    // Each request's rotary tables (llama::Cache) are sized by this.
    c.max_position_embeddings = max_context;
    tie_lm_head(ws, "model.embed_tokens.weight");
    c.tie_word_embeddings = false;
    // candle's Llama::load unwraps per-layer errors: every tensor was checked against the
    // headers first (check_rope_family), so a broken checkpoint is a load error, not a panic.
    let m = llama::Llama::load(ws.var_builder(), &c).map_err(load_err)?;
    Ok(Net::Llama(m, c))
}

/// What the checks of a decoder's config found: the context it runs and its rotary tables.
struct DecoderShape {
    /// Longest sequence (prompt + generated) this model runs.
    context: usize,
    /// Width of a rotary head; 0 for GPT-2 (learned positions, in the weights).
    rope_head_dim: usize,
    layers: usize,
    heads: usize,
    /// Width of the keys (and of the values) cached per token and layer.
    kv_width: usize,
}

impl DecoderShape {
    /// Bytes one request of `tokens` tokens takes beyond the model: its KV cache (keys and
    /// values of every layer, counted twice: a step concatenates a new cache before dropping
    /// the old one) and the prefill's attention scores (heads x tokens x tokens, about three
    /// copies alive at once: scores, masked scores, probabilities).
    fn request_bytes(&self, tokens: usize) -> u64 {
        let t = tokens as u64;
        let kv = 2 * 2 * (self.layers as u64) * t * (self.kv_width as u64) * 4;
        let scores = 3 * (self.heads as u64) * t * t * 4;
        kv.saturating_add(scores)
    }

    /// Shortens the context until one request fits [`MAX_REQUEST_MEMORY`]; a model whose
    /// requests cannot fit even a short context is refused.
    fn fit_request_memory(mut self) -> Result<DecoderShape> {
        let (mut lo, mut hi) = (0usize, self.context);
        // The largest context whose request fits, by bisection (request_bytes grows with it).
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.request_bytes(mid) <= MAX_REQUEST_MEMORY {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        if lo < MIN_CONTEXT {
            return Err(InferenceError::TooLarge(format!(
                "one request to this model needs more than {} MB even for {MIN_CONTEXT} tokens",
                MAX_REQUEST_MEMORY >> 20
            )));
        }
        self.context = lo;
        Ok(self)
    }

    /// Rotary sin and cos tables: (context, head_dim / 2) each, as f32.
    fn table_bytes(&self) -> u64 {
        (self.context as u64)
            .saturating_mul(self.rope_head_dim as u64)
            .saturating_mul(4)
    }
}

/// A config value that must be present and positive, within `max`.
fn required(cfg: &Value, keys: &[&str], max: usize) -> Result<usize> {
    let n = config_usize(cfg, keys, max)?
        .ok_or_else(|| InferenceError::Load(format!("config.json lacks {}", keys.join(" / "))))?;
    check_positive(keys[0], n, max)
}

/// The context from config.json's position count, within [`MAX_CONTEXT`].
fn context_of(cfg: &Value, keys: &[&str], default: usize) -> Result<usize> {
    let declared = config_usize(cfg, keys, usize::MAX)?.unwrap_or(default);
    Ok(declared.clamp(1, MAX_CONTEXT))
}

fn shape_error(name: &str, got: Option<&[usize]>, want: &[usize]) -> InferenceError {
    match got {
        Some(got) => InferenceError::Load(format!("{name} has shape {got:?}, expected {want:?}")),
        None => InferenceError::Load(format!("tensor {name} missing from the weights")),
    }
}

/// A tensor that must exist with exactly this shape.
fn expect(ck: &Checkpoint, name: &str, want: &[usize]) -> Result<()> {
    match ck.shape(name) {
        Some(got) if got == want => Ok(()),
        got => Err(shape_error(name, got, want)),
    }
}

/// The rows of an embedding table (rows, width), within `max`.
fn table_rows(ck: &Checkpoint, name: &str, width: usize, max: usize) -> Result<usize> {
    match ck.shape(name) {
        Some([rows, w]) if *w == width && (1..=max).contains(rows) => Ok(*rows),
        got => Err(shape_error(name, got, &[max, width])),
    }
}

/// GPT-2: sizes against the limits, then every tensor against the headers (Conv1D weights are
/// stored (in, out)).
fn check_gpt2(cfg: &Value, ck: &Checkpoint) -> Result<DecoderShape> {
    let n = required(cfg, &["n_embd", "hidden_size"], MAX_HIDDEN)?;
    let layers = required(cfg, &["n_layer", "num_hidden_layers"], MAX_LAYERS)?;
    let heads = required(cfg, &["n_head", "num_attention_heads"], MAX_HEADS)?;
    if !n.is_multiple_of(heads) {
        return Err(InferenceError::Load(
            "n_embd is not a multiple of n_head".into(),
        ));
    }
    let inner = config_usize(cfg, &["n_inner"], MAX_INTERMEDIATE)?.unwrap_or(4 * n);
    check_positive("n_inner", inner, MAX_INTERMEDIATE)?;
    let p = ck.prefix_of("wte.weight")?;
    table_rows(ck, &format!("{p}wte.weight"), n, MAX_VOCAB)?;
    let positions = table_rows(ck, &format!("{p}wpe.weight"), n, MAX_POSITIONS)?;
    let norm = |name: &str| -> Result<()> {
        expect(ck, &format!("{name}.weight"), &[n])?;
        expect(ck, &format!("{name}.bias"), &[n])
    };
    let conv = |name: &str, input: usize, out: usize| -> Result<()> {
        expect(ck, &format!("{name}.weight"), &[input, out])?;
        expect(ck, &format!("{name}.bias"), &[out])
    };
    norm(&format!("{p}ln_f"))?;
    for i in 0..layers {
        let b = format!("{p}h.{i}.");
        norm(&format!("{b}ln_1"))?;
        norm(&format!("{b}ln_2"))?;
        conv(&format!("{b}attn.c_attn"), n, 3 * n)?;
        conv(&format!("{b}attn.c_proj"), n, n)?;
        conv(&format!("{b}mlp.c_fc"), n, inner)?;
        conv(&format!("{b}mlp.c_proj"), inner, n)?;
    }
    let declared = context_of(
        cfg,
        &["n_positions", "n_ctx", "max_position_embeddings"],
        1024,
    )?;
    DecoderShape {
        context: declared.min(positions),
        rope_head_dim: 0,
        layers,
        heads,
        kv_width: n,
    }
    .fit_request_memory()
}

/// Llama, Qwen2 and Mistral: sizes against the limits, then every tensor candle will fetch
/// against the headers (candle's loaders reserve a layer vector by the declared count and
/// unwrap per-layer errors).
fn check_rope_family(cfg: &Value, model_type: &str, ck: &Checkpoint) -> Result<DecoderShape> {
    let h = required(cfg, &["hidden_size"], MAX_HIDDEN)?;
    let inter = required(cfg, &["intermediate_size"], MAX_INTERMEDIATE)?;
    let layers = required(cfg, &["num_hidden_layers"], MAX_LAYERS)?;
    let heads = required(cfg, &["num_attention_heads"], MAX_HEADS)?;
    let vocab = required(cfg, &["vocab_size"], MAX_VOCAB)?;
    let kv = config_usize(cfg, &["num_key_value_heads"], MAX_HEADS)?.unwrap_or(heads);
    if kv == 0 || !heads.is_multiple_of(kv) {
        return Err(InferenceError::Load(
            "num_key_value_heads must divide num_attention_heads".into(),
        ));
    }
    // Only candle's Mistral reads an explicit head_dim; the others split hidden_size.
    let explicit = match model_type {
        "mistral" => config_usize(cfg, &["head_dim"], MAX_HEAD_DIM)?,
        _ => None,
    };
    let hd = match explicit {
        Some(d) => d,
        None if h.is_multiple_of(heads) => h / heads,
        None => {
            return Err(InferenceError::Load(
                "hidden_size is not a multiple of num_attention_heads".into(),
            ));
        }
    };
    if hd == 0 || hd > MAX_HEAD_DIM || !hd.is_multiple_of(2) {
        return Err(InferenceError::Load(format!(
            "the attention head width {hd} must be even and at most {MAX_HEAD_DIM}"
        )));
    }
    expect(ck, "model.embed_tokens.weight", &[vocab, h])?;
    expect(ck, "model.norm.weight", &[h])?;
    let tied = model_type != "qwen2"
        || cfg.get("tie_word_embeddings").and_then(Value::as_bool) == Some(true);
    if ck.has("lm_head.weight") || !tied {
        expect(ck, "lm_head.weight", &[vocab, h])?;
    }
    let (q, kvw) = (heads * hd, kv * hd);
    for l in 0..layers {
        let p = format!("model.layers.{l}.");
        let linear = |name: &str, out: usize, input: usize| -> Result<()> {
            expect(ck, &format!("{p}{name}.weight"), &[out, input])?;
            if model_type == "qwen2" && name.starts_with("self_attn.") && name != "self_attn.o_proj"
            {
                expect(ck, &format!("{p}{name}.bias"), &[out])?;
            }
            Ok(())
        };
        linear("self_attn.q_proj", q, h)?;
        linear("self_attn.k_proj", kvw, h)?;
        linear("self_attn.v_proj", kvw, h)?;
        linear("self_attn.o_proj", h, q)?;
        linear("mlp.gate_proj", inter, h)?;
        linear("mlp.up_proj", inter, h)?;
        linear("mlp.down_proj", h, inter)?;
        expect(ck, &format!("{p}input_layernorm.weight"), &[h])?;
        expect(ck, &format!("{p}post_attention_layernorm.weight"), &[h])?;
    }
    DecoderShape {
        context: context_of(cfg, &["max_position_embeddings"], 2048)?,
        rope_head_dim: hd,
        layers,
        heads,
        kv_width: kvw,
    }
    .fit_request_memory()
}

// ---------------------------------------------------------------- GPT-2

/// HF's Conv1D: `y = x W + b` with W stored (in, out), the transpose of a Linear.
struct Conv1D {
    w: Tensor,
    b: Tensor,
}

impl Conv1D {
    fn load(ws: &Weights, name: &str, shape: (usize, usize)) -> Result<Conv1D> {
        let w = ws.get(&format!("{name}.weight"))?;
        let b = ws.get(&format!("{name}.bias"))?;
        if w.dims() != [shape.0, shape.1] || b.dims() != [shape.1] {
            return Err(InferenceError::Load(format!("{name} has the wrong shape")));
        }
        Ok(Conv1D { w, b })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, n) = x.dims3()?;
        let y = x
            .reshape((b * s, n))?
            .matmul(&self.w)?
            .broadcast_add(&self.b)?;
        y.reshape((b, s, self.w.dims()[1]))
    }
}

struct Gpt2Block {
    ln1: LayerNorm,
    attn: Conv1D,
    proj: Conv1D,
    ln2: LayerNorm,
    fc: Conv1D,
    fc_out: Conv1D,
}

struct Gpt2 {
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Gpt2Block>,
    ln_f: LayerNorm,
    heads: usize,
    act: Act,
}

fn ln(ws: &Weights, name: &str, eps: f64) -> Result<LayerNorm> {
    Ok(LayerNorm::new(
        ws.get(&format!("{name}.weight"))?,
        ws.get(&format!("{name}.bias"))?,
        eps,
    ))
}

impl Gpt2 {
    fn load(ws: &Weights, cfg: &Value) -> Result<Gpt2> {
        // Checked by check_gpt2 before the weights were read.
        let n = required(cfg, &["n_embd", "hidden_size"], MAX_HIDDEN)?;
        let layers = required(cfg, &["n_layer", "num_hidden_layers"], MAX_LAYERS)?;
        let heads = required(cfg, &["n_head", "num_attention_heads"], MAX_HEADS)?;
        let inner = config_usize(cfg, &["n_inner"], MAX_INTERMEDIATE)?.unwrap_or(4 * n);
        let eps = cfg
            .get("layer_norm_epsilon")
            .and_then(Value::as_f64)
            .unwrap_or(1e-5);
        let act = Act::parse(str_key(cfg, "activation_function").unwrap_or("gelu_new"))?;
        let p = ws.prefix_of("wte.weight")?;
        let blocks = (0..layers)
            .map(|i| {
                let b = format!("{p}h.{i}.");
                Ok(Gpt2Block {
                    ln1: ln(ws, &format!("{b}ln_1"), eps)?,
                    attn: Conv1D::load(ws, &format!("{b}attn.c_attn"), (n, 3 * n))?,
                    proj: Conv1D::load(ws, &format!("{b}attn.c_proj"), (n, n))?,
                    ln2: ln(ws, &format!("{b}ln_2"), eps)?,
                    fc: Conv1D::load(ws, &format!("{b}mlp.c_fc"), (n, inner))?,
                    fc_out: Conv1D::load(ws, &format!("{b}mlp.c_proj"), (inner, n))?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Gpt2 {
            wte: ws.get(&format!("{p}wte.weight"))?,
            wpe: ws.get(&format!("{p}wpe.weight"))?,
            blocks,
            ln_f: ln(ws, &format!("{p}ln_f"), eps)?,
            heads,
            act,
        })
    }

    /// Logits (1, vocab) of the last position.
    fn forward(
        &self,
        ids: &Tensor,
        pos: usize,
        cache: &mut [Option<(Tensor, Tensor)>],
    ) -> Result<Tensor> {
        use candle_core::Module;
        let (_, s) = ids.dims2()?;
        if pos + s > self.wpe.dims()[0] {
            return Err(InferenceError::BadInput(
                "the sequence is longer than the model's context".into(),
            ));
        }
        let vocab = self.wte.dims()[0] as u32;
        if ids
            .flatten_all()?
            .to_vec1::<u32>()?
            .iter()
            .any(|&i| i >= vocab)
        {
            return Err(InferenceError::Internal(
                "token id outside the vocabulary".into(),
            ));
        }
        let tok = self.wte.index_select(&ids.flatten_all()?, 0)?;
        let x = (tok + self.wpe.narrow(0, pos, s)?)?.unsqueeze(0)?;
        let mask = causal_mask(s, pos)?;
        let mut x = x;
        for (block, kv) in self.blocks.iter().zip(cache.iter_mut()) {
            x = self.block(block, &x, mask.as_ref(), kv)?;
        }
        let last = self.ln_f.forward(&x.narrow(1, s - 1, 1)?)?.squeeze(1)?;
        Ok(last.matmul(&self.wte.t()?)?)
    }

    fn block(
        &self,
        b: &Gpt2Block,
        x: &Tensor,
        mask: Option<&Tensor>,
        kv: &mut Option<(Tensor, Tensor)>,
    ) -> candle_core::Result<Tensor> {
        use candle_core::Module;
        let (bs, s, n) = x.dims3()?;
        let hd = n / self.heads;
        let qkv = b.attn.forward(&b.ln1.forward(x)?)?;
        let split = |i: usize| {
            qkv.narrow(2, i * n, n)?
                .reshape((bs, s, self.heads, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
        if let Some((pk, pv)) = kv.as_ref() {
            k = Tensor::cat(&[pk, &k], 2)?;
            v = Tensor::cat(&[pv, &v], 2)?;
        }
        *kv = Some((k.clone(), v.clone()));
        let mut att = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
        if let Some(m) = mask {
            att = att.broadcast_add(m)?;
        }
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((bs, s, n))?;
        let x = (x + b.proj.forward(&y)?)?;
        let h = b
            .fc_out
            .forward(&self.act.apply(&b.fc.forward(&b.ln2.forward(&x)?)?)?)?;
        x + h
    }
}

/// Additive causal mask (s, pos + s) for `s` new tokens after `pos` cached ones; None for one token.
fn causal_mask(s: usize, pos: usize) -> Result<Option<Tensor>> {
    if s <= 1 {
        return Ok(None);
    }
    let total = pos + s;
    let m: Vec<f32> = (0..s)
        .flat_map(|i| (0..total).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Some(Tensor::from_vec(m, (s, total), &Device::Cpu)?))
}

/// Log-probability of `id` under `logits`.
pub(crate) fn logprob(logits: &Tensor, id: u32) -> Result<f32> {
    // log-sum-exp computed stably: max + log(sum(exp(l - max))).
    let max = logits.max(D::Minus1)?;
    let lse = (logits.broadcast_sub(&max)?.exp()?.sum_all()?.log()? + &max)?;
    Ok((logits.get(id as usize)? - lse)?.to_scalar::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(context: usize, layers: usize, heads: usize, kv_width: usize) -> DecoderShape {
        DecoderShape {
            context,
            rope_head_dim: 64,
            layers,
            heads,
            kv_width,
        }
    }

    #[test]
    fn the_context_shrinks_until_one_request_fits() {
        // A tiny model keeps its whole context.
        let tiny = shape(4096, 2, 4, 16).fit_request_memory().expect("tiny");
        assert_eq!(tiny.context, 4096);
        // Qwen2-0.5B's shape: 14 heads of prefill scores over 4096 tokens are 2.8 GB.
        let qwen = shape(4096, 24, 14, 128).fit_request_memory().expect("qwen");
        assert!((2048..4096).contains(&qwen.context), "{}", qwen.context);
        assert!(qwen.request_bytes(qwen.context) <= MAX_REQUEST_MEMORY);
        assert!(qwen.request_bytes(qwen.context + 1) > MAX_REQUEST_MEMORY);
        // Caches too wide for even a short context are refused.
        let absurd = shape(4096, 256, 1024, 32_768).fit_request_memory();
        assert!(matches!(absurd, Err(InferenceError::TooLarge(_))));
    }
}
