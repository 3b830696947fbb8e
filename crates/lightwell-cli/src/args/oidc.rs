//! Arguments of `lightwell oidc`.

use clap::{Args, Subcommand};

/// `lightwell oidc`: the tenant's OpenID provider.
#[derive(Debug, Subcommand)]
pub enum OidcCommand {
    /// Clients: applications that get tokens from the tenant's issuer.
    #[command(subcommand)]
    Client(OidcClientCommand),
}

/// `lightwell oidc client`.
#[derive(Debug, Subcommand)]
pub enum OidcClientCommand {
    /// Register a client acting as a service or a machine (its secret is shown once).
    Create(OidcClientCreateArgs),
    /// List the tenant's clients.
    List,
    /// Show a client.
    Show {
        /// Client name.
        name: String,
    },
    /// Delete a client: it gets no more tokens and its tokens introspect inactive.
    Delete {
        /// Client name.
        name: String,
    },
    /// Give a client a new secret (shown once); the old one stops working.
    RotateSecret {
        /// Client name.
        name: String,
    },
}

/// `lightwell oidc client create`.
#[derive(Debug, Args)]
pub struct OidcClientCreateArgs {
    /// Client name (lower-case letters, digits, '-').
    pub name: String,
    /// The service or machine it acts as: service/NAME or machine/HOST.
    #[arg(long)]
    pub principal: String,
    /// How it authenticates: client_secret (HTTP Basic or form) or tls_client_auth
    /// (a TLS client certificate this tenant issued to the principal).
    #[arg(long = "auth", default_value = "client_secret")]
    pub auth_method: String,
    /// `aud` of its access tokens (repeatable; default lightwell).
    #[arg(long = "audience")]
    pub audience: Vec<String>,
    /// A scope it may ask for (repeatable).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Access token lifetime (default 10m, at most 1h).
    #[arg(long)]
    pub access_token_ttl: Option<String>,
}
