//! The agent's errors.

/// Errors of joining and of the agent loop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The server refused or could not be reached.
    #[error(transparent)]
    Server(#[from] lightwell_client::ClientError),
    /// A local file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// `agent.toml` is missing or invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Writing the state dir failed.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// Key or certificate handling failed.
    #[error(transparent)]
    Pki(#[from] lightwell_ca::Error),
    /// Anything else, with a reason.
    #[error("{0}")]
    Other(String),
}
