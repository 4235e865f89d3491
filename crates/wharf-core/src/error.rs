//! The error kinds of the Hub's wire contract, without their HTTP status (that mapping lives in
//! `wharf-api`). Every crate's error converts into [`Error`], which carries a kind and a message
//! that is safe to show to the caller.

use std::fmt;

/// What went wrong, in the vocabulary the Hub's clients branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Missing repository, or one the caller may not see (the two must look the same).
    RepoNotFound,
    /// Unknown branch, tag or commit.
    RevisionNotFound,
    /// Missing file or folder at an existing revision.
    EntryNotFound,
    /// Gated repository without approved access.
    GatedRepo,
    /// Bad or missing credentials where they are required.
    Unauthorized,
    /// Authenticated, but not allowed.
    Forbidden,
    /// Malformed request.
    BadRequest,
    /// Well-formed but semantically invalid (bad path, bad name).
    Unprocessable,
    /// Already exists.
    Conflict,
    /// A compare-and-swap lost: the branch moved since the caller looked.
    PreconditionFailed,
    /// Body or field too large.
    PayloadTooLarge,
    /// Anything else that is not found (unknown route, unknown token).
    NotFound,
    /// Range outside the content.
    RangeNotSatisfiable,
    /// A rate limit was reached; the caller may try again after this many seconds.
    TooManyRequests { retry_after: u32 },
    /// The server is at capacity for this kind of work right now (try again shortly).
    Busy,
    /// A fault on our side; the message is generic, details go to the log.
    Internal,
}

impl ErrorKind {
    /// The `X-Error-Code` value the Hub sends for this kind, when it sends one.
    pub fn hub_code(self) -> Option<&'static str> {
        match self {
            ErrorKind::RepoNotFound => Some("RepoNotFound"),
            ErrorKind::RevisionNotFound => Some("RevisionNotFound"),
            ErrorKind::EntryNotFound => Some("EntryNotFound"),
            ErrorKind::GatedRepo => Some("GatedRepo"),
            _ => None,
        }
    }
}

/// A domain error: a kind plus a message meant for the caller.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn repo_not_found() -> Self {
        Error::new(ErrorKind::RepoNotFound, "Repository not found")
    }
    pub fn revision_not_found(rev: &str) -> Self {
        Error::new(
            ErrorKind::RevisionNotFound,
            format!("Invalid rev id: {rev}"),
        )
    }
    pub fn entry_not_found(path: &str) -> Self {
        Error::new(ErrorKind::EntryNotFound, format!("Entry not found: {path}"))
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::BadRequest, message)
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unprocessable, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Forbidden, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Conflict, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unauthorized, message)
    }
    /// A rate limit was reached; `retry_after` seconds until the window turns.
    pub fn too_many_requests(retry_after: u32, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::TooManyRequests { retry_after }, message)
    }
    /// An internal fault. The detail is logged here, once, and never shown to the caller.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing_free_log(&detail.to_string());
        Error::new(ErrorKind::Internal, "Internal error")
    }
    /// The Hub's message for a lost compare-and-swap on a branch.
    pub fn stale_parent() -> Self {
        Error::new(
            ErrorKind::PreconditionFailed,
            "The branch was updated since you opened this page. Please refresh and try again.",
        )
    }
}

// wharf-core has no logging dependency; internal errors are reported on stderr so that they
// are never lost even before a subscriber exists. The API layer logs them again with context.
fn tracing_free_log(detail: &str) {
    eprintln!("internal error: {detail}");
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(28) {
            return Error::new(ErrorKind::Internal, "No space left on the server's disk");
        }
        Error::internal(e)
    }
}
