//! The inference widget of a model page, and `POST /{ns}/{name}/widget` behind it.
//!
//! The card page shows a form chosen by the model's task (the card's `pipeline_tag`). The form
//! posts its fields here; the server turns them into the task's inference body (the mapping
//! from widget fields to `{"inputs", "parameters"}` lives in Rust, not in the script), runs it
//! through `Hub::infer` as the visitor (anonymous visitors reach public models only), and
//! answers in the form the caller asked for: JSON for wharf.js (`Accept: application/json`),
//! token events for streamed generation (`Accept: text/event-stream`), or a small HTML page
//! when the form was posted without JavaScript. Errors reach the script as `{"error": …}`.

// Built without the `inference` feature, the route only answers 404 and the form's fields and
// the result helpers go unused.
#![cfg_attr(not(feature = "inference"), allow(dead_code))]

use crate::WebState;
use crate::error::{WebError, WebResult};
use crate::session::Ctx;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Target;

/// Examples taken from a card's `widget:` list at most.
const MAX_EXAMPLES: usize = 10;
/// Values of a feature vector shown on the result.
const VECTOR_PREVIEW: usize = 6;

/// The widget as the card page shows it.
pub struct WidgetView {
    /// The pipeline tag (`fill-mask`, …), also the form's `data-task`.
    pub task: &'static str,
    /// Where the form posts.
    pub action: String,
    pub text_label: &'static str,
    /// A one-line input instead of a text area.
    pub single_line: bool,
    pub placeholder: String,
    /// A line under the text box (the mask token of a fill-mask model).
    pub hint: Option<String>,
    /// Question answering: a context box.
    pub has_context: bool,
    /// Zero-shot classification: candidate labels and the multi-label switch.
    pub has_labels: bool,
    /// Sentence similarity: the sentences to compare with.
    pub has_sentences: bool,
    /// What the form starts with (the chosen example).
    pub values: ExampleInput,
    pub examples: Vec<Example>,
    pub button: &'static str,
}

/// The inputs of one example (the Hub's `widget:` entry), as the form's fields hold them.
#[derive(Clone, Default, Debug, PartialEq)]
pub struct ExampleInput {
    /// `text`, or `source_sentence` for sentence similarity.
    pub text: String,
    pub context: String,
    /// Comma-separated.
    pub candidate_labels: String,
    /// One per line.
    pub sentences: String,
    pub multi_label: bool,
}

/// An example link: without JavaScript it reloads the page with the example filled in.
pub struct Example {
    pub title: String,
    pub href: String,
    pub input: ExampleInput,
}

/// One labelled score bar.
pub struct ScoreRow {
    pub label: String,
    pub score: String,
    /// The bar's CSS width (`42.0%`).
    pub width: String,
}

/// A piece of a token-classification text: plain, or an entity with its group.
pub struct Segment {
    pub text: String,
    pub entity: Option<String>,
}

/// A result as the no-JavaScript page shows it (wharf.js draws the same from the JSON).
#[derive(Default)]
pub struct ResultView {
    pub scores: Vec<ScoreRow>,
    pub entities: Vec<Segment>,
    /// Question answering: the answer and its score.
    pub answer: Option<(String, String)>,
    /// Feature extraction: the shape and the first values.
    pub vector: Option<(String, String)>,
    /// Text generation: the prompt and what the model added.
    pub generated: Option<(String, String)>,
    /// Anything else, as JSON.
    pub raw: Option<String>,
}

/// The form the widget posts (every field optional; the task decides which count).
#[derive(Deserialize, Default, Debug)]
pub struct WidgetForm {
    #[serde(default, rename = "_csrf")]
    pub csrf: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub context: String,
    #[serde(default)]
    pub candidate_labels: String,
    #[serde(default)]
    pub source_sentence: String,
    #[serde(default)]
    pub sentences: String,
    #[serde(default)]
    pub multi_label: String,
    #[serde(default)]
    pub max_new_tokens: String,
}

/// How the caller wants the answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Html,
    Json,
    /// Server-sent token events (text generation; other tasks answer JSON).
    Stream,
}

impl Mode {
    fn of(headers: &HeaderMap) -> Mode {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("text/event-stream") {
            Mode::Stream
        } else if accept.contains("application/json") {
            Mode::Json
        } else {
            Mode::Html
        }
    }

    /// The error page, or `{"error": …}` for the script.
    fn error(self, e: WebError) -> Response {
        if self == Mode::Html || e.location.is_some() {
            return e.into_response();
        }
        (e.status, axum::Json(json!({ "error": e.message }))).into_response()
    }
}

/// `POST /{ns}/{name}/widget`.
pub async fn run(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mode = Mode::of(&headers);
    match answer(&s, &ctx, &t, &headers, body, mode).await {
        Ok(r) => r,
        Err(e) => mode.error(e),
    }
}

async fn answer(
    s: &WebState,
    ctx: &Ctx,
    t: &Target,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    mode: Mode,
) -> WebResult<Response> {
    let body = body.map_err(|e| WebError::new(e.status(), e.body_text()))?;
    // A body that is no form cannot carry the token: refused like a forgery.
    let form: WidgetForm = serde_urlencoded::from_bytes(&body).map_err(|_| WebError::csrf())?;
    let from_header = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = if from_header.is_empty() {
        form.csrf.as_str()
    } else {
        from_header
    };
    ctx.check_csrf(s, token)?;
    imp::infer(s, ctx, t, &form, mode).await
}

pub use imp::view;

#[cfg(feature = "inference")]
mod imp {
    use super::*;
    use crate::routes::files::read_text;
    use crate::routes::page;
    use crate::session::Chrome;
    use crate::views::RepoHead;
    use askama::Template;
    use axum::body::Body;
    use axum::http::HeaderValue;
    use wharf_hub::{InferenceEvents, InferenceReply, InferenceRequest, RepoInfo, Task};

    /// Tokens a widget generation asks for unless the form says otherwise, and at most.
    const DEFAULT_NEW_TOKENS: usize = 40;
    const MAX_NEW_TOKENS: usize = 256;
    /// Tokenizer files read for the mask token are small; larger ones are not worth a hint.
    const MAX_TOKENIZER_CONFIG: u64 = 1 << 20;

    #[derive(Template)]
    #[template(path = "widget_result.html")]
    struct ResultPage {
        chrome: Chrome,
        repo: RepoHead,
        task: &'static str,
        result: ResultView,
    }

    /// The task of a model's widget: the card's `pipeline_tag`, when the server runs it and
    /// the card does not turn inference off (the hub's rule, the one the API applies).
    fn widget_task(info: &RepoInfo) -> Option<Task> {
        if wharf_hub::Hub::card_disables_inference(info.card_data.as_ref()) {
            return None;
        }
        Task::from_pipeline_tag(info.derived.pipeline_tag.as_deref()?)
    }

    /// The widget of a model page (`None` when it has none). `example` picks the card example
    /// the form starts with (the first by default).
    pub async fn view(
        s: &WebState,
        ctx: &Ctx,
        info: &RepoInfo,
        head: &RepoHead,
        example: Option<usize>,
    ) -> Option<WidgetView> {
        if info.repo.repo_type != wharf_core::RepoType::Model || !s.hub.inference_enabled() {
            return None;
        }
        let task = widget_task(info)?;
        let mask = match task {
            Task::FillMask => Some(mask_token(s, ctx, info, head).await),
            _ => None,
        };
        let inputs = examples_of(info.card_data.as_ref(), task);
        let values = inputs
            .get(example.unwrap_or(0))
            .or(inputs.first())
            .cloned()
            .unwrap_or_default();
        let examples = inputs
            .into_iter()
            .enumerate()
            .map(|(i, input)| Example {
                title: example_title(&input),
                href: format!("{}?widget_example={i}", head.url),
                input,
            })
            .collect();
        Some(form_view(
            task,
            &head.url,
            mask.as_deref(),
            values,
            examples,
        ))
    }

    fn form_view(
        task: Task,
        repo_url: &str,
        mask: Option<&str>,
        values: ExampleInput,
        examples: Vec<Example>,
    ) -> WidgetView {
        let mut v = WidgetView {
            task: task.as_str(),
            action: format!("{repo_url}/widget"),
            text_label: "Text",
            single_line: false,
            placeholder: "Type something…".to_string(),
            hint: None,
            has_context: false,
            has_labels: false,
            has_sentences: false,
            values,
            examples,
            button: "Compute",
        };
        match task {
            Task::FillMask => {
                let mask = mask.unwrap_or("[MASK]");
                v.placeholder = format!("Paris is the {mask} of France.");
                v.hint = Some(format!(
                    "Write {mask} where the model should fill in a word."
                ));
            }
            Task::ZeroShotClassification => {
                v.has_labels = true;
                v.placeholder =
                    "I have a problem with my iPhone that needs to be resolved asap!".to_string();
            }
            Task::QuestionAnswering => {
                v.text_label = "Question";
                v.single_line = true;
                v.placeholder = "Where do I live?".to_string();
                v.has_context = true;
            }
            Task::SentenceSimilarity => {
                v.text_label = "Source sentence";
                v.single_line = true;
                v.placeholder = "That is a happy person".to_string();
                v.has_sentences = true;
            }
            Task::TextGeneration => {
                v.text_label = "Prompt";
                v.placeholder = "Once upon a time,".to_string();
                v.button = "Generate";
            }
            Task::TokenClassification => {
                v.placeholder = "My name is Sarah and I live in London".to_string();
            }
            Task::TextClassification | Task::FeatureExtraction => {}
        }
        v
    }

    /// The mask token of a fill-mask model: from its tokenizer files when they name one, else
    /// from the model type (RoBERTa-style models use `<mask>`, BERT-style ones `[MASK]`).
    async fn mask_token(s: &WebState, ctx: &Ctx, info: &RepoInfo, head: &RepoHead) -> String {
        let addr = head.address();
        for file in [
            "tokenizer_config.json",
            "special_tokens_map.json",
            "config.json",
        ] {
            if !info.files.iter().any(|f| f.path == file) {
                continue;
            }
            // A hint is not worth failing the page for: unreadable files are skipped.
            let read = read_text(s, ctx, &addr, &info.sha, file, MAX_TOKENIZER_CONFIG).await;
            if let Ok(Some((_, Some(text)))) = read
                && let Some(mask) = mask_in(&text)
            {
                return mask;
            }
        }
        "[MASK]".to_string()
    }

    /// Builds the inference body of `task` from the widget's fields.
    pub(super) fn inference_body(task: Task, f: &WidgetForm, stream: bool) -> WebResult<Value> {
        let text = f.text.trim();
        let (inputs, parameters) = match task {
            Task::FillMask | Task::FeatureExtraction | Task::TextClassification => {
                (json!(required(text, "some text")?), None)
            }
            Task::TokenClassification => (
                json!(required(text, "some text")?),
                Some(json!({"aggregation_strategy": "simple"})),
            ),
            Task::ZeroShotClassification => {
                let labels = comma_list(&f.candidate_labels);
                if labels.is_empty() {
                    return Err(WebError::bad_request("Enter at least one candidate label."));
                }
                let params =
                    json!({"candidate_labels": labels, "multi_label": checked(&f.multi_label)});
                (json!(required(text, "some text")?), Some(params))
            }
            Task::QuestionAnswering => {
                let question = required(text, "a question")?;
                let context = required(f.context.trim(), "a context")?;
                (json!({"question": question, "context": context}), None)
            }
            Task::SentenceSimilarity => {
                let source = match f.source_sentence.trim() {
                    "" => text,
                    s => s,
                };
                let sentences = line_list(&f.sentences);
                if sentences.is_empty() {
                    return Err(WebError::bad_request(
                        "Enter at least one sentence to compare with.",
                    ));
                }
                let source = required(source, "a source sentence")?;
                (
                    json!({"source_sentence": source, "sentences": sentences}),
                    None,
                )
            }
            Task::TextGeneration => {
                required(text, "a prompt")?;
                let n = f
                    .max_new_tokens
                    .trim()
                    .parse::<usize>()
                    .unwrap_or(DEFAULT_NEW_TOKENS)
                    .clamp(1, MAX_NEW_TOKENS);
                // The prompt as typed: trailing spaces change what a model generates.
                (json!(f.text), Some(json!({"max_new_tokens": n})))
            }
        };
        let mut body = serde_json::Map::new();
        body.insert("inputs".into(), inputs);
        if let Some(p) = parameters {
            body.insert("parameters".into(), p);
        }
        body.insert("options".into(), json!({"wait_for_model": true}));
        if stream {
            body.insert("stream".into(), Value::Bool(true));
        }
        Ok(Value::Object(body))
    }

    fn required<'a>(value: &'a str, what: &str) -> WebResult<&'a str> {
        if value.is_empty() {
            Err(WebError::bad_request(format!("Enter {what}.")))
        } else {
            Ok(value)
        }
    }

    /// Runs the widget's request and answers as `mode` asks.
    pub(super) async fn infer(
        s: &WebState,
        ctx: &Ctx,
        t: &Target,
        form: &WidgetForm,
        mode: Mode,
    ) -> WebResult<Response> {
        if !s.hub.inference_enabled() {
            return Err(WebError::bad_request(
                "The inference API is switched off on this server.",
            ));
        }
        let info = s.hub.repo_info(&ctx.caller, &t.addr, None).await?;
        let head = RepoHead::new(&info.repo, &ctx.caller, "card");
        let task = widget_task(&info).ok_or_else(|| {
            WebError::bad_request(format!(
                "This model has no inference widget: its card must name a task the server runs \
                 (pipeline_tag) and must not set `inference: false`. {}",
                wharf_hub::SUPPORTED_MODELS
            ))
        })?;
        let stream = task == Task::TextGeneration && mode == Mode::Stream;
        let req = InferenceRequest {
            addr: head.address(),
            revision: None,
            task: None,
            body: inference_body(task, form, stream)?,
            wait_for_model: true,
        };
        if stream {
            return match s.hub.infer_stream(&ctx.caller, req).await? {
                InferenceReply::Ready(events) => Ok(event_stream(events)),
                InferenceReply::Loading { estimated_time, .. } => Err(loading(estimated_time)),
            };
        }
        let answer = match s.hub.infer(&ctx.caller, req).await? {
            InferenceReply::Ready(answer) => answer,
            InferenceReply::Loading { estimated_time, .. } => return Err(loading(estimated_time)),
        };
        if mode != Mode::Html {
            return Ok(axum::Json(answer).into_response());
        }
        page(&ResultPage {
            chrome: ctx.chrome(),
            task: task.as_str(),
            result: result_view(task, form, &answer),
            repo: head,
        })
    }

    fn loading(estimated_time: f64) -> WebError {
        WebError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("The model is still loading; try again in about {estimated_time:.0} s."),
        )
    }

    /// Server-sent events, one `data:{json}` per token, as the inference API sends them.
    fn event_stream(events: InferenceEvents) -> Response {
        let mut response = Body::from_stream(wharf_hub::sse_frames(events)).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // Proxies that buffer would hold the tokens back until the end.
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }

    /// What the no-JavaScript page shows for an answer of `task`.
    pub(super) fn result_view(task: Task, form: &WidgetForm, answer: &Value) -> ResultView {
        let mut v = ResultView::default();
        match task {
            Task::FillMask => v.scores = score_rows(first_list(answer), &["token_str", "token"]),
            Task::TextClassification | Task::ZeroShotClassification => {
                v.scores = match answer.get("labels") {
                    // The older zero-shot shape: {"labels": [...], "scores": [...]}.
                    Some(labels) => zip_scores(labels, answer.get("scores")),
                    None => score_rows(first_list(answer), &["label"]),
                }
            }
            Task::SentenceSimilarity => {
                let sentences = Value::from(line_list(&form.sentences));
                v.scores = zip_scores(&sentences, Some(answer));
            }
            Task::TokenClassification => {
                v.entities = segments(&form.text, first_list(answer));
            }
            Task::QuestionAnswering => {
                let best = answer.as_array().and_then(|a| a.first()).unwrap_or(answer);
                v.answer = Some((
                    str_at(best, "answer"),
                    format!("{:.3}", number_at(best, "score")),
                ));
            }
            Task::FeatureExtraction => v.vector = Some(vector_summary(answer)),
            Task::TextGeneration => {
                let out = answer.as_array().and_then(|a| a.first()).unwrap_or(answer);
                // Without `return_full_text` the answer is only what the model added.
                v.generated = Some((form.text.clone(), str_at(out, "generated_text")));
            }
        }
        let empty = v.scores.is_empty()
            && v.entities.is_empty()
            && v.answer.is_none()
            && v.vector.is_none()
            && v.generated.is_none();
        if empty {
            v.raw = Some(serde_json::to_string_pretty(answer).unwrap_or_default());
        }
        v
    }

    /// The examples of the card's `widget:` list that fit `task`.
    pub(super) fn examples_of(card: Option<&Value>, task: Task) -> Vec<ExampleInput> {
        let Some(items) = card.and_then(|c| c.get("widget")).and_then(Value::as_array) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| {
                let text = item
                    .get("text")
                    .or(item.get("source_sentence"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let input = ExampleInput {
                    text: text.to_string(),
                    context: str_at(item, "context"),
                    candidate_labels: joined(item.get("candidate_labels"), ", "),
                    sentences: joined(item.get("sentences"), "\n"),
                    multi_label: item
                        .get("multi_class")
                        .or(item.get("multi_label"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                };
                let usable = !input.text.trim().is_empty()
                    && (task != Task::SentenceSimilarity || !input.sentences.is_empty())
                    && (task != Task::QuestionAnswering || !input.context.is_empty());
                usable.then_some(input)
            })
            .take(MAX_EXAMPLES)
            .collect()
    }

    fn example_title(input: &ExampleInput) -> String {
        let text: String = input.text.chars().take(48).collect();
        if text.len() < input.text.len() {
            format!("{text}…")
        } else {
            text
        }
    }
}

#[cfg(not(feature = "inference"))]
mod imp {
    use super::*;
    use crate::views::RepoHead;
    use wharf_hub::RepoInfo;

    /// Built without inference: no model page has a widget.
    pub async fn view(
        _s: &WebState,
        _ctx: &Ctx,
        _info: &RepoInfo,
        _head: &RepoHead,
        _example: Option<usize>,
    ) -> Option<WidgetView> {
        None
    }

    pub(super) async fn infer(
        _s: &WebState,
        _ctx: &Ctx,
        _t: &Target,
        _form: &WidgetForm,
        _mode: Mode,
    ) -> WebResult<Response> {
        Err(WebError::new(
            StatusCode::NOT_FOUND,
            "Inference is not built into this server (it was compiled without the `inference` feature).",
        ))
    }
}

/// The mask token a tokenizer or model configuration names.
fn mask_in(json_text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json_text).ok()?;
    let token = match v.get("mask_token") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    if let Some(t) =
        token.filter(|t| !t.is_empty() && t.len() <= 32 && !t.contains(char::is_control))
    {
        return Some(t);
    }
    let model_type = v.get("model_type").and_then(Value::as_str)?;
    let roberta_like = [
        "roberta",
        "xlm-roberta",
        "xlm-roberta-xl",
        "camembert",
        "longformer",
        "mpnet",
        "bart",
        "data2vec-text",
    ];
    Some(
        if roberta_like.contains(&model_type) {
            "<mask>"
        } else {
            "[MASK]"
        }
        .to_string(),
    )
}

fn checked(v: &str) -> bool {
    matches!(v.trim(), "on" | "true" | "1" | "yes")
}

fn comma_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn line_list(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn str_at(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn number_at(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// A card field that is a string or a list of strings, as one string.
fn joined(v: Option<&Value>, sep: &str) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(sep),
        _ => String::new(),
    }
}

/// The list of an answer that is a list, or a list of lists (one per input: the first).
fn first_list(answer: &Value) -> &[Value] {
    let list = answer.as_array().map(Vec::as_slice).unwrap_or(&[]);
    match list.first() {
        Some(Value::Array(inner)) => inner,
        _ => list,
    }
}

fn score_row(label: String, score: f64) -> ScoreRow {
    let pct = (score.clamp(0.0, 1.0) * 100.0 * 10.0).round() / 10.0;
    ScoreRow {
        label,
        score: format!("{score:.3}"),
        width: format!("{pct}%"),
    }
}

/// Score bars of `[{label, score}]`-like items, the label taken from the first key present.
fn score_rows(items: &[Value], label_keys: &[&str]) -> Vec<ScoreRow> {
    items
        .iter()
        .map(|item| {
            let label = label_keys
                .iter()
                .find_map(|k| item.get(*k))
                .map(|l| match l {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            score_row(label, number_at(item, "score"))
        })
        .collect()
}

/// Score bars of parallel label and score lists.
fn zip_scores(labels: &Value, scores: Option<&Value>) -> Vec<ScoreRow> {
    let labels = labels.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let scores = scores
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    labels
        .iter()
        .zip(scores)
        .map(|(l, s)| {
            score_row(
                l.as_str().unwrap_or("").to_string(),
                s.as_f64().unwrap_or(0.0),
            )
        })
        .collect()
}

/// The text cut into plain pieces and entities (`start`/`end` count characters, as the Hub's).
fn segments(text: &str, entities: &[Value]) -> Vec<Segment> {
    let chars: Vec<char> = text.chars().collect();
    let mut spans: Vec<(usize, usize, String)> = entities
        .iter()
        .filter_map(|e| {
            let start = e.get("start")?.as_u64()? as usize;
            let end = (e.get("end")?.as_u64()? as usize).min(chars.len());
            let group = e.get("entity_group").or(e.get("entity"))?.as_str()?;
            (start < end).then(|| (start, end, group.to_string()))
        })
        .collect();
    spans.sort_by_key(|s| s.0);
    let mut out = Vec::new();
    let mut at = 0;
    for (start, end, group) in spans {
        if start < at {
            continue; // overlapping entities: the first one wins
        }
        if start > at {
            out.push(Segment {
                text: chars[at..start].iter().collect(),
                entity: None,
            });
        }
        out.push(Segment {
            text: chars[start..end].iter().collect(),
            entity: Some(group),
        });
        at = end;
    }
    if at < chars.len() {
        out.push(Segment {
            text: chars[at..].iter().collect(),
            entity: None,
        });
    }
    out
}

/// The shape of a (nested) list of numbers and its first values.
fn vector_summary(answer: &Value) -> (String, String) {
    let mut shape = Vec::new();
    let mut v = answer;
    while let Some(list) = v.as_array() {
        shape.push(list.len().to_string());
        match list.first() {
            Some(first) => v = first,
            None => break,
        }
    }
    let mut first = Vec::new();
    let mut stack = vec![answer];
    while let Some(v) = stack.pop() {
        if first.len() >= VECTOR_PREVIEW {
            break;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Number(n) => first.push(format!("{:.4}", n.as_f64().unwrap_or(0.0))),
            _ => {}
        }
    }
    (shape.join(" × "), first.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_token_comes_from_tokenizer_files_or_model_type() {
        assert_eq!(
            mask_in(r#"{"mask_token": "<mask>"}"#).as_deref(),
            Some("<mask>")
        );
        assert_eq!(
            mask_in(r#"{"mask_token": {"content": "[MASK]", "lstrip": false}}"#).as_deref(),
            Some("[MASK]")
        );
        assert_eq!(
            mask_in(r#"{"model_type": "camembert"}"#).as_deref(),
            Some("<mask>")
        );
        assert_eq!(
            mask_in(r#"{"model_type": "bert"}"#).as_deref(),
            Some("[MASK]")
        );
        assert_eq!(mask_in(r#"{"unk_token": "[UNK]"}"#), None);
        assert_eq!(mask_in("not json"), None);
    }

    #[test]
    fn entities_cut_the_text_by_characters() {
        let ents = serde_json::json!([
            {"entity_group": "PER", "start": 11, "end": 16},
            {"entity_group": "LOC", "start": 31, "end": 37},
        ]);
        let segs = segments("My name is Sarah and I live in London", first_list(&ents));
        let shown: Vec<(String, Option<String>)> =
            segs.into_iter().map(|s| (s.text, s.entity)).collect();
        assert_eq!(
            shown,
            vec![
                ("My name is ".into(), None),
                ("Sarah".into(), Some("PER".into())),
                (" and I live in ".into(), None),
                ("London".into(), Some("LOC".into())),
            ]
        );
        // Non-ASCII text and out-of-range offsets stay inside the text.
        let ents = serde_json::json!([{"entity_group": "X", "start": 0, "end": 99}]);
        let segs = segments("Zoë", first_list(&ents));
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].text, "Zoë");
    }

    #[test]
    fn scores_and_vectors_are_summarised() {
        let rows = score_rows(
            first_list(&serde_json::json!([[{"label": "POS", "score": 0.75}]])),
            &["label"],
        );
        assert_eq!(
            (
                rows[0].label.as_str(),
                rows[0].score.as_str(),
                rows[0].width.as_str()
            ),
            ("POS", "0.750", "75%")
        );
        let (shape, first) = vector_summary(&serde_json::json!([[0.5, -1.0, 2.0]]));
        assert_eq!(shape, "1 × 3");
        assert_eq!(first, "0.5000, -1.0000, 2.0000");
        let rows = zip_scores(
            &serde_json::json!(["a", "b"]),
            Some(&serde_json::json!([0.9, 0.1])),
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].width, "10%");
    }

    #[test]
    fn accept_header_picks_the_answer_form() {
        let mut h = HeaderMap::new();
        assert_eq!(Mode::of(&h), Mode::Html);
        h.insert(header::ACCEPT, "application/json".parse().expect("header"));
        assert_eq!(Mode::of(&h), Mode::Json);
        h.insert(header::ACCEPT, "text/event-stream".parse().expect("header"));
        assert_eq!(Mode::of(&h), Mode::Stream);
    }

    #[cfg(feature = "inference")]
    mod with_inference {
        use super::super::imp::{examples_of, inference_body, result_view};
        use super::super::*;
        use wharf_hub::Task;

        fn form(pairs: &[(&str, &str)]) -> WidgetForm {
            let q = serde_urlencoded::to_string(pairs).expect("form");
            serde_urlencoded::from_str(&q).expect("form")
        }

        #[test]
        fn widget_fields_become_the_task_body() {
            let f = form(&[
                ("text", "I love it"),
                ("candidate_labels", "joy, anger,,"),
                ("multi_label", "on"),
            ]);
            let body = inference_body(Task::ZeroShotClassification, &f, false).expect("body");
            assert_eq!(body["inputs"], "I love it");
            assert_eq!(
                body["parameters"]["candidate_labels"],
                serde_json::json!(["joy", "anger"])
            );
            assert_eq!(body["parameters"]["multi_label"], true);
            assert_eq!(body["options"]["wait_for_model"], true);

            let f = form(&[("text", "Where?"), ("context", "I live in Paris.")]);
            let body = inference_body(Task::QuestionAnswering, &f, false).expect("body");
            assert_eq!(
                body["inputs"],
                serde_json::json!({"question": "Where?", "context": "I live in Paris."})
            );

            let f = form(&[
                ("text", "A man eats."),
                ("sentences", "A man eats food.\n\n  A dog runs. \n"),
            ]);
            let body = inference_body(Task::SentenceSimilarity, &f, false).expect("body");
            assert_eq!(
                body["inputs"]["sentences"],
                serde_json::json!(["A man eats food.", "A dog runs."])
            );

            let f = form(&[("text", "Hello "), ("max_new_tokens", "100000")]);
            let body = inference_body(Task::TextGeneration, &f, true).expect("body");
            assert_eq!(body["inputs"], "Hello ");
            assert_eq!(body["parameters"]["max_new_tokens"], 256);
            assert_eq!(body["stream"], true);
        }

        #[test]
        fn missing_fields_are_refused() {
            let e = inference_body(Task::FillMask, &form(&[("text", "  ")]), false);
            assert!(e.is_err());
            let e = inference_body(Task::ZeroShotClassification, &form(&[("text", "x")]), false);
            assert!(e.is_err_and(|e| e.message.contains("candidate label")));
            let e = inference_body(Task::QuestionAnswering, &form(&[("text", "x")]), false);
            assert!(e.is_err_and(|e| e.message.contains("context")));
        }

        #[test]
        fn card_examples_fit_the_task() {
            let card = serde_json::json!({"widget": [
                {"text": "I love it", "candidate_labels": ["joy", "anger"], "example_title": "t"},
                {"source_sentence": "A", "sentences": ["B", "C"]},
                {"src": "image.png"},
            ]});
            let zs = examples_of(Some(&card), Task::ZeroShotClassification);
            assert_eq!(zs.len(), 2);
            assert_eq!(zs[0].candidate_labels, "joy, anger");
            let sim = examples_of(Some(&card), Task::SentenceSimilarity);
            assert_eq!(sim.len(), 1);
            assert_eq!(
                (sim[0].text.as_str(), sim[0].sentences.as_str()),
                ("A", "B\nC")
            );
            assert!(examples_of(None, Task::FillMask).is_empty());
        }

        #[test]
        fn generation_result_shows_what_was_added() {
            let f = form(&[("text", "Hello")]);
            let v = result_view(
                Task::TextGeneration,
                &f,
                &serde_json::json!([{"generated_text": " world"}]),
            );
            assert_eq!(
                v.generated,
                Some(("Hello".to_string(), " world".to_string()))
            );
            let v = result_view(
                Task::QuestionAnswering,
                &f,
                &serde_json::json!({"answer": "Paris", "score": 0.5}),
            );
            assert_eq!(v.answer, Some(("Paris".to_string(), "0.500".to_string())));
            assert!(v.raw.is_none());
        }
    }
}
