//! The node agent's building blocks: the state dir (DESIGN.md section 4),
//! atomic and durable file writes with explicit permissions, the OpenSSL
//! hashed CApath directory, `agent.toml`, and reload hooks.
#![forbid(unsafe_code)]

pub mod capath;
pub mod config;
pub mod files;
pub mod hooks;
pub mod state;
