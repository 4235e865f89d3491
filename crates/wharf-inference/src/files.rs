//! Which files of a repo the loader needs.

use crate::error::InferenceError;

/// Top-level files read at load time when present.
const ROOT_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
];

const PICKLE_SUFFIXES: &[&str] = &[".bin", ".pt", ".pth", ".ckpt", ".pkl"];

/// Which files of a repo (all paths at a revision) must be fetched to load it.
///
/// Refuses repos whose only weights are pickles: loading those would execute code from the repo.
pub fn plan_files(paths: &[String]) -> Result<Vec<String>, InferenceError> {
    let mut out: Vec<String> = ROOT_FILES
        .iter()
        .filter(|f| paths.iter().any(|p| p == *f))
        .map(|f| f.to_string())
        .collect();
    let weights = root_weights(paths);
    if weights.is_empty() {
        return Err(no_weights_error(paths));
    }
    out.extend(weights);
    out.extend(module_files(paths));
    Ok(out)
}

/// model.safetensors, else the sharded index; the shards themselves are named in the index, which
/// the caller only has after fetching it, so every root `model-*.safetensors` is taken.
fn root_weights(paths: &[String]) -> Vec<String> {
    if paths.iter().any(|p| p == "model.safetensors") {
        return vec!["model.safetensors".to_string()];
    }
    if paths.iter().any(|p| p == "model.safetensors.index.json") {
        let mut v = vec!["model.safetensors.index.json".to_string()];
        v.extend(
            paths
                .iter()
                .filter(|p| {
                    !p.contains('/') && p.starts_with("model") && p.ends_with(".safetensors")
                })
                .cloned(),
        );
        return v;
    }
    Vec::new()
}

/// Sentence-transformers module folders (1_Pooling, 2_Dense, 2_Normalize...): their config and weights.
fn module_files(paths: &[String]) -> Vec<String> {
    if !paths.iter().any(|p| p == "modules.json") {
        return Vec::new();
    }
    paths
        .iter()
        .filter(|p| {
            let mut parts = p.split('/');
            let (Some(dir), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
                return false;
            };
            let is_module = dir
                .split_once('_')
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok());
            is_module && (file == "config.json" || file == "model.safetensors")
        })
        .cloned()
        .collect()
}

fn no_weights_error(paths: &[String]) -> InferenceError {
    let pickles = paths
        .iter()
        .any(|p| PICKLE_SUFFIXES.iter().any(|s| p.ends_with(s)));
    if pickles {
        InferenceError::Unsupported(
            "this repo only has pickle weights (pytorch_model.bin / .pt / .ckpt), which cannot be \
             loaded safely; convert them to safetensors (model.safetensors) to use the inference API"
                .to_string(),
        )
    } else {
        InferenceError::Unsupported(format!(
            "no model.safetensors (or model.safetensors.index.json) in this repo; {}",
            crate::SUPPORTED
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn picks_sentence_transformers_layout() {
        let got = plan_files(&s(&[
            "README.md",
            ".gitattributes",
            "config.json",
            "modules.json",
            "model.safetensors",
            "pytorch_model.bin",
            "onnx/model.onnx",
            "1_Pooling/config.json",
            "2_Normalize/config.json",
            "2_Dense/model.safetensors",
            "tokenizer.json",
        ]))
        .expect("plan");
        assert_eq!(
            got,
            s(&[
                "config.json",
                "tokenizer.json",
                "modules.json",
                "model.safetensors",
                "1_Pooling/config.json",
                "2_Normalize/config.json",
                "2_Dense/model.safetensors"
            ])
        );
    }

    #[test]
    fn sharded_and_pickle_only() {
        let got = plan_files(&s(&[
            "config.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ]))
        .expect("plan");
        assert_eq!(got.len(), 4);
        let err = plan_files(&s(&["config.json", "pytorch_model.bin"])).expect_err("pickle");
        assert!(matches!(err, InferenceError::Unsupported(m) if m.contains("safetensors")));
    }
}
