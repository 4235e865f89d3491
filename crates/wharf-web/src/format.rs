//! Small formatting helpers shared by the pages: sizes, counts, relative times, URLs, redirects.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use wharf_core::RepoType;
use wharf_core::time::now_ms;

/// Characters escaped in a path segment of a URL we build (`/` kept by [`path_url`]).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b'\'')
    .add(b'&')
    .add(b'+')
    .add(b';')
    .add(b'=');

/// One URL path segment (a revision like `refs/pr/1` becomes `refs%2Fpr%2F1`).
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A repository path, each segment escaped, slashes kept.
pub fn path_url(path: &str) -> String {
    path.split('/').map(segment).collect::<Vec<_>>().join("/")
}

/// A query-string value.
pub fn query_value(s: &str) -> String {
    utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `/{prefix}{ns}/{name}`: the web address of a repository.
pub fn repo_url(repo_type: RepoType, namespace: &str, name: &str) -> String {
    format!(
        "/{}{}/{}",
        repo_type.url_prefix(),
        segment(namespace),
        segment(name)
    )
}

/// A 303 to `location` (after a form, or to log in first).
pub fn redirect(location: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Bytes the way the Hub shows them: decimal units, one decimal.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} Bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Counts as the Hub shows them: `999`, `1.2k`, `3.4M`.
pub fn short_count(n: i64) -> String {
    let n = n.max(0) as f64;
    if n < 1000.0 {
        format!("{n:.0}")
    } else if n < 1_000_000.0 {
        format!("{:.1}k", n / 1000.0).replace(".0k", "k")
    } else if n < 1_000_000_000.0 {
        format!("{:.1}M", n / 1e6).replace(".0M", "M")
    } else {
        format!("{:.1}B", n / 1e9).replace(".0B", "B")
    }
}

/// Parameter counts: `124M params`, `7.2B params`.
pub fn param_count(n: u64) -> String {
    let n = n as f64;
    if n < 1e3 {
        format!("{n:.0} params")
    } else if n < 1e6 {
        format!("{:.1}k params", n / 1e3)
    } else if n < 1e9 {
        format!("{:.0}M params", n / 1e6)
    } else {
        format!("{:.1}B params", n / 1e9)
    }
}

/// "3 days ago", relative to now.
pub fn time_ago(ms: i64) -> String {
    let secs = (now_ms() - ms).max(0) / 1000;
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match secs {
        0..=59 => "just now".to_string(),
        60..=3599 => plural(secs / 60, "minute"),
        3600..=86_399 => plural(secs / 3600, "hour"),
        86_400..=2_591_999 => plural(secs / 86_400, "day"),
        2_592_000..=31_535_999 => plural(secs / 2_592_000, "month"),
        _ => plural(secs / 31_536_000, "year"),
    }
}

/// An absolute UTC date and time, for `title` attributes and commit pages.
pub fn date_time(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// The first 7 hex digits of a commit id.
pub fn short_sha(sha: &str) -> String {
    sha.chars().take(7).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts() {
        assert_eq!(human_size(12), "12 Bytes");
        assert_eq!(human_size(1_500), "1.5 kB");
        assert_eq!(human_size(438_000_000), "438 MB");
        assert_eq!(short_count(999), "999");
        assert_eq!(short_count(1_000), "1k");
        assert_eq!(short_count(1_234), "1.2k");
        assert_eq!(param_count(124_000_000), "124M params");
    }

    #[test]
    fn urls_escape_segments() {
        assert_eq!(segment("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(path_url("a b/c#d.txt"), "a%20b/c%23d.txt");
        assert_eq!(
            repo_url(RepoType::Dataset, "alice", "data"),
            "/datasets/alice/data"
        );
    }
}
