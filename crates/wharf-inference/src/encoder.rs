//! BERT-family encoders (BERT, RoBERTa/CamemBERT/XLM-R, DistilBERT) and their task heads: one code
//! path for every weight layout, RoBERTa's position offset and tied decoders. The body runs packed
//! batches (sequences end to end, no padding) as faer products and row kernels (`hostops`); the
//! small heads run on candle tensors.

use candle_core::{D, DType, Device, Tensor};
use candle_nn::LayerNorm;
use serde_json::Value;
use tokenizers::Encoding;

use crate::config::{Act, str_key};
use crate::error::{InferenceError, Result, load_err};
use crate::hostops::{Dense, Norm, act_rows, attention, fill_rows, fill_rows_plus, norm_rows};
use crate::limits::{
    MAX_HEADS, MAX_HIDDEN, MAX_INTERMEDIATE, MAX_LABELS, MAX_LAYERS, MAX_POSITIONS,
    MAX_TOKEN_TYPES, MAX_VOCAB, check_positive, config_usize,
};
use crate::weights::{Checkpoint, Weights};

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
    /// The hyper-parameters, each checked against its hard limit.
    pub fn from_json(cfg: &Value, family: Family) -> Result<EncoderConfig> {
        let distil = family == Family::DistilBert;
        let act_name =
            str_key(cfg, if distil { "activation" } else { "hidden_act" }).unwrap_or("gelu");
        let default_pad = if family == Family::Roberta { 1 } else { 0 };
        let required = |keys: &[&str], max: usize| -> Result<usize> {
            let n = config_usize(cfg, keys, max)?.ok_or_else(|| {
                InferenceError::Load(format!("config.json lacks {}", keys.join(" / ")))
            })?;
            check_positive(keys[0], n, max)
        };
        // Lenient as before: some configs write -1 or null for "no pad token".
        let pad_id = cfg
            .get("pad_token_id")
            .and_then(Value::as_u64)
            .filter(|&id| id < MAX_VOCAB as u64)
            .map_or(default_pad, |id| id as usize);
        let c = EncoderConfig {
            family,
            hidden: required(&["hidden_size", "dim"], MAX_HIDDEN)?,
            layers: required(&["num_hidden_layers", "n_layers"], MAX_LAYERS)?,
            heads: required(&["num_attention_heads", "n_heads"], MAX_HEADS)?,
            act: Act::parse(act_name)?,
            max_pos: config_usize(cfg, &["max_position_embeddings"], usize::MAX)?
                .unwrap_or(512)
                .min(MAX_POSITIONS),
            eps: cfg
                .get("layer_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-12),
            pad_id: pad_id as u32,
        };
        if !c.hidden.is_multiple_of(c.heads) {
            return Err(InferenceError::Load(
                "hidden size is not a multiple of the head count".into(),
            ));
        }
        Ok(c)
    }

    /// Checks the checkpoint's headers against this config before any tensor is read: every
    /// table and layer the encoder will take exists with the shape the config implies, so
    /// nothing is sized from a number the weights do not back.
    pub fn check_checkpoint(&self, ck: &Checkpoint) -> Result<()> {
        let h = self.hidden;
        let p = ck.prefix_of("embeddings.word_embeddings.weight")?;
        let e = format!("{p}embeddings.");
        let rows = |name: &str, max: usize| -> Result<usize> {
            match ck.shape(name) {
                Some([n, w]) if *w == h && (1..=max).contains(n) => Ok(*n),
                Some(shape) => Err(InferenceError::Load(format!(
                    "{name} has shape {shape:?}, expected [1..={max}, {h}]"
                ))),
                None => Err(missing(name)),
            }
        };
        rows(&format!("{e}word_embeddings.weight"), MAX_VOCAB)?;
        rows(&format!("{e}position_embeddings.weight"), MAX_POSITIONS)?;
        let types = format!("{e}token_type_embeddings.weight");
        if ck.has(&types) {
            rows(&types, MAX_TOKEN_TYPES)?;
        }
        expect_norm(ck, &format!("{e}LayerNorm"), h)?;
        for i in 0..self.layers {
            let [q, k, v, o, ln1, ff1, ff2, ln2] = layer_names(self.family, &p, i);
            for name in [&q, &k, &v, &o] {
                expect_linear(ck, name, h, h)?;
            }
            let inter = match ck.shape(&format!("{ff1}.weight")) {
                Some([n, _]) if (1..=MAX_INTERMEDIATE).contains(n) => *n,
                Some(shape) => {
                    return Err(InferenceError::Load(format!(
                        "{ff1}.weight has shape {shape:?}, expected [1..={MAX_INTERMEDIATE}, {h}]"
                    )));
                }
                None => return Err(missing(&format!("{ff1}.weight"))),
            };
            expect_linear(ck, &ff1, inter, h)?;
            expect_linear(ck, &ff2, h, inter)?;
            expect_norm(ck, &ln1, h)?;
            expect_norm(ck, &ln2, h)?;
        }
        Ok(())
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

fn missing(name: &str) -> InferenceError {
    InferenceError::Load(format!("tensor {name} missing from the weights"))
}

/// `{name}.weight` of shape (out, input) and, when present, `{name}.bias` of shape (out).
pub(crate) fn expect_linear(ck: &Checkpoint, name: &str, out: usize, input: usize) -> Result<()> {
    let weight = format!("{name}.weight");
    match ck.shape(&weight) {
        Some(s) if s == [out, input] => {}
        Some(s) => {
            return Err(InferenceError::Load(format!(
                "{weight} has shape {s:?}, expected [{out}, {input}]"
            )));
        }
        None => return Err(missing(&weight)),
    }
    match ck.shape(&format!("{name}.bias")) {
        Some(s) if s != [out] => Err(InferenceError::Load(format!(
            "{name}.bias has shape {s:?}, expected [{out}]"
        ))),
        _ => Ok(()),
    }
}

/// A layer norm's weight and bias (or gamma and beta) of width `width`.
fn expect_norm(ck: &Checkpoint, name: &str, width: usize) -> Result<()> {
    for pair in [["weight", "gamma"], ["bias", "beta"]] {
        let shape = pair
            .iter()
            .find_map(|suffix| ck.shape(&format!("{name}.{suffix}")));
        match shape {
            Some(s) if s == [width] => {}
            Some(s) => {
                return Err(InferenceError::Load(format!(
                    "{name}.{} has shape {s:?}, expected [{width}]",
                    pair[0]
                )));
            }
            None => return Err(missing(&format!("{name}.{}", pair[0]))),
        }
    }
    Ok(())
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

    /// Refuses a layer that does not read `input` values or writes none or more than `max_out`:
    /// a mismatch would otherwise surface as an error on every request.
    pub fn check(&self, name: &str, input: usize, max_out: usize) -> Result<()> {
        let out = self.out_dim();
        let bias_ok = self.b.as_ref().is_none_or(|b| b.dims() == [out]);
        if self.w.dims() != [out, input] || !(1..=max_out).contains(&out) || !bias_ok {
            return Err(InferenceError::Load(format!(
                "{name}: weight shape {:?}, expected [1..={max_out}, {input}] with a matching bias",
                self.w.dims()
            )));
        }
        Ok(())
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

/// Takes `{name}.weight` (out, input) and `{name}.bias` out of the weights as a [`Dense`].
fn take_dense(ws: &mut Weights, name: &str, out: usize, input: usize) -> Result<Dense> {
    let w = ws.take(&format!("{name}.weight"))?;
    let b = ws.map.remove(&format!("{name}.bias"));
    dense(&w, b.as_ref(), name, out, input)
}

fn dense(w: &Tensor, b: Option<&Tensor>, name: &str, out: usize, input: usize) -> Result<Dense> {
    if w.dims() != [out, input] || out == 0 || input == 0 {
        return Err(InferenceError::Load(format!(
            "{name}: weight shape {:?}, expected [{out}, {input}]",
            w.dims()
        )));
    }
    let bias = match b {
        Some(b) => b.to_vec1::<f32>().map_err(load_err)?,
        None => vec![0.0; out],
    };
    if bias.len() != out {
        return Err(InferenceError::Load(format!(
            "{name}: bias length {}",
            bias.len()
        )));
    }
    let wt = w
        .t()
        .and_then(|t| t.contiguous())
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(load_err)?;
    Ok(Dense { wt, bias })
}

fn host_norm(ws: &Weights, name: &str, eps: f64, width: usize) -> Result<Norm> {
    let ln = |suffixes: [&str; 2]| -> Result<Vec<f32>> {
        let t = ws.get_any(&[
            &format!("{name}.{}", suffixes[0]),
            &format!("{name}.{}", suffixes[1]),
        ])?;
        let v = t.to_vec1::<f32>().map_err(load_err)?;
        if v.len() != width {
            return Err(InferenceError::Load(format!(
                "{name}: width {}, expected {width}",
                v.len()
            )));
        }
        Ok(v)
    };
    Ok(Norm {
        gamma: ln(["weight", "gamma"])?,
        beta: ln(["bias", "beta"])?,
        eps: eps as f32,
    })
}

struct Layer {
    /// Query, key and value fused into one product.
    qkv: Dense,
    out: Dense,
    ln1: Norm,
    ff1: Dense,
    ff2: Dense,
    ln2: Norm,
}

/// Tensor names of one layer: (q, k, v, attn-out, ln1, ff1, ff2, ln2).
pub(crate) fn layer_names(family: Family, p: &str, i: usize) -> [String; 8] {
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
    fn load(ws: &mut Weights, cfg: &EncoderConfig, p: &str, i: usize) -> Result<Layer> {
        let [q, k, v, o, ln1, ff1, ff2, ln2] = layer_names(cfg.family, p, i);
        let h = cfg.hidden;
        let mut qkv_w = Vec::with_capacity(3);
        let mut qkv_b = Vec::with_capacity(3);
        for name in [&q, &k, &v] {
            qkv_w.push(ws.take(&format!("{name}.weight"))?);
            qkv_b.extend(ws.map.remove(&format!("{name}.bias")));
        }
        let w = Tensor::cat(&qkv_w, 0).map_err(load_err)?;
        let b = match qkv_b.len() {
            3 => Some(Tensor::cat(&qkv_b, 0).map_err(load_err)?),
            _ => None,
        };
        let qkv = dense(&w, b.as_ref(), &format!("layer {i} attention"), 3 * h, h)?;
        let inter = ws
            .get(&format!("{ff1}.weight"))?
            .dims()
            .first()
            .copied()
            .unwrap_or(0);
        Ok(Layer {
            qkv,
            out: take_dense(ws, &o, h, h)?,
            ln1: host_norm(ws, &ln1, cfg.eps, h)?,
            ff1: take_dense(ws, &ff1, inter, h)?,
            ff2: take_dense(ws, &ff2, h, inter)?,
            ln2: host_norm(ws, &ln2, cfg.eps, h)?,
        })
    }

    /// One post-LN transformer layer over the packed rows `x` (tokens, hidden), in place.
    fn forward(&self, x: &mut [f32], lens: &[usize], heads: usize, act: Act, s: &mut Scratch) {
        let h = self.ln1.gamma.len();
        let rows = x.len() / h.max(1);
        s.size(rows, h, self.ff1.out());
        fill_rows(&mut s.qkv, &self.qkv.bias);
        self.qkv.accumulate(x, &mut s.qkv);
        attention(&s.qkv, lens, h, heads, &mut s.ctx);
        // x1 = norm(x + out(ctx)): the residual and bias go in first, the product adds to them.
        fill_rows_plus(&mut s.mid, &self.out.bias, x);
        self.out.accumulate(&s.ctx, &mut s.mid);
        norm_rows(&mut s.mid, &self.ln1);
        fill_rows(&mut s.ff, &self.ff1.bias);
        self.ff1.accumulate(&s.mid, &mut s.ff);
        act_rows(&mut s.ff, self.ff1.out(), act);
        fill_rows_plus(x, &self.ff2.bias, &s.mid);
        self.ff2.accumulate(&s.ff, x);
        norm_rows(x, &self.ln2);
    }
}

/// Work buffers of one forward pass, reused by every layer (multi-megabyte buffers allocated
/// per step cost page faults and zeroing: 8 % of a pass).
#[derive(Default)]
struct Scratch {
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    mid: Vec<f32>,
    ff: Vec<f32>,
}

impl Scratch {
    fn size(&mut self, rows: usize, hidden: usize, inter: usize) {
        self.qkv.resize(rows * 3 * hidden, 0.0);
        self.ctx.resize(rows * hidden, 0.0);
        self.mid.resize(rows * hidden, 0.0);
        self.ff.resize(rows * inter, 0.0);
    }
}

/// The encoder body: embeddings and transformer layers.
pub(crate) struct Encoder {
    pub cfg: EncoderConfig,
    /// Weight-name prefix of the body (`bert.`, `roberta.`, `distilbert.` or none).
    pub prefix: String,
    word: Tensor,
    /// Position table (max_pos, hidden), row-major on the host.
    pos: Vec<f32>,
    /// Token-type table (types, hidden); empty when the model has none (DistilBERT).
    token_types: Vec<f32>,
    ln: Norm,
    layers: Vec<Layer>,
}

/// Token sequences laid end to end, without padding.
pub(crate) struct Packed {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// Length of each sequence, in order.
    pub lens: Vec<usize>,
}

impl Packed {
    /// Packs encodings; an empty one becomes a single `pad_id` token so that every sequence has
    /// a row.
    pub fn new(encs: &[&Encoding], pad_id: u32) -> Packed {
        let mut p = Packed {
            ids: Vec::new(),
            type_ids: Vec::new(),
            lens: Vec::with_capacity(encs.len()),
        };
        for e in encs {
            if e.is_empty() {
                p.ids.push(pad_id);
                p.type_ids.push(0);
                p.lens.push(1);
            } else {
                p.ids.extend_from_slice(e.get_ids());
                p.type_ids.extend_from_slice(e.get_type_ids());
                p.lens.push(e.len());
            }
        }
        p
    }

    /// First row of each sequence.
    pub fn starts(&self) -> Vec<usize> {
        crate::hostops::starts(&self.lens)
    }
}

impl Encoder {
    /// Builds the encoder, taking the layer tensors out of `ws` (the heads load from the rest).
    pub fn load(ws: &mut Weights, cfg: EncoderConfig) -> Result<Encoder> {
        let prefix = ws.prefix_of("embeddings.word_embeddings.weight")?;
        let e = format!("{prefix}embeddings.");
        let word = ws.get(&format!("{e}word_embeddings.weight"))?;
        let pos = ws.get(&format!("{e}position_embeddings.weight"))?;
        let token_type = ws
            .map
            .get(&format!("{e}token_type_embeddings.weight"))
            .cloned();
        let ln = host_norm(ws, &format!("{e}LayerNorm"), cfg.eps, cfg.hidden)?;
        let width_ok = |t: &Tensor| t.dims().len() == 2 && t.dims()[1] == cfg.hidden;
        if pos.dims().first() == Some(&0) {
            return Err(InferenceError::Load("the position table is empty".into()));
        }
        if !width_ok(&word) || !width_ok(&pos) || !token_type.as_ref().is_none_or(width_ok) {
            return Err(InferenceError::Load(
                "embedding width differs from hidden_size".into(),
            ));
        }
        let layers = (0..cfg.layers)
            .map(|i| Layer::load(ws, &cfg, &prefix, i))
            .collect::<Result<_>>()?;
        let mut cfg = cfg;
        // Trust the table over config.json: position ids are clamped to the table's rows.
        cfg.max_pos = cfg.max_pos.min(pos.dims()[0]);
        let host = |t: &Tensor| {
            t.flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(load_err)
        };
        Ok(Encoder {
            cfg,
            prefix,
            word,
            pos: host(&pos)?,
            token_types: token_type
                .as_ref()
                .map(host)
                .transpose()?
                .unwrap_or_default(),
            ln,
            layers,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.word.dims()[0]
    }

    /// Hidden states (tokens, hidden) of packed sequences, in the same row order.
    pub fn forward(&self, packed: &Packed) -> Result<Tensor> {
        let dev = Device::Cpu;
        let vocab = self.vocab_size() as u32;
        if packed.ids.iter().any(|&i| i >= vocab) {
            return Err(InferenceError::Internal(
                "token id outside the embedding table".into(),
            ));
        }
        let n = packed.ids.len();
        let ids = Tensor::from_slice(&packed.ids, n, &dev)?;
        let mut rows = self
            .word
            .index_select(&ids, 0)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        // Position and token-type rows are added here rather than with tensor ops: candle would
        // hand those element-wise adds to its own spinning thread pool.
        let h = self.cfg.hidden;
        let n_types = self.token_types.len() / h;
        let positions = self.position_ids(packed);
        for ((row, &p), &t) in rows.chunks_mut(h).zip(&positions).zip(&packed.type_ids) {
            let pos = &self.pos[p as usize * h..][..h];
            row.iter_mut().zip(pos).for_each(|(x, p)| *x += p);
            if n_types > 0 {
                let t = (t as usize).min(n_types - 1);
                let tt = &self.token_types[t * h..][..h];
                row.iter_mut().zip(tt).for_each(|(x, t)| *x += t);
            }
        }
        norm_rows(&mut rows, &self.ln);
        let mut scratch = Scratch::default();
        for layer in &self.layers {
            layer.forward(
                &mut rows,
                &packed.lens,
                self.cfg.heads,
                self.cfg.act,
                &mut scratch,
            );
        }
        Ok(Tensor::from_vec(rows, (n, self.cfg.hidden), &dev)?)
    }

    /// Position ids: each sequence counts from the family's offset (RoBERTa: `pad_id + 1`).
    fn position_ids(&self, packed: &Packed) -> Vec<u32> {
        let off = self.cfg.position_offset() as u32;
        let max = (self.cfg.max_pos as u32).saturating_sub(1);
        packed
            .lens
            .iter()
            .flat_map(|&l| (0..l as u32).map(move |i| (off + i).min(max)))
            .collect()
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
        let h = enc.cfg.hidden;
        dense.check("the fill-mask head's dense layer", h, h)?;
        let decoder = Lin::new(dec_w, Some(dec_b));
        decoder.check("the fill-mask head's decoder", h, MAX_VOCAB)?;
        Ok(MlmHead {
            dense,
            ln,
            act,
            decoder,
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
        let h = enc.cfg.hidden;
        let (pre, out) = (Lin::load(ws, &pre)?, Lin::load(ws, &out)?);
        pre.check("the classification head's first layer", h, h)?;
        out.check("the classification head", h, MAX_LABELS)?;
        Ok(ClsHead { pre, pre_act, out })
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::Module;

    use super::*;

    const HIDDEN: usize = 8;
    const HEADS: usize = 2;
    const INTER: usize = 16;
    const VOCAB: usize = 20;

    /// Deterministic pseudo-random tensor with values in [-1, 1): large enough that attention is
    /// far from uniform, so a wrong scale or mask shows.
    fn random(dims: &[usize], seed: &mut u64) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                2.0 * (((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5)
            })
            .collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
    }

    fn weights(family: Family, prefix: &str, layers: usize) -> Weights {
        let mut seed = 42;
        let mut map = HashMap::new();
        let mut put = |name: String, dims: &[usize]| {
            map.insert(name, random(dims, &mut seed));
        };
        let e = format!("{prefix}embeddings.");
        put(format!("{e}word_embeddings.weight"), &[VOCAB, HIDDEN]);
        put(format!("{e}position_embeddings.weight"), &[16, HIDDEN]);
        if family != Family::DistilBert {
            put(format!("{e}token_type_embeddings.weight"), &[2, HIDDEN]);
        }
        put(format!("{e}LayerNorm.weight"), &[HIDDEN]);
        put(format!("{e}LayerNorm.bias"), &[HIDDEN]);
        for i in 0..layers {
            let [q, k, v, o, ln1, ff1, ff2, ln2] = layer_names(family, prefix, i);
            for (lin, out, input) in [
                (q, HIDDEN, HIDDEN),
                (k, HIDDEN, HIDDEN),
                (v, HIDDEN, HIDDEN),
                (o, HIDDEN, HIDDEN),
                (ff1, INTER, HIDDEN),
                (ff2, HIDDEN, INTER),
            ] {
                put(format!("{lin}.weight"), &[out, input]);
                put(format!("{lin}.bias"), &[out]);
            }
            for ln in [ln1, ln2] {
                put(format!("{ln}.weight"), &[HIDDEN]);
                put(format!("{ln}.bias"), &[HIDDEN]);
            }
        }
        Weights { map }
    }

    /// The textbook formulation on candle ops, one sequence at a time: the packed pass must
    /// agree with it.
    fn reference(ws: &Weights, cfg: &EncoderConfig, prefix: &str, ids: &[u32]) -> Vec<f32> {
        let run = || -> Result<Vec<f32>> {
            let dev = Device::Cpu;
            let n = ids.len();
            let e = format!("{prefix}embeddings.");
            let pos: Vec<u32> = (0..n).map(|i| (cfg.position_offset() + i) as u32).collect();
            let word = ws.get(&format!("{e}word_embeddings.weight"))?;
            let table = ws.get(&format!("{e}position_embeddings.weight"))?;
            let mut x = (word.index_select(&Tensor::from_slice(ids, n, &dev)?, 0)?
                + table.index_select(&Tensor::from_vec(pos, n, &dev)?, 0)?)?;
            if let Some(tt) = ws.map.get(&format!("{e}token_type_embeddings.weight")) {
                x = x.broadcast_add(&tt.get(0)?)?;
            }
            let mut x = layer_norm(ws, &format!("{e}LayerNorm"), cfg.eps)?.forward(&x)?;
            let d = cfg.hidden / cfg.heads;
            for i in 0..cfg.layers {
                let [q, k, v, o, ln1, ff1, ff2, ln2] = layer_names(cfg.family, prefix, i);
                let heads = |name: &str| -> Result<Tensor> {
                    let t = Lin::load(ws, name)?.forward(&x)?;
                    Ok(t.reshape((n, cfg.heads, d))?
                        .transpose(0, 1)?
                        .contiguous()?)
                };
                let (q, k, v) = (heads(&q)?, heads(&k)?, heads(&v)?);
                let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?;
                let probs = candle_nn::ops::softmax_last_dim(&scores)?;
                let ctx = probs
                    .matmul(&v)?
                    .transpose(0, 1)?
                    .reshape((n, cfg.hidden))?;
                let attended = (Lin::load(ws, &o)?.forward(&ctx)? + &x)?;
                x = layer_norm(ws, &ln1, cfg.eps)?.forward(&attended)?;
                let inner = cfg.act.apply(&Lin::load(ws, &ff1)?.forward(&x)?)?;
                let ff = (Lin::load(ws, &ff2)?.forward(&inner)? + &x)?;
                x = layer_norm(ws, &ln2, cfg.eps)?.forward(&ff)?;
            }
            Ok(x.flatten_all()?.to_vec1::<f32>()?)
        };
        run().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn packed_pass_matches_a_per_sequence_reference_for_every_family() {
        let seqs: [&[u32]; 4] = [&[3], &[1, 5, 7, 2], &[4, 4, 9, 11, 13, 2, 19], &[0, 6]];
        for (family, prefix, act) in [
            (Family::Bert, "bert.", Act::Gelu),
            (Family::Roberta, "roberta.", Act::GeluTanh),
            (Family::DistilBert, "distilbert.", Act::Relu),
        ] {
            let ws = weights(family, prefix, 2);
            let cfg = EncoderConfig {
                family,
                hidden: HIDDEN,
                layers: 2,
                heads: HEADS,
                act,
                max_pos: 16,
                eps: 1e-5,
                pad_id: 1,
            };
            let mut taken = Weights {
                map: ws.map.clone(),
            };
            let enc = Encoder::load(&mut taken, cfg.clone()).unwrap_or_else(|e| panic!("{e}"));
            let packed = Packed {
                ids: seqs.concat(),
                type_ids: vec![0; seqs.iter().map(|s| s.len()).sum()],
                lens: seqs.iter().map(|s| s.len()).collect(),
            };
            let out = enc
                .forward(&packed)
                .and_then(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?))
                .unwrap_or_else(|e| panic!("{e}"));
            let want: Vec<f32> = seqs
                .iter()
                .flat_map(|s| reference(&ws, &cfg, prefix, s))
                .collect();
            assert_eq!(out.len(), want.len());
            let worst = out
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 2e-5, "{family:?}: worst difference {worst}");
        }
    }

    #[test]
    fn wrong_shapes_fail_at_load() {
        let mut ws = weights(Family::Bert, "", 1);
        let bad = random(&[HIDDEN + 1], &mut 7);
        ws.map
            .insert("encoder.layer.0.output.dense.bias".into(), bad);
        let cfg = EncoderConfig {
            family: Family::Bert,
            hidden: HIDDEN,
            layers: 1,
            heads: HEADS,
            act: Act::Gelu,
            max_pos: 16,
            eps: 1e-12,
            pad_id: 0,
        };
        assert!(matches!(
            Encoder::load(&mut ws, cfg.clone()),
            Err(InferenceError::Load(_))
        ));
        // An empty feed-forward layer would make the products degenerate: refused at load.
        let mut ws = weights(Family::Bert, "", 1);
        let empty = |dims: &[usize]| Tensor::zeros(dims, DType::F32, &Device::Cpu);
        for (name, dims) in [
            (
                "encoder.layer.0.intermediate.dense.weight",
                &[0, HIDDEN][..],
            ),
            ("encoder.layer.0.intermediate.dense.bias", &[0]),
            ("encoder.layer.0.output.dense.weight", &[HIDDEN, 0]),
        ] {
            ws.map
                .insert(name.into(), empty(dims).unwrap_or_else(|e| panic!("{e}")));
        }
        assert!(matches!(
            Encoder::load(&mut ws, cfg),
            Err(InferenceError::Load(_))
        ));
    }
}
