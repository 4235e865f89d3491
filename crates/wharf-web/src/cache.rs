//! Bounded in-memory caches of rendered HTML, keyed by git blob id.
//!
//! Highlighting a 1,000-line file, or sanitising a card full of highlighted code, takes far
//! longer than a page may (about 120 ms for 1,000 lines of Python in a release build). A blob
//! id names its content for good, so what was rendered from it never goes stale: the caches
//! only need a size bound. Eviction is first-in first-out, which is enough for keeping the
//! pages people are looking at now. The cache itself is the hub's [`BoundedCache`].

use std::sync::LazyLock;
use wharf_card::highlight::HtmlLines;
use wharf_hub::BoundedCache;

/// Highlighted files, by blob id and path (the path picks the grammar).
pub static FILES: LazyLock<BoundedCache<HtmlLines>> = LazyLock::new(|| BoundedCache::new(48 << 20));
/// Sanitised card HTML (before its links are made absolute), by README blob id.
pub static CARDS: LazyLock<BoundedCache<String>> = LazyLock::new(|| BoundedCache::new(16 << 20));

/// Runs CPU-heavy rendering off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> crate::error::WebResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "rendering task failed");
        crate::error::WebError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on the server.",
        )
    })
}
