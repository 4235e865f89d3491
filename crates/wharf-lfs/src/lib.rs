//! Git LFS: the batch API's wire types, self-authorising transfer URLs (HMAC-signed, with an
//! expiry, because the Python client PUTs to them without credentials), and the
//! `.gitattributes` rules that decide which paths go to LFS.

pub mod attributes;
pub mod batch;
#[doc(hidden)]
pub mod fuzzing;
pub mod signing;

pub use attributes::LfsRules;
pub use signing::{Grant, Signer, TransferKind};
