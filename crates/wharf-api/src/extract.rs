//! Request plumbing shared by the handlers: who is calling, which origin they used, and query
//! strings parsed the way both client generations send them (`true`/`True`, repeated keys).

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine;
use wharf_core::{Error, ErrorKind};
use wharf_hub::{Caller, Credentials};

/// Reads `Authorization: Bearer …` or `Basic …` (any user name with a token as password, or a
/// user name and an account password).
pub fn credentials(headers: &HeaderMap) -> ApiResult<Credentials> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(Credentials::None);
    };
    let value = value.to_str().map_err(|_| bad_auth())?;
    let (scheme, rest) = value.split_once(' ').ok_or_else(bad_auth)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::Token(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| bad_auth())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad_auth())?;
        let (user, password) = decoded.split_once(':').ok_or_else(bad_auth)?;
        return Ok(if password.starts_with("hf_") || user.is_empty() {
            Credentials::Token(password.to_string())
        } else {
            Credentials::Password {
                user: user.to_string(),
                password: password.to_string(),
            }
        });
    }
    Err(bad_auth())
}

fn bad_auth() -> ApiError {
    ApiError::new(
        ErrorKind::Unauthorized,
        "Invalid credentials in Authorization header",
    )
}

/// The authenticated (or anonymous) caller of this request.
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(known) = parts.extensions.get::<crate::middleware::KnownCaller>() {
            return Ok(Auth(known.0.clone()));
        }
        let creds = credentials(&parts.headers)?;
        let origin = wharf_http::ClientAddr::of(&parts.extensions);
        Ok(Auth(state.hub.authenticate(&creds, &origin).await?))
    }
}

impl OptionalFromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        <Auth as FromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// The origin URLs in responses are built from: the configured public URL, else the request's Host.
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(BaseUrl(base_url(&parts.headers, state)))
    }
}

pub fn base_url(headers: &HeaderMap, state: &AppState) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| valid_host(h));
    format!("http://{}", host.unwrap_or("localhost"))
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() < 256
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// A query string as ordered key/value pairs, so repeated keys survive.
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    pub fn parse(raw: Option<&str>) -> ApiResult<QueryPairs> {
        let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or(""))
            .map_err(|e| {
                ApiError::from(Error::bad_request(format!("Invalid query string: {e}")))
            })?;
        Ok(QueryPairs(pairs))
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key || k == &format!("{key}[]"))
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// `true`, `True`, `1` (any case) are true; absent is `default`.
    pub fn flag(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            Some(v) => matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
            None => default,
        }
    }
    /// A non-negative integer parameter; junk is a 400.
    pub fn number(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::from(Error::bad_request(format!(
                        "Query parameter '{key}' must be a non-negative integer"
                    )))
                }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        QueryPairs::parse(parts.uri.query())
    }
}

/// Builds the URL of the next page: the same path and query with `cursor` replaced.
pub fn next_page_link(base: &str, path: &str, query: &QueryPairs, next_offset: usize) -> String {
    let mut pairs: Vec<(String, String)> = query
        .0
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    pairs.push(("cursor".into(), next_offset.to_string()));
    let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("<{base}{path}?{qs}>; rel=\"next\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn basic_with_token_and_with_password() {
        let mut h = HeaderMap::new();
        let enc = base64::engine::general_purpose::STANDARD.encode("anyone:hf_abc");
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Basic {enc}")).expect("header"),
        );
        assert!(matches!(credentials(&h), Ok(Credentials::Token(t)) if t == "hf_abc"));
        let enc = base64::engine::general_purpose::STANDARD.encode("alice:pw");
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Basic {enc}")).expect("header"),
        );
        assert!(matches!(credentials(&h), Ok(Credentials::Password { .. })));
        h.insert("authorization", HeaderValue::from_static("Basic !!!"));
        assert!(credentials(&h).is_err());
    }

    #[test]
    fn flags_accept_both_generations() {
        let q = QueryPairs::parse(Some("a=True&b=false&c=true&f=x&f=y")).expect("parse");
        assert!(q.flag("a", false) && !q.flag("b", true) && q.flag("c", false));
        assert_eq!(q.all("f"), vec!["x", "y"]);
    }
}
