//! Arguments of domain join, the agent and join tokens.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use lightwell_agent::settings::{AgentSettings, StateDirArg};

/// `lightwell join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The join token (or --token-file, or LIGHTWELL_JOIN_TOKEN).
    #[arg(long, env = "LIGHTWELL_JOIN_TOKEN", hide_env_values = true, conflicts_with = "user")]
    pub token: Option<String>,
    /// File holding the join token.
    #[arg(long, conflicts_with_all = ["token", "user"])]
    pub token_file: Option<PathBuf>,
    /// Join with an administrator's credentials instead of a token.
    #[arg(long)]
    pub user: Option<String>,
    /// The administrator's password file (otherwise LIGHTWELL_PASSWORD, then a prompt).
    #[arg(long, requires = "user")]
    pub password_file: Option<PathBuf>,
    /// This host's fully qualified name (default: the system host name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// An IP address of this host (repeatable).
    #[arg(long = "ip")]
    pub ips: Vec<String>,
    /// Key type of the machine key: p256, p384, ed25519, rsa3072, rsa4096.
    #[arg(long, default_value = "p256")]
    pub key_type: String,
    /// The state dir to create.
    #[command(flatten)]
    pub state: StateDirArg,
}

/// `lightwell agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The state dir written by `lightwell join`.
    #[command(flatten)]
    pub state: StateDirArg,
    /// Settings over the state dir's `agent.toml`.
    #[command(flatten)]
    pub settings: AgentSettings,
    /// Sync once (trust bundle, CRLs, renewal if due) and exit.
    #[arg(long)]
    pub once: bool,
    /// `status`.
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
}

/// `lightwell agent` subcommands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Show identity, certificate expiry, last sync and trust revision.
    Status,
}

/// `lightwell leave`.
#[derive(Debug, Args)]
pub struct LeaveArgs {
    /// The state dir to remove.
    #[command(flatten)]
    pub state: StateDirArg,
    /// Remove the state dir even if the server could not be told (its
    /// certificates and machine secret then stay valid until an
    /// administrator revokes them).
    #[arg(long)]
    pub force: bool,
}

/// `lightwell token`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a join token (Administrators); the token is printed once.
    Create {
        /// Lifetime, e.g. 30m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Joins allowed.
        #[arg(long, default_value_t = 1)]
        uses: i64,
        /// Only this host name may join with it.
        #[arg(long)]
        hostname: Option<String>,
        /// An IP address the joining host may have in its certificate
        /// (repeatable); others it asks for are left out.
        #[arg(long = "ip")]
        ip: Vec<String>,
        /// Allow re-joining a host name that already joined.
        #[arg(long)]
        allow_rejoin: bool,
    },
    /// List join tokens.
    List,
    /// Revoke a join token.
    Revoke {
        /// Token id (from `token list`).
        id: String,
    },
}
