//! The Hub's JSON shapes for repos, tree entries, commits and refs.

use serde_json::{Map, Value, json};
use std::collections::HashMap;
use wharf_core::RepoType;
use wharf_core::time::format_ms;
use wharf_hub::{CommitInfo, EntryKind, Repo, RepoInfo, TreeEntry};

fn gated(repo: &Repo) -> Value {
    match &repo.gated {
        Some(g) => Value::String(g.clone()),
        None => Value::Bool(false),
    }
}

/// The opaque `_id` the Hub gives every repo.
fn object_id(repo: &Repo) -> String {
    format!("{:024x}", repo.id)
}

/// Every property a repo can show, keyed by the names `expand=` uses.
fn all_properties(
    repo: &Repo,
    sha: Option<&str>,
    card: Option<&Value>,
    tags: &[String],
    pipeline: Option<&str>,
    library: Option<&str>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("author".into(), json!(repo.namespace));
    m.insert("sha".into(), json!(sha));
    m.insert("lastModified".into(), json!(format_ms(repo.last_modified)));
    m.insert("createdAt".into(), json!(format_ms(repo.created_at)));
    m.insert("private".into(), json!(repo.private));
    m.insert("gated".into(), gated(repo));
    m.insert("disabled".into(), json!(false));
    m.insert("downloads".into(), json!(repo.downloads));
    m.insert("downloadsAllTime".into(), json!(repo.downloads));
    m.insert("likes".into(), json!(repo.likes));
    m.insert("trendingScore".into(), json!(0));
    m.insert("tags".into(), json!(tags));
    if let Some(card) = card {
        m.insert("cardData".into(), card.clone());
    }
    if repo.repo_type == RepoType::Model {
        m.insert("pipeline_tag".into(), json!(pipeline));
        m.insert("library_name".into(), json!(library));
    }
    if repo.repo_type == RepoType::Space {
        let sdk = card
            .and_then(|c| c.get("sdk"))
            .cloned()
            .unwrap_or(Value::Null);
        m.insert("sdk".into(), sdk);
    }
    m
}

fn identity(repo: &Repo) -> Map<String, Value> {
    let mut m = Map::new();
    let id = format!("{}/{}", repo.namespace, repo.name);
    m.insert("_id".into(), json!(object_id(repo)));
    m.insert("id".into(), json!(id));
    if repo.repo_type == RepoType::Model {
        m.insert("modelId".into(), json!(id));
    }
    m
}

pub fn sibling(e: &TreeEntry, with_blobs: bool) -> Value {
    let mut s = json!({ "rfilename": e.path });
    if with_blobs {
        let size = e.lfs.as_ref().map(|p| p.size).unwrap_or(e.size);
        s["size"] = json!(size);
        s["blobId"] = json!(e.oid);
        if let Some(p) = &e.lfs {
            s["lfs"] = json!({ "sha256": p.oid, "size": p.size, "pointerSize": e.size });
        }
    }
    s
}

/// `GET /api/{type}/{id}[/revision/{rev}]`.
pub fn repo_info(info: &RepoInfo, with_blobs: bool, expand: &[String]) -> Value {
    let r = &info.repo;
    let mut props = all_properties(
        r,
        Some(&info.sha),
        info.card_data.as_ref(),
        &info.derived.tags,
        info.derived.pipeline_tag.as_deref(),
        info.derived.library_name.as_deref(),
    );
    props.insert(
        "siblings".into(),
        Value::Array(info.files.iter().map(|e| sibling(e, with_blobs)).collect()),
    );
    props.insert("spaces".into(), json!([]));
    props.insert("usedStorage".into(), json!(info.used_storage));
    let mut out = identity(r);
    select(&mut out, props, expand);
    Value::Object(out)
}

/// What a listing request asked to see.
pub struct ListShape {
    pub full: bool,
    pub card_data: bool,
    pub expand: Vec<String>,
}

const LIST_DEFAULT: &[&str] = &[
    "likes",
    "trendingScore",
    "private",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
];

/// One element of `GET /api/models` etc.
pub fn listed_repo(repo: &Repo, files: Option<&[TreeEntry]>, shape: &ListShape) -> Value {
    let mut props = all_properties(
        repo,
        repo.sha.as_deref(),
        repo.card_data.as_ref(),
        &repo.tags,
        repo.pipeline_tag.as_deref(),
        repo.library_name.as_deref(),
    );
    if let Some(files) = files {
        props.insert(
            "siblings".into(),
            Value::Array(files.iter().map(|e| sibling(e, false)).collect()),
        );
    }
    let mut out = identity(repo);
    if !shape.expand.is_empty() {
        select(&mut out, props, &shape.expand);
        return Value::Object(out);
    }
    let card = props.remove("cardData");
    for (k, v) in props {
        if shape.full || LIST_DEFAULT.contains(&k.as_str()) {
            out.insert(k, v);
        }
    }
    if let (true, Some(card)) = (shape.card_data || shape.full, card) {
        out.insert("cardData".into(), card);
    }
    Value::Object(out)
}

/// Keeps all properties, or only those named by `expand`.
fn select(out: &mut Map<String, Value>, props: Map<String, Value>, expand: &[String]) {
    for (k, v) in props {
        if expand.is_empty() || expand.iter().any(|e| e == &k) {
            out.insert(k, v);
        }
    }
}

pub fn last_commit(c: &CommitInfo) -> Value {
    json!({ "id": c.id, "title": c.title, "date": format_ms(c.date_ms) })
}

/// A tree / paths-info entry. `xet_hashes` maps LFS oids stored in Xet to their file hash
/// (`xetHash`, which lets Xet clients download without a HEAD request).
pub fn tree_entry(
    e: &TreeEntry,
    last_commits: &HashMap<String, CommitInfo>,
    xet_hashes: &HashMap<String, String>,
    expand: bool,
) -> Value {
    let mut v = match e.kind {
        EntryKind::File => {
            let size = e.lfs.as_ref().map(|p| p.size).unwrap_or(e.size);
            let mut v = json!({ "type": "file", "oid": e.oid, "size": size, "path": e.path });
            if let Some(p) = &e.lfs {
                v["lfs"] = json!({ "oid": p.oid, "size": p.size, "pointerSize": e.size });
                if let Some(x) = xet_hashes.get(&p.oid) {
                    v["xetHash"] = json!(x);
                }
            }
            v
        }
        EntryKind::Directory => {
            json!({ "type": "directory", "oid": e.oid, "size": 0, "path": e.path })
        }
    };
    if expand && let Some(c) = last_commits.get(&e.path) {
        v["lastCommit"] = last_commit(c);
    }
    v
}

/// An element of `GET …/commits/{rev}`.
pub fn commit(c: &CommitInfo) -> Value {
    let message = if c.message.is_empty() {
        c.title.clone()
    } else {
        format!("{}\n\n{}", c.title, c.message)
    };
    json!({
        "id": c.id,
        "title": c.title,
        "message": message,
        "date": format_ms(c.date_ms),
        "authors": [{ "user": c.author_name }],
    })
}
