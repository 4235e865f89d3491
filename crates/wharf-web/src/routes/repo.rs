//! `/{ns}/{name}` (the card page) and `/new` (create a repository).

use crate::WebState;
use crate::error::{WebResult, status_of};
use crate::format::{human_size, param_count, path_url, redirect, repo_url};
use crate::markdown;
use crate::routes::widget::WidgetView;
use crate::routes::{ListParams, Target, WebForm, facets, page, page_with_status, widget};
use crate::session::{Chrome, Ctx};
use crate::views::RepoHead;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use wharf_core::RepoType;
use wharf_hub::{SafetensorsSummary, StarterFile};

/// Licenses offered in forms (the Hub's identifiers).
pub const LICENSES: &[&str] = &[
    "apache-2.0",
    "mit",
    "openrail",
    "openrail++",
    "bigscience-openrail-m",
    "creativeml-openrail-m",
    "bigscience-bloom-rail-1.0",
    "cc-by-4.0",
    "cc-by-sa-4.0",
    "cc-by-nc-4.0",
    "cc-by-nc-sa-4.0",
    "cc-by-nc-nd-4.0",
    "cc0-1.0",
    "gpl-3.0",
    "lgpl-3.0",
    "agpl-3.0",
    "bsd-3-clause",
    "bsd-2-clause",
    "mpl-2.0",
    "afl-3.0",
    "artistic-2.0",
    "bsl-1.0",
    "unlicense",
    "llama2",
    "llama3",
    "llama3.1",
    "llama3.2",
    "llama3.3",
    "gemma",
    "odc-by",
    "pddl",
    "other",
];

/// Cards larger than this are not rendered (they are still in the file browser).
const MAX_CARD: u64 = 2 * 1024 * 1024;

/// A chip under the title: a tag linking to the listing filtered by it.
pub struct TagChip {
    pub label: String,
    pub href: String,
}

/// One row of the evaluation results table (`model-index`).
pub struct EvalRow {
    pub model: String,
    pub task: String,
    pub dataset: String,
    pub metric: String,
    pub value: String,
}

/// One "Use this …" snippet.
pub struct Snippet {
    pub title: &'static str,
    pub code: String,
}

#[derive(Template)]
#[template(path = "repo.html")]
struct CardPage {
    chrome: Chrome,
    repo: RepoHead,
    tags: Vec<TagChip>,
    card_html: Option<String>,
    has_readme: bool,
    license: Vec<String>,
    languages: Vec<String>,
    datasets: Vec<TagChip>,
    base_models: Vec<TagChip>,
    library: Option<String>,
    task: Option<String>,
    evals: Vec<EvalRow>,
    snippets: Vec<Snippet>,
    total_size: String,
    file_count: usize,
    params: Option<ParamsView>,
    widget: Option<WidgetView>,
}

/// The parameter count in the side panel, and what it was counted over.
pub struct ParamsView {
    pub total: String,
    pub tensor_types: Vec<String>,
    /// Safetensors files counted.
    pub files: usize,
    /// Distinct headers among them (each was read once).
    pub headers: usize,
    /// False when the page's limits left some files out.
    pub complete: bool,
}

impl ParamsView {
    fn new(summary: &SafetensorsSummary) -> ParamsView {
        ParamsView {
            total: param_count(summary.total),
            tensor_types: summary
                .parameters
                .iter()
                .map(|(dtype, n)| format!("{dtype} · {}", param_count(*n)))
                .collect(),
            files: summary.files,
            headers: summary.distinct_headers,
            complete: summary.complete,
        }
    }
}

/// The strings of a card field that is a string or a list of strings.
fn strings(card: Option<&Value>, key: &str) -> Vec<String> {
    match card.and_then(|c| c.get(key)) {
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// Flattens `model-index` into table rows; malformed parts are skipped.
fn eval_rows(card: Option<&Value>) -> Vec<EvalRow> {
    let mut rows = Vec::new();
    let Some(models) = card
        .and_then(|c| c.get("model-index"))
        .and_then(Value::as_array)
    else {
        return rows;
    };
    for model in models {
        let name = text_of(model.get("name"));
        for result in model
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let task = result.get("task");
            let task = text_of(
                task.and_then(|t| t.get("name"))
                    .or(task.and_then(|t| t.get("type"))),
            );
            let ds = result.get("dataset");
            let dataset = text_of(
                ds.and_then(|d| d.get("name"))
                    .or(ds.and_then(|d| d.get("type"))),
            );
            for metric in result
                .get("metrics")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let label = text_of(metric.get("name").or(metric.get("type")));
                rows.push(EvalRow {
                    model: name.clone(),
                    task: task.clone(),
                    dataset: dataset.clone(),
                    metric: label,
                    value: text_of(metric.get("value")),
                });
                if rows.len() >= 500 {
                    return rows;
                }
            }
        }
    }
    rows
}

fn tag_chips(tags: &[String], plural: &str) -> Vec<TagChip> {
    tags.iter()
        .filter(|t| *t != "region:us")
        .map(|t| {
            let base = format!("/{plural}");
            let q = crate::routes::ListParams::default();
            let href = match facets::classify(t) {
                Some((key, value)) => q.href(&base, &[(key, Some(value))]),
                None => q.href(&base, &[("other", Some(t))]),
            };
            TagChip {
                label: t.clone(),
                href,
            }
        })
        .collect()
}

fn snippets(repo_type: RepoType, id: &str, task: Option<&str>, base_url: &str) -> Vec<Snippet> {
    let mut out = Vec::new();
    match repo_type {
        RepoType::Model => {
            out.push(Snippet {
                title: "Transformers",
                code: match task {
                    Some(task) => format!(
                        "from transformers import pipeline\n\npipe = pipeline(\"{task}\", model=\"{id}\")"
                    ),
                    None => format!(
                        "from transformers import AutoModel\n\nmodel = AutoModel.from_pretrained(\"{id}\")"
                    ),
                },
            });
        }
        RepoType::Dataset => out.push(Snippet {
            title: "Datasets",
            code: format!("from datasets import load_dataset\n\nds = load_dataset(\"{id}\")"),
        }),
        RepoType::Space => {}
    }
    let type_flag = match repo_type {
        RepoType::Model => "",
        RepoType::Dataset => " --repo-type dataset",
        RepoType::Space => " --repo-type space",
    };
    out.push(Snippet {
        title: "git",
        code: format!(
            "git lfs install\ngit clone {base_url}/{}{id}",
            repo_type.url_prefix()
        ),
    });
    out.push(Snippet {
        title: "hf CLI",
        code: format!("hf download {id}{type_flag}"),
    });
    out
}

/// `GET /{ns}/{name}`: the rendered card, metadata, usage snippets and, for models the server
/// can run, the inference widget (`?widget_example=N` starts it with the card's N-th example).
pub async fn card(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    q: ListParams,
) -> WebResult<Response> {
    let info = s.hub.repo_info(&ctx.caller, &t.addr, None).await?;
    let head = RepoHead::new(&info.repo, &ctx.caller, "card");
    let addr = head.address();
    let has_readme = info.files.iter().any(|f| f.path == "README.md");
    let readme = if has_readme {
        s.hub
            .card_text(&ctx.caller, &addr, &info.sha, MAX_CARD)
            .await?
    } else {
        None
    };
    let card_html = match readme {
        Some(card) => {
            Some(markdown::render_card(&card.blob_oid, card.text, &head.url, "main").await?)
        }
        None => None,
    };
    let summary = if t.repo_type() == RepoType::Model {
        s.hub
            .safetensors_summary(&ctx.caller, &addr, &info.sha)
            .await?
    } else {
        None
    };
    let card = info.card_data.as_ref();
    let plural = t.repo_type().plural();
    let total: u64 = info
        .files
        .iter()
        .map(|f| f.lfs.as_ref().map_or(f.size, |p| p.size))
        .sum();
    let task = info.derived.pipeline_tag.clone();
    let example = q.get("widget_example").and_then(|n| n.parse().ok());
    let widget = widget::view(&s, &ctx, &info, &head, example).await;
    page(&CardPage {
        chrome: ctx.chrome(),
        tags: tag_chips(&info.derived.tags, plural),
        card_html,
        has_readme,
        license: strings(card, "license"),
        languages: strings(card, "language"),
        datasets: strings(card, "datasets")
            .into_iter()
            .map(|d| TagChip {
                href: format!("/datasets/{}", path_url(&d)),
                label: d,
            })
            .collect(),
        base_models: strings(card, "base_model")
            .into_iter()
            .map(|b| TagChip {
                href: format!("/{}", path_url(&b)),
                label: b,
            })
            .collect(),
        library: info.derived.library_name.clone(),
        evals: eval_rows(card),
        snippets: snippets(t.repo_type(), &head.id, task.as_deref(), &ctx.base_url),
        task,
        total_size: human_size(total),
        file_count: info.files.len(),
        params: summary.as_ref().map(ParamsView::new),
        widget,
        repo: head,
    })
}

pub struct OwnerOption {
    pub name: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "new_repo.html")]
struct NewRepoPage {
    chrome: Chrome,
    owners: Vec<OwnerOption>,
    name: String,
    kind: String,
    private: bool,
    license: String,
    licenses: &'static [&'static str],
    error: Option<String>,
}

/// The owner choices of the form: the namespaces the hub says the caller may create in.
fn owners(s: &WebState, ctx: &Ctx, selected: &str) -> Vec<OwnerOption> {
    s.hub
        .writable_namespaces(&ctx.caller)
        .into_iter()
        .map(|name| OwnerOption {
            selected: name == selected,
            name,
        })
        .collect()
}

/// `GET /new`.
pub async fn new_form(
    State(s): State<WebState>,
    ctx: Ctx,
    q: crate::routes::ListParams,
) -> WebResult<Response> {
    let user = ctx.require_user()?;
    let owner = q.get("owner").unwrap_or(&user).to_string();
    let kind = q.get("type").unwrap_or("model").to_string();
    page(&NewRepoPage {
        chrome: ctx.chrome(),
        owners: owners(&s, &ctx, &owner),
        name: String::new(),
        kind,
        private: false,
        license: String::new(),
        licenses: LICENSES,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct NewRepoForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    visibility: String,
    #[serde(default)]
    license: String,
}

/// The README a repository created with a license starts with.
fn license_readme(name: &str, license: &str) -> Option<StarterFile> {
    let license = license.trim();
    if license.is_empty() {
        return None;
    }
    let readme = crate::frontmatter::set_keys(
        &format!("# {name}\n"),
        &[(
            "license",
            Some(crate::frontmatter::MetaValue::Scalar(license.to_string())),
        )],
    );
    Some(StarterFile {
        path: "README.md".into(),
        content: readme.into_bytes(),
        summary: "Add README.md with license".into(),
    })
}

/// `POST /new`: creates the repository, with a README carrying the license when one is chosen
/// (one hub call: the repository appears with its README or not at all).
pub async fn create(
    State(s): State<WebState>,
    ctx: Ctx,
    WebForm(f): WebForm<NewRepoForm>,
) -> WebResult<Response> {
    ctx.check_csrf(&s, &f.csrf)?;
    let user = ctx.require_user()?;
    let repo_type = RepoType::from_singular(&f.kind).unwrap_or(RepoType::Model);
    let private = f.visibility == "private";
    let owner = if f.owner.is_empty() {
        user.clone()
    } else {
        f.owner.clone()
    };
    let name = f.name.trim();
    let created = s
        .hub
        .create_repo_with(
            &ctx.caller,
            repo_type,
            Some(&owner),
            name,
            private,
            license_readme(name, &f.license),
        )
        .await;
    match created {
        Ok(repo) => Ok(redirect(&repo_url(repo_type, &repo.namespace, &repo.name))),
        Err(e) if e.kind != wharf_core::ErrorKind::Internal => page_with_status(
            status_of(e.kind),
            &NewRepoPage {
                chrome: ctx.chrome(),
                owners: owners(&s, &ctx, &owner),
                name: f.name.clone(),
                kind: repo_type.as_str().to_string(),
                private,
                license: f.license.clone(),
                licenses: LICENSES,
                error: Some(e.message),
            },
        ),
        Err(e) => Err(e.into()),
    }
}
