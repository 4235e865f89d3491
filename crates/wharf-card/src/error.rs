//! The error returned when a card's YAML front matter cannot be used.

use std::fmt;

/// Why the YAML front matter of a card could not be parsed.
///
/// `Display` gives a message meant for the person who wrote the card. Line and column numbers
/// count from 1 and refer to the README file itself (the opening `---` is line 1), so they
/// match what an editor shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The YAML is malformed, or it exceeds a resource limit (size, nesting, alias expansion).
    #[error("invalid YAML metadata{}: {message}", At(*.line, *.column))]
    Yaml {
        /// What is wrong, without the position.
        message: String,
        /// README line of the problem, when the parser knows it.
        line: Option<u64>,
        /// Column (in characters) of the problem, when the parser knows it.
        column: Option<u64>,
    },
    /// The YAML is valid but its top level is a list or a scalar instead of a mapping.
    #[error(
        "YAML metadata must be a mapping of keys to values, found {found} at line {line}, column {column}"
    )]
    NotMapping {
        /// What was found instead, e.g. "a list".
        found: &'static str,
        /// README line where the top-level value starts.
        line: u64,
        /// Column where the top-level value starts.
        column: u64,
    },
    /// The front matter is larger than [`crate::MAX_FRONT_MATTER_BYTES`].
    #[error("YAML metadata is too large: {size} bytes (the limit is {limit} bytes)")]
    TooLarge {
        /// Size of the front matter in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
}

impl CardError {
    /// The README line and column of the problem, when known.
    pub fn position(&self) -> Option<(u64, u64)> {
        match self {
            CardError::Yaml {
                line: Some(line),
                column,
                ..
            } => Some((*line, column.unwrap_or(1))),
            CardError::NotMapping { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

/// Formats " at line L, column C" (or nothing when the position is unknown).
struct At(Option<u64>, Option<u64>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(line), Some(column)) => write!(f, " at line {line}, column {column}"),
            (Some(line), None) => write!(f, " at line {line}"),
            _ => Ok(()),
        }
    }
}
