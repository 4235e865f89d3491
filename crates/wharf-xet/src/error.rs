//! The one error type of this crate and its mapping onto [`wharf_core::Error`].
//!
//! Every format or verification failure of client input is a `BadRequest` whose message is
//! safe to show. Messages about shard terms never reveal whether a xorb exists: an unknown
//! xorb, an out-of-range chunk index and a wrong verification hash all read
//! "term N of file F does not verify" (§3.8 rule 4 of `docs/xet.md`).

use wharf_core::{Error, ErrorKind};

pub type Result<T, E = XetError> = std::result::Result<T, E>;

/// What went wrong in the Xet domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XetError {
    /// A hash string that is not exactly 64 lowercase hex characters.
    #[error("invalid Xet hash: expected 64 lowercase hex characters")]
    InvalidHash,

    /// An uploaded xorb that cannot be parsed or decoded.
    #[error("malformed xorb: {0}")]
    BadXorb(String),

    /// The xorb's content hashes to something else than the hash it was uploaded under.
    #[error("xorb content does not match its hash")]
    XorbHashMismatch,

    /// An uploaded shard that cannot be parsed.
    #[error("malformed shard: {0}")]
    BadShard(String),

    /// One term of a shard's file failed verification, for whatever reason (unknown xorb,
    /// bad chunk range, wrong length or wrong verification hash: deliberately one message).
    #[error("term {term} of file {file} does not verify")]
    TermDoesNotVerify { file: String, term: usize },

    /// The chunks of all terms do not hash to the file hash the shard declares.
    #[error("file {0} does not match its hash")]
    FileHashMismatch(String),

    /// A body or a declared count beyond Wharf's limits (`limits`).
    #[error("{0}")]
    TooLarge(String),

    /// A chunk range outside a xorb's chunk table (planning or table lookups).
    #[error("chunk range {start}..{end} is outside a xorb of {len} chunks")]
    ChunkRange { start: u32, end: u32, len: usize },

    /// A malformed byte range (end before start).
    #[error("invalid byte range")]
    BadRange,

    /// A byte range starting at or past the end of the file (HTTP 416).
    #[error("requested range not satisfiable (file size {size})")]
    RangeNotSatisfiable { size: u64 },

    /// A Xet token that is malformed, forged or expired. One message for all cases.
    #[error("Xet token expired or invalid")]
    InvalidToken,

    /// A valid token whose scope does not allow the operation.
    #[error("this Xet token does not allow writing")]
    ReadOnlyToken,

    /// Stored data (a xorb footer, a chunk table row) that is inconsistent: a fault on our side.
    #[error("stored Xet data is corrupt: {0}")]
    Corrupt(String),

    /// Any other fault on our side.
    #[error("internal Xet error: {0}")]
    Internal(String),
}

impl XetError {
    /// The wire-contract kind this error maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            XetError::InvalidHash
            | XetError::BadXorb(_)
            | XetError::XorbHashMismatch
            | XetError::BadShard(_)
            | XetError::TermDoesNotVerify { .. }
            | XetError::FileHashMismatch(_)
            | XetError::TooLarge(_)
            | XetError::BadRange => ErrorKind::BadRequest,
            XetError::RangeNotSatisfiable { .. } => ErrorKind::RangeNotSatisfiable,
            XetError::InvalidToken => ErrorKind::Unauthorized,
            XetError::ReadOnlyToken => ErrorKind::Forbidden,
            XetError::ChunkRange { .. } | XetError::Corrupt(_) | XetError::Internal(_) => {
                ErrorKind::Internal
            }
        }
    }

    pub(crate) fn bad_xorb(msg: impl Into<String>) -> Self {
        XetError::BadXorb(msg.into())
    }

    pub(crate) fn bad_shard(msg: impl Into<String>) -> Self {
        XetError::BadShard(msg.into())
    }

    pub(crate) fn corrupt(msg: impl Into<String>) -> Self {
        XetError::Corrupt(msg.into())
    }
}

impl From<XetError> for Error {
    fn from(e: XetError) -> Self {
        match e.kind() {
            // Internal details are logged once by `Error::internal`, never shown.
            ErrorKind::Internal => Error::internal(e),
            kind => Error::new(kind, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_onto_core_kinds() {
        let e: Error = XetError::XorbHashMismatch.into();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let e: Error = XetError::InvalidToken.into();
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert_eq!(e.message, "Xet token expired or invalid");
        let e: Error = XetError::ReadOnlyToken.into();
        assert_eq!(e.kind, ErrorKind::Forbidden);
        let e: Error = XetError::RangeNotSatisfiable { size: 3 }.into();
        assert_eq!(e.kind, ErrorKind::RangeNotSatisfiable);
        let e: Error = XetError::corrupt("footer").into();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert_eq!(
            e.message, "Internal error",
            "details never reach the caller"
        );
    }

    #[test]
    fn term_message_does_not_leak_existence() {
        let e = XetError::TermDoesNotVerify {
            file: "ab".into(),
            term: 3,
        };
        assert_eq!(e.to_string(), "term 3 of file ab does not verify");
    }
}
