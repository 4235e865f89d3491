//! `Model`: loading a snapshot directory and routing requests to the task pipelines.

use std::path::Path;

use serde_json::Value;

use crate::config::{read_json, read_json_opt, str_key};
use crate::decoder::DecoderModel;
use crate::encoder::{ClsHead, Encoder, EncoderConfig, Family, Lin, MlmHead};
use crate::error::{InferenceError, Result};
use crate::generate::{self, StreamToken};
use crate::pipelines::{self, Pooling};
use crate::task::Task;
use crate::tokenize::TextTokenizer;
use crate::weights::Weights;

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
    /// from config.json.
    pub fn load(dir: &Path, pipeline_tag: Option<&str>) -> Result<Model> {
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
                let (m, bytes) = load_encoder(dir, &cfg, family, task, is_st)?;
                (Inner::Encoder(Box::new(m)), bytes)
            }
            (None, true, false) => {
                let (m, bytes) = DecoderModel::load(dir, &cfg, &model_type)?;
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

    /// The model's main task.
    pub fn task(&self) -> Task {
        self.task
    }

    /// `model_type` from config.json, e.g. "bert", "gpt2", "llama".
    pub fn architecture(&self) -> &str {
        &self.arch
    }

    /// Bytes of weights held in memory, for the server's cache budget.
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
        match &self.inner {
            Inner::Encoder(m) => pipelines::run(m, &[(task, body)])
                .pop()
                .unwrap_or_else(|| Err(InferenceError::Internal("no result".into()))),
            Inner::Decoder(m) => generate::run(m, body, &mut |_| true),
        }
    }

    /// Several requests in one packed forward pass (encoders); one result per body, same order.
    pub fn infer_batch(&self, bodies: &[Value]) -> Vec<Result<Value>> {
        match &self.inner {
            Inner::Encoder(m) => {
                let reqs: Vec<(Task, &Value)> =
                    bodies.iter().map(|b| (self.task_for(b), b)).collect();
                pipelines::run(m, &reqs)
            }
            Inner::Decoder(_) => bodies.iter().map(|b| self.infer(b)).collect(),
        }
    }

    /// Text generation calling `on_token` for each token (return false to stop early).
    pub fn generate_stream(
        &self,
        body: &Value,
        on_token: &mut dyn FnMut(&StreamToken) -> bool,
    ) -> Result<Value> {
        match &self.inner {
            Inner::Decoder(m) => generate::run(m, body, on_token),
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
) -> Result<(EncoderModel, u64)> {
    let mut ws = Weights::load_dir(dir)?;
    let bytes = ws.bytes();
    let enc = Encoder::load(&mut ws, EncoderConfig::from_json(cfg, family)?)?;
    let head = load_head(&ws, &enc, task)?;
    let mut labels = crate::config::labels(cfg);
    if let Head::Cls(h) = &head
        && h.num_labels() != labels.len()
    {
        labels = (0..h.num_labels()).map(|i| format!("LABEL_{i}")).collect();
    }
    if let (Task::TokenClassification, Head::PerToken(l)) = (task, &head)
        && l.out_dim() != labels.len()
    {
        labels = (0..l.out_dim()).map(|i| format!("LABEL_{i}")).collect();
    }
    let st_max = read_json_opt(dir, "sentence_bert_config.json")?
        .and_then(|c| c.get("max_seq_length").and_then(Value::as_u64))
        .map(|m| m as usize);
    let max_len = st_max.map_or(enc.cfg.max_tokens(), |m| m.min(enc.cfg.max_tokens()));
    let qa = task == Task::QuestionAnswering;
    let tok = TextTokenizer::load(dir, Some(max_len), enc.cfg.pad_id, qa)?;
    if task == Task::FillMask && tok.mask.is_none() {
        return Err(InferenceError::Load(
            "the tokenizer has no mask token".into(),
        ));
    }
    let pooling = Pooling::load(dir, is_st)?;
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
    Ok((model, bytes))
}

fn load_head(ws: &Weights, enc: &Encoder, task: Task) -> Result<Head> {
    let missing = |e: InferenceError| {
        InferenceError::Load(format!(
            "the weights have no {task} head ({e}); is the pipeline_tag right?"
        ))
    };
    Ok(match task {
        Task::FillMask => Head::Mlm(MlmHead::load(ws, enc).map_err(missing)?),
        Task::TextClassification | Task::ZeroShotClassification => {
            Head::Cls(ClsHead::load(ws, enc).map_err(missing)?)
        }
        Task::TokenClassification => Head::PerToken(Lin::load(ws, "classifier").map_err(missing)?),
        Task::QuestionAnswering => {
            let l = Lin::load(ws, "qa_outputs").map_err(missing)?;
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
