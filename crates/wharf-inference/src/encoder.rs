//! BERT-family encoders (BERT, RoBERTa/CamemBERT/XLM-R, DistilBERT) and their task heads, written
//! on candle tensors so that one code path serves every weight layout, RoBERTa's position offset,
//! tied decoders and batched (padded) inputs.

use candle_core::{D, DType, Device, Tensor};
use candle_nn::LayerNorm;
use serde_json::Value;

use crate::config::{Act, req_usize, str_key, usize_key};
use crate::error::{InferenceError, Result, load_err};
use crate::weights::Weights;

/// Weight layout and position scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Bert,
    /// RoBERTa, CamemBERT, XLM-RoBERTa: positions start at `pad_token_id + 1`.
    Roberta,
    DistilBert,
}

impl Family {
    pub fn from_model_type(model_type: &str) -> Option<Family> {
        match model_type {
            "bert" => Some(Family::Bert),
            "roberta" | "camembert" | "xlm-roberta" => Some(Family::Roberta),
            "distilbert" => Some(Family::DistilBert),
            _ => None,
        }
    }
}

/// The hyper-parameters the encoder needs from config.json.
#[derive(Debug, Clone)]
pub(crate) struct EncoderConfig {
    pub family: Family,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub act: Act,
    pub max_pos: usize,
    pub eps: f64,
    pub pad_id: u32,
}

impl EncoderConfig {
    pub fn from_json(cfg: &Value, family: Family) -> Result<EncoderConfig> {
        let distil = family == Family::DistilBert;
        let act_name =
            str_key(cfg, if distil { "activation" } else { "hidden_act" }).unwrap_or("gelu");
        let default_pad = if family == Family::Roberta { 1 } else { 0 };
        let c = EncoderConfig {
            family,
            hidden: req_usize(cfg, &["hidden_size", "dim"])?,
            layers: req_usize(cfg, &["num_hidden_layers", "n_layers"])?,
            heads: req_usize(cfg, &["num_attention_heads", "n_heads"])?,
            act: Act::parse(act_name)?,
            max_pos: usize_key(cfg, &["max_position_embeddings"]).unwrap_or(512),
            eps: cfg
                .get("layer_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-12),
            pad_id: usize_key(cfg, &["pad_token_id"]).unwrap_or(default_pad) as u32,
        };
        if c.heads == 0 || !c.hidden.is_multiple_of(c.heads) {
            return Err(InferenceError::Load(
                "hidden size is not a multiple of the head count".into(),
            ));
        }
        Ok(c)
    }

    /// First position id of a real token.
    pub fn position_offset(&self) -> usize {
        if self.family == Family::Roberta {
            self.pad_id as usize + 1
        } else {
            0
        }
    }

    /// Longest input (in tokens) the position table allows.
    pub fn max_tokens(&self) -> usize {
        self.max_pos.saturating_sub(self.position_offset()).max(2)
    }
}

/// A linear layer `y = x W^T + b`, applied on 2-D views so that gemm sees one large product.
#[derive(Clone)]
pub(crate) struct Lin {
    w: Tensor,
    b: Option<Tensor>,
}

impl Lin {
    pub fn new(w: Tensor, b: Option<Tensor>) -> Lin {
        Lin { w, b }
    }

    pub fn load(ws: &Weights, name: &str) -> Result<Lin> {
        let w = ws.get(&format!("{name}.weight"))?;
        let b = ws.map.get(&format!("{name}.bias")).cloned();
        Ok(Lin { w, b })
    }

    pub fn out_dim(&self) -> usize {
        self.w.dims().first().copied().unwrap_or(0)
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let last = dims.last().copied().unwrap_or(0);
        let rows = x.elem_count() / last.max(1);
        let y = x.reshape((rows, last))?.matmul(&self.w.t()?)?;
        let y = match &self.b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out = dims;
        if let Some(l) = out.last_mut() {
            *l = self.out_dim();
        }
        y.reshape(out)
    }
}

fn layer_norm(ws: &Weights, name: &str, eps: f64) -> Result<LayerNorm> {
    let w = ws.get_any(&[&format!("{name}.weight"), &format!("{name}.gamma")])?;
    let b = ws.get_any(&[&format!("{name}.bias"), &format!("{name}.beta")])?;
    Ok(LayerNorm::new(w, b, eps))
}

struct Layer {
    /// Query, key and value fused into one product.
    qkv: Lin,
    out: Lin,
    ln1: LayerNorm,
    ff1: Lin,
    ff2: Lin,
    ln2: LayerNorm,
}

/// Tensor names of one layer: (q, k, v, attn-out, ln1, ff1, ff2, ln2).
fn layer_names(family: Family, p: &str, i: usize) -> [String; 8] {
    match family {
        Family::DistilBert => {
            let l = format!("{p}transformer.layer.{i}.");
            [
                format!("{l}attention.q_lin"),
                format!("{l}attention.k_lin"),
                format!("{l}attention.v_lin"),
                format!("{l}attention.out_lin"),
                format!("{l}sa_layer_norm"),
                format!("{l}ffn.lin1"),
                format!("{l}ffn.lin2"),
                format!("{l}output_layer_norm"),
            ]
        }
        _ => {
            let l = format!("{p}encoder.layer.{i}.");
            [
                format!("{l}attention.self.query"),
                format!("{l}attention.self.key"),
                format!("{l}attention.self.value"),
                format!("{l}attention.output.dense"),
                format!("{l}attention.output.LayerNorm"),
                format!("{l}intermediate.dense"),
                format!("{l}output.dense"),
                format!("{l}output.LayerNorm"),
            ]
        }
    }
}

impl Layer {
    fn load(ws: &Weights, cfg: &EncoderConfig, p: &str, i: usize) -> Result<Layer> {
        let [q, k, v, o, ln1, ff1, ff2, ln2] = layer_names(cfg.family, p, i);
        let (q, k, v) = (Lin::load(ws, &q)?, Lin::load(ws, &k)?, Lin::load(ws, &v)?);
        let w = Tensor::cat(&[&q.w, &k.w, &v.w], 0).map_err(load_err)?;
        let b = match (&q.b, &k.b, &v.b) {
            (Some(a), Some(b), Some(c)) => Some(Tensor::cat(&[a, b, c], 0).map_err(load_err)?),
            _ => None,
        };
        if w.dims() != [3 * cfg.hidden, cfg.hidden] {
            return Err(InferenceError::Load(format!(
                "layer {i}: attention weights have the wrong shape"
            )));
        }
        Ok(Layer {
            qkv: Lin::new(w, b),
            out: Lin::load(ws, &o)?,
            ln1: layer_norm(ws, &ln1, cfg.eps)?,
            ff1: Lin::load(ws, &ff1)?,
            ff2: Lin::load(ws, &ff2)?,
            ln2: layer_norm(ws, &ln2, cfg.eps)?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        cfg: &EncoderConfig,
    ) -> candle_core::Result<Tensor> {
        use candle_core::Module;
        let (b, s, h) = x.dims3()?;
        let hd = h / cfg.heads;
        let qkv = self.qkv.forward(x)?;
        let split = |i: usize| -> candle_core::Result<Tensor> {
            qkv.narrow(2, i * h, h)?
                .reshape((b, s, cfg.heads, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = (split(0)? * (1.0 / (hd as f64).sqrt()))?;
        let (k, v) = (split(1)?, split(2)?);
        let scores = q.matmul(&k.t()?)?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
        let x = self.ln1.forward(&(self.out.forward(&ctx)? + x)?)?;
        let ff = self.ff2.forward(&cfg.act.apply(&self.ff1.forward(&x)?)?)?;
        self.ln2.forward(&(ff + x)?)
    }
}

/// The encoder body: embeddings and transformer layers.
pub(crate) struct Encoder {
    pub cfg: EncoderConfig,
    /// Weight-name prefix of the body (`bert.`, `roberta.`, `distilbert.` or none).
    pub prefix: String,
    word: Tensor,
    pos: Tensor,
    token_type: Option<Tensor>,
    ln: LayerNorm,
    layers: Vec<Layer>,
}

/// One padded batch ready for the encoder.
pub(crate) struct Batch {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub mask: Vec<u32>,
    pub rows: usize,
    pub cols: usize,
}

impl Encoder {
    pub fn load(ws: &Weights, cfg: EncoderConfig) -> Result<Encoder> {
        let prefix = ws.prefix_of("embeddings.word_embeddings.weight")?;
        let e = format!("{prefix}embeddings.");
        let word = ws.get(&format!("{e}word_embeddings.weight"))?;
        let pos = ws.get(&format!("{e}position_embeddings.weight"))?;
        let token_type = ws
            .map
            .get(&format!("{e}token_type_embeddings.weight"))
            .cloned();
        let ln = layer_norm(ws, &format!("{e}LayerNorm"), cfg.eps)?;
        if word.dims().get(1) != Some(&cfg.hidden) || pos.dims().get(1) != Some(&cfg.hidden) {
            return Err(InferenceError::Load(
                "embedding width differs from hidden_size".into(),
            ));
        }
        let layers = (0..cfg.layers)
            .map(|i| Layer::load(ws, &cfg, &prefix, i))
            .collect::<Result<_>>()?;
        let mut cfg = cfg;
        // Trust the table over config.json: a short table would make index_select fail late.
        cfg.max_pos = cfg.max_pos.min(pos.dims()[0]);
        Ok(Encoder {
            cfg,
            prefix,
            word,
            pos,
            token_type,
            ln,
            layers,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.word.dims()[0]
    }

    /// Hidden states (rows, cols, hidden) of a padded batch.
    pub fn forward(&self, batch: &Batch) -> Result<Tensor> {
        use candle_core::Module;
        let dev = Device::Cpu;
        let vocab = self.vocab_size() as u32;
        if batch.ids.iter().any(|&i| i >= vocab) {
            return Err(InferenceError::Internal(
                "token id outside the embedding table".into(),
            ));
        }
        let ids = Tensor::from_slice(&batch.ids, batch.rows * batch.cols, &dev)?;
        let mut x = self.word.index_select(&ids, 0)?;
        let positions = self.position_ids(batch);
        x = (x + self
            .pos
            .index_select(&Tensor::from_vec(positions, ids.dims(), &dev)?, 0)?)?;
        if let Some(tt) = &self.token_type {
            let n_types = tt.dims()[0] as u32;
            let types: Vec<u32> = batch
                .type_ids
                .iter()
                .map(|&t| t.min(n_types.saturating_sub(1)))
                .collect();
            x = (x + tt.index_select(&Tensor::from_vec(types, ids.dims(), &dev)?, 0)?)?;
        }
        let mut x = self
            .ln
            .forward(&x.reshape((batch.rows, batch.cols, self.cfg.hidden))?)?;
        let mask = self.mask_bias(batch)?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask, &self.cfg)?;
        }
        Ok(x)
    }

    /// Position ids; RoBERTa counts from `pad_id + 1` and gives padding `pad_id`.
    fn position_ids(&self, batch: &Batch) -> Vec<u32> {
        let off = self.cfg.position_offset() as u32;
        let max = (self.cfg.max_pos as u32).saturating_sub(1);
        (0..batch.rows * batch.cols)
            .map(|i| {
                let col = (i % batch.cols) as u32;
                if self.cfg.family == Family::Roberta && batch.mask[i] == 0 {
                    self.cfg.pad_id.min(max)
                } else {
                    (off + col).min(max)
                }
            })
            .collect()
    }

    /// Additive attention bias (rows, 1, 1, cols): 0 for tokens, a large negative for padding.
    fn mask_bias(&self, batch: &Batch) -> Result<Tensor> {
        let bias: Vec<f32> = batch
            .mask
            .iter()
            .map(|&m| if m == 1 { 0.0 } else { f32::MIN / 2.0 })
            .collect();
        Ok(Tensor::from_vec(
            bias,
            (batch.rows, 1, 1, batch.cols),
            &Device::Cpu,
        )?)
    }
}

/// Masked-LM head: dense → activation → layer norm → tied decoder + bias.
pub(crate) struct MlmHead {
    dense: Lin,
    ln: LayerNorm,
    act: Act,
    decoder: Lin,
}

impl MlmHead {
    pub fn load(ws: &Weights, enc: &Encoder) -> Result<MlmHead> {
        let word = format!("{}embeddings.word_embeddings.weight", enc.prefix);
        let eps = enc.cfg.eps;
        let (dense, ln, act, dec_w, dec_b) = match enc.cfg.family {
            Family::Bert => (
                Lin::load(ws, "cls.predictions.transform.dense")?,
                layer_norm(ws, "cls.predictions.transform.LayerNorm", eps)?,
                enc.cfg.act,
                ws.get_any(&["cls.predictions.decoder.weight", &word])?,
                ws.get_any(&["cls.predictions.bias", "cls.predictions.decoder.bias"])?,
            ),
            Family::Roberta => (
                Lin::load(ws, "lm_head.dense")?,
                layer_norm(ws, "lm_head.layer_norm", 1e-5_f64.max(eps))?,
                Act::Gelu,
                ws.get_any(&["lm_head.decoder.weight", &word])?,
                ws.get_any(&["lm_head.bias", "lm_head.decoder.bias"])?,
            ),
            Family::DistilBert => (
                Lin::load(ws, "vocab_transform")?,
                layer_norm(ws, "vocab_layer_norm", eps)?,
                enc.cfg.act,
                ws.get_any(&["vocab_projector.weight", &word])?,
                ws.get("vocab_projector.bias")?,
            ),
        };
        Ok(MlmHead {
            dense,
            ln,
            act,
            decoder: Lin::new(dec_w, Some(dec_b)),
        })
    }

    /// Vocabulary logits (n, vocab) of hidden rows (n, hidden).
    pub fn forward(&self, h: &Tensor) -> Result<Tensor> {
        use candle_core::Module;
        let x = self.ln.forward(&self.act.apply(&self.dense.forward(h)?)?)?;
        Ok(self.decoder.forward(&x)?)
    }
}

/// Sequence-classification head on the first token: BERT pooler (tanh) + classifier,
/// RoBERTa dense (tanh) + out_proj, DistilBERT pre_classifier (relu) + classifier.
pub(crate) struct ClsHead {
    pre: Lin,
    pre_act: Act,
    out: Lin,
}

impl ClsHead {
    pub fn load(ws: &Weights, enc: &Encoder) -> Result<ClsHead> {
        let (pre, pre_act, out) = match enc.cfg.family {
            Family::Bert => (
                format!("{}pooler.dense", enc.prefix),
                Act::Tanh,
                "classifier".to_string(),
            ),
            Family::Roberta => (
                "classifier.dense".to_string(),
                Act::Tanh,
                "classifier.out_proj".to_string(),
            ),
            Family::DistilBert => (
                "pre_classifier".to_string(),
                Act::Relu,
                "classifier".to_string(),
            ),
        };
        Ok(ClsHead {
            pre: Lin::load(ws, &pre)?,
            pre_act,
            out: Lin::load(ws, &out)?,
        })
    }

    pub fn num_labels(&self) -> usize {
        self.out.out_dim()
    }

    /// Logits (n, labels) from the first-token hidden rows (n, hidden).
    pub fn forward(&self, first: &Tensor) -> Result<Tensor> {
        let x = self.pre_act.apply(&self.pre.forward(first)?)?;
        Ok(self.out.forward(&x)?)
    }
}

/// Softmax over the last dimension of a small host vector, stable for large logits.
pub(crate) fn softmax(v: &[f32]) -> Vec<f32> {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = v.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Rows of a 2-D tensor as host vectors.
pub(crate) fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

/// L2-normalises each row of (n, d).
pub(crate) fn l2_normalize(t: &Tensor) -> Result<Tensor> {
    let norm = t
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f32::MAX)?;
    Ok(t.broadcast_div(&norm)?)
}
