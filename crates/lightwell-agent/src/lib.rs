//! The node agent's building blocks. Today: atomic, durable file writes with
//! explicit permissions, which the agent uses for every certificate, key,
//! bundle and CRL, and the CLI uses for its saved credentials.
#![forbid(unsafe_code)]

pub mod files;
