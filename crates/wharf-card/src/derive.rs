//! Hub-style tags, pipeline tag and library name of a repo.

use std::collections::HashSet;

use serde_json::Value;

/// What the Hub shows next to a repo besides the card itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DerivedInfo {
    /// Tags in the Hub's order, without duplicates.
    pub tags: Vec<String>,
    /// The card's `pipeline_tag`.
    pub pipeline_tag: Option<String>,
    /// The card's `library_name`, or `transformers` when the files show a transformers model.
    pub library_name: Option<String>,
}

/// Where the repo is stored; the Hub always lists it last.
const REGION_TAG: &str = "region:us";

/// Weight formats recognised from file names, in the order the Hub lists them.
const FORMATS: [&str; 6] = ["pytorch", "tf", "jax", "onnx", "safetensors", "gguf"];

/// Whether a file called `name` holds weights in `format` (one of [`FORMATS`]).
fn is_format(format: &str, name: &str) -> bool {
    match format {
        "pytorch" => name.starts_with("pytorch_model") && has_extension(name, "bin"),
        "tf" => name == "tf_model.h5",
        "jax" => name == "flax_model.msgpack",
        _ => has_extension(name, format),
    }
}

/// Derives Hub-style tags from card data, the repo's file paths at the revision, and the
/// `model_type` of its `config.json` when known.
///
/// Tags come in this order, each at most once: library, weight formats (`pytorch`, `tf`,
/// `jax`, `onnx`, `safetensors`, `gguf`, from file names anywhere in the repo), `model_type`,
/// the card's `tags`, `pipeline_tag`, `language` codes, `dataset:{id}`, `base_model:{id}`
/// (plus `base_model:{relation}:{id}` when the card sets `base_model_relation`),
/// `license:{id}` (lowercased), and finally `region:us`.
///
/// The library is the card's `library_name`, else `transformers` when a root `config.json`
/// exists and either has a `model_type` or sits next to `tokenizer_config.json`.
///
/// Fields of the wrong type (numbers, mappings, lists of non-strings, …) and empty strings
/// are ignored; this never fails.
pub fn derive_info(
    card: Option<&Value>,
    files: &[String],
    model_type: Option<&str>,
) -> DerivedInfo {
    let card = card.and_then(Value::as_object);
    let field = |key: &str| card.and_then(|map| map.get(key));

    let library_name = field("library_name")
        .and_then(non_empty_str)
        .map(str::to_owned)
        .or_else(|| inferred_library(files, model_type).map(str::to_owned));
    let pipeline_tag = field("pipeline_tag")
        .and_then(non_empty_str)
        .map(str::to_owned);

    let mut tags = Tags::default();
    if let Some(library) = &library_name {
        tags.push(library.clone());
    }
    for format in FORMATS {
        if files.iter().any(|path| is_format(format, file_name(path))) {
            tags.push(format.to_owned());
        }
    }
    if let Some(model_type) = model_type.filter(|m| !m.trim().is_empty()) {
        tags.push(model_type.to_owned());
    }
    for tag in strings(field("tags")) {
        tags.push(tag.to_owned());
    }
    if let Some(pipeline_tag) = &pipeline_tag {
        tags.push(pipeline_tag.clone());
    }
    for language in strings(field("language")) {
        tags.push(language.to_owned());
    }
    for dataset in strings(field("datasets")) {
        tags.push(format!("dataset:{dataset}"));
    }
    let relation = field("base_model_relation")
        .and_then(Value::as_str)
        .filter(|r| ["adapter", "merge", "quantized", "finetune"].contains(r));
    for base in strings(field("base_model")) {
        tags.push(format!("base_model:{base}"));
        if let Some(relation) = relation {
            tags.push(format!("base_model:{relation}:{base}"));
        }
    }
    for license in strings(field("license")) {
        tags.push(format!("license:{}", license.to_lowercase()));
    }
    tags.list.push(REGION_TAG.to_owned());

    DerivedInfo {
        tags: tags.list,
        pipeline_tag,
        library_name,
    }
}

/// `transformers` when the files look like a transformers checkpoint.
fn inferred_library(files: &[String], model_type: Option<&str>) -> Option<&'static str> {
    let has = |name: &str| files.iter().any(|path| path == name);
    let transformers = has("config.json") && (model_type.is_some() || has("tokenizer_config.json"));
    transformers.then_some("transformers")
}

/// Ordered tag list that drops repeats.
#[derive(Default)]
struct Tags {
    list: Vec<String>,
    seen: HashSet<String>,
}

impl Tags {
    /// Adds `tag` unless it is already there. The region tag is kept for the end.
    fn push(&mut self, tag: String) {
        if tag != REGION_TAG && self.seen.insert(tag.clone()) {
            self.list.push(tag);
        }
    }
}

/// The non-empty strings of a field that is a string or a list; everything else is ignored.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => non_empty_str_of(s).into_iter().collect(),
        Some(Value::Array(items)) => items.iter().filter_map(non_empty_str).collect(),
        _ => Vec::new(),
    }
}

fn non_empty_str(value: &Value) -> Option<&str> {
    value.as_str().and_then(non_empty_str_of)
}

fn non_empty_str_of(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether `name` ends in `.{ext}` (ASCII case-insensitive) and has a stem.
fn has_extension(name: &str, ext: &str) -> bool {
    match name.rsplit_once('.') {
        Some((stem, found)) => !stem.is_empty() && found.eq_ignore_ascii_case(ext),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn files(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    const COURSE_CARD: &str = "---\nlanguage: fr\nlicense: mit\ndatasets:\n- oscar\ntags:\n\
        - fill-mask\n- camembert\npipeline_tag: fill-mask\nlibrary_name: transformers\n---\n\n\
        # Dummy model\n";

    #[test]
    fn course_card_gives_hub_tags() {
        let card = crate::parse_card(COURSE_CARD).expect("valid card");
        let files = files(&[
            ".gitattributes",
            "README.md",
            "config.json",
            "model.safetensors",
            "special_tokens_map.json",
            "tokenizer.json",
            "tokenizer_config.json",
        ]);
        let info = derive_info(card.as_ref(), &files, Some("camembert"));
        assert_eq!(
            info,
            DerivedInfo {
                tags: [
                    "transformers",
                    "safetensors",
                    "camembert",
                    "fill-mask",
                    "fr",
                    "dataset:oscar",
                    "license:mit",
                    "region:us",
                ]
                .map(str::to_owned)
                .to_vec(),
                pipeline_tag: Some("fill-mask".to_owned()),
                library_name: Some("transformers".to_owned()),
            }
        );
    }

    #[test]
    fn formats_in_hub_order() {
        let files = files(&[
            "model.gguf",
            "onnx/model.onnx",
            "model.safetensors",
            "flax_model.msgpack",
            "tf_model.h5",
            "pytorch_model-00001-of-00002.bin",
            "training_args.bin",
        ]);
        let info = derive_info(None, &files, None);
        assert_eq!(
            info.tags,
            [
                "pytorch",
                "tf",
                "jax",
                "onnx",
                "safetensors",
                "gguf",
                "region:us"
            ]
        );
        assert_eq!(info.library_name, None);
        assert_eq!(info.pipeline_tag, None);
    }

    #[test]
    fn library_inference() {
        let with = |names: &[&str], model_type| derive_info(None, &files(names), model_type);
        let lib = |info: DerivedInfo| info.library_name;
        let transformers = Some("transformers".to_owned());
        assert_eq!(lib(with(&["config.json"], Some("bert"))), transformers);
        assert_eq!(
            lib(with(&["config.json", "tokenizer_config.json"], None)),
            transformers
        );
        assert_eq!(lib(with(&["config.json"], None)), None);
        assert_eq!(lib(with(&["tokenizer_config.json"], Some("bert"))), None);
        assert_eq!(lib(with(&["sub/config.json"], Some("bert"))), None);

        // The card wins over inference.
        let card = json!({"library_name": "sentence-transformers"});
        let info = derive_info(Some(&card), &files(&["config.json"]), Some("bert"));
        assert_eq!(info.library_name.as_deref(), Some("sentence-transformers"));
        assert_eq!(info.tags, ["sentence-transformers", "bert", "region:us"]);
    }

    #[test]
    fn every_field_in_order_without_duplicates() {
        let card = json!({
            "tags": ["custom", "fr", "region:us", "custom"],
            "pipeline_tag": "text-generation",
            "language": ["fr", "en"],
            "datasets": "oscar",
            "base_model": ["org/a", "org/b"],
            "base_model_relation": "finetune",
            "license": "Apache-2.0",
            "library_name": "peft",
        });
        let info = derive_info(Some(&card), &files(&["adapter_model.safetensors"]), None);
        assert_eq!(
            info.tags,
            [
                "peft",
                "safetensors",
                "custom",
                "fr",
                "text-generation",
                "en",
                "dataset:oscar",
                "base_model:org/a",
                "base_model:finetune:org/a",
                "base_model:org/b",
                "base_model:finetune:org/b",
                "license:apache-2.0",
                "region:us",
            ]
        );
    }

    #[test]
    fn junk_types_are_ignored() {
        let card = json!({
            "library_name": 3,
            "pipeline_tag": ["fill-mask"],
            "tags": [1, null, {"a": "b"}, ["nested"], "ok", "", "  "],
            "language": {"fr": true},
            "datasets": [false, "good"],
            "base_model": 1.5,
            "base_model_relation": ["finetune"],
            "license": null,
        });
        let info = derive_info(Some(&card), &[], None);
        assert_eq!(
            info,
            DerivedInfo {
                tags: ["ok", "dataset:good", "region:us"]
                    .map(str::to_owned)
                    .to_vec(),
                pipeline_tag: None,
                library_name: None,
            }
        );

        // A card that is not an object at all.
        for card in [json!(null), json!("text"), json!([1, 2]), json!(7)] {
            assert_eq!(derive_info(Some(&card), &[], None).tags, ["region:us"]);
        }
    }

    #[test]
    fn nothing_known_gives_only_region() {
        let info = derive_info(None, &[], None);
        assert_eq!(info.tags, ["region:us"]);
        assert_eq!(derive_info(None, &[], Some("")).tags, ["region:us"]);
    }

    #[test]
    fn extension_matching() {
        assert!(has_extension("model.SafeTensors", "safetensors"));
        assert!(!has_extension(".safetensors", "safetensors"));
        assert!(!has_extension("safetensors", "safetensors"));
        assert!(!has_extension(
            "model.safetensors.index.json",
            "safetensors"
        ));
        assert_eq!(file_name("a/b/c.onnx"), "c.onnx");
        assert_eq!(file_name("c.onnx"), "c.onnx");
    }
}
