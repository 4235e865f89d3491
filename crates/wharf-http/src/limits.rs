//! Request rate limits at the edge, before any handler runs: each request is counted for its
//! client (the credential it presents, else its address) in the class of its route (`api`,
//! `resolvers`, `pages`, as the Hub names them). Limited responses carry the IETF `RateLimit`
//! and `RateLimit-Policy` headers the official client reads; over the limit the answer is 429
//! with the same headers and `Retry-After`, and the client waits and retries by itself.

use crate::client::ClientAddr;
use crate::errors::{error_response, kind_headers};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use wharf_hub::{Hub, RateClass, RateStatus};

/// Cookie of a signed-in browser (the web interface's session).
const SESSION_COOKIE: &str = "wharf_session=";

/// Middleware: counts the request and answers 429 once the client's window is used up.
pub async fn rate_limit(State(hub): State<Arc<Hub>>, req: Request, next: Next) -> Response {
    let Some(class) = class_of(req.uri().path()) else {
        return next.run(req).await;
    };
    let key = client_key(req.headers(), &ClientAddr::of(req.extensions()));
    match hub.rate_limiter.request(class, &key) {
        Ok(status) => {
            let mut response = next.run(req).await;
            // A handler's own limit (failed sign-ins) speaks for itself.
            if let Some(status) = status.filter(|_| !response.headers().contains_key("ratelimit")) {
                insert_status(response.headers_mut(), &status);
            }
            response
        }
        Err(e) => {
            let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, None, &e.message);
            response.headers_mut().extend(kind_headers(e.kind));
            if let wharf_core::ErrorKind::TooManyRequests { retry_after } = e.kind {
                let limits = hub.rate_limiter.limits();
                let status = RateStatus {
                    class,
                    limit: limits.of(class),
                    remaining: 0,
                    reset: retry_after,
                    window: limits.window.as_secs() as u32,
                };
                insert_status(response.headers_mut(), &status);
            }
            response
        }
    }
}

/// The class of a route; `None` for what is never limited (static assets of the pages).
fn class_of(path: &str) -> Option<RateClass> {
    if path.starts_with("/-/static/") {
        return None;
    }
    if path.starts_with("/api/lfs/") || path.starts_with("/api/xet/") || path == "/v1/telemetry" {
        return Some(RateClass::Resolvers);
    }
    if path.starts_with("/api/")
        || path.starts_with("/models/")
        || path.starts_with("/hf-inference/")
    {
        return Some(RateClass::Api);
    }
    let transfer = path.contains("/resolve/")
        || path.ends_with("/info/refs")
        || path.ends_with("/git-upload-pack")
        || path.ends_with("/git-receive-pack")
        || path.contains(".git/info/lfs/");
    Some(if transfer {
        RateClass::Resolvers
    } else {
        RateClass::Pages
    })
}

/// Who is counted: the credential presented (a token, HTTP Basic, a web session), hashed so
/// that the table never holds secrets; else the address.
fn client_key(headers: &HeaderMap, addr: &str) -> String {
    let credential = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .or_else(|| session_cookie(headers));
    match credential {
        Some(secret) => format!("cred:{}", &hex::encode(Sha256::digest(secret))[..32]),
        None => format!("addr:{addr}"),
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get_all(header::COOKIE).iter().find_map(|v| {
        let text = v.to_str().ok()?;
        let start = text.find(SESSION_COOKIE)? + SESSION_COOKIE.len();
        let value = text[start..].split(';').next()?.trim();
        (!value.is_empty()).then_some(value.as_bytes())
    })
}

/// `RateLimit: "api";r=…;t=…` and `RateLimit-Policy: "fixed window";"api";q=…;w=…`.
fn insert_status(h: &mut HeaderMap, s: &RateStatus) {
    let name = s.class.name();
    let now = format!("\"{name}\";r={};t={}", s.remaining, s.reset);
    let policy = format!("\"fixed window\";\"{name}\";q={};w={}", s.limit, s.window);
    if let (Ok(now), Ok(policy)) = (HeaderValue::from_str(&now), HeaderValue::from_str(&policy)) {
        h.insert("ratelimit", now);
        h.insert("ratelimit-policy", policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_into_the_hubs_classes() {
        assert_eq!(class_of("/api/models"), Some(RateClass::Api));
        assert_eq!(class_of("/models/a/b"), Some(RateClass::Api));
        assert_eq!(class_of("/a/b/resolve/main/x"), Some(RateClass::Resolvers));
        assert_eq!(
            class_of("/api/lfs/download/1/x/2"),
            Some(RateClass::Resolvers)
        );
        assert_eq!(
            class_of("/a/b.git/info/lfs/objects/batch"),
            Some(RateClass::Resolvers)
        );
        assert_eq!(class_of("/a/b/git-upload-pack"), Some(RateClass::Resolvers));
        assert_eq!(class_of("/a/b"), Some(RateClass::Pages));
        assert_eq!(class_of("/-/static/app.css"), None);
    }

    #[test]
    fn clients_are_their_credential_else_their_address() {
        let mut h = HeaderMap::new();
        assert_eq!(client_key(&h, "1.2.3.4"), "addr:1.2.3.4");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer hf_x"),
        );
        let k = client_key(&h, "1.2.3.4");
        assert!(k.starts_with("cred:") && !k.contains("hf_x"));
        let mut c = HeaderMap::new();
        c.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; wharf_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&c), Some(&b"abc"[..]));
    }

    #[test]
    fn headers_are_what_the_client_parses() {
        let mut h = HeaderMap::new();
        insert_status(
            &mut h,
            &RateStatus {
                class: RateClass::Api,
                limit: 500,
                remaining: 0,
                reset: 55,
                window: 300,
            },
        );
        assert_eq!(h["ratelimit"], "\"api\";r=0;t=55");
        assert_eq!(
            h["ratelimit-policy"],
            "\"fixed window\";\"api\";q=500;w=300"
        );
    }
}
