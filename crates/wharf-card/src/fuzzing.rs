//! Property checks for the fuzz targets of this crate (`fuzz/fuzz_targets/front_matter.rs`,
//! `markdown.rs`), shared with the corpus replay in `tests/fuzz_corpus.rs`. Not part of Wharf's
//! API. Each check panics when a property fails.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use wharf_core::RepoType;

use crate::markdown::highlight::Budget;
use crate::markdown::render_with_budget;
use crate::{EMPTY_METADATA_WARNING, derive_info, parse_card, split_front_matter, validate_card};

/// File lists the derived tags are computed against (none, a transformers checkpoint, a GGUF).
const FILE_SETS: [&[&str]; 3] = [
    &[],
    &["config.json", "tokenizer_config.json", "model.safetensors"],
    &["sub/model.Q4_K_M.gguf", "pytorch_model-00001.bin"],
];

/// A README as the Hub reads it: front matter split, YAML parsed into a mapping (or nothing),
/// the validation answer agreeing with the parse, and derived tags without repeats ending in
/// `region:us`. Work is bounded by the parser's budgets (the fuzzer's `-timeout` and
/// `-rss_limit_mb` catch anything that is not).
pub fn check_front_matter(data: &[u8]) {
    let readme = String::from_utf8_lossy(data);
    let split = split_front_matter(&readme);
    if let Some((yaml, body)) = split {
        assert!(readme.trim_start_matches('\u{feff}').starts_with("---"));
        assert!(readme.ends_with(body) && readme.contains(yaml));
    }
    let parsed = parse_card(&readme);
    match &parsed {
        Ok(Some(card)) => assert!(card.is_object(), "{card}"),
        Ok(None) => {}
        Err(err) => assert!(split.is_some(), "no front matter but an error: {err}"),
    }
    check_validation(&readme, &parsed);
    let card = parsed.ok().flatten();
    for (files, model_type) in FILE_SETS.iter().zip([None, Some("bert"), Some(" ")]) {
        let files: Vec<String> = files.iter().map(|f| (*f).to_owned()).collect();
        check_derived(card.as_ref(), &files, model_type);
    }
}

/// `validate_card` reports exactly the parse error, or warns about missing metadata.
fn check_validation(readme: &str, parsed: &Result<Option<Value>, crate::CardError>) {
    let validation = validate_card(readme, RepoType::Model);
    match parsed {
        Err(err) => assert_eq!(validation.errors, vec![err.to_string()]),
        Ok(None) => {
            assert!(validation.errors.is_empty());
            assert_eq!(validation.warnings, vec![EMPTY_METADATA_WARNING.to_owned()]);
        }
        Ok(Some(_)) => {}
    }
}

fn check_derived(card: Option<&Value>, files: &[String], model_type: Option<&str>) {
    let info = derive_info(card, files, model_type);
    let unique: HashSet<&String> = info.tags.iter().collect();
    assert_eq!(
        unique.len(),
        info.tags.len(),
        "repeated tag in {:?}",
        info.tags
    );
    assert_eq!(info.tags.last().map(String::as_str), Some("region:us"));
    assert!(
        info.tags.iter().all(|t| !t.trim().is_empty()),
        "{:?}",
        info.tags
    );
    for name in [&info.pipeline_tag, &info.library_name]
        .into_iter()
        .flatten()
    {
        assert!(!name.trim().is_empty());
    }
}

/// [`render_markdown`](crate::render_markdown): whatever the Markdown, the HTML holds no script-capable element, no
/// `on*` attribute, no `javascript:`/`vbscript:`/`data:` URL, no `style` other than a table
/// cell's alignment, only `user-content-` ids, and `rel="noopener noreferrer"` on every link.
///
/// Highlighting gets a budget of a few short lines: highlighted spans still reach the sanitiser
/// on every input with a fenced block, and the regex engine of the highlighter, at ~4 ms per
/// block under coverage instrumentation, no longer holds the run to a few hundred inputs a
/// second. (The full card budget is what `render_markdown` uses and what the unit tests cover.)
pub fn check_markdown(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let budget = Budget::new(160, 3, Duration::from_millis(100));
    let html = render_with_budget(&text, budget);
    if let Err(problem) = check_html(&html) {
        panic!("{problem}\nmarkdown: {text:?}\nhtml: {html:?}");
    }
}

/// Elements that run script, load other documents, change how what follows is parsed or
/// submit data; none may survive sanitising.
const FORBIDDEN_TAGS: [&str; 22] = [
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "applet",
    "frame",
    "frameset",
    "form",
    "base",
    "meta",
    "link",
    "noscript",
    "template",
    "textarea",
    "title",
    "xmp",
    "plaintext",
    "noembed",
    "noframes",
    "svg",
    "math",
];

/// Attributes whose value a browser resolves as a URL.
const URL_ATTRIBUTES: [&str; 12] = [
    "href",
    "src",
    "cite",
    "action",
    "formaction",
    "poster",
    "background",
    "longdesc",
    "usemap",
    "xlink:href",
    "srcset",
    "data",
];

/// The only `style` values kept (table column alignment).
const TABLE_STYLES: [&str; 3] = [
    "text-align: left",
    "text-align: center",
    "text-align: right",
];

/// One start or end tag as a browser's tokenizer reads it.
struct Tag {
    name: String,
    end: bool,
    attributes: Vec<(String, String)>,
}

/// Scans `html` the way a browser's tokenizer splits it into tags (HTML Standard §13.2.5:
/// tag open, tag name, attribute name and value states) and checks every tag.
pub fn check_html(html: &str) -> Result<(), String> {
    let mut scanner = Scanner { html, pos: 0 };
    while let Some(tag) = scanner.next_tag()? {
        check_tag(&tag)?;
    }
    Ok(())
}

fn check_tag(tag: &Tag) -> Result<(), String> {
    if FORBIDDEN_TAGS.contains(&tag.name.as_str()) {
        return Err(format!("<{}> survived", tag.name));
    }
    if tag.end {
        return Ok(());
    }
    for (name, value) in &tag.attributes {
        check_attribute(&tag.name, name, value)?;
    }
    let has = |attr: &str| {
        tag.attributes
            .iter()
            .find(|(n, _)| n == attr)
            .map(|(_, v)| v)
    };
    if tag.name == "a"
        && has("href").is_some()
        && has("rel").map(String::as_str) != Some("noopener noreferrer")
    {
        return Err("a link without rel=\"noopener noreferrer\"".to_owned());
    }
    Ok(())
}

fn check_attribute(tag: &str, name: &str, raw_value: &str) -> Result<(), String> {
    let value = decode_attribute(raw_value)
        .ok_or_else(|| format!("unexpected character reference in {name}={raw_value:?}"))?;
    if name.starts_with("on") {
        return Err(format!("event handler {name} survived"));
    }
    if name == "style" {
        let kept = matches!(tag, "th" | "td")
            && TABLE_STYLES.contains(&value.trim().trim_end_matches(';').trim());
        if !kept {
            return Err(format!("style={value:?} survived on <{tag}>"));
        }
    }
    if URL_ATTRIBUTES.contains(&name) {
        if let Some(scheme) = url_scheme(&value).filter(|s| is_script_scheme(s)) {
            return Err(format!("{scheme}: URL in {name}={value:?}"));
        }
        if value.starts_with('#') && value.len() > 1 && !value.starts_with("#user-content-") {
            return Err(format!("fragment link {value:?} not prefixed"));
        }
    }
    if name == "id" && !value.starts_with("user-content-") {
        return Err(format!("id={value:?} not prefixed"));
    }
    Ok(())
}

fn is_script_scheme(scheme: &str) -> bool {
    matches!(scheme, "javascript" | "vbscript" | "data")
}

/// The lowercased scheme a browser's URL parser finds in `url`: leading and trailing C0
/// controls and spaces are trimmed and tabs and newlines removed anywhere first.
fn url_scheme(url: &str) -> Option<String> {
    let cleaned: String = url
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let (scheme, _) = cleaned.split_once(':')?;
    let mut chars = scheme.chars();
    let first_is_alpha = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_is_alpha && rest_ok).then(|| scheme.to_ascii_lowercase())
}

/// Decodes the character references a serialiser writes in attribute values. Any other `&`
/// sequence is refused (`None`): the sanitiser's output escapes every `&`, so another one
/// would mean a browser could decode something the check did not see.
fn decode_attribute(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(rest.get(..at)?);
        let after = rest.get(at..)?;
        let (decoded, len) = [
            ("&amp;", '&'),
            ("&quot;", '"'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&nbsp;", '\u{a0}'),
            ("&#39;", '\''),
        ]
        .iter()
        .find(|(entity, _)| after.starts_with(entity))
        .map(|(entity, c)| (*c, entity.len()))?;
        out.push(decoded);
        rest = after.get(len..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// A cursor over HTML that yields tags and skips text.
struct Scanner<'a> {
    html: &'a str,
    pos: usize,
}

const fn is_html_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.html.as_bytes().get(self.pos).copied()
    }

    /// The next tag, skipping text; `Err` for markup a sanitiser never writes (comments,
    /// declarations, a tag cut off by the end of the input).
    fn next_tag(&mut self) -> Result<Option<Tag>, String> {
        loop {
            let Some(offset) = self.html.get(self.pos..).and_then(|s| s.find('<')) else {
                return Ok(None);
            };
            self.pos += offset + 1;
            let end = self.peek() == Some(b'/');
            let name_at = self.pos + usize::from(end);
            match self.html.as_bytes().get(name_at) {
                Some(c) if c.is_ascii_alphabetic() => {
                    self.pos = name_at;
                    return self.tag(end).map(Some);
                }
                Some(b'!' | b'?') if !end => {
                    return Err("a comment, declaration or processing instruction".to_owned());
                }
                // A `<` that opens nothing is text to a browser too.
                _ => {}
            }
        }
    }

    fn tag(&mut self, end: bool) -> Result<Tag, String> {
        let name = self.take_while(|b| !is_html_space(b) && b != b'/' && b != b'>');
        let mut tag = Tag {
            name: name.to_ascii_lowercase(),
            end,
            attributes: Vec::new(),
        };
        loop {
            self.skip(|b| is_html_space(b) || b == b'/');
            match self.peek() {
                None => return Err(format!("<{}> cut off by the end of the HTML", tag.name)),
                Some(b'>') => {
                    self.pos += 1;
                    return Ok(tag);
                }
                Some(_) => {
                    let attribute = self.attribute();
                    tag.attributes.push(attribute);
                }
            }
        }
    }

    /// One attribute: a name (its first character may be `=`), then optionally `=` and a
    /// quoted or unquoted value.
    fn attribute(&mut self) -> (String, String) {
        let first = self.pos;
        self.pos += 1;
        self.skip(|b| !is_html_space(b) && !matches!(b, b'/' | b'>' | b'='));
        let name = self
            .html
            .get(first..self.pos)
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.skip(is_html_space);
        if self.peek() != Some(b'=') {
            return (name, String::new());
        }
        self.pos += 1;
        self.skip(is_html_space);
        let value = match self.peek() {
            Some(quote @ (b'"' | b'\'')) => {
                self.pos += 1;
                let value = self.take_while(|b| b != quote);
                self.pos = (self.pos + 1).min(self.html.len());
                value
            }
            _ => self.take_while(|b| !is_html_space(b) && b != b'>'),
        };
        (name, value.to_owned())
    }

    fn skip(&mut self, keep_going: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&keep_going) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, keep_going: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        self.skip(keep_going);
        let html: &'a str = self.html;
        html.get(start..self.pos).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_check_finds_what_it_must() {
        for bad in [
            "<p>x</p><SCRIPT>alert(1)</SCRIPT>",
            "<img src=x onerror=alert(1)>",
            "<a href=\" java\tscript:alert(1)\" rel=\"noopener noreferrer\">x</a>",
            "<a href='JavaScript:x' rel=\"noopener noreferrer\">x</a>",
            "<img src=\"data:image/svg+xml,x\">",
            "<p style=\"color: red\">x</p>",
            "<td style=\"text-align: left; color: red\">x</td>",
            "<iframe/src=x>",
            "<div id=\"app\">x</div>",
            "<a href=\"https://x\">x</a>",
            "<a href=\"#top\" rel=\"noopener noreferrer\">x</a>",
            "<img src=\"javascript&colon;x\">",
            "<!-- x -->",
            "<p",
            "</svg>",
        ] {
            assert!(check_html(bad).is_err(), "{bad}");
        }
        for good in [
            "<p>a &lt;script&gt; b</p>",
            "<img alt=\"<script>\" src=\"x.png\">",
            "<th style=\"text-align: left\">a</th>",
            "<a href=\"#user-content-1\" rel=\"noopener noreferrer\">1</a>",
            "<a href=\"/javascript:x\" rel=\"noopener noreferrer\">x</a>",
            "<p>javascript:alert(1) onload= 1 < 2</p>",
            "<code class=\"language-js\">x</code>",
        ] {
            assert_eq!(check_html(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn checks_pass_on_ordinary_cards() {
        check_front_matter(b"---\nlicense: mit\ntags: [a, region:us]\n---\n# Title\n");
        check_markdown(
            b"# T\n\n[x](https://a.b) <script>alert(1)</script>\n\n| a |\n|:-|\n| 1 |\n",
        );
    }
}
