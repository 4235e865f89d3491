//! The one mapping from hub errors to HTML error pages with the right status. A private
//! repository the caller may not see is `RepoNotFound`, so it gets the same 404 as a missing one.

use askama::Template;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wharf_core::{Error, ErrorKind};

/// A failed page: a status and a message that is safe to show.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
    /// Set for "log in first": a redirect to the login page instead of an error page.
    pub location: Option<String>,
    /// The hub's kind, when the error came from the hub: it brings headers (`Retry-After` for
    /// "come back later"), as the API sends them.
    pub kind: Option<ErrorKind>,
}

pub type WebResult<T = Response> = Result<T, WebError>;

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError {
            status,
            message: message.into(),
            location: None,
            kind: None,
        }
    }
    /// Sends an anonymous visitor to the login page, coming back to `next` afterwards.
    pub fn login_required(next: &str) -> WebError {
        let next = percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC);
        WebError {
            status: StatusCode::SEE_OTHER,
            message: String::new(),
            location: Some(format!("/login?next={next}")),
            kind: None,
        }
    }
    pub fn not_found() -> WebError {
        WebError::new(
            StatusCode::NOT_FOUND,
            "This page does not exist, or you cannot see it.",
        )
    }
    /// A 400 page (the widget's form checks; other handlers return hub errors).
    pub fn bad_request(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn csrf() -> WebError {
        WebError::new(
            StatusCode::FORBIDDEN,
            "The form expired or did not come from this site. Go back, reload the page and try again.",
        )
    }
}

/// The HTTP status of each error kind: the API's table, shared.
pub use wharf_http::status_of;

impl From<Error> for WebError {
    fn from(e: Error) -> WebError {
        let status = status_of(e.kind);
        if status.is_server_error() {
            tracing::error!(error = %e, "page failed");
        }
        let message = match e.kind {
            ErrorKind::RepoNotFound => {
                "Repository not found: it does not exist, or you cannot see it.".to_string()
            }
            ErrorKind::Internal => "Something went wrong on the server.".to_string(),
            _ => e.message,
        };
        WebError {
            status,
            message,
            location: None,
            kind: Some(e.kind),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// A piece of HTML answered as it is (the editor's preview), with the headers of a page.
pub fn html_fragment(body: String) -> Response {
    html(StatusCode::OK, body)
}

/// An HTML response with the usual headers of a page.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let Some(location) = &self.location {
            return crate::format::redirect(location);
        }
        let page = ErrorPage {
            status: self.status.as_u16(),
            reason: self.status.canonical_reason().unwrap_or("Error"),
            message: &self.message,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("<h1>{}</h1>", self.status.as_u16()));
        let mut response = html(self.status, body);
        if let Some(kind) = self.kind {
            response
                .headers_mut()
                .extend(wharf_http::errors::kind_headers(kind));
        }
        // The Hub's error header, as the API sends it (skipped if the text cannot be one).
        if let Ok(v) = HeaderValue::from_str(&self.message) {
            response.headers_mut().insert("x-error-message", v);
        }
        response
    }
}

/// A panic inside a page becomes a 500 page (and is logged), never a dropped connection.
pub fn panic_page(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    tracing::error!(panic = %detail, "page handler panicked");
    WebError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on the server.",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_errors_keep_the_shared_status_and_headers() {
        let page = WebError::from(Error::too_many_requests(7, "slow down")).into_response();
        assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(page.headers()["retry-after"], "7");
        let page = WebError::from(Error::new(ErrorKind::PayloadTooLarge, "big")).into_response();
        assert_eq!(page.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(page.headers().get("retry-after").is_none());
    }
}
