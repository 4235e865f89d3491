//! Domain types and rules of Wharf: repository identities, paths, roles and the error kinds
//! every layer speaks, plus pure parsers of model-file headers. No IO, no async, no HTTP.

pub mod commit_lines;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod gguf;
pub mod lfs_pointer;
pub mod names;
pub mod safetensors;
pub mod time;

pub use error::{Error, ErrorKind, Result};
pub use names::{
    RepoId, RepoType, Role, normalize_repo_path, validate_namespace, validate_repo_name,
};
