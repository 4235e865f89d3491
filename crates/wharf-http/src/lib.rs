//! HTTP plumbing shared by the API and the web pages, so that neither spells a rule the other
//! also needs: the one table from hub errors to HTTP statuses and the Hub's error headers, who
//! the client is (its address, or the one a trusted proxy reports), request rate limits with
//! the Hub's `RateLimit` headers, and the security headers every response carries.

pub mod client;
pub mod errors;
pub mod limits;
pub mod security;

pub use client::{ClientAddr, ClientConfig, Origin};
pub use errors::{error_response, header_safe, status_of};
