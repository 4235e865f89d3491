//! What `POST /api/validate-yaml` answers for a README.

use serde_json::{Map, Value};
use wharf_core::RepoType;

use crate::front_matter::{describe, parse_card};

/// The warning given for a card without metadata. The Python client turns any warning into
/// `UserWarning("Warnings while validating metadata in README.md: …")`.
pub const EMPTY_METADATA_WARNING: &str = "empty or missing yaml metadata in repo card";

/// Result of validating a card. Errors mean the card must be refused (HTTP 400); warnings are
/// passed on to the client but do not block the commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Validation {
    /// Problems that make the metadata invalid.
    pub errors: Vec<String>,
    /// Problems worth telling the author about.
    pub warnings: Vec<String>,
}

impl Validation {
    /// Whether the card can be committed.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Validates README content the way the Hub's `POST /api/validate-yaml` does.
///
/// Errors: malformed YAML or YAML over the resource limits (the message carries the README
/// line and column), a top level that is not a mapping, `model-index` that is not a list of
/// mappings (the Hub's test card `model-index: foo` must fail), `license`, `tags`, `datasets`
/// or `language` that is not a string or a list of strings. A key with a null value counts as
/// absent.
///
/// Warnings: no front matter or no keys in it gives [`EMPTY_METADATA_WARNING`];
/// `pipeline_tag` or `library_name` that is not a string, and `base_model` that is not a
/// string or a list of strings, are reported as ignored.
///
/// The same rules apply to every repo type for now; `repo_type` is there for type-specific
/// rules (dataset `configs`, Space `sdk`, …).
pub fn validate_card(readme: &str, repo_type: RepoType) -> Validation {
    let _ = repo_type;
    let mut result = Validation::default();
    match parse_card(readme) {
        Err(err) => result.errors.push(err.to_string()),
        Ok(None) => result.warnings.push(EMPTY_METADATA_WARNING.to_owned()),
        Ok(Some(Value::Object(map))) if map.is_empty() => {
            result.warnings.push(EMPTY_METADATA_WARNING.to_owned());
        }
        Ok(Some(Value::Object(map))) => check_fields(&map, &mut result),
        // parse_card only returns mappings; keep the answer sensible anyway.
        Ok(Some(_)) => result
            .errors
            .push("YAML metadata must be a mapping of keys to values".to_owned()),
    }
    result
}

fn check_fields(map: &Map<String, Value>, result: &mut Validation) {
    if let Some(index) = present(map, "model-index") {
        check_model_index(index, &mut result.errors);
    }
    for key in ["license", "tags", "datasets", "language"] {
        if let Some(value) = present(map, key)
            && !is_string_or_strings(value)
        {
            result.errors.push(format!(
                "\"{key}\" must be a string or a list of strings, found {}",
                describe(value)
            ));
        }
    }
    for key in ["pipeline_tag", "library_name"] {
        if let Some(value) = present(map, key)
            && !value.is_string()
        {
            result.warnings.push(format!(
                "\"{key}\" should be a string, found {}; it is ignored",
                describe(value)
            ));
        }
    }
    if let Some(value) = present(map, "base_model")
        && !is_string_or_strings(value)
    {
        result.warnings.push(format!(
            "\"base_model\" should be a string or a list of strings, found {}; it is ignored",
            describe(value)
        ));
    }
}

fn check_model_index(index: &Value, errors: &mut Vec<String>) {
    let Value::Array(entries) = index else {
        errors.push(format!(
            "\"model-index\" must be a list of evaluation results, found {}",
            describe(index)
        ));
        return;
    };
    for (i, entry) in entries.iter().enumerate() {
        let Value::Object(entry) = entry else {
            errors.push(format!(
                "\"model-index[{i}]\" must be a mapping with \"name\" and \"results\", found {}",
                describe(entry)
            ));
            continue;
        };
        if let Some(results) = present(entry, "results")
            && !results.is_array()
        {
            errors.push(format!(
                "\"model-index[{i}].results\" must be a list, found {}",
                describe(results)
            ));
        }
    }
}

/// The value of `key` unless it is missing or null.
fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|value| !value.is_null())
}

fn is_string_or_strings(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(readme: &str) -> Validation {
        validate_card(readme, RepoType::Model)
    }

    fn errors(readme: &str) -> Vec<String> {
        let result = validate(readme);
        assert!(!result.is_valid(), "expected errors for {readme:?}");
        result.errors
    }

    #[test]
    fn course_card_is_valid_without_warnings() {
        let readme = "---\nlanguage: fr\nlicense: mit\ndatasets:\n- oscar\ntags:\n- fill-mask\n\
            - camembert\npipeline_tag: fill-mask\nlibrary_name: transformers\n---\n# Dummy\n";
        for repo_type in [RepoType::Model, RepoType::Dataset, RepoType::Space] {
            assert_eq!(validate_card(readme, repo_type), Validation::default());
        }
    }

    #[test]
    fn missing_or_empty_metadata_warns() {
        let warning = Validation {
            errors: vec![],
            warnings: vec![EMPTY_METADATA_WARNING.to_owned()],
        };
        for readme in [
            "",
            "# Just text\n",
            "---\n---\n# t",
            "---\n{}\n---\n",
            "---\n~\n---\n",
        ] {
            assert_eq!(validate(readme), warning, "{readme:?}");
        }
    }

    #[test]
    fn model_index_must_be_a_list() {
        // The card of huggingface_hub's test_commit_modelcard_invalid_metadata.
        let errs = errors("---\nmodel-index: foo\n---\n\n# Model card\n");
        assert_eq!(
            errs,
            ["\"model-index\" must be a list of evaluation results, found a string"]
        );
        assert_eq!(errors("---\nmodel-index: {a: 1}\n---\n").len(), 1);
        assert_eq!(errors("---\nmodel-index: [foo]\n---\n").len(), 1);
        assert_eq!(
            errors("---\nmodel-index:\n- name: m\n  results: 3\n---\n"),
            ["\"model-index[0].results\" must be a list, found a number"]
        );
        let valid = "---\nmodel-index:\n- name: m\n  results:\n  - task:\n      type: fill-mask\n    \
            metrics:\n    - type: accuracy\n      value: 0.9\n---\n";
        assert!(validate(valid).is_valid(), "{:?}", validate(valid));
        assert!(validate("---\nmodel-index: []\nlicense: mit\n---\n").is_valid());
    }

    #[test]
    fn list_fields_must_hold_strings() {
        assert_eq!(
            errors("---\nlicense: 3\n---\n"),
            ["\"license\" must be a string or a list of strings, found a number"]
        );
        assert!(validate("---\nlicense: [mit, apache-2.0]\n---\n").is_valid());
        assert_eq!(
            errors("---\ntags: {a: b}\ndatasets: [1]\nlanguage: [[fr]]\n---\n").len(),
            3
        );
        assert!(validate("---\ntags: a\ndatasets: [x, y]\nlanguage: no\n---\n").is_valid());
        // Null counts as absent.
        assert!(validate("---\nlicense:\ntags: ~\nmodel-index:\n---\n").is_valid());
    }

    #[test]
    fn wrong_optional_fields_only_warn() {
        let result = validate("---\npipeline_tag: [a]\nlibrary_name: 1\nbase_model: {x: 1}\n---\n");
        assert!(result.is_valid());
        assert_eq!(result.warnings.len(), 3, "{result:?}");
    }

    #[test]
    fn invalid_yaml_is_an_error_with_position() {
        let errs = errors("---\nlicense: mit\ntags: [a\n---\n");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].contains("line ") && errs[0].contains("column "),
            "{errs:?}"
        );
        let errs = errors("---\n- a\n- b\n---\n");
        assert_eq!(
            errs,
            ["YAML metadata must be a mapping of keys to values, found a list at line 2, column 1"]
        );
    }
}
