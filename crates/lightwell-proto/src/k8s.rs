//! Request and response bodies of Kubernetes support: clusters, their nodes,
//! control-plane certificates and CA keys.

use serde::{Deserialize, Serialize};

request_type! {
    /// `POST /v1/tenants/{tenant}/k8s/clusters`.
    pub struct CreateClusterRequest {
        /// Cluster name, unique in the tenant (lower-case letters, digits, `-`).
        pub name: String,
        /// The API server URL put into kubeconfigs (`https://...`).
        #[serde(default)]
        pub api_server: Option<String>,
        /// The cluster DNS domain (default `cluster.local`).
        #[serde(default)]
        pub dns_domain: Option<String>,
        /// The service CIDR (default `10.96.0.0/12`); its first address is the `kubernetes` service IP.
        #[serde(default)]
        pub service_cidr: Option<String>,
        /// DNS name constraints of the cluster's CAs (permitted subtrees). The in-cluster
        /// names of the API server and `localhost` are added when any is given.
        #[serde(default)]
        pub name_constraints: Vec<String>,
        /// Directory groups carried into user certificates, as `DIRECTORY=KUBERNETES`
        /// (or just `NAME`). When empty, every group of the user is carried as is.
        #[serde(default)]
        pub group_mapping: Vec<String>,
        /// Allow the cluster CA's private key to be exported (`pki export` without
        /// `--external-ca`, for clusters that sign kubelet CSRs themselves). Off by default:
        /// whoever holds that key can sign certificates that chain to the tenant root.
        #[serde(default)]
        pub allow_ca_key_export: bool,
    }
}

api_type! {
    /// A Kubernetes cluster of a tenant.
    pub struct ClusterInfo {
        /// Name.
        pub name: String,
        /// API server URL for kubeconfigs, if set.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub api_server: Option<String>,
        /// Cluster DNS domain.
        pub dns_domain: String,
        /// Service CIDR.
        pub service_cidr: String,
        /// The `kubernetes` service IP (first address of the service CIDR).
        pub service_ip: String,
        /// DNS name constraints of the cluster's CAs.
        pub name_constraints: Vec<String>,
        /// Group mapping, `DIRECTORY=KUBERNETES`.
        pub group_mapping: Vec<String>,
        /// Name of the cluster CA (kubeadm's `ca.crt`).
        pub ca: String,
        /// Id of the cluster CA (its CRL is `crl/<id>.crl.pem` in an agent's state dir).
        pub ca_id: String,
        /// Id of the front-proxy CA.
        pub front_proxy_ca_id: String,
        /// Id of the etcd CA (for etcd's `--client-crl-file crl/<id>.crl.pem`).
        pub etcd_ca_id: String,
        /// Name of the front-proxy CA (`front-proxy-ca.crt`).
        pub front_proxy_ca: String,
        /// Name of the etcd CA (`etcd/ca.crt`).
        pub etcd_ca: String,
        /// The cluster CA certificate, PEM.
        pub ca_pem: String,
        /// The front-proxy CA certificate, PEM.
        pub front_proxy_ca_pem: String,
        /// The etcd CA certificate, PEM.
        pub etcd_ca_pem: String,
        /// Host names of the machines that may hold kubelet identities.
        pub nodes: Vec<String>,
        /// Whether the cluster CA's key may be exported.
        pub ca_key_exportable: bool,
        /// Creation time.
        pub created_at: String,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/k8s/clusters/{name}/nodes`.
    pub struct AddNodeRequest {
        /// The joined machine's host name.
        pub machine: String,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/k8s/clusters/{name}/components`: a control-plane
    /// certificate laid out as kubeadm does for the same file.
    pub struct ComponentCertificateRequest {
        /// `apiserver`, `apiserver-kubelet-client`, `front-proxy-client`, `etcd-server`,
        /// `etcd-peer`, `etcd-healthcheck-client`, `apiserver-etcd-client`, or the client
        /// certificate of a kubeadm kubeconfig file: `admin`, `super-admin`,
        /// `controller-manager`, `scheduler`, `kubelet` (the control-plane node's).
        pub component: String,
        /// PKCS#10 request carrying the key: PEM, or DER in base64.
        pub csr: String,
        /// Control-plane hosts (DNS names or IP addresses); the first DNS name is the node name.
        #[serde(default)]
        pub control_plane: Vec<String>,
        /// Lifetime (default: the tenant maximum).
        #[serde(default)]
        pub ttl: Option<String>,
    }
}

/// `POST /v1/tenants/{tenant}/k8s/clusters/{name}/ca-key`: the cluster CA's private key,
/// for clusters that sign kubelet CSRs themselves (not kubeadm's external CA mode).
/// `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterCaKey {
    /// The cluster CA certificate, PEM.
    pub certificate: String,
    /// Its private key, PKCS#8 PEM.
    pub key: String,
}

impl std::fmt::Debug for ClusterCaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCaKey").field("certificate", &self.certificate).finish_non_exhaustive()
    }
}
