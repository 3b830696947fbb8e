//! The workload endpoints: entries (administrators) and SVIDs (agents).

use lightwell_proto::*;
use reqwest::Method;

use super::{Client, Result};

impl Client {
    /// Registers a workload entry.
    pub async fn create_workload(&self, tenant: &str, req: &CreateWorkloadRequest) -> Result<WorkloadInfo> {
        self.post(&["v1", "tenants", tenant, "workloads"], req).await
    }

    /// Lists the tenant's workload entries.
    pub async fn list_workloads(&self, tenant: &str) -> Result<Vec<WorkloadInfo>> {
        self.get(&["v1", "tenants", tenant, "workloads"]).await
    }

    /// Shows a workload entry.
    pub async fn workload(&self, tenant: &str, name: &str) -> Result<WorkloadInfo> {
        self.get(&["v1", "tenants", tenant, "workloads", name]).await
    }

    /// Deletes a workload entry; returns the serials of the SVIDs revoked with it.
    pub async fn delete_workload(&self, tenant: &str, name: &str) -> Result<RevokeResponse> {
        self.call::<(), _>(Method::DELETE, &["v1", "tenants", tenant, "workloads", name], &[], None).await
    }

    /// The entries assigned to the calling machine (mutual TLS).
    pub async fn assigned_workloads(&self, tenant: &str) -> Result<Vec<AssignedWorkload>> {
        self.get(&["v1", "tenants", tenant, "workload-assignments"]).await
    }

    /// Asks for an X.509-SVID of an assigned entry (mutual TLS).
    pub async fn issue_svid(&self, tenant: &str, name: &str, req: &SvidRequest) -> Result<CertificateInfo> {
        self.post(&["v1", "tenants", tenant, "workloads", name, "svid"], req).await
    }
    /// Asks for a JWT-SVID of an assigned entry (mutual TLS).
    pub async fn issue_jwt_svid(&self, tenant: &str, name: &str, req: &JwtSvidRequest) -> Result<JwtSvidInfo> {
        self.post(&["v1", "tenants", tenant, "workloads", name, "jwt-svid"], req).await
    }

    /// The tenant's token keys, the JWK Set its issuer publishes (`/oidc/{tenant}/jwks`).
    pub async fn token_jwks(&self, tenant: &str) -> Result<serde_json::Value> {
        self.get(&["oidc", tenant, "jwks"]).await
    }

    /// Registers a foreign trust domain (CA administrators).
    pub async fn create_federation(&self, tenant: &str, req: &CreateFederationRequest) -> Result<FederationInfo> {
        self.post(&["v1", "tenants", tenant, "federations"], req).await
    }

    /// Lists the tenant's foreign trust domains.
    pub async fn list_federations(&self, tenant: &str) -> Result<Vec<FederationInfo>> {
        self.get(&["v1", "tenants", tenant, "federations"]).await
    }

    /// Shows a foreign trust domain: its endpoint, the bundle held, the last error.
    pub async fn federation(&self, tenant: &str, trust_domain: &str) -> Result<FederationInfo> {
        self.get(&["v1", "tenants", tenant, "federations", trust_domain]).await
    }

    /// Stops trusting a foreign trust domain.
    pub async fn delete_federation(&self, tenant: &str, trust_domain: &str) -> Result<()> {
        self.delete(&["v1", "tenants", tenant, "federations", trust_domain]).await
    }

    /// Has the server read a foreign trust domain's endpoint again now.
    pub async fn refresh_federation(&self, tenant: &str, trust_domain: &str) -> Result<FederationInfo> {
        let path = ["v1", "tenants", tenant, "federations", trust_domain, "refresh"];
        self.call::<(), _>(Method::POST, &path, &[], None).await
    }

    /// The bundles of the tenant's foreign trust domains (agents, mutual TLS).
    pub async fn federated_bundles(&self, tenant: &str) -> Result<Vec<FederatedBundle>> {
        self.get(&["v1", "tenants", tenant, "federated-bundles"]).await
    }

    /// Registers a client of the tenant's OpenID provider; the answer holds its secret, once.
    pub async fn create_oidc_client(&self, tenant: &str, req: &CreateOidcClientRequest) -> Result<OidcClientInfo> {
        self.post(&["v1", "tenants", tenant, "oidc", "clients"], req).await
    }

    /// Lists the tenant's OpenID clients.
    pub async fn list_oidc_clients(&self, tenant: &str) -> Result<Vec<OidcClientInfo>> {
        self.get(&["v1", "tenants", tenant, "oidc", "clients"]).await
    }

    /// Shows an OpenID client.
    pub async fn oidc_client(&self, tenant: &str, name: &str) -> Result<OidcClientInfo> {
        self.get(&["v1", "tenants", tenant, "oidc", "clients", name]).await
    }

    /// Deletes an OpenID client.
    pub async fn delete_oidc_client(&self, tenant: &str, name: &str) -> Result<()> {
        self.delete(&["v1", "tenants", tenant, "oidc", "clients", name]).await
    }

    /// Gives an OpenID client a new secret; the answer holds it, once.
    pub async fn rotate_oidc_client_secret(&self, tenant: &str, name: &str) -> Result<OidcClientInfo> {
        let path = ["v1", "tenants", tenant, "oidc", "clients", name, "secret"];
        self.call::<(), _>(Method::POST, &path, &[], None).await
    }
}
