//! Arguments of `lightwell workload`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `lightwell workload`: entries that say which processes on which hosts
/// hold an identity of a service (served by the agent's Workload API).
#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// Register a workload: a SPIFFE ID of a service, selectors, hosts.
    Create(WorkloadCreateArgs),
    /// List the tenant's workload entries.
    List,
    /// Show a workload entry.
    Show {
        /// Entry name.
        name: String,
    },
    /// Delete a workload entry; its SVIDs are revoked.
    Delete {
        /// Entry name.
        name: String,
    },
}

/// `lightwell workload create`.
#[derive(Debug, Args)]
pub struct WorkloadCreateArgs {
    /// Entry name (lower-case letters, digits, '-').
    pub name: String,
    /// The service whose identity the workload holds.
    #[arg(long)]
    pub service: String,
    /// Sub-path under the service's SPIFFE ID (`worker`: spiffe://TENANT/service/S/worker).
    #[arg(long)]
    pub path: Option<String>,
    /// A machine the workload may run on (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// A group whose machines may run the workload (repeatable).
    #[arg(long = "host-group")]
    pub host_groups: Vec<String>,
    /// A selector every matching process satisfies, KIND:VALUE (repeatable):
    /// unix:uid:N, unix:user:NAME, unix:gid:N, unix:group:NAME, unix:supplementary-gid:N,
    /// unix:supplementary-group:NAME, unix:path:/PATH, unix:sha256:HEX,
    /// cgroup:container-id:ID, k8s:pod-uid:UID, and from the kubelet k8s:ns:NAMESPACE,
    /// k8s:sa:SERVICEACCOUNT, k8s:pod-label:KEY:VALUE.
    #[arg(long = "selector", required = true)]
    pub selectors: Vec<String>,
    /// SVID lifetime (default 1h; rotated at half of it).
    #[arg(long)]
    pub ttl: Option<String>,
    /// A DNS name for the SVIDs, registered to the service (repeatable).
    #[arg(long = "dns")]
    pub dns_names: Vec<String>,
}

/// `lightwell federation`: foreign trust domains whose workloads this
/// tenant's workloads trust (SPIFFE federation).
#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// Trust a foreign trust domain: read from its SPIFFE bundle endpoint, or a bundle given as it is.
    Create(FederationCreateArgs),
    /// List the foreign trust domains.
    List,
    /// Show a foreign trust domain: endpoint, bundle held, last error.
    Show {
        /// The trust domain.
        trust_domain: String,
    },
    /// Read a foreign trust domain's bundle endpoint again now.
    Refresh {
        /// The trust domain.
        trust_domain: String,
    },
    /// Stop trusting a foreign trust domain.
    Delete {
        /// The trust domain.
        trust_domain: String,
    },
}

/// `lightwell federation create`.
#[derive(Debug, Args)]
pub struct FederationCreateArgs {
    /// The foreign trust domain (`partner.example`).
    pub trust_domain: String,
    /// Its SPIFFE bundle endpoint (https_web profile), https://...
    #[arg(long, conflicts_with = "bundle", required_unless_present = "bundle")]
    pub bundle_endpoint: Option<String>,
    /// File of CA certificates (PEM) the endpoint's TLS certificate must chain to (default: the system's web roots).
    #[arg(long, requires = "bundle_endpoint")]
    pub endpoint_ca: Option<PathBuf>,
    /// File holding the trust domain's SPIFFE bundle (JSON), trusted as it is, instead of an endpoint.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
}
