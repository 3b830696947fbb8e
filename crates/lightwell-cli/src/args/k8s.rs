//! Arguments of `lightwell k8s`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `lightwell k8s`.
#[derive(Debug, Subcommand)]
pub enum K8sCommand {
    /// Clusters: create, list, show, delete.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Nodes: the joined machines that may hold kubelet identities.
    #[command(subcommand)]
    Node(NodeCommand),
    /// kubeadm's PKI directory for a cluster.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// A kubeconfig for the logged-in user, with a short-lived client certificate.
    Kubeconfig(KubeconfigArgs),
    /// The webhook configuration kube-apiserver reads to ask the tenant who a
    /// bearer token names (--authentication-token-webhook-config-file).
    WebhookConfig(WebhookConfigArgs),
}

/// `lightwell k8s webhook-config`.
#[derive(Debug, Args)]
pub struct WebhookConfigArgs {
    /// Where to write it.
    #[arg(long)]
    pub out: PathBuf,
    /// The CA certificate (PEM) of Lightwell's API (default: the one this CLI trusts).
    #[arg(long)]
    pub server_ca: Option<PathBuf>,
}

/// `lightwell k8s cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create a cluster: its CA, front-proxy CA and etcd CA under the tenant root.
    Create(ClusterCreateArgs),
    /// List the tenant's clusters.
    List,
    /// Show a cluster.
    Show {
        /// Cluster name.
        name: String,
    },
    /// Delete a cluster: its CAs are revoked, cutting off every identity they issued.
    Delete {
        /// Cluster name.
        name: String,
    },
}

/// `lightwell k8s cluster create`.
#[derive(Debug, Args)]
pub struct ClusterCreateArgs {
    /// Cluster name (lower-case letters, digits, '-').
    pub name: String,
    /// The API server URL written into kubeconfigs (https://HOST:PORT).
    #[arg(long)]
    pub api_server: Option<String>,
    /// Cluster DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub dns_domain: String,
    /// Service CIDR; its first address is the `kubernetes` service IP.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cidr: String,
    /// DNS name constraint of the cluster's CAs (repeatable); the in-cluster API server names are added.
    #[arg(long = "name-constraint")]
    pub name_constraints: Vec<String>,
    /// Carry only these directory groups into user certificates, as DIRECTORY=KUBERNETES or NAME (repeatable).
    #[arg(long = "group-mapping")]
    pub group_mapping: Vec<String>,
    /// Allow `pki export` without --external-ca to fetch the cluster CA's private key (whoever
    /// holds it can sign certificates that chain to the tenant root).
    #[arg(long)]
    pub allow_ca_key_export: bool,
}

/// `lightwell k8s node`.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Let a joined machine's agent obtain kubelet client and serving certificates.
    Add(NodeArgs),
    /// Withdraw a machine; its kubelet certificates are revoked.
    Remove(NodeArgs),
}

/// A cluster and a machine.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Cluster name.
    #[arg(long)]
    pub cluster: String,
    /// The joined machine's host name.
    #[arg(long)]
    pub machine: String,
}

/// `lightwell k8s pki`.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Write a kubeadm PKI directory (/etc/kubernetes/pki layout) issued by Lightwell.
    Export(PkiExportArgs),
}

/// `lightwell k8s pki export`.
#[derive(Debug, Args)]
pub struct PkiExportArgs {
    /// Cluster name.
    #[arg(long)]
    pub cluster: String,
    /// The PKI directory to write (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// kubeadm's external CA mode: write no CA private key (every certificate comes from Lightwell).
    #[arg(long)]
    pub external_ca: bool,
    /// A control-plane host name or IP address (repeatable; the first host name is the node name).
    #[arg(long = "control-plane")]
    pub control_plane: Vec<String>,
    /// Lifetime of the certificates (default: the tenant maximum).
    #[arg(long)]
    pub ttl: Option<String>,
    /// Where kubeadm's kubeconfig files go (admin.conf, controller-manager.conf,
    /// scheduler.conf, kubelet.conf; written when the cluster has an API server URL);
    /// default: the parent of --dir, as /etc/kubernetes is of /etc/kubernetes/pki.
    #[arg(long)]
    pub kubeconfig_dir: Option<PathBuf>,
    /// Also write super-admin.conf (`system:masters`, a break-glass credential).
    #[arg(long)]
    pub super_admin: bool,
}

/// `lightwell k8s kubeconfig`.
#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// Cluster name.
    #[arg(long)]
    pub cluster: String,
    /// Lifetime of the client certificate.
    #[arg(long, default_value = "8h")]
    pub ttl: String,
    /// Where to write the kubeconfig (0600).
    #[arg(long)]
    pub out: PathBuf,
    /// API server URL, if the cluster has none recorded.
    #[arg(long)]
    pub api_server: Option<String>,
}
