//! The listing sidebar: the hub's tag counts sorted into tasks, libraries, languages, licenses
//! and datasets, each a link that toggles its filter.

use crate::routes::ListParams;

/// The Hub's task names (`pipeline_tag`).
pub const TASKS: &[&str] = &[
    "text-generation",
    "text-classification",
    "token-classification",
    "fill-mask",
    "question-answering",
    "table-question-answering",
    "zero-shot-classification",
    "translation",
    "summarization",
    "feature-extraction",
    "text2text-generation",
    "sentence-similarity",
    "text-ranking",
    "text-retrieval",
    "text-to-speech",
    "text-to-audio",
    "automatic-speech-recognition",
    "audio-to-audio",
    "audio-classification",
    "voice-activity-detection",
    "audio-text-to-text",
    "depth-estimation",
    "image-classification",
    "object-detection",
    "image-segmentation",
    "text-to-image",
    "image-to-text",
    "image-to-image",
    "image-to-video",
    "image-text-to-text",
    "image-feature-extraction",
    "unconditional-image-generation",
    "video-classification",
    "text-to-video",
    "video-text-to-text",
    "visual-question-answering",
    "document-question-answering",
    "zero-shot-image-classification",
    "zero-shot-object-detection",
    "mask-generation",
    "keypoint-detection",
    "text-to-3d",
    "image-to-3d",
    "any-to-any",
    "visual-document-retrieval",
    "reinforcement-learning",
    "robotics",
    "tabular-classification",
    "tabular-regression",
    "time-series-forecasting",
    "graph-ml",
    "multiple-choice",
    "table-to-text",
    "other",
];

/// Libraries and weight formats the Hub files under "Libraries".
pub const LIBRARIES: &[&str] = &[
    "transformers",
    "diffusers",
    "sentence-transformers",
    "peft",
    "timm",
    "safetensors",
    "pytorch",
    "tf",
    "jax",
    "onnx",
    "gguf",
    "keras",
    "tf-keras",
    "adapter-transformers",
    "setfit",
    "spacy",
    "flair",
    "fastai",
    "scikit-learn",
    "sklearn",
    "stable-baselines3",
    "ml-agents",
    "open_clip",
    "span-marker",
    "speechbrain",
    "espnet",
    "nemo",
    "fairseq",
    "mlx",
    "transformers.js",
    "paddlenlp",
    "bertopic",
    "asteroid",
    "allennlp",
    "fasttext",
    "pyannote-audio",
    "sample-factory",
    "lerobot",
    "vllm",
    "llama.cpp",
    "ctranslate2",
    "coreml",
    "openvino",
    "tensorboard",
    "datasets",
    "pandas",
    "polars",
    "dask",
    "webdataset",
    "croissant",
    "mlcroissant",
    "gradio",
    "streamlit",
    "docker",
    "static",
];

/// One link of the sidebar.
pub struct Facet {
    pub label: String,
    pub count: i64,
    pub href: String,
    pub active: bool,
}

pub struct FacetGroup {
    pub title: &'static str,
    pub key: &'static str,
    pub facets: Vec<Facet>,
}

/// Facets shown per group.
const PER_GROUP: usize = 12;

/// Which filter a tag belongs to, and the value the filter takes.
pub fn classify(tag: &str) -> Option<(&'static str, &str)> {
    if let Some(v) = tag.strip_prefix("license:") {
        return Some(("license", v));
    }
    if let Some(v) = tag.strip_prefix("dataset:") {
        return Some(("dataset", v));
    }
    if tag.contains(':') {
        return None;
    }
    if TASKS.contains(&tag) {
        return Some(("pipeline_tag", tag));
    }
    if LIBRARIES.contains(&tag) {
        return Some(("library", tag));
    }
    let lang = (tag.len() == 2 || tag.len() == 3) && tag.bytes().all(|b| b.is_ascii_lowercase());
    if lang || tag == "multilingual" {
        return Some(("language", tag));
    }
    None
}

/// Sorts tag counts into the sidebar's groups; each link toggles its filter.
pub fn groups(counts: &[(String, i64)], q: &ListParams, base: &str) -> Vec<FacetGroup> {
    let mut groups: Vec<FacetGroup> = [
        ("Tasks", "pipeline_tag"),
        ("Libraries", "library"),
        ("Languages", "language"),
        ("Licenses", "license"),
        ("Datasets", "dataset"),
    ]
    .into_iter()
    .map(|(title, key)| FacetGroup {
        title,
        key,
        facets: Vec::new(),
    })
    .collect();
    for (tag, count) in counts {
        let Some((key, value)) = classify(tag) else {
            continue;
        };
        let Some(group) = groups.iter_mut().find(|g| g.key == key) else {
            continue;
        };
        if group.facets.len() >= PER_GROUP {
            continue;
        }
        let active = q.get(key) == Some(value);
        let href = if active {
            q.href(base, &[(key, None)])
        } else {
            q.href(base, &[(key, Some(value))])
        };
        group.facets.push(Facet {
            label: value.to_string(),
            count: *count,
            href,
            active,
        });
    }
    groups.retain(|g| !g.facets.is_empty());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_land_in_their_groups() {
        assert_eq!(classify("license:mit"), Some(("license", "mit")));
        assert_eq!(classify("dataset:squad"), Some(("dataset", "squad")));
        assert_eq!(
            classify("text-classification"),
            Some(("pipeline_tag", "text-classification"))
        );
        assert_eq!(classify("transformers"), Some(("library", "transformers")));
        assert_eq!(classify("en"), Some(("language", "en")));
        assert_eq!(classify("region:us"), None);
        assert_eq!(classify("base_model:x/y"), None);
        assert_eq!(classify("bert"), None);
    }

    #[test]
    fn facet_links_toggle() {
        let q = ListParams::parse(Some("license=mit"));
        let counts = vec![("license:mit".to_string(), 3), ("en".to_string(), 2)];
        let g = groups(&counts, &q, "/models");
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].key, "language");
        assert_eq!(g[0].facets[0].href, "/models?license=mit&language=en");
        assert!(g[1].facets[0].active);
        assert_eq!(g[1].facets[0].href, "/models");
    }
}
