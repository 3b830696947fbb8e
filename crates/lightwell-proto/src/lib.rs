//! The contract between Lightwell's REST API and its clients: request and
//! response bodies and the stable error codes. Serde only; the server and the
//! client crate both build on these types so they cannot drift apart.
#![forbid(unsafe_code)]

/// A response body (also accepted as input by clients).
macro_rules! api_type {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub struct $name { $($body)* }
    };
}

/// A request body: unknown fields are refused.
macro_rules! request_type {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(deny_unknown_fields)]
        pub struct $name { $($body)* }
    };
}

mod ca;
mod error;
mod join;
mod k8s;
mod types;
mod workload;

pub use ca::*;
pub use error::*;
pub use join::*;
pub use k8s::*;
pub use types::*;
pub use workload::*;
