//! `Model`: loading a snapshot directory and routing requests to the task pipelines.

use std::path::Path;

use serde_json::Value;

use crate::config::{read_json, read_json_opt, str_key};
use crate::decoder::DecoderModel;
use crate::encoder::{ClsHead, Encoder, EncoderConfig, Family, Lin, MlmHead};
use crate::error::{InferenceError, Result};
use crate::generate::{self, StreamToken};
use crate::guard::no_panic;
use crate::limits::{MAX_LABELS, ModelMemory};
use crate::pipelines::{self, Pooling};
use crate::task::Task;
use crate::tokenize::TextTokenizer;
use crate::weights::{Checkpoint, Weights};

/// A loaded model, ready to answer requests from several threads.
pub struct Model {
    arch: String,
    task: Task,
    bytes: u64,
    inner: Inner,
}

enum Inner {
    Encoder(Box<EncoderModel>),
    Decoder(Box<DecoderModel>),
}

/// The task-specific layer on top of the encoder.
pub(crate) enum Head {
    None,
    Mlm(MlmHead),
    Cls(ClsHead),
    /// Token classification (`classifier`) or question answering (`qa_outputs`): a linear layer on
    /// every token.
    PerToken(Lin),
}

pub(crate) struct EncoderModel {
    pub enc: Encoder,
    pub tok: TextTokenizer,
    pub head: Head,
    pub task: Task,
    pub labels: Vec<String>,
    /// `problem_type: multi_label_classification` (sigmoid instead of softmax).
    pub multi_label: bool,
    pub pooling: Pooling,
    pub sentence_transformers: bool,
    /// Sentence-transformers prompts by name (`prompt_name` in feature-extraction requests).
    pub prompts: std::collections::HashMap<String, String>,
}

impl Model {
    /// Loads a snapshot. `pipeline_tag` comes from the model card; when None the task is derived
    /// from config.json. No memory budget: see [`Model::load_within`].
    pub fn load(dir: &Path, pipeline_tag: Option<&str>) -> Result<Model> {
        Model::load_within(dir, pipeline_tag, u64::MAX)
    }

    /// Loads a snapshot whose estimated memory (weights as f32, derived tables, tokenizer) fits
    /// `memory_budget` bytes. Every size config.json declares is checked against hard limits
    /// and against the safetensors headers first, and the estimate against the budget, before
    /// any tensor is read: a hostile checkpoint is a [`InferenceError::Load`] or
    /// [`InferenceError::TooLarge`], never an allocation that aborts the process.
    pub fn load_within(
        dir: &Path,
        pipeline_tag: Option<&str>,
        memory_budget: u64,
    ) -> Result<Model> {
        no_panic("loading the model", || {
            load_model(dir, pipeline_tag, memory_budget)
        })
    }

    /// The model's main task.
    pub fn task(&self) -> Task {
        self.task
    }

    /// `model_type` from config.json, e.g. "bert", "gpt2", "llama".
    pub fn architecture(&self) -> &str {
        &self.arch
    }

    /// Estimated bytes the model holds (weights as f32, derived tables, tokenizer), for the
    /// server's memory budget.
    pub fn approx_bytes(&self) -> u64 {
        self.bytes
    }

    /// Tasks this model can answer, its main task first.
    pub fn tasks(&self) -> Vec<Task> {
        let mut v = vec![self.task];
        let extra: &[Task] = match self.task {
            Task::TextGeneration => &[],
            Task::SentenceSimilarity => &[Task::FeatureExtraction],
            Task::FeatureExtraction => &[Task::SentenceSimilarity],
            Task::ZeroShotClassification => &[Task::TextClassification, Task::FeatureExtraction],
            _ => &[Task::FeatureExtraction],
        };
        v.extend_from_slice(extra);
        v
    }

    /// Runs one request; the task is the model's, adjusted to the body's shape (a
    /// sentence-transformers model answers both embeddings and similarity bodies).
    pub fn infer(&self, body: &Value) -> Result<Value> {
        self.infer_as(self.task_for(body), body)
    }

    /// Runs `body` as `task` (the `/pipeline/{task}` route).
    pub fn infer_as(&self, task: Task, body: &Value) -> Result<Value> {
        self.check_task(task)?;
        no_panic("answering a request", || match &self.inner {
            Inner::Encoder(m) => pipelines::run(m, &[(task, body)])
                .pop()
                .unwrap_or_else(|| Err(InferenceError::Internal("no result".into()))),
            Inner::Decoder(m) => generate::run(m, body, &mut |_| true),
        })
    }

    /// Several requests in one packed forward pass (encoders); one result per body, same order.
    pub fn infer_batch(&self, bodies: &[Value]) -> Vec<Result<Value>> {
        let run = || match &self.inner {
            Inner::Encoder(m) => {
                let reqs: Vec<(Task, &Value)> =
                    bodies.iter().map(|b| (self.task_for(b), b)).collect();
                pipelines::run(m, &reqs)
            }
            Inner::Decoder(_) => bodies.iter().map(|b| self.infer(b)).collect(),
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|payload| {
            let e = crate::guard::panicked("answering a batch", &*payload);
            bodies.iter().map(|_| Err(e.clone())).collect()
        })
    }

    /// Text generation calling `on_token` for each token (return false to stop early).
    pub fn generate_stream(
        &self,
        body: &Value,
        on_token: &mut dyn FnMut(&StreamToken) -> bool,
    ) -> Result<Value> {
        match &self.inner {
            Inner::Decoder(m) => no_panic("generating", || generate::run(m, body, on_token)),
            Inner::Encoder(_) => Err(InferenceError::Unsupported(format!(
                "streaming is only available for text-generation; this model serves {}",
                self.task
            ))),
        }
    }

    fn check_task(&self, task: Task) -> Result<()> {
        if self.tasks().contains(&task) {
            Ok(())
        } else {
            let can: Vec<&str> = self.tasks().iter().map(Task::as_str).collect();
            Err(InferenceError::Unsupported(format!(
                "this model cannot serve {task}; it serves {}",
                can.join(", ")
            )))
        }
    }

    /// Embedding models answer similarity bodies ({source_sentence, sentences}) and plain text
    /// bodies alike.
    fn task_for(&self, body: &Value) -> Task {
        let pair = body
            .get("inputs")
            .and_then(|i| i.get("source_sentence"))
            .is_some();
        match self.task {
            Task::SentenceSimilarity if !pair => Task::FeatureExtraction,
            Task::FeatureExtraction if pair => Task::SentenceSimilarity,
            t => t,
        }
    }
}

/// See [`Model::load_within`].
fn load_model(dir: &Path, pipeline_tag: Option<&str>, budget: u64) -> Result<Model> {
    let cfg = read_json(dir, "config.json")?;
    let model_type = str_key(&cfg, "model_type")
        .ok_or_else(|| InferenceError::Load("config.json has no model_type".into()))?
        .to_string();
    let is_st = dir.join("modules.json").is_file();
    let task = match pipeline_tag {
        Some(tag) => Task::from_pipeline_tag(tag).ok_or_else(|| {
            InferenceError::Unsupported(format!(
                "pipeline_tag {tag:?} is not served; {}",
                crate::SUPPORTED
            ))
        })?,
        None => derive_task(&cfg, is_st)?,
    };
    let family = Family::from_model_type(&model_type);
    let decoder = matches!(model_type.as_str(), "gpt2" | "llama" | "qwen2" | "mistral");
    let (inner, bytes) = match (family, decoder, task.is_encoder()) {
        (Some(family), _, true) => {
            let (m, bytes) = load_encoder(dir, &cfg, family, task, is_st, budget)?;
            (Inner::Encoder(Box::new(m)), bytes)
        }
        (None, true, false) => {
            let (m, bytes) = DecoderModel::load(dir, &cfg, &model_type, budget)?;
            (Inner::Decoder(Box::new(m)), bytes)
        }
        (None, false, _) => {
            return Err(InferenceError::Unsupported(format!(
                "architecture {model_type:?} is not supported; {}",
                crate::SUPPORTED
            )));
        }
        _ => {
            return Err(InferenceError::Unsupported(format!(
                "a {model_type} model cannot serve {task}; {}",
                crate::SUPPORTED
            )));
        }
    };
    Ok(Model {
        arch: model_type,
        task,
        bytes,
        inner,
    })
}

/// The task from config.json when the card names none.
fn derive_task(cfg: &Value, is_st: bool) -> Result<Task> {
    let arch = cfg
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .unwrap_or("");
    let by_suffix = [
        ("ForMaskedLM", Task::FillMask),
        ("ForSequenceClassification", Task::TextClassification),
        ("ForTokenClassification", Task::TokenClassification),
        ("ForQuestionAnswering", Task::QuestionAnswering),
        ("ForCausalLM", Task::TextGeneration),
        ("LMHeadModel", Task::TextGeneration),
    ];
    if let Some((_, t)) = by_suffix.iter().find(|(s, _)| arch.ends_with(s)) {
        return Ok(*t);
    }
    if is_st || arch.ends_with("Model") {
        return Ok(Task::FeatureExtraction);
    }
    Err(InferenceError::Unsupported(format!(
        "cannot tell the task of architecture {arch:?}; set pipeline_tag in the model card; {}",
        crate::SUPPORTED
    )))
}

fn load_encoder(
    dir: &Path,
    cfg: &Value,
    family: Family,
    task: Task,
    is_st: bool,
    budget: u64,
) -> Result<(EncoderModel, u64)> {
    let enc_cfg = EncoderConfig::from_json(cfg, family)?;
    let ck = Checkpoint::open_dir(dir)?;
    enc_cfg.check_checkpoint(&ck)?;
    let memory = ModelMemory {
        weights: ck
            .f32_bytes()
            .saturating_add(pipelines::module_bytes(dir, is_st)?),
        tables: 0,
        tokenizer: TextTokenizer::memory(dir)?,
    };
    memory.check(budget)?;
    let mut ws = ck.read()?;
    let enc = Encoder::load(&mut ws, enc_cfg)?;
    let head = load_head(&ws, &enc, task)?;
    let labels = match &head {
        Head::Cls(h) => crate::config::labels(cfg, h.num_labels()),
        Head::PerToken(l) if task == Task::TokenClassification => {
            crate::config::labels(cfg, l.out_dim())
        }
        _ => Vec::new(),
    };
    drop(ws);
    let st_max = read_json_opt(dir, "sentence_bert_config.json")?
        .and_then(|c| c.get("max_seq_length").and_then(Value::as_u64))
        .map(|m| usize::try_from(m).unwrap_or(usize::MAX));
    let max_len = st_max.map_or(enc.cfg.max_tokens(), |m| m.clamp(1, enc.cfg.max_tokens()));
    let qa = task == Task::QuestionAnswering;
    let tok = TextTokenizer::load(dir, Some(max_len), enc.cfg.pad_id, qa)?;
    if task == Task::FillMask && tok.mask.is_none() {
        return Err(InferenceError::Load(
            "the tokenizer has no mask token".into(),
        ));
    }
    let pooling = Pooling::load(dir, is_st, enc.cfg.hidden)?;
    let model = EncoderModel {
        multi_label: str_key(cfg, "problem_type") == Some("multi_label_classification"),
        enc,
        tok,
        head,
        task,
        labels,
        pooling,
        sentence_transformers: is_st,
        prompts: st_prompts(dir)?,
    };
    if task == Task::ZeroShotClassification {
        pipelines::nli_ids(&model)?;
    }
    Ok((model, memory.total()))
}

fn load_head(ws: &Weights, enc: &Encoder, task: Task) -> Result<Head> {
    let missing = |e: InferenceError| {
        InferenceError::Load(format!(
            "the weights have no {task} head ({e}); is the pipeline_tag right?"
        ))
    };
    let h = enc.cfg.hidden;
    Ok(match task {
        Task::FillMask => Head::Mlm(MlmHead::load(ws, enc).map_err(missing)?),
        Task::TextClassification | Task::ZeroShotClassification => {
            Head::Cls(ClsHead::load(ws, enc).map_err(missing)?)
        }
        Task::TokenClassification => {
            let l = Lin::load(ws, "classifier").map_err(missing)?;
            l.check("the token-classification head", h, MAX_LABELS)?;
            Head::PerToken(l)
        }
        Task::QuestionAnswering => {
            let l = Lin::load(ws, "qa_outputs").map_err(missing)?;
            l.check("the question-answering head", h, 2)?;
            if l.out_dim() != 2 {
                return Err(InferenceError::Load(
                    "qa_outputs must have 2 outputs".into(),
                ));
            }
            Head::PerToken(l)
        }
        _ => Head::None,
    })
}

/// `prompts` of config_sentence_transformers.json, e.g. {"query": "query: "}.
fn st_prompts(dir: &Path) -> Result<std::collections::HashMap<String, String>> {
    let cfg = read_json_opt(dir, "config_sentence_transformers.json")?;
    let prompts = cfg
        .as_ref()
        .and_then(|c| c.get("prompts"))
        .and_then(Value::as_object);
    Ok(prompts
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect())
}
