//! Arguments of `lightwell ca` and `lightwell cert`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `lightwell ca`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// List the tenant's CAs.
    List,
    /// Show a CA (by name or id).
    Show {
        /// CA name or id.
        ca: String,
    },
    /// Print the trust bundle (the tenant's roots, PEM).
    Bundle {
        /// Write it to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print a CA's latest CRL (PEM).
    Crl {
        /// CA name or id (default: the default issuing CA).
        ca: Option<String>,
        /// Write it to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Create an issuing CA under the tenant's root, or with --external a CSR for an enterprise CA to sign.
    CreateIntermediate {
        /// Name.
        name: String,
        /// DNS name constraint (permitted subtree; repeatable).
        #[arg(long = "name-constraint", conflicts_with = "external")]
        name_constraints: Vec<String>,
        /// basicConstraints pathLenConstraint (default 0).
        #[arg(long)]
        path_len: Option<u8>,
        /// Make it the default issuing CA.
        #[arg(long, conflicts_with = "external")]
        default: bool,
        /// Keep the key here but let an enterprise CA sign: print the CSR (install the answer with `ca install`).
        #[arg(long)]
        external: bool,
        /// With --external: write the CSR to this file instead of stdout.
        #[arg(long, requires = "external")]
        csr_out: Option<PathBuf>,
        /// With --external: key type (default: that of the tenant's root).
        #[arg(long, requires = "external")]
        key_type: Option<String>,
    },
    /// Install the certificate an enterprise CA signed for `create-intermediate --external`.
    Install {
        /// Name given to create-intermediate.
        name: String,
        /// The signed CA certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// Make it the default issuing CA.
        #[arg(long)]
        default: bool,
    },
    /// Import an existing CA (root or intermediate) with its private key (PKCS#8 PEM).
    Import {
        /// The CA certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// Its private key (PEM `PRIVATE KEY`); sealed on the server, never returned.
        #[arg(long)]
        key: PathBuf,
        /// Name in the tenant (default `imported-` and the start of the fingerprint).
        #[arg(long)]
        name: Option<String>,
        /// Make it the default issuing CA (intermediates only).
        #[arg(long)]
        default: bool,
    },
    /// Revoke an issuing CA and every certificate it issued.
    Revoke {
        /// CA name or id.
        ca: String,
        /// RFC 5280 reason (key-compromise, ca-compromise, superseded, cessation-of-operation, ...).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Rotate the root: a new root and issuing CA, trusted at once; issuance moves to them
    /// with --activate (now, or later on the pending rotation) or after the tenant's overlap (7 days).
    Rotate {
        /// Move issuance to the new hierarchy now.
        #[arg(long)]
        activate: bool,
        /// Key type of the new CAs: p256, p384, ed25519, rsa3072, rsa4096 (default: the current root's).
        #[arg(long)]
        key_type: Option<String>,
    },
}

/// `lightwell cert`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Request a certificate.
    Request(CertRequestArgs),
    /// List certificates (yours, or all for CA administrators).
    List {
        /// Only this principal's (kind/name, e.g. user/alice).
        #[arg(long)]
        principal: Option<String>,
    },
    /// Show a certificate.
    Show {
        /// Serial (hex).
        serial: String,
    },
    /// Revoke a certificate by serial, or every certificate of a principal.
    Revoke {
        /// Serial (hex).
        #[arg(long, conflicts_with = "principal", required_unless_present = "principal")]
        serial: Option<String>,
        /// Principal (kind/name, e.g. user/alice).
        #[arg(long)]
        principal: Option<String>,
        /// RFC 5280 reason (key-compromise, superseded, privilege-withdrawn, ...).
        #[arg(long)]
        reason: Option<String>,
    },
}

/// `lightwell cert request`.
#[derive(Debug, Args)]
pub struct CertRequestArgs {
    /// A PKCS#10 request (PEM or DER).
    #[arg(long, conflicts_with = "key_out", required_unless_present = "key_out")]
    pub csr: Option<PathBuf>,
    /// Generate a key here (0600) and send only its CSR.
    #[arg(long)]
    pub key_out: Option<PathBuf>,
    /// Key type for --key-out: p256 (default), p384, ed25519, rsa3072, rsa4096.
    #[arg(long, default_value = "p256")]
    pub key_type: String,
    /// Where to write the certificate followed by its intermediates (PEM).
    #[arg(long)]
    pub out: PathBuf,
    /// server, client or server-client (default by principal kind).
    #[arg(long)]
    pub profile: Option<String>,
    /// Lifetime, e.g. 8h, 24h, 7d.
    #[arg(long)]
    pub ttl: Option<String>,
    /// CA administrators: request on behalf of this principal (kind/name).
    #[arg(long)]
    pub principal: Option<String>,
}
