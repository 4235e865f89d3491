//! The stylesheet and script, compiled into the binary and served from an allowlist.

use crate::error::WebError;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;

const CSS: &str = include_str!("../static/wharf.css");
const JS: &str = include_str!("../static/wharf.js");
/// The site's stylesheet followed by the syntax colours (made once from the highlighter's theme).
static FULL_CSS: LazyLock<String> =
    LazyLock::new(|| format!("{CSS}\n{}", wharf_card::highlight::stylesheet()));

/// Changes when an asset changes (in practice), so pages can let browsers cache assets.
pub const VERSION: usize = CSS.len() * 31 + JS.len();

/// `GET /-/static/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "wharf.css" => (FULL_CSS.as_str(), "text/css; charset=utf-8"),
        "wharf.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return WebError::not_found().into_response(),
    };
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}
