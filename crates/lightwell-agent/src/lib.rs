//! Lightwell's node agent: joins a host to a tenant and keeps its identity,
//! trust bundle and CRLs current (DESIGN.md section 4). The `lightwell` CLI
//! runs it (`lightwell join`, `lightwell agent`, `lightwell leave`).
#![forbid(unsafe_code)]

pub mod capath;
pub mod changes;
pub mod config;
pub mod enroll;
mod error;
pub mod files;
pub mod hooks;
pub mod join;
pub mod run;
pub mod servers;
pub mod settings;
pub mod staple;
pub mod state;
pub mod status;
pub mod workload;

pub use error::AgentError;
