//! The HTTP face of Wharf: the Hugging Face Hub's API routes, resolve downloads, the LFS batch
//! API and git's smart HTTP, wire-compatible with the official client. Handlers are thin: they
//! extract, call one `wharf_hub::Hub` method, and shape the response.

mod error;
mod extract;
mod json;
mod middleware;
pub mod ndjson;
mod routes;

pub use error::{ApiError, ApiResult};

use axum::Router;
use axum::routing::{get, post, put};
use std::sync::Arc;
use wharf_hub::Hub;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    /// The public origin for URLs in responses; when unset the request's Host is used.
    pub public_url: Option<String>,
}

/// Bodies of JSON endpoints stay small (the commit route reads and bounds its own body).
const JSON_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The whole application.
pub fn router(state: AppState) -> Router {
    use axum::extract::DefaultBodyLimit;
    use routes::*;
    let api = Router::new()
        .route("/api/whoami-v2", get(account::whoami))
        .route(
            "/api/validate-yaml",
            // Cards over 1 MiB are not parsed anyway.
            post(account::validate_yaml).layer(DefaultBodyLimit::max(2 << 20)),
        )
        .route("/api/repos/create", post(repos::create_repo))
        .route(
            "/api/repos/delete",
            axum::routing::delete(repos::delete_repo),
        )
        .route("/api/repos/move", post(repos::move_repo))
        .route("/api/{kind}", get(listing::list_repos))
        .route("/api/{kind}/{ns}/{name}", get(repos::repo_info))
        .route(
            "/api/{kind}/{ns}/{name}/revision/{rev}",
            get(repos::repo_info_at),
        )
        .route(
            "/api/{kind}/{ns}/{name}/settings",
            put(repos::update_settings),
        )
        .route("/api/{kind}/{ns}/{name}/auth-check", get(repos::auth_check))
        .route("/api/{kind}/{ns}/{name}/tree/{rev}", get(files::tree_root))
        .route(
            "/api/{kind}/{ns}/{name}/tree/{rev}/{*path}",
            get(files::tree_path),
        )
        .route(
            "/api/{kind}/{ns}/{name}/paths-info/{rev}",
            post(files::paths_info),
        )
        .route("/api/{kind}/{ns}/{name}/refs", get(refs::list_refs))
        .route(
            "/api/{kind}/{ns}/{name}/commits/{rev}",
            get(refs::list_commits),
        )
        .route(
            "/api/{kind}/{ns}/{name}/branch/{branch}",
            post(refs::create_branch).delete(refs::delete_branch),
        )
        .route(
            "/api/{kind}/{ns}/{name}/tag/{rev}",
            post(refs::create_tag).delete(refs::delete_tag),
        )
        .route(
            "/api/{kind}/{ns}/{name}/preupload/{rev}",
            post(commit::preupload),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::access_before_body,
        ))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    let commit_route = Router::new()
        .route(
            "/api/{kind}/{ns}/{name}/commit/{rev}",
            post(commit::create_commit),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::access_before_body,
        ))
        .layer(DefaultBodyLimit::disable());
    let transfers = Router::new()
        .route(
            "/api/lfs/upload/{repo_id}/{oid}/{size}",
            put(lfs::upload_object),
        )
        .route(
            "/api/lfs/download/{repo_id}/{oid}/{size}",
            get(lfs::download_object),
        )
        .layer(DefaultBodyLimit::disable());
    // Xet: token endpoints and the CAS API (handlers enforce their own body limits).
    let xet_routes = Router::new()
        .route(
            "/api/{kind}/{ns}/{name}/xet-read-token/{rev}",
            get(xet::read_token),
        )
        .route(
            "/api/{kind}/{ns}/{name}/xet-write-token/{rev}",
            get(xet::write_token),
        )
        .route("/api/xet/v1/chunks/{prefix}/{hash}", get(xet::dedup))
        .route("/api/xet/v1/xorbs/{prefix}/{hash}", post(xet::put_xorb))
        .route("/api/xet/v1/shards", post(xet::put_shard_v1))
        .route("/api/xet/v2/shards", post(xet::put_shard_v2))
        .route(
            "/api/xet/v1/reconstructions/{file}",
            get(xet::reconstruction_v1),
        )
        .route(
            "/api/xet/v2/reconstructions/{file}",
            get(xet::reconstruction_v2),
        )
        .route("/api/xet/fetch/{xorb}", get(xet::fetch))
        .route("/v1/telemetry", post(xet::telemetry))
        .layer(DefaultBodyLimit::disable());
    Router::new()
        .merge(api)
        .merge(commit_route)
        .merge(transfers)
        .merge(xet_routes)
        .merge(inference::routes())
        .fallback(repo_paths::dispatch)
        .with_state(state)
        .layer(axum::middleware::from_fn(middleware::refuse_encoded_bodies))
        .layer(axum::middleware::from_fn(middleware::hub_errors))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            middleware::panic_response,
        ))
        .layer(axum::middleware::from_fn(middleware::request_id))
        .layer(
            // Internal errors are logged where they are mapped (error.rs); a deliberate 501
            // (LFS locks) is not a failure worth an ERROR line.
            tower_http::trace::TraceLayer::new_for_http().on_failure(()),
        )
}
