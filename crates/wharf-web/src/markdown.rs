//! Model cards as HTML: the hub's sanitized markdown rendering, with relative links made to
//! point into the repository (images to `resolve/…`, links to `blob/…`), as the Hub does.

use crate::cache::{CARDS, blocking};
use crate::error::WebResult;

/// The README without its YAML front matter (shown as tags and a side panel instead); where
/// the front matter ends is `wharf_card`'s to say.
pub fn card_body(readme: &str) -> &str {
    match wharf_card::split_front_matter(readme) {
        Some((_, body)) => body,
        None => readme,
    }
}

/// Sanitized card HTML with its relative links pointing into the repository at `rev`.
pub fn link_into_repo(html: &str, repo_url: &str, rev: &str) -> String {
    rewrite_relative(html, repo_url, &crate::format::segment(rev))
}

/// The body of the README with blob id `blob_oid` (text `readme`), rendered (highlighted and
/// sanitised, off the async workers) once per blob, its links made to point into the repo.
pub async fn render_card(
    blob_oid: &str,
    readme: String,
    repo_url: &str,
    rev: &str,
) -> WebResult<String> {
    let html = match CARDS.get(blob_oid) {
        Some(html) => html,
        None => {
            let html = blocking(move || wharf_hub::render_markdown(card_body(&readme))).await?;
            let size = html.len();
            CARDS.insert(blob_oid.to_string(), html, size)
        }
    };
    Ok(link_into_repo(&html, repo_url, rev))
}

/// Whether a URL has no scheme, host or absolute path (so it is relative to the card).
fn is_relative(url: &str) -> bool {
    if url.is_empty() || url.starts_with(['/', '#', '?']) {
        return false;
    }
    let scheme_end = url.find(':');
    let first_delim = url.find(['/', '?', '#']);
    match (scheme_end, first_delim) {
        (Some(c), Some(d)) => c > d,
        (Some(_), None) => false,
        _ => true,
    }
}

/// The name of the tag that an attribute at `pos` belongs to, if it is inside a tag.
fn tag_at(html: &str, pos: usize) -> Option<&str> {
    let before = &html[..pos];
    let open = before.rfind('<')?;
    if before.rfind('>').is_some_and(|close| close > open) {
        return None;
    }
    let name = &before[open + 1..];
    let end = name
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(name.len());
    Some(&name[..end])
}

/// Prefixes relative `src` of `<img>` and `href` of `<a>` (sanitized HTML: attributes are
/// always double-quoted, and a quote inside text is escaped, so `attr="` only starts a value).
pub fn rewrite_relative(html: &str, repo_url: &str, rev: &str) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    let mut consumed = 0;
    loop {
        let next = [(" src=\"", "img", "resolve"), (" href=\"", "a", "blob")]
            .iter()
            .filter_map(|(attr, tag, kind)| rest.find(attr).map(|p| (p, *attr, *tag, *kind)))
            .min_by_key(|(p, ..)| *p);
        let Some((pos, attr, tag, kind)) = next else {
            out.push_str(rest);
            return out;
        };
        let value_start = pos + attr.len();
        out.push_str(&rest[..value_start]);
        let value = &rest[value_start..];
        let value_end = value.find('"').unwrap_or(value.len());
        let url = &value[..value_end];
        if tag_at(html, consumed + pos).is_some_and(|t| t.eq_ignore_ascii_case(tag))
            && is_relative(url)
        {
            let clean = url.trim_start_matches("./");
            out.push_str(&format!("{repo_url}/{kind}/{rev}/{clean}"));
        } else {
            out.push_str(url);
        }
        consumed += value_start + value_end;
        rest = &value[value_end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_front_matter() {
        assert_eq!(card_body("---\nlicense: mit\n---\n# Hi\n"), "# Hi\n");
        assert_eq!(card_body("# Hi\n---\n"), "# Hi\n---\n");
        assert_eq!(card_body("---\nunterminated\n"), "---\nunterminated\n");
        assert_eq!(card_body("\u{feff}---\r\na: 1\r\n---\r\nbody"), "body");
    }

    #[test]
    fn rewrites_only_relative_urls_of_images_and_links() {
        let html = r##"<p><img src="img/a.png" alt="x"> <img src="https://e.com/b.png"> <a href="./docs/x.md">d</a> <a href="https://e.com">e</a> <a href="#top">t</a> <img src="/abs.png"></p><pre>src="no"</pre>"##;
        let out = rewrite_relative(html, "/alice/m", "main");
        assert!(out.contains(r#"<img src="/alice/m/resolve/main/img/a.png""#));
        assert!(out.contains(r#"<img src="https://e.com/b.png">"#));
        assert!(out.contains(r#"<a href="/alice/m/blob/main/docs/x.md">"#));
        assert!(out.contains(r#"<a href="https://e.com">"#));
        assert!(out.contains(r##"<a href="#top">"##));
        assert!(out.contains(r#"<img src="/abs.png">"#));
        assert!(out.ends_with(r#"<pre>src="no"</pre>"#));
    }

    #[test]
    fn relative_detection() {
        assert!(is_relative("a.png"));
        assert!(is_relative("dir/a:b.png"));
        assert!(!is_relative("javascript:alert(1)"));
        assert!(!is_relative("//host/x"));
        assert!(!is_relative("mailto:x@y"));
    }
}
