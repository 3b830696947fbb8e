//! The Kubernetes endpoints.

use lightwell_proto::*;
use reqwest::Method;

use super::{Client, Result};

impl Client {
    /// Creates a cluster with its three CAs.
    pub async fn create_cluster(&self, tenant: &str, req: &CreateClusterRequest) -> Result<ClusterInfo> {
        self.post(&["v1", "tenants", tenant, "k8s", "clusters"], req).await
    }

    /// Lists the tenant's clusters.
    pub async fn list_clusters(&self, tenant: &str) -> Result<Vec<ClusterInfo>> {
        self.get(&["v1", "tenants", tenant, "k8s", "clusters"]).await
    }

    /// Shows a cluster.
    pub async fn cluster(&self, tenant: &str, cluster: &str) -> Result<ClusterInfo> {
        self.get(&["v1", "tenants", tenant, "k8s", "clusters", cluster]).await
    }

    /// Deletes a cluster; its CAs are revoked. Returns the serials revoked.
    pub async fn delete_cluster(&self, tenant: &str, cluster: &str) -> Result<RevokeResponse> {
        self.call::<(), _>(Method::DELETE, &["v1", "tenants", tenant, "k8s", "clusters", cluster], &[], None).await
    }

    /// Makes a joined machine a node of the cluster.
    pub async fn add_cluster_node(&self, tenant: &str, cluster: &str, machine: &str) -> Result<ClusterInfo> {
        let req = AddNodeRequest { machine: machine.to_string() };
        self.post(&["v1", "tenants", tenant, "k8s", "clusters", cluster, "nodes"], &req).await
    }

    /// Withdraws a node; its kubelet certificates are revoked.
    pub async fn remove_cluster_node(&self, tenant: &str, cluster: &str, machine: &str) -> Result<ClusterInfo> {
        let path = ["v1", "tenants", tenant, "k8s", "clusters", cluster, "nodes", machine];
        self.call::<(), _>(Method::DELETE, &path, &[], None).await
    }

    /// Issues a control-plane certificate.
    pub async fn issue_component(
        &self,
        tenant: &str,
        cluster: &str,
        req: &ComponentCertificateRequest,
    ) -> Result<CertificateInfo> {
        self.post(&["v1", "tenants", tenant, "k8s", "clusters", cluster, "components"], req).await
    }

    /// The cluster CA's certificate and private key.
    pub async fn cluster_ca_key(&self, tenant: &str, cluster: &str) -> Result<ClusterCaKey> {
        self.post(&["v1", "tenants", tenant, "k8s", "clusters", cluster, "ca-key"], &serde_json::json!({})).await
    }
}
