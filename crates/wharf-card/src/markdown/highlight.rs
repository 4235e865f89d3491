//! Server-side syntax highlighting, for fenced code in cards and for the file view.
//!
//! Highlighting uses syntect's Sublime Text grammars with the pure-Rust `fancy-regex` engine
//! and the grammar set that two-face ships prebuilt for that engine (syntect's own set plus
//! TOML, Dockerfile, TypeScript, INI, …). Tokens become `<span class="hl-…">` elements (one class
//! per scope atom, as syntect's `ClassStyle::SpacedPrefixed` writes them), coloured by one
//! stylesheet ([`stylesheet`]); no inline style is ever written.
//!
//! Every line comes out as balanced HTML on its own: the spans still open at the end of a line
//! are closed there and opened again at the start of the next, so the file view can put each
//! line in its own table row (with its `#L12` anchor).
//!
//! Cost is bounded by a [`Budget`]: texts over its bytes or lines, or with a line longer than
//! [`MAX_LINE_BYTES`] (minified files), are not highlighted at all, and lines still left when
//! its time runs out come out as plain text. All text is HTML-escaped either way.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use syntect::highlighting::ThemeSet;
use syntect::html::{ClassStyle, css_for_theme_with_class_style, line_tokens_to_classed_spans};
use syntect::parsing::{ParseState, ScopeStack, SyntaxReference, SyntaxSet};

/// The prefix of every class the highlighter writes.
pub const CLASS_PREFIX: &str = "hl-";
const STYLE: ClassStyle = ClassStyle::SpacedPrefixed {
    prefix: CLASS_PREFIX,
};
/// Longest line highlighted: longer lines are mostly minified or generated files, where
/// grammars are slow and colours help nobody.
pub const MAX_LINE_BYTES: usize = 4096;
/// The light theme the stylesheet is made from.
const THEME: &str = "InspiredGitHub";

/// Grammars, loaded once (each grammar compiles its regexes on first use).
static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(two_face::syntax::extra_newlines);
static STYLESHEET: LazyLock<String> = LazyLock::new(build_stylesheet);

/// Fence names that are neither a grammar's name nor one of its extensions.
const ALIASES: &[(&str, &str)] = &[
    ("shell", "sh"),
    ("console", "sh"),
    ("shell-session", "sh"),
    ("zsh", "sh"),
    ("python3", "py"),
    ("py3", "py"),
    ("jsonl", "json"),
    ("jsonc", "json"),
    ("yml", "yaml"),
    ("node", "js"),
    ("ts", "ts"),
];

/// How much highlighting one page may do.
#[derive(Debug, Clone)]
pub struct Budget {
    bytes: usize,
    lines: usize,
    deadline: Instant,
}

impl Budget {
    /// A budget of `bytes` of text, `lines` lines and `time` of work.
    pub fn new(bytes: usize, lines: usize, time: Duration) -> Budget {
        Budget {
            bytes,
            lines,
            deadline: Instant::now() + time,
        }
    }

    /// The file view's budget: 256 KiB, 5,000 lines, one second.
    pub fn for_file() -> Budget {
        Budget::new(256 * 1024, 5_000, Duration::from_secs(1))
    }

    /// Takes `text` out of the budget if it fits (and has no overlong line).
    fn take(&mut self, text: &str) -> bool {
        let lines = text.lines().count();
        let fits = text.len() <= self.bytes
            && lines <= self.lines
            && text.lines().all(|l| l.len() <= MAX_LINE_BYTES);
        if fits {
            self.bytes -= text.len();
            self.lines -= lines;
        }
        fits
    }

    fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// A text as HTML lines, highlighted or only escaped.
#[derive(Debug, Clone, Default)]
pub struct HtmlLines {
    /// One balanced HTML fragment per line (no line terminators).
    pub lines: Vec<String>,
    /// The grammar's name when the text was highlighted.
    pub language: Option<String>,
}

impl HtmlLines {
    /// Rough heap size, for caches.
    pub fn weight(&self) -> usize {
        self.lines.iter().map(|l| l.len() + 24).sum::<usize>() + 64
    }
}

/// The file at `path` (its name picks the grammar, else a `#!` first line) as HTML lines.
pub fn highlight_file(path: &str, text: &str, budget: &mut Budget) -> HtmlLines {
    let first_line = text.lines().next().unwrap_or("");
    let syntax = syntax_for_file(path, first_line);
    highlight_text(text, syntax, budget)
}

/// The code of a fence whose info string starts with `token` (`python`, `rs`, `bash`, …).
pub fn highlight_fenced(token: &str, code: &str, budget: &mut Budget) -> HtmlLines {
    highlight_text(code, syntax_for_token(token), budget)
}

/// Loads the grammars and compiles those of the commonest model-repo files, so that the first
/// page to show such a file does not pay for it (about 80 ms for Python). Call it from a
/// background thread at start-up.
pub fn warm_up() {
    let mut budget = Budget::for_file();
    for (path, text) in [
        (
            "a.py",
            "import os\ndef f(x: int) -> str:\n    return f\"{x}\"  # c\n",
        ),
        ("a.json", "{\"a\": [1, true, null]}\n"),
        ("a.yaml", "a: [1, b]\n"),
        ("a.sh", "echo \"$HOME\" | grep -q x\n"),
    ] {
        highlight_file(path, text, &mut budget);
    }
    LazyLock::force(&STYLESHEET);
}

/// The stylesheet of the `hl-` classes (a light theme), made once.
pub fn stylesheet() -> &'static str {
    &STYLESHEET
}

fn build_stylesheet() -> String {
    let themes = ThemeSet::load_defaults();
    themes
        .themes
        .get(THEME)
        .and_then(|theme| css_for_theme_with_class_style(theme, STYLE).ok())
        .unwrap_or_default()
}

fn highlight_text(text: &str, syntax: Option<&SyntaxReference>, budget: &mut Budget) -> HtmlLines {
    if let Some(syntax) = syntax
        && budget.take(text)
        && let Some(lines) = highlight_lines(text, syntax, budget)
    {
        return HtmlLines {
            lines,
            language: Some(syntax.name.clone()),
        };
    }
    HtmlLines {
        lines: text.lines().map(escape).collect(),
        language: None,
    }
}

/// A grammar for a file name: the whole name (`Dockerfile`, `Cargo.lock`), its extension, or
/// the first line. Plain text counts as none.
fn syntax_for_file(path: &str, first_line: &str) -> Option<&'static SyntaxReference> {
    let set = &*SYNTAXES;
    let name = path.rsplit('/').next().unwrap_or(path);
    set.find_syntax_by_extension(name)
        .or_else(|| {
            name.rsplit_once('.')
                .and_then(|(_, ext)| set.find_syntax_by_extension(ext))
        })
        .or_else(|| set.find_syntax_by_first_line(first_line))
        .filter(|s| !is_plain(s))
}

/// A grammar for a fence's language token.
fn syntax_for_token(token: &str) -> Option<&'static SyntaxReference> {
    let token = token.trim();
    if token.is_empty() || token.len() > 64 {
        return None;
    }
    let lower = token.to_ascii_lowercase();
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == lower)
        .map_or(lower.as_str(), |(_, ext)| ext);
    SYNTAXES.find_syntax_by_token(name).filter(|s| !is_plain(s))
}

fn is_plain(syntax: &SyntaxReference) -> bool {
    syntax.name == "Plain Text"
}

/// Highlights line by line until the budget's time runs out; the rest stays plain. `None`
/// when the grammar fails on the text.
fn highlight_lines(text: &str, syntax: &SyntaxReference, budget: &Budget) -> Option<Vec<String>> {
    let mut state = ParseState::new(syntax);
    let mut stack = ScopeStack::new();
    let mut out = Vec::new();
    let mut buffer = String::new();
    for (i, line) in text.lines().enumerate() {
        // Checking the clock every line would cost more than some lines do.
        if i % 32 == 0 && budget.expired() {
            out.extend(text.lines().skip(i).map(escape));
            break;
        }
        out.push(highlight_line(line, &mut buffer, &mut state, &mut stack)?);
    }
    Some(out)
}

/// One line as balanced HTML: spans open from earlier lines are reopened first and
/// everything open at its end is closed.
fn highlight_line(
    line: &str,
    buffer: &mut String,
    state: &mut ParseState,
    stack: &mut ScopeStack,
) -> Option<String> {
    // The grammars expect each line with its newline.
    buffer.clear();
    buffer.push_str(line);
    buffer.push('\n');
    let ops = state.parse_line(buffer, &SYNTAXES).ok()?;
    let mut html = String::with_capacity(line.len() * 4);
    let reopened = stack.len();
    for scope in stack.as_slice() {
        open_span(&mut html, &scope.build_string());
    }
    let (body, delta) = line_tokens_to_classed_spans(buffer, &ops, STYLE, stack).ok()?;
    if line.is_empty() {
        return Some(String::new());
    }
    html.push_str(body.trim_end_matches('\n'));
    html.retain(|c| c != '\n');
    let open = (reopened as isize + delta).max(0);
    for _ in 0..open {
        html.push_str("</span>");
    }
    Some(html)
}

/// `<span class="hl-a hl-b">` for the scope `a.b`, as syntect writes it.
fn open_span(html: &mut String, scope: &str) {
    html.push_str("<span class=\"");
    for (i, atom) in scope.split('.').enumerate() {
        if i > 0 {
            html.push(' ');
        }
        html.push_str(CLASS_PREFIX);
        html.push_str(&escape(atom));
    }
    html.push_str("\">");
}

/// Text escaped for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> HtmlLines {
        highlight_file(path, text, &mut Budget::for_file())
    }

    /// Opening and closing spans of each line match.
    fn balanced(line: &str) -> bool {
        line.matches("<span").count() == line.matches("</span>").count()
    }

    #[test]
    fn python_is_highlighted_with_prefixed_classes() {
        let out = file("src/model.py", "def f(x):\n    return \"s\"  # note\n");
        assert_eq!(out.language.as_deref(), Some("Python"));
        assert_eq!(out.lines.len(), 2);
        assert!(out.lines[0].contains("hl-keyword") || out.lines[0].contains("hl-storage"));
        assert!(out.lines[1].contains("hl-string"), "{:?}", out.lines);
        assert!(out.lines[1].contains("hl-comment"), "{:?}", out.lines);
        assert!(out.lines.iter().all(|l| balanced(l)), "{:?}", out.lines);
        assert!(!out.lines.concat().contains("style="));
    }

    #[test]
    fn spans_open_across_lines_are_closed_and_reopened() {
        let out = file("a.py", "x = \"\"\"one\n<two>\nthree\"\"\"\ny = 1\n");
        assert!(out.lines.iter().all(|l| balanced(l)), "{:?}", out.lines);
        assert!(out.lines[1].contains("hl-string"), "{:?}", out.lines);
        assert!(out.lines[1].contains("&lt;two&gt;"), "{:?}", out.lines);
    }

    #[test]
    fn markup_in_code_is_escaped() {
        let text = "s = '<script>alert(1)</script>'\n# <img src=x onerror=alert(1)>\n";
        let out = file("x.py", text);
        let html = out.lines.concat();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        let plain = file("notes.unknownext", text);
        assert_eq!(plain.language, None);
        assert!(!plain.lines.concat().contains("<script"));
    }

    #[test]
    fn grammars_are_found_by_name_extension_and_first_line() {
        for (path, lang) in [
            ("config.json", "JSON"),
            ("a/b/settings.yaml", "YAML"),
            ("README.md", "Markdown"),
            ("run.sh", "Bourne Again Shell (bash)"),
            ("pyproject.toml", "TOML"),
            ("app.js", "JavaScript"),
            ("lib.rs", "Rust"),
            ("Dockerfile", "Dockerfile"),
        ] {
            assert_eq!(file(path, "x\n").language.as_deref(), Some(lang), "{path}");
        }
        assert_eq!(
            file("train", "#!/usr/bin/env python3\nprint(1)\n")
                .language
                .as_deref(),
            Some("Python")
        );
        assert_eq!(file("notes.txt", "hello\n").language, None);
        assert_eq!(file("LICENSE", "MIT\n").language, None);
    }

    #[test]
    fn fence_tokens_and_aliases() {
        let mut budget = Budget::for_file();
        for token in [
            "python", "py", "Python", "bash", "shell", "json", "yaml", "rust", "toml",
        ] {
            let out = highlight_fenced(token, "x = 1\n", &mut budget);
            assert!(out.language.is_some(), "{token}");
        }
        for token in ["", "text", "no-such-language", "<script>"] {
            assert_eq!(highlight_fenced(token, "x\n", &mut budget).language, None);
        }
    }

    #[test]
    fn budget_limits_what_is_highlighted() {
        let mut budget = Budget::new(20, 100, Duration::from_secs(1));
        assert!(
            highlight_fenced("py", "x = 1\n", &mut budget)
                .language
                .is_some()
        );
        let over = highlight_fenced("py", "y = 'a long line of text'\n", &mut budget);
        assert_eq!(over.language, None);
        assert_eq!(over.lines, vec!["y = &#39;a long line of text&#39;"]);
        let long = format!("x = '{}'\n", "a".repeat(MAX_LINE_BYTES));
        assert_eq!(file("a.py", &long).language, None);
        let many = "x = 1\n".repeat(5_001);
        assert_eq!(file("a.py", &many).language, None);
    }

    #[test]
    fn an_expired_budget_leaves_the_rest_plain() {
        let mut budget = Budget::new(1 << 20, 1 << 20, Duration::ZERO);
        let out = highlight_fenced("py", "x = 1\ny = '<b>'\n", &mut budget);
        assert_eq!(out.lines, vec!["x = 1", "y = &#39;&lt;b&gt;&#39;"]);
    }

    #[test]
    fn empty_lines_stay_empty_and_crlf_is_handled() {
        let out = file("a.py", "a = 1\r\n\r\nb = 2\r\n");
        assert_eq!(out.lines.len(), 3);
        assert_eq!(out.lines[1], "");
        assert!(!out.lines.concat().contains('\r'));
    }

    #[test]
    fn stylesheet_styles_prefixed_classes_only() {
        let css = stylesheet();
        assert!(css.contains(".hl-comment"), "{css}");
        assert!(css.contains(".hl-string"), "{css}");
        assert!(!css.contains("url("));
    }
}
