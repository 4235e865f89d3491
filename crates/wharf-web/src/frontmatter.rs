//! Rewrites top-level keys of a README's YAML front matter (what the editor's metadata form
//! sets: `license`, `pipeline_tag`, `tags`) and leaves every other line exactly as it was,
//! comments included. Where the front matter starts and ends is `wharf_card`'s rule.

/// A value for one key: a scalar, a list, or nothing (the key is removed).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    Scalar(String),
    List(Vec<String>),
}

/// Splits `text` into (front matter lines, body) when it starts with a `---` block, where
/// `wharf_card` (the one owner of that rule) says the block is.
fn split(text: &str) -> Option<(Vec<&str>, &str)> {
    let (front, body) = wharf_card::split_front_matter(text)?;
    Some((front.lines().collect(), body))
}

/// A YAML scalar for `value`: plain when unambiguous, else double-quoted (JSON escapes are
/// valid in YAML double-quoted scalars).
fn scalar(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b'+'))
        && !matches!(
            value.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
        && value.parse::<f64>().is_err();
    if plain {
        value.to_string()
    } else {
        serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_string())
    }
}

/// Whether `line` starts the top-level key `key`.
fn starts_key(line: &str, key: &str) -> bool {
    let unquoted = line
        .strip_prefix(key)
        .or_else(|| line.strip_prefix(&format!("\"{key}\"")))
        .or_else(|| line.strip_prefix(&format!("'{key}'")));
    unquoted.is_some_and(|rest| rest.trim_start().starts_with(':'))
}

/// Whether `line` continues the value of the key above it (indented, or a `- ` item).
fn continues(line: &str) -> bool {
    line.starts_with([' ', '\t']) || line == "-" || line.starts_with("- ")
}

/// Sets (or removes, for `None`) top-level keys of the front matter, creating the block when
/// the README has none. Keys not named are left untouched, in place.
pub fn set_keys(readme: &str, updates: &[(&str, Option<MetaValue>)]) -> String {
    let (mut lines, body): (Vec<String>, &str) = match split(readme) {
        Some((lines, body)) => (lines.into_iter().map(str::to_string).collect(), body),
        None => (Vec::new(), readme),
    };
    for (key, _) in updates {
        let mut out = Vec::with_capacity(lines.len());
        let mut skipping = false;
        for line in lines {
            if skipping && continues(&line) {
                continue;
            }
            skipping = starts_key(&line, key);
            if !skipping {
                out.push(line);
            }
        }
        lines = out;
    }
    for (key, value) in updates {
        match value {
            Some(MetaValue::Scalar(v)) if !v.trim().is_empty() => {
                lines.push(format!("{key}: {}", scalar(v.trim())));
            }
            Some(MetaValue::List(items)) if !items.is_empty() => {
                lines.push(format!("{key}:"));
                lines.extend(items.iter().map(|i| format!("- {}", scalar(i))));
            }
            _ => {}
        }
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return body.to_string();
    }
    let mut out = String::from("---\n");
    for l in &lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("---\n");
    out.push_str(body);
    out
}

/// Splits a comma-separated form field into clean, distinct items.
pub fn list_field(raw: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !items.iter().any(|i| i == item) {
            items.push(item.to_string());
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_keys_and_keeps_the_rest() {
        let readme =
            "---\n# comment\nlicense: apache-2.0\ntags:\n- a\n- b\nlanguage: en\n---\n# Title\n";
        let out = set_keys(
            readme,
            &[
                ("license", Some(MetaValue::Scalar("mit".into()))),
                (
                    "tags",
                    Some(MetaValue::List(vec!["x".into(), "y z".into()])),
                ),
                ("pipeline_tag", None),
            ],
        );
        assert_eq!(
            out,
            "---\n# comment\nlanguage: en\nlicense: mit\ntags:\n- x\n- \"y z\"\n---\n# Title\n"
        );
    }

    #[test]
    fn creates_and_removes_the_block() {
        let out = set_keys(
            "# Hello\n",
            &[(
                "pipeline_tag",
                Some(MetaValue::Scalar("text-classification".into())),
            )],
        );
        assert_eq!(
            out,
            "---\npipeline_tag: text-classification\n---\n# Hello\n"
        );
        let back = set_keys(&out, &[("pipeline_tag", None)]);
        assert_eq!(back, "# Hello\n");
    }

    #[test]
    fn indented_values_and_quoting() {
        let readme = "---\ntags:\n  - old\n  - older\nlicense: other\n---\n";
        let out = set_keys(
            readme,
            &[(
                "tags",
                Some(MetaValue::List(vec!["yes".into(), "1.5".into()])),
            )],
        );
        assert_eq!(
            out,
            "---\nlicense: other\ntags:\n- \"yes\"\n- \"1.5\"\n---\n"
        );
        assert_eq!(list_field(" a, b,,a ,c "), vec!["a", "b", "c"]);
        // CRLF and a byte order mark split as the card parser splits them.
        let out = set_keys(
            "\u{feff}---\r\nlicense: mit\r\n---\r\n# T\r\n",
            &[("license", Some(MetaValue::Scalar("other".into())))],
        );
        assert_eq!(out, "---\nlicense: other\n---\n# T\r\n");
    }
}
