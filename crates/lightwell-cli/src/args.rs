//! Command-line arguments (the contract of DESIGN.md section 4).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod ca;
mod join;
mod k8s;
mod oidc;
mod workload;

pub(crate) use self::ca::{CaCommand, CertCommand, CertRequestArgs};
pub(crate) use self::join::{AgentArgs, AgentCommand, JoinArgs, LeaveArgs, TokenCommand};
pub(crate) use self::k8s::{
    ClusterCommand, K8sCommand, KubeconfigArgs, NodeCommand, PkiCommand, PkiExportArgs, WebhookConfigArgs,
};
pub(crate) use self::oidc::{OidcClientCommand, OidcCommand};
pub(crate) use self::workload::{FederationCommand, WorkloadCommand};

/// Command line of `lightwell`.
#[derive(Debug, Parser)]
#[command(name = "lightwell", version, about = "Lightwell: directory, certificate authority and workload identity")]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// For people.
    #[default]
    Text,
    /// For scripts.
    Json,
}

/// Options accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Server URL, e.g. https://127.0.0.1:8443, or several replicas comma-separated
    /// (tried in order, failing over when one does not answer); remembered after login.
    #[arg(long, global = true, env = "LIGHTWELL_SERVER")]
    pub server: Option<String>,
    /// Trust the server by this CA file (server-ca.pem).
    #[arg(long, global = true, env = "LIGHTWELL_CA_FILE", conflicts_with = "ca_fingerprint")]
    pub ca_file: Option<PathBuf>,
    /// Trust the server by the SHA-256 fingerprint of its CA (sha256:HEX).
    #[arg(long, global = true, env = "LIGHTWELL_CA_FINGERPRINT")]
    pub ca_fingerprint: Option<String>,
    /// Tenant domain (remembered after login).
    #[arg(long, global = true, env = "LIGHTWELL_TENANT")]
    pub tenant: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t, env = "LIGHTWELL_OUTPUT")]
    pub output: OutputFormat,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in and remember the server, its trust anchor, the tenant and the token.
    Login(LoginArgs),
    /// End the current session.
    Logout,
    /// Show who you are logged in as.
    Whoami,
    /// Tenants (system operator).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// Groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Machines (joined hosts).
    #[command(subcommand)]
    Machine(MachineCommand),
    /// Services (workloads).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Certificate authorities: list, show, bundle, crl, create-intermediate, revoke, rotate.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Certificates: request, list, show, revoke.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Join tokens (Administrators): create, list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Join this host to a tenant: machine account, key, certificate, trust bundle, CRLs.
    Join(JoinArgs),
    /// Keep this host's identity, trust bundle and CRLs current.
    Agent(AgentArgs),
    /// Leave the domain: revoke this host's certificates and remove its state dir.
    Leave(LeaveArgs),
    /// Kubernetes: clusters, nodes, kubeadm PKI export, kubeconfigs.
    #[command(subcommand)]
    K8s(K8sCommand),
    /// Workloads: entries for the agents' SPIFFE Workload API (create, list, show, delete).
    #[command(subcommand)]
    Workload(WorkloadCommand),
    /// SPIFFE federation: foreign trust domains this tenant's workloads trust (create, list, show, refresh, delete).
    #[command(subcommand)]
    Federation(FederationCommand),
    /// The tenant's OpenID provider: clients that get tokens from its issuer.
    #[command(subcommand)]
    Oidc(OidcCommand),
}

/// `lightwell login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Log in as the system operator (user `operator`).
    #[arg(long, conflicts_with = "user")]
    pub operator: bool,
    /// User name.
    #[arg(long, required_unless_present = "operator")]
    pub user: Option<String>,
    /// File holding the password (otherwise LIGHTWELL_PASSWORD, then a prompt).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// `lightwell tenant`.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; its first administrator is the user `administrator`.
    Create {
        /// DNS domain, e.g. corp.example.
        domain: String,
        /// File holding the administrator's password (generated and printed once otherwise).
        #[arg(long)]
        admin_password_file: Option<PathBuf>,
        /// Key type of the tenant's CAs: p256 (default), p384, ed25519, rsa3072, rsa4096.
        #[arg(long)]
        key_type: Option<String>,
    },
    /// List tenants.
    List,
    /// Show a tenant.
    Show {
        /// Domain.
        domain: String,
    },
    /// Delete a tenant and all of its data.
    Delete {
        /// Domain.
        domain: String,
    },
}

/// `lightwell user`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        /// User name.
        name: String,
        /// File holding the initial password.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List users.
    List,
    /// Show a user.
    Show {
        /// User name.
        name: String,
    },
    /// Change a user's e-mail or display name ("" clears).
    Update {
        /// User name.
        name: String,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Delete a user.
    Delete {
        /// User name.
        name: String,
    },
    /// Set a password: your own (old password required) or, as an administrator, anyone's.
    SetPassword {
        /// User name.
        name: String,
        /// File holding the new password (otherwise LIGHTWELL_NEW_PASSWORD, then a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// File holding your current password, when changing your own.
        #[arg(long)]
        old_password_file: Option<PathBuf>,
    },
    /// Disable a user and end their sessions.
    Disable {
        /// User name.
        name: String,
    },
    /// Enable a user.
    Enable {
        /// User name.
        name: String,
    },
    /// Clear a lockout.
    Unlock {
        /// User name.
        name: String,
    },
}

/// `lightwell group`.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Create {
        /// Group name.
        name: String,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List groups.
    List,
    /// Show a group and its members.
    Show {
        /// Group name.
        name: String,
    },
    /// Delete a group.
    Delete {
        /// Group name.
        name: String,
    },
    /// Add a member (a user unless --kind says otherwise).
    AddMember {
        /// Group name.
        group: String,
        /// Member name.
        member: String,
        /// Member kind: user, group, machine or service.
        #[arg(long, default_value = "user")]
        kind: String,
    },
    /// Remove a direct member.
    RemoveMember {
        /// Group name.
        group: String,
        /// Member name.
        member: String,
        /// Member kind: user, group, machine or service.
        #[arg(long, default_value = "user")]
        kind: String,
    },
}

/// What `lightwell machine` and `lightwell service` share.
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// List.
    List,
    /// Show one.
    Show {
        /// Name.
        name: String,
    },
    /// Delete one.
    Delete {
        /// Name.
        name: String,
    },
    /// Disable one.
    Disable {
        /// Name.
        name: String,
    },
    /// Enable one.
    Enable {
        /// Name.
        name: String,
    },
    /// Replace its DNS names or IP addresses (each list given replaces the
    /// registered one; certificates carry them from the next renewal).
    Update {
        /// Name.
        name: String,
        /// DNS name (repeatable); a machine always keeps its own host name.
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// IP address (repeatable): approves it for the machine's or service's certificates.
        #[arg(long = "ip")]
        ip: Vec<String>,
        /// Remove every IP address.
        #[arg(long, conflicts_with = "ip")]
        clear_ips: bool,
    },
}

/// `lightwell machine`.
#[derive(Debug, Subcommand)]
pub enum MachineCommand {
    /// Show or replace the DNS domains, besides the tenant's own, inside which
    /// machines may be named (Administrators replace them).
    Domains {
        /// The domains to allow (replacing the list); none shows it.
        domains: Vec<String>,
        /// Allow no other domain than the tenant's own.
        #[arg(long, conflicts_with = "domains")]
        clear: bool,
    },
    /// List, show, delete, disable, enable or update.
    #[command(flatten)]
    Common(HostCommand),
}

/// `lightwell service`.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a service.
    Create {
        /// Service name.
        name: String,
        /// DNS name the service answers on (repeatable).
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// IP address of the service (repeatable).
        #[arg(long = "ip")]
        ip: Vec<String>,
    },
    /// Let a machine's agent hold and renew this service's certificate.
    AddHost {
        /// Service name.
        service: String,
        /// The machine's host name.
        machine: String,
    },
    /// Withdraw that.
    RemoveHost {
        /// Service name.
        service: String,
        /// The machine's host name.
        machine: String,
    },
    /// List, show, delete, disable or enable.
    #[command(flatten)]
    Common(HostCommand),
}

/// `lightwell audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit records (the tenant's, or the system chain with --system).
    List {
        /// The system chain (operator).
        #[arg(long)]
        system: bool,
        /// Records after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many records.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Verify the hash chain; exits non-zero if it is broken.
    Verify {
        /// The system chain (operator).
        #[arg(long)]
        system: bool,
        /// Also check that the chain holds every record named by this copy of
        /// the server's audit checkpoint file (`audit_checkpoint_file`).
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
    },
    /// Checkpoint every tenant chain into the system chain and the
    /// checkpoint file now (operator).
    Checkpoint,
}
