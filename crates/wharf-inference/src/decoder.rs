//! Decoder-only language models: GPT-2 (written here on candle tensors: candle has none) and the
//! Llama family (candle-transformers' Llama, Qwen2 and Mistral), behind one step function with a
//! per-request KV cache so that one loaded model serves concurrent requests.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::LayerNorm;
use candle_transformers::models::{llama, mistral, qwen2};
use serde_json::{Value, json};

use crate::config::{Act, eos_ids, read_json_opt, req_usize, str_key, usize_key};
use crate::error::{InferenceError, Result, load_err};
use crate::tokenize::TextTokenizer;
use crate::weights::Weights;

/// Longest sequence (prompt + generated) we run, whatever the config allows: bounds the RoPE
/// tables and the KV cache.
const MAX_CONTEXT: usize = 4096;

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
    pub fn load(dir: &Path, cfg: &Value, model_type: &str) -> Result<(DecoderModel, u64)> {
        let mut ws = Weights::load_dir(dir)?;
        let bytes = ws.bytes();
        let max_pos =
            usize_key(cfg, &["max_position_embeddings", "n_positions", "n_ctx"]).unwrap_or(2048);
        let max_context = max_pos.min(MAX_CONTEXT);
        let net = match model_type {
            "gpt2" => Net::Gpt2(Gpt2::load(&ws, cfg)?),
            "llama" => load_llama(&mut ws, cfg, max_context)?,
            "qwen2" => {
                let c: qwen2::Config = parse_cfg(cfg, &qwen2_defaults(cfg))?;
                Net::Qwen2(qwen2::ModelForCausalLM::new(&c, ws.var_builder()).map_err(load_err)?)
            }
            "mistral" => {
                let c: mistral::Config = parse_cfg(cfg, &mistral_defaults(cfg))?;
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
            bytes,
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
    let heads = usize_key(cfg, &["num_attention_heads"]).unwrap_or(1);
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
    let max_pos = usize_key(cfg, &["max_position_embeddings"]).unwrap_or(32768);
    let layers = usize_key(cfg, &["num_hidden_layers"]).unwrap_or(0);
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
    c.max_position_embeddings = c.max_position_embeddings.max(1);
    tie_lm_head(ws, "model.embed_tokens.weight");
    c.tie_word_embeddings = false;
    // candle's Llama::load unwraps per-layer errors: check every tensor first so a broken
    // checkpoint is a load error, not a panic.
    check_llama_tensors(ws, &c)?;
    let m = llama::Llama::load(ws.var_builder(), &c).map_err(load_err)?;
    c.max_position_embeddings = c.max_position_embeddings.min(max_context);
    Ok(Net::Llama(m, c))
}

fn check_llama_tensors(ws: &Weights, c: &llama::Config) -> Result<()> {
    if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
        return Err(InferenceError::Load(
            "hidden_size is not a multiple of num_attention_heads".into(),
        ));
    }
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let kv = c.num_key_value_heads * (h / c.num_attention_heads);
    for l in 0..c.num_hidden_layers {
        let p = format!("model.layers.{l}.");
        let expect: [(&str, &[usize]); 9] = [
            ("self_attn.q_proj.weight", &[h, h]),
            ("self_attn.k_proj.weight", &[kv, h]),
            ("self_attn.v_proj.weight", &[kv, h]),
            ("self_attn.o_proj.weight", &[h, h]),
            ("mlp.gate_proj.weight", &[i, h]),
            ("mlp.up_proj.weight", &[i, h]),
            ("mlp.down_proj.weight", &[h, i]),
            ("input_layernorm.weight", &[h]),
            ("post_attention_layernorm.weight", &[h]),
        ];
        for (name, shape) in expect {
            let t = ws.get(&format!("{p}{name}"))?;
            if t.dims() != shape {
                return Err(InferenceError::Load(format!(
                    "{p}{name} has shape {:?}, expected {shape:?}",
                    t.dims()
                )));
            }
        }
    }
    Ok(())
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
        let n = req_usize(cfg, &["n_embd", "hidden_size"])?;
        let layers = req_usize(cfg, &["n_layer", "num_hidden_layers"])?;
        let heads = req_usize(cfg, &["n_head", "num_attention_heads"])?;
        if heads == 0 || n % heads != 0 {
            return Err(InferenceError::Load(
                "n_embd is not a multiple of n_head".into(),
            ));
        }
        let inner = usize_key(cfg, &["n_inner"]).unwrap_or(4 * n);
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
