//! Cross-cutting layers: a request id on every response, panics turned into the Hub's error
//! shape, a safety net that rewrites any plain-text error (unmatched route, wrong method,
//! body too large) into `{"error": …}` with `X-Error-Message`, and the refusal of compressed
//! request bodies where no client sends them, and the access decision of repository routes
//! taken before their bodies are read.

use crate::error::error_response;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Echoes the client's trace id (or makes one) as `X-Request-Id`; the client prints it in errors.
pub async fn request_id(req: Request, next: Next) -> Response {
    let incoming = req
        .headers()
        .get("x-amzn-trace-id")
        .or_else(|| req.headers().get("x-request-id"))
        .filter(|v| v.len() <= 128)
        .cloned();
    let id = incoming.unwrap_or_else(|| {
        let mut raw = [0u8; 12];
        // Request ids need no secrecy: a failing random source leaves zeros, which is harmless.
        let _ = getrandom::fill(&mut raw);
        HeaderValue::from_str(&hex::encode(raw)).unwrap_or_else(|_| HeaderValue::from_static("0"))
    });
    let mut response = next.run(req).await;
    response.headers_mut().insert("x-request-id", id);
    response
}

/// Compressed request bodies are only taken where git sends them (the fetch negotiation of
/// `git-upload-pack`, decompressed there under a size cap); anywhere else a small gzip body
/// could expand a thousandfold, so it is a 415 before anything is read.
pub async fn refuse_encoded_bodies(req: Request, next: Next) -> Response {
    let encoded = req
        .headers()
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"));
    if encoded && !req.uri().path().ends_with("/git-upload-pack") {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            "Compressed request bodies are not accepted here",
        );
    }
    next.run(req).await
}

/// The caller of a request, once authenticated (so that handlers do not authenticate again).
#[derive(Clone)]
pub struct KnownCaller(pub wharf_hub::Caller);

/// Before a request with a body reaches its handler (which reads the body), the caller is
/// authenticated and, on a repository route, allowed at least what the route needs: the
/// repository must be visible (`paths-info`) or writable (every other repository route with a
/// body); account routes (`/api/repos/…`) need a signed-in caller. A stranger's request is
/// refused with nothing read.
pub async fn access_before_body(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
    params: axum::extract::RawPathParams,
    mut req: Request,
    next: Next,
) -> Response {
    use axum::http::Method;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let origin = wharf_http::ClientAddr::of(req.extensions());
    let creds = match crate::extract::credentials(req.headers()) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let caller = match s.hub.authenticate(&creds, &origin).await {
        Ok(c) => c,
        Err(e) => return crate::ApiError::from(e).into_response(),
    };
    let path = req.uri().path();
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let decision = match (param("kind"), param("ns"), param("name")) {
        (Some(kind), Some(ns), Some(name)) => {
            let need = if path.contains("/paths-info/") {
                wharf_hub::Need::Read
            } else {
                wharf_hub::Need::Write
            };
            match crate::routes::repo_kind(&kind) {
                Ok(t) => s
                    .hub
                    .repo(&caller, &wharf_hub::RepoAddress::new(t, &ns, &name), need)
                    .await
                    .map(|_| ())
                    .map_err(crate::ApiError::from),
                Err(e) => Err(e),
            }
        }
        _ if path.starts_with("/api/repos/") && caller.user.is_none() => Err(crate::ApiError::new(
            wharf_core::ErrorKind::Unauthorized,
            "You must be authenticated to do this",
        )),
        _ => Ok(()),
    };
    if let Err(e) = decision {
        return e.into_response();
    }
    req.extensions_mut().insert(KnownCaller(caller));
    next.run(req).await
}

/// Rewrites errors that did not come from our own error type.
pub async fn hub_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key("x-error-message")
    {
        return response;
    }
    let message = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "Request body too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported content type",
        s if s.is_server_error() => "Internal error",
        _ => "Bad request",
    };
    let mut rewritten = error_response(status, None, message);
    for name in ["allow", "www-authenticate"] {
        if let Some(v) = response.headers().get(name) {
            rewritten.headers_mut().insert(name, v.clone());
        }
    }
    rewritten
}

/// A panic in a handler becomes a 500 in the Hub's shape (and is logged), never a dropped connection.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    tracing::error!(panic = %detail, "handler panicked");
    error_response(StatusCode::INTERNAL_SERVER_ERROR, None, "Internal error").into_response()
}
