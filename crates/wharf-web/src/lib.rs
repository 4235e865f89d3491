//! The web interface of Wharf: server-rendered pages in the Hub's URL layout (`/models`,
//! `/{ns}/{name}`, `/{ns}/{name}/tree/main`, …), with templates and static assets compiled into
//! the binary. Reading works without JavaScript; a little vanilla JS adds upload progress and
//! the live card preview.
//!
//! Handlers are thin: extract, call `wharf_hub::Hub`, fill a template. Every decision about
//! access stays in the hub: a repository the caller may not see answers `RepoNotFound`, which
//! becomes the same 404 page as a missing one.
//!
//! Merge [`router`] into the API router: the resolve, git and LFS paths under `/{ns}/{name}/…`
//! are left to the API router's fallback, and this router has no fallback of its own.

mod assets;
mod cache;
mod diff;
mod error;
mod format;
mod frontmatter;
mod markdown;
mod routes;
mod session;
mod views;

pub use error::WebError;

use axum::Router;
use std::sync::Arc;
use wharf_hub::Hub;

/// What every page handler can reach.
#[derive(Clone)]
pub struct WebState {
    pub hub: Arc<Hub>,
    /// The public origin (for clone URLs and the cookie's `Secure` flag); else the request's Host.
    pub public_url: Option<String>,
}

impl WebState {
    /// Whether cookies must be marked `Secure` (the public URL is https).
    pub(crate) fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// The web pages, ready to be merged into the API router.
pub fn router(hub: Arc<Hub>, public_url: Option<String>) -> Router {
    let state = WebState { hub, public_url };
    // Grammars compile on first use; do that now rather than in someone's first file view.
    std::thread::spawn(wharf_card::highlight::warm_up);
    routes::routes()
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state,
            session::ensure_visitor_cookie,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_page,
        ))
}
