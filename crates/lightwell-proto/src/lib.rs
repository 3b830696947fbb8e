//! The contract between Lightwell's REST API and its clients: request and
//! response bodies and the stable error codes. Serde only; the server and the
//! client crate both build on these types so they cannot drift apart.
#![forbid(unsafe_code)]

mod ca;
mod error;
mod types;

pub use ca::*;
pub use error::*;
pub use types::*;
