//! The one place where domain errors become HTTP: status, the Hub's `X-Error-Code` and
//! `X-Error-Message` headers, and a JSON `{"error": …}` body. Internal details never reach
//! the client; they are logged once here.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use wharf_core::{Error, ErrorKind};

/// An error on its way out, with optional extra headers (e.g. `X-Repo-Commit` on a missing file).
#[derive(Debug)]
pub struct ApiError {
    pub error: Error,
    /// Kept small (a Vec, not a HeaderMap) because every `Result` in the API carries it.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError {
            error,
            headers: Vec::new(),
        }
    }
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        Error::new(kind, message).into()
    }
    pub fn with_header(mut self, name: &'static str, value: &str) -> ApiError {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }
}

pub use wharf_http::errors::{error_response, header_safe, kind_headers, status_of};

/// The Hub's answer while a model loads for inference: 503 with `estimated_time` (seconds).
#[cfg_attr(not(feature = "inference"), expect(dead_code))]
pub fn loading_response(message: &str, estimated_time: f64) -> Response {
    let body = serde_json::json!({ "error": message, "estimated_time": estimated_time });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("x-error-message", header_safe(message));
    let retry = format!("{}", estimated_time.ceil().max(1.0) as u64);
    if let Ok(v) = HeaderValue::from_str(&retry) {
        headers.insert("retry-after", v);
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.error.kind;
        if kind == ErrorKind::Internal {
            tracing::error!(message = %self.error.message, "request failed with an internal error");
        }
        let mut response = error_response(status_of(kind), kind.hub_code(), &self.error.message);
        response.headers_mut().extend(kind_headers(kind));
        if kind == ErrorKind::Unauthorized {
            response.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer realm=\"wharf\", Basic realm=\"wharf\""),
            );
        }
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_not_found_has_hub_headers() {
        let r = ApiError::from(Error::repo_not_found()).into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()["x-error-code"], "RepoNotFound");
        assert_eq!(r.headers()["x-error-message"], "Repository not found");
    }
}
