//! Headers every response carries: no page of Wharf may be framed by another site (a framed
//! settings page would let a click toggle a repository's visibility), and browsers must not
//! guess content types (a served file is never run as a page or a script). A refusal of a
//! request that carried a body also closes the connection: the body may not have been read
//! (requests are refused before their bodies are), and the client must not send its next
//! request behind the unread rest of it.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// Middleware: adds the security headers unless the handler set its own.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let had_body = has_body(&req);
    let mut response = next.run(req).await;
    if had_body && (response.status().is_client_error() || response.status().is_server_error()) {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
    }
    let h = response.headers_mut();
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("content-security-policy", "frame-ancestors 'none'"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
    ] {
        if !h.contains_key(name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// Whether the request announced a body.
fn has_body(req: &Request) -> bool {
    let h = req.headers();
    h.contains_key(axum::http::header::TRANSFER_ENCODING)
        || h.get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}
