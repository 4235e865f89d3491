//! Model card (README.md) handling for Wharf.
//!
//! A repo card is a Markdown file whose optional YAML front matter carries machine-readable
//! metadata (`license`, `language`, `datasets`, `tags`, `pipeline_tag`, `model-index`, …).
//! This crate:
//!
//! - splits the front matter from the body ([`split_front_matter`]),
//! - parses it into a JSON object with strict resource limits ([`parse_card`]); it parses
//!   user uploads, so no input makes it panic or use unbounded memory or time,
//! - derives the Hub-style `tags`, `pipeline_tag` and `library_name` of a repo
//!   ([`derive_info`]),
//! - answers `POST /api/validate-yaml` ([`validate_card`]),
//! - renders Markdown to sanitised HTML for the web interface ([`render_markdown`]).
//!
//! YAML dialect: YAML 1.2, as the Hub's own parser reads it. In particular `yes`, `no`, `on`
//! and `off` stay strings (the Python client's PyYAML would read them as booleans); only
//! `true`/`false` (any common capitalisation) are booleans. Dates and timestamps stay strings,
//! numbers with leading zeros (`0755`) stay strings, `.inf`/`.nan` become the strings
//! `".inf"`/`".nan"`, and duplicate keys are an error.

mod derive;
mod error;
mod front_matter;
#[doc(hidden)]
pub mod fuzzing;
mod markdown;
mod validate;
mod value;

pub use derive::{DerivedInfo, derive_info};
pub use error::CardError;
pub use front_matter::{MAX_FRONT_MATTER_BYTES, parse_card, split_front_matter};
pub use markdown::{highlight, render_markdown};
pub use validate::{EMPTY_METADATA_WARNING, Validation, validate_card};
