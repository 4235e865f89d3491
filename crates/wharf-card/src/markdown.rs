//! Markdown to safe HTML, for model cards and other Markdown files shown in the web interface.
//!
//! The text is rendered by pulldown-cmark with GitHub's extensions (tables, strikethrough, task
//! lists, footnotes, alerts) and the result is sanitised by ammonia, because Markdown allows raw
//! HTML and cards are written by anyone who can push. What survives:
//!
//! - ordinary formatting tags (no `script`, `style`, `iframe`, `object`, `embed`, `form`, …;
//!   the content of the dangerous ones is dropped with them),
//! - no `on*` event attributes and no `style` attributes, except the `text-align` that table
//!   columns need,
//! - URLs with safe schemes only (`http`, `https`, `mailto`, …; never `javascript:` or `data:`),
//!   relative URLs left as they are so the caller can rewrite them to the repository's files,
//! - links get `rel="noopener noreferrer"`,
//! - fenced code keeps `class="language-xxx"` on `<code>`, alerts keep their
//!   `markdown-alert-*` class, footnotes keep theirs,
//! - fenced code in a known language is highlighted ([`highlight`]) *before* sanitising, so
//!   the highlighter's `<span class="hl-…">` pass through the same filter as everything else:
//!   `span` keeps only `hl-` classes, and never a `style`,
//! - `id` attributes are prefixed with `user-content-` (and `#fragment` links rewritten to
//!   match), so a card can never clobber the page's own element ids.
//!
//! Front matter is not stripped here: render the body returned by
//! [`split_front_matter`](crate::split_front_matter).

pub mod highlight;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::LazyLock;
use std::time::Duration;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd, html};

use highlight::{Budget, CLASS_PREFIX};

/// Prefix given to every `id` the document carries.
const ID_PREFIX: &str = "user-content-";

/// The sanitiser, configured once.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(build_sanitizer);

fn build_sanitizer() -> ammonia::Builder<'static> {
    let mut b = ammonia::Builder::default();
    b.add_tags(["input"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        // Task-list boxes are never editable.
        .set_tag_attribute_value("input", "disabled", "")
        .add_tag_attributes("code", ["class"])
        .add_tag_attributes("span", ["class"])
        .add_tag_attributes("blockquote", ["class"])
        .add_tag_attributes("div", ["class", "id"])
        .add_tag_attributes("sup", ["class", "id"])
        .add_tag_attributes("li", ["id"])
        .add_tag_attributes("a", ["id"])
        .add_tag_attributes("th", ["style"])
        .add_tag_attributes("td", ["style"])
        .add_clean_content_tags([
            "iframe", "object", "embed", "applet", "noscript", "template", "form", "textarea",
            "select", "frameset", "frame",
        ])
        .link_rel(Some("noopener noreferrer"))
        .url_relative(ammonia::UrlRelative::PassThrough)
        .strip_comments(true)
        .attribute_filter(filter_attribute);
    b
}

/// Keeps only the attribute values this renderer produces itself.
fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    match (element, attribute) {
        ("input", "type") => (value == "checkbox").then_some(Cow::Borrowed(value)),
        (_, "class") => {
            let kept: Vec<&str> = value
                .split_ascii_whitespace()
                .filter(|c| allowed_class(element, c))
                .collect();
            if kept.is_empty() {
                None
            } else {
                Some(Cow::Owned(kept.join(" ")))
            }
        }
        ("th" | "td", "style") => {
            let v = value.trim().trim_end_matches(';').trim();
            matches!(
                v,
                "text-align: left" | "text-align: center" | "text-align: right"
            )
            .then_some(Cow::Borrowed(value))
        }
        (_, "style") => None,
        (_, "id") => {
            if value.is_empty() {
                None
            } else if value.starts_with(ID_PREFIX) {
                Some(Cow::Borrowed(value))
            } else {
                Some(Cow::Owned(format!("{ID_PREFIX}{value}")))
            }
        }
        ("a", "href") => match value.strip_prefix('#') {
            Some(fragment) if !fragment.is_empty() && !fragment.starts_with(ID_PREFIX) => {
                Some(Cow::Owned(format!("#{ID_PREFIX}{fragment}")))
            }
            _ => Some(Cow::Borrowed(value)),
        },
        _ => Some(Cow::Borrowed(value)),
    }
}

fn allowed_class(element: &str, class: &str) -> bool {
    match element {
        "code" => class.strip_prefix("language-").is_some_and(|lang| {
            !lang.is_empty()
                && lang.len() <= 64
                && lang.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'#' | b'.')
                })
        }),
        "blockquote" => matches!(
            class,
            "markdown-alert-note"
                | "markdown-alert-tip"
                | "markdown-alert-important"
                | "markdown-alert-warning"
                | "markdown-alert-caution"
        ),
        "span" => class.strip_prefix(CLASS_PREFIX).is_some_and(|atom| {
            !atom.is_empty()
                && atom.len() <= 64
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+'))
        }),
        "div" => class == "footnote-definition",
        "sup" => matches!(class, "footnote-reference" | "footnote-definition-label"),
        _ => false,
    }
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_GFM
}

/// What one document may spend on highlighting its code blocks: highlighted HTML is about
/// fifteen times its text, and sanitising it is the slow part.
fn card_budget() -> Budget {
    Budget::new(64 * 1024, 1_500, Duration::from_millis(500))
}

/// Renders Markdown to sanitised HTML, safe to embed in a page as it is.
pub fn render_markdown(text: &str) -> String {
    render_with_budget(text, card_budget())
}

/// [`render_markdown`] with `budget` for highlighting code blocks (past it, blocks stay plain).
pub(crate) fn render_with_budget(text: &str, budget: Budget) -> String {
    let parser = Parser::new_ext(text, options());
    let events = HighlightedCode {
        inner: parser,
        pending: VecDeque::new(),
        budget,
    };
    let mut raw = String::with_capacity(text.len().saturating_mul(3) / 2);
    html::push_html(&mut raw, events);
    SANITIZER.clean(&raw).to_string()
}

/// Replaces each fenced code block in a known language with its highlighted HTML; other
/// blocks pass through unchanged.
struct HighlightedCode<'a, I> {
    inner: I,
    /// Events taken from `inner` to look at, given back as they were.
    pending: VecDeque<Event<'a>>,
    budget: Budget,
}

impl<'a, I: Iterator<Item = Event<'a>>> Iterator for HighlightedCode<'a, I> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        if let Some(event) = self.pending.pop_front() {
            return Some(event);
        }
        match self.inner.next()? {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => Some(self.fenced(info)),
            other => Some(other),
        }
    }
}

impl<'a, I: Iterator<Item = Event<'a>>> HighlightedCode<'a, I> {
    /// The block opened by a fence with `info`: one HTML event when highlighted, else the
    /// start event (the block's other events are queued in `pending`).
    fn fenced(&mut self, info: CowStr<'a>) -> Event<'a> {
        let mut code = String::new();
        let mut rest = Vec::new();
        for event in self.inner.by_ref() {
            match event {
                Event::Text(text) => {
                    code.push_str(&text);
                    rest.push(Event::Text(text));
                }
                Event::End(TagEnd::CodeBlock) => {
                    rest.push(Event::End(TagEnd::CodeBlock));
                    break;
                }
                other => rest.push(other),
            }
        }
        // As pulldown-cmark does: the language is the info string's first word.
        let token = info.split_ascii_whitespace().next().unwrap_or("");
        let lines = highlight::highlight_fenced(token, &code, &mut self.budget);
        if lines.language.is_none() {
            self.pending.extend(rest);
            return Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info)));
        }
        let mut html = format!(
            "<pre><code class=\"language-{}\">",
            highlight::escape(token)
        );
        for line in &lines.lines {
            html.push_str(line);
            html.push('\n');
        }
        html.push_str("</code></pre>\n");
        Event::Html(html.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_tags_are_removed_with_their_content() {
        let html = render_markdown(
            "Hello <script>alert('x')</script> world\n\n<script>\nalert(1)\n</script>\n",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("alert"), "{html}");
        assert!(html.contains("Hello"), "{html}");
    }

    #[test]
    fn event_handlers_are_removed() {
        let html = render_markdown("<img src=\"x.png\" onerror=\"alert(1)\" alt=\"pic\">");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("alert"), "{html}");
        assert!(html.contains("<img"), "{html}");
        assert!(html.contains("src=\"x.png\""), "{html}");
        let html = render_markdown("<p onclick=\"evil()\" onmouseover=\"evil()\">hi</p>");
        assert!(!html.contains("evil"), "{html}");
    }

    #[test]
    fn javascript_links_are_neutralised() {
        let html = render_markdown("[x](javascript:alert(1))");
        assert!(!html.contains("javascript"), "{html}");
        let html = render_markdown("<a href=\"javascript:alert(1)\">click</a>");
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains("click"), "{html}");
        let html = render_markdown("<a href=\"JaVaScRiPt:alert(1)\">click</a>");
        assert!(!html.to_lowercase().contains("javascript"), "{html}");
        let html = render_markdown("[x](data:text/html;base64,PHNjcmlwdD4=)");
        assert!(!html.contains("data:"), "{html}");
        let html = render_markdown("![x](data:image/svg+xml;base64,PHN2Zz4=)");
        assert!(!html.contains("data:"), "{html}");
    }

    #[test]
    fn embedding_tags_are_removed() {
        for input in [
            "<iframe src=\"https://evil.example\"></iframe>",
            "<object data=\"x.swf\"></object>",
            "<embed src=\"x.swf\">",
            "<form action=\"https://evil.example\"><input type=\"submit\"></form>",
            "<style>body{display:none}</style>",
        ] {
            let html = render_markdown(input);
            for bad in [
                "<iframe", "<object", "<embed", "<form", "<style", "submit", "display",
            ] {
                assert!(!html.contains(bad), "{input} -> {html}");
            }
        }
    }

    #[test]
    fn links_get_rel_and_relative_urls_stay_relative() {
        let html =
            render_markdown("[docs](https://example.com) and [cfg](config.json) ![i](./img.png)");
        assert!(
            html.contains("<a href=\"https://example.com\" rel=\"noopener noreferrer\">docs</a>"),
            "{html}"
        );
        assert!(html.contains("href=\"config.json\""), "{html}");
        assert!(html.contains("src=\"./img.png\""), "{html}");
    }

    #[test]
    fn tables_render_with_alignment() {
        let html = render_markdown("| a | b |\n|:-|:-:|\n| 1 | 2 |\n");
        assert!(html.contains("<table>"), "{html}");
        assert!(
            html.contains("<th style=\"text-align: left\">a</th>"),
            "{html}"
        );
        assert!(
            html.contains("<td style=\"text-align: center\">2</td>"),
            "{html}"
        );
        let html =
            render_markdown("<table><tr><td style=\"background:url(x)\">c</td></tr></table>");
        assert!(!html.contains("style"), "{html}");
    }

    #[test]
    fn code_blocks_keep_their_language() {
        let html = render_markdown("```nolang\nprint('<b>')\n```\n");
        assert!(
            html.contains("<pre><code class=\"language-nolang\">print('&lt;b&gt;')"),
            "{html}"
        );
        let html = render_markdown("```python\nprint('<b>')\n```\n");
        assert!(
            html.contains("<pre><code class=\"language-python\">"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;"), "{html}");
        let html = render_markdown("<code class=\"evil language-rust\">x</code>");
        assert!(html.contains("<code class=\"language-rust\">"), "{html}");
        let html = render_markdown("<p class=\"language-x\">p</p>");
        assert!(!html.contains("class"), "{html}");
    }

    #[test]
    fn gfm_extensions() {
        let html = render_markdown("~~gone~~\n\n- [x] done\n- [ ] todo\n");
        assert!(html.contains("<del>gone</del>"), "{html}");
        assert!(html.contains("type=\"checkbox\""), "{html}");
        assert!(html.contains("checked"), "{html}");
        assert!(html.contains("disabled"), "{html}");
        let html = render_markdown("> [!NOTE]\n> Heads up\n");
        assert!(html.contains("class=\"markdown-alert-note\""), "{html}");
        let html = render_markdown("<input type=\"text\" value=\"x\">");
        assert!(!html.contains("type=\"text\""), "{html}");
        assert!(!html.contains("value"), "{html}");
    }

    #[test]
    fn footnotes_link_to_prefixed_ids() {
        let html = render_markdown("Text[^1].\n\n[^1]: The note.\n");
        assert!(html.contains("href=\"#user-content-1\""), "{html}");
        assert!(html.contains("id=\"user-content-1\""), "{html}");
        let html = render_markdown("<div id=\"app\">x</div>");
        assert!(html.contains("id=\"user-content-app\""), "{html}");
    }

    #[test]
    fn fenced_code_is_highlighted_and_sanitised() {
        let html = render_markdown("```python\nimport os\nx = '<script>alert(1)</script>'\n```\n");
        assert!(
            html.starts_with("<pre><code class=\"language-python\">"),
            "{html}"
        );
        assert!(html.contains("<span class=\"hl-"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("style="), "{html}");
        // Unknown languages and indented code stay as they were.
        let html = render_markdown("```nolang\n<b>\n```\n\n    <i>\n");
        assert!(
            html.contains("<code class=\"language-nolang\">&lt;b&gt;"),
            "{html}"
        );
        assert!(html.contains("<pre><code>&lt;i&gt;"), "{html}");
        assert!(!html.contains("hl-"), "{html}");
    }

    #[test]
    fn span_classes_are_only_the_highlighters() {
        let html = render_markdown(
            "<span class=\"hl-keyword evil hl-<x> hl-\" style=\"color:red\" onclick=\"x()\">k</span>",
        );
        assert!(
            html.contains("<span class=\"hl-keyword\">k</span>"),
            "{html}"
        );
        let html = render_markdown("<span class=\"evil\">k</span><pre class=\"hl-x\">p</pre>");
        assert!(!html.contains("class"), "{html}");
    }

    #[test]
    fn code_highlighting_has_a_budget() {
        let block = format!("```py\n{}```\n\n", "x = 1\n".repeat(1_000));
        let html = render_markdown(&block.repeat(3));
        assert_eq!(html.matches("<pre><code").count(), 3, "{html}");
        assert_eq!(
            html.matches("<pre><code class=\"language-py\"><span")
                .count(),
            1
        );
    }

    #[test]
    fn plain_text_is_escaped() {
        let html = render_markdown("a < b & c > d");
        assert!(html.contains("a &lt; b &amp; c &gt; d"), "{html}");
    }
}
