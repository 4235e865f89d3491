//! The one table from hub error kinds to HTTP statuses, used by the API and the web pages
//! alike, and the Hub's error response shape: `X-Error-Code`, `X-Error-Message` and a JSON
//! `{"error": …}` body, with `Retry-After` (and the Hub's `RateLimit` header) when the caller
//! is asked to come back later.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use wharf_core::ErrorKind;

/// The status the Hub uses for each kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::RepoNotFound
        | ErrorKind::RevisionNotFound
        | ErrorKind::EntryNotFound
        | ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::GatedRepo | ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorKind::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Headers that go with an error kind whatever the surface: when to come back.
pub fn kind_headers(kind: ErrorKind) -> HeaderMap {
    let mut h = HeaderMap::new();
    match kind {
        ErrorKind::TooManyRequests { retry_after } => {
            h.insert("retry-after", HeaderValue::from(retry_after));
            if let Ok(v) = HeaderValue::from_str(&format!("\"auth\";r=0;t={retry_after}")) {
                h.insert("ratelimit", v);
            }
        }
        ErrorKind::Busy => {
            h.insert("retry-after", HeaderValue::from_static("1"));
        }
        _ => {}
    }
    h
}

/// Header values must be visible ASCII; anything else is replaced so the message survives.
pub fn header_safe(message: &str) -> HeaderValue {
    let clean: String = message
        .chars()
        .take(512)
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("Error"))
}

/// Builds the Hub's error response for a status and message.
pub fn error_response(status: StatusCode, code: Option<&str>, message: &str) -> Response {
    let body = serde_json::json!({ "error": message });
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    if let Some(code) = code {
        headers.insert(
            "x-error-code",
            HeaderValue::from_str(code).unwrap_or_else(|_| HeaderValue::from_static("Error")),
        );
    }
    headers.insert("x-error-message", header_safe(message));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_header_safe() {
        assert_eq!(header_safe("bad\npath é"), "bad?path ?");
    }

    #[test]
    fn come_back_later_kinds_say_when() {
        let h = kind_headers(ErrorKind::TooManyRequests { retry_after: 42 });
        assert_eq!(h["retry-after"], "42");
        assert_eq!(h["ratelimit"], "\"auth\";r=0;t=42");
        assert_eq!(
            status_of(ErrorKind::TooManyRequests { retry_after: 1 }),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(kind_headers(ErrorKind::Busy)["retry-after"], "1");
        assert!(kind_headers(ErrorKind::BadRequest).is_empty());
    }
}
