//! Finding and parsing the YAML front matter of a README.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeSeed;
use serde_json::Value;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{MessageFormatter, NonFiniteFloatPolicy, UserMessageFormatter};

use crate::error::CardError;
use crate::value::{Allowance, BoundedValue, MAX_DEPTH};

/// Largest front matter [`parse_card`] accepts, in bytes. Real cards with long `model-index`
/// sections stay well under 1 MiB.
pub const MAX_FRONT_MATTER_BYTES: usize = 4 * 1024 * 1024;

/// The opening `---` is README line 1, so front matter line N is README line N + 1.
const LINE_OFFSET: u64 = 1;

/// Splits README text into (yaml front matter, body).
///
/// The front matter is the text between a first line `---` and the next line that is exactly
/// `---`, without the line break that ends its last line. A leading byte order mark is
/// skipped, and `\r\n` line endings are accepted. The body is everything after the closing
/// line's line break. Returns `None` when the README does not start with `---` or the block
/// is never closed.
///
/// ```
/// let readme = "---\nlicense: mit\n---\n# Title\n";
/// assert_eq!(wharf_card::split_front_matter(readme), Some(("license: mit", "# Title\n")));
/// ```
pub fn split_front_matter(readme: &str) -> Option<(&str, &str)> {
    let text = readme.strip_prefix('\u{feff}').unwrap_or(readme);
    let (first, mut rest) = next_line(text)?;
    if first.line != "---" || first.ending.is_empty() {
        return None;
    }
    let start = first.len();
    let mut offset = start;
    // Where the previous line's line break starts: the front matter ends there.
    let mut prev_break = start;
    loop {
        let (line, after) = next_line(rest)?;
        if line.line == "---" {
            let front = text.get(start..prev_break)?;
            return Some((front, after));
        }
        prev_break = offset + line.line.len();
        offset += line.len();
        rest = after;
    }
}

/// One line without its terminator, and the terminator (`"\n"`, `"\r\n"` or `""` at the end).
struct Line<'a> {
    line: &'a str,
    ending: &'a str,
}

impl Line<'_> {
    fn len(&self) -> usize {
        self.line.len() + self.ending.len()
    }
}

/// Splits off the first line of `text`; `None` when `text` is empty.
fn next_line(text: &str) -> Option<(Line<'_>, &str)> {
    if text.is_empty() {
        return None;
    }
    let (full, rest) = match text.find('\n') {
        Some(i) => text.split_at(i + 1),
        None => (text, ""),
    };
    let line = match full.strip_suffix('\n') {
        Some(line) => line.strip_suffix('\r').unwrap_or(line),
        None => full,
    };
    let ending = full.get(line.len()..).unwrap_or_default();
    Some((Line { line, ending }, rest))
}

/// Parses the YAML front matter of a README into a JSON object.
///
/// Returns `Ok(None)` when there is no front matter, when it is empty (blank or only
/// comments), or when it is an explicit null (`~`). An explicit `{}` gives an empty object.
/// Returns an error when the YAML is malformed, exceeds the resource limits (more than
/// [`MAX_FRONT_MATTER_BYTES`], nesting deeper than 64 levels, alias expansion beyond 200,000
/// values or 16 MiB of text), contains duplicate keys, or its top level is not a mapping.
///
/// See the crate documentation for how scalars are typed (YAML 1.2: `yes`/`no` stay strings,
/// dates stay strings).
pub fn parse_card(readme: &str) -> Result<Option<Value>, CardError> {
    let Some((yaml, _body)) = split_front_matter(readme) else {
        return Ok(None);
    };
    parse_yaml(yaml)
}

/// Parses front matter text (already split off the README).
fn parse_yaml(yaml: &str) -> Result<Option<Value>, CardError> {
    if yaml.len() > MAX_FRONT_MATTER_BYTES {
        return Err(CardError::TooLarge {
            size: yaml.len(),
            limit: MAX_FRONT_MATTER_BYTES,
        });
    }
    if yaml.trim().is_empty() {
        return Ok(None);
    }
    // The parser is documented and fuzzed not to panic; this only keeps a parser bug from
    // taking a request down with it.
    let parsed =
        catch_unwind(AssertUnwindSafe(|| deserialize(yaml))).map_err(|_| CardError::Yaml {
            message: "the YAML parser failed on this input".to_owned(),
            line: None,
            column: None,
        })?;
    match parsed? {
        Value::Null => Ok(None),
        value @ Value::Object(_) => Ok(Some(value)),
        other => {
            let (line, column) = first_content_position(yaml);
            Err(CardError::NotMapping {
                found: describe(&other),
                line,
                column,
            })
        }
    }
}

fn deserialize(yaml: &str) -> Result<Value, CardError> {
    let allowance = Allowance::new();
    let seed = BoundedValue {
        allowance: &allowance,
        depth: 0,
    };
    serde_saphyr::with_deserializer_from_str_with_options(yaml, options(), |de| {
        seed.deserialize(de)
    })
    .map_err(|err| yaml_error(&err))
}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_events: 1_000_000,
            max_nodes: 250_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_documents: 2,
            max_total_scalar_bytes: 2 * MAX_FRONT_MATTER_BYTES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 250_000,
            max_replay_stack_depth: MAX_DEPTH,
        },
        // YAML 1.2 booleans only, as the Hub reads cards: `language: no` is Norwegian.
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        non_finite_float_policy: NonFiniteFloatPolicy::AsString,
        with_snippet: false,
    }
}

/// Turns a parser error into a [`CardError::Yaml`] with README-relative positions.
fn yaml_error(err: &serde_saphyr::Error) -> CardError {
    let mut inner = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    let message = match inner {
        serde_saphyr::Error::Budget { breach, .. } => budget_message(breach),
        _ => UserMessageFormatter.format_message(inner).into_owned(),
    };
    let location = err.location().filter(|loc| loc.line() > 0);
    CardError::Yaml {
        message,
        line: location.map(|loc| loc.line().saturating_add(LINE_OFFSET)),
        column: location.map(|loc| loc.column().max(1)),
    }
}

/// A message for a breached parser budget (its `Debug` form is not meant for users).
fn budget_message(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Depth { .. } => {
            format!("metadata is nested more than {MAX_DEPTH} levels deep")
        }
        BudgetBreach::ScalarBytes { .. } => "metadata contains too much text".to_owned(),
        BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => {
            "metadata contains too many values".to_owned()
        }
        BudgetBreach::Aliases { .. }
        | BudgetBreach::Anchors { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. } => {
            "metadata uses too many anchors or aliases".to_owned()
        }
        BudgetBreach::Documents { .. } => {
            "metadata contains more than one YAML document".to_owned()
        }
        _ => "metadata is too large or too complex".to_owned(),
    }
}

/// "a list", "a string", … for messages.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// README line and column of the first character that is not blank, a comment or a
/// directive/document marker: where the top-level value starts.
fn first_content_position(yaml: &str) -> (u64, u64) {
    for (line_no, line) in (1_u64..).zip(yaml.split('\n')) {
        let trimmed = line.trim_start();
        let skip = trimmed.trim_end().is_empty()
            || trimmed.starts_with('#')
            || trimmed.starts_with('%')
            || trimmed.trim_end() == "---";
        if !skip {
            let column = line.chars().count() - trimmed.chars().count() + 1;
            return (line_no + LINE_OFFSET, column as u64);
        }
    }
    (1 + LINE_OFFSET, 1)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;

    fn parsed(readme: &str) -> Value {
        match parse_card(readme) {
            Ok(Some(value)) => value,
            other => panic!("expected metadata, got {other:?}"),
        }
    }

    fn error(readme: &str) -> CardError {
        match parse_card(readme) {
            Err(err) => err,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn splits_front_matter_and_body() {
        assert_eq!(
            split_front_matter("---\na: 1\nb: 2\n---\n# Title\ntext\n"),
            Some(("a: 1\nb: 2", "# Title\ntext\n"))
        );
        // Closing line at the very end, without a line break.
        assert_eq!(split_front_matter("---\na: 1\n---"), Some(("a: 1", "")));
        // Empty blocks.
        assert_eq!(split_front_matter("---\n---\nbody"), Some(("", "body")));
        assert_eq!(split_front_matter("---\n\n---\nbody"), Some(("", "body")));
        // A later `---` in the body is not part of the front matter.
        assert_eq!(
            split_front_matter("---\na: 1\n---\nx\n---\ny\n"),
            Some(("a: 1", "x\n---\ny\n"))
        );
    }

    #[test]
    fn crlf_and_bom() {
        let readme = "\u{feff}---\r\nlicense: mit\r\ntags:\r\n- a\r\n---\r\n# Body\r\n";
        assert_eq!(
            split_front_matter(readme),
            Some(("license: mit\r\ntags:\r\n- a", "# Body\r\n"))
        );
        assert_eq!(parsed(readme), json!({"license": "mit", "tags": ["a"]}));
    }

    #[test]
    fn no_front_matter() {
        for readme in [
            "",
            "# Title\n",
            "---",
            "---\n",
            "--- \na: 1\n---\n",
            "text\n---\na: 1\n---\n",
            "---\na: 1\n--- \n",
            "---\na: 1\n----\n",
            "---\na: 1\nno closing line\n",
        ] {
            assert_eq!(split_front_matter(readme), None, "{readme:?}");
            assert_eq!(parse_card(readme), Ok(None), "{readme:?}");
        }
    }

    #[test]
    fn empty_front_matter_is_none() {
        for readme in [
            "---\n---\n",
            "---\n  \n\n---\n",
            "---\n# only a comment\n---\n",
            "---\n~\n---\n",
            "---\nnull\n---\n",
        ] {
            assert_eq!(parse_card(readme), Ok(None), "{readme:?}");
        }
        assert_eq!(parsed("---\n{}\n---\n"), json!({}));
    }

    #[test]
    fn scalars_follow_yaml_1_2() {
        let card = parsed(
            "---\nlanguage: no\na: yes\nb: On\nc: true\nd: False\ndate: 2024-01-31\n\
             ts: 2001-12-14t21:59:43.10-05:00\nn: 12\nf: 0.5\nz: 0755\ninf: .inf\nnan: .NaN\n\
             big: 99999999999999999999999\nq: \"quoted\"\nempty:\n---\n",
        );
        assert_eq!(
            card,
            json!({
                "language": "no", "a": "yes", "b": "On", "c": true, "d": false,
                "date": "2024-01-31", "ts": "2001-12-14t21:59:43.10-05:00", "n": 12, "f": 0.5,
                "z": "0755", "inf": ".inf", "nan": ".nan", "big": 1e23, "q": "quoted",
                "empty": null,
            })
        );
    }

    #[test]
    fn keys_that_look_like_other_types_become_strings() {
        assert_eq!(
            parsed("---\n1: a\ntrue: b\n---\n"),
            json!({"1": "a", "true": "b"})
        );
    }

    #[test]
    fn anchors_and_merge_keys_work() {
        assert_eq!(
            parsed("---\na: &x [1, 2]\nb: *x\nc:\n  <<: {k: v}\n  z: 1\n---\n"),
            json!({"a": [1, 2], "b": [1, 2], "c": {"k": "v", "z": 1}})
        );
    }

    #[test]
    fn invalid_yaml_reports_readme_position() {
        // YAML line 2 is README line 3.
        let err = error("---\nlicense: mit\ntags: [a, b\ndatasets: x\n---\nbody\n");
        let (line, _) = err.position().expect("position");
        assert!((3..=4).contains(&line), "{err}");
        let text = err.to_string();
        assert!(text.contains(&format!("line {line}")), "{text}");
        assert!(text.contains("column"), "{text}");

        let err = error("---\na: b\n  c: d: e\n---\n");
        assert_eq!(err.position(), Some((3, 4)), "{err}");
        assert_eq!(
            err.to_string(),
            "invalid YAML metadata at line 3, column 4: mapping values are not allowed in this context"
        );
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = error("---\na: 1\na: 2\n---\n");
        assert_eq!(err.position(), Some((3, 1)));
        assert!(err.to_string().contains("duplicate"), "{err}");
    }

    #[test]
    fn several_documents_are_an_error() {
        assert!(matches!(
            error("---\na: 1\n--- \nb: 2\n---\n"),
            CardError::Yaml { .. }
        ));
    }

    #[test]
    fn top_level_must_be_a_mapping() {
        let err = error("---\n# list\n\n- a\n- b\n---\n");
        assert_eq!(
            err,
            CardError::NotMapping {
                found: "a list",
                line: 4,
                column: 1
            }
        );
        assert_eq!(
            err.to_string(),
            "YAML metadata must be a mapping of keys to values, found a list at line 4, column 1"
        );
        assert!(matches!(
            error("---\njust text\n---\n"),
            CardError::NotMapping {
                found: "a string",
                line: 2,
                column: 1
            }
        ));
        assert!(matches!(
            error("---\n  42\n---\n"),
            CardError::NotMapping {
                found: "a number",
                column: 3,
                ..
            }
        ));
    }

    #[test]
    fn billion_laughs_is_rejected_quickly() {
        let mut yaml = String::from(
            "---\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for pair in names.windows(2) {
            let (prev, next) = (pair[0], pair[1]);
            let refs = vec![format!("*{prev}"); 9].join(",");
            yaml.push_str(&format!("{next}: &{next} [{refs}]\n"));
        }
        yaml.push_str("---\n");
        let start = Instant::now();
        let err = error(&yaml);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
        assert!(matches!(err, CardError::Yaml { .. }), "{err}");
    }

    #[test]
    fn big_scalar_repeated_through_aliases_is_rejected() {
        // Few aliases, but each copies a 1 MiB string: the copies are what is limited.
        let big = "x".repeat(1024 * 1024);
        let refs = vec!["*s"; 40].join(", ");
        let yaml = format!("---\ns: &s {big}\nl: [{refs}]\n---\n");
        let err = error(&yaml);
        assert!(err.to_string().contains("too much text"), "{err}");
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let flow = format!(
            "---\na: {}{}\n---\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(matches!(error(&flow), CardError::Yaml { .. }));

        let mut block = String::from("---\n");
        for depth in 0..1_000 {
            block.push_str(&" ".repeat(depth));
            block.push_str("k:\n");
        }
        block.push_str("---\n");
        assert!(matches!(error(&block), CardError::Yaml { .. }));

        let flow_maps = format!(
            "---\na: {}{}\n---\n",
            "{b: ".repeat(5_000),
            "}".repeat(5_000)
        );
        assert!(matches!(error(&flow_maps), CardError::Yaml { .. }));
    }

    #[test]
    fn moderate_nesting_is_fine() {
        let yaml = format!("---\na: {}1{}\n---\n", "[".repeat(30), "]".repeat(30));
        assert!(parse_card(&yaml).is_ok());
    }

    #[test]
    fn long_real_world_card_is_accepted() {
        // Shaped like an MTEB leaderboard card: hundreds of results, thousands of metrics.
        let mut yaml = String::from("---\nlicense: mit\nmodel-index:\n- name: m\n  results:\n");
        for task in 0..400 {
            yaml.push_str(&format!(
                "  - task:\n      type: Retrieval\n    dataset:\n      name: MTEB T{task}\n      \
                 type: mteb/t{task}\n      config: default\n      split: test\n    metrics:\n"
            ));
            for metric in 0..10 {
                yaml.push_str(&format!(
                    "    - type: m{metric}\n      value: {task}.{metric}\n"
                ));
            }
        }
        yaml.push_str("---\n");
        let card = parsed(&yaml);
        let results = card["model-index"][0]["results"].as_array().map(Vec::len);
        assert_eq!(results, Some(400));
    }

    #[test]
    fn oversized_front_matter_is_rejected() {
        let yaml = format!("---\na: {}\n---\n", "x".repeat(MAX_FRONT_MATTER_BYTES));
        assert!(matches!(error(&yaml), CardError::TooLarge { .. }));
    }

    #[test]
    fn tags_and_binary_are_read_as_values() {
        assert_eq!(
            parsed("---\nx: !foo bar\ny: !!str 12\nz: !!binary aGVsbG8=\n---\n"),
            json!({"x": "bar", "y": "12", "z": "hello"})
        );
    }
}
