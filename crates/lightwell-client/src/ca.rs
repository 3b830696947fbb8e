//! The certificate authority endpoints.

use lightwell_proto::*;
use reqwest::Method;

use super::{Client, ClientError, Result, transport};

impl Client {
    /// Lists the tenant's CAs.
    pub async fn list_cas(&self, tenant: &str) -> Result<Vec<CaInfo>> {
        self.get(&["v1", "tenants", tenant, "cas"]).await
    }

    /// Shows a CA by name or id.
    pub async fn ca(&self, tenant: &str, ca: &str) -> Result<CaInfo> {
        self.get(&["v1", "tenants", tenant, "cas", ca]).await
    }

    /// Creates an issuing CA.
    pub async fn create_intermediate(&self, tenant: &str, req: &CreateIntermediateRequest) -> Result<CaInfo> {
        self.post(&["v1", "tenants", tenant, "cas"], req).await
    }

    /// Revokes an issuing CA and everything it issued.
    pub async fn revoke_ca(&self, tenant: &str, ca: &str, req: &RevokeRequest) -> Result<RevokeResponse> {
        self.post(&["v1", "tenants", tenant, "cas", ca, "revoke"], req).await
    }

    /// Rotates the tenant's root, or activates a pending rotation; returns the new root and issuing CA.
    pub async fn rotate_root(&self, tenant: &str, req: &RotateRequest) -> Result<Vec<CaInfo>> {
        self.post(&["v1", "tenants", tenant, "cas", "rotate"], req).await
    }

    /// Imports an existing CA with its private key.
    pub async fn import_ca(&self, tenant: &str, req: &ImportCaRequest) -> Result<CaInfo> {
        self.post(&["v1", "tenants", tenant, "cas", "import"], req).await
    }

    /// Starts an intermediate for an enterprise CA to sign; returns its CSR.
    pub async fn create_ca_request(&self, tenant: &str, req: &CreateCaRequestRequest) -> Result<CaRequestInfo> {
        self.post(&["v1", "tenants", tenant, "ca-requests"], req).await
    }

    /// Installs the signed certificate of a pending intermediate.
    pub async fn install_ca(&self, tenant: &str, name: &str, req: &InstallCaRequest) -> Result<CaInfo> {
        self.post(&["v1", "tenants", tenant, "ca-requests", name, "install"], req).await
    }

    /// The latest CRL of a CA, PEM.
    pub async fn ca_crl_pem(&self, tenant: &str, ca: &str) -> Result<String> {
        self.text(&["v1", "tenants", tenant, "cas", ca, "crl"]).await
    }

    /// The trust bundle, PEM.
    pub async fn trust_bundle_pem(&self, tenant: &str) -> Result<String> {
        self.text(&["v1", "tenants", tenant, "trust-bundle"]).await
    }

    /// The trust bundle with fingerprints.
    pub async fn trust_bundle(&self, tenant: &str) -> Result<TrustBundle> {
        self.call::<(), _>(Method::GET, &["v1", "tenants", tenant, "trust-bundle"], &[("format", "json".into())], None)
            .await
    }

    /// Requests a certificate.
    pub async fn issue_certificate(&self, tenant: &str, req: &IssueCertificateRequest) -> Result<CertificateInfo> {
        self.post(&["v1", "tenants", tenant, "certificates"], req).await
    }

    /// Lists certificates, optionally of one principal (`kind/name`).
    pub async fn list_certificates(&self, tenant: &str, principal: Option<&str>) -> Result<Vec<CertificateInfo>> {
        let query: Vec<(&str, String)> = principal.map(|p| ("principal", p.to_string())).into_iter().collect();
        self.call::<(), _>(Method::GET, &["v1", "tenants", tenant, "certificates"], &query, None).await
    }

    /// Shows a certificate by serial.
    pub async fn certificate(&self, tenant: &str, serial: &str) -> Result<CertificateInfo> {
        self.get(&["v1", "tenants", tenant, "certificates", serial]).await
    }

    /// Revokes a certificate by serial.
    pub async fn revoke_certificate(&self, tenant: &str, serial: &str, req: &RevokeRequest) -> Result<RevokeResponse> {
        self.post(&["v1", "tenants", tenant, "certificates", serial, "revoke"], req).await
    }

    /// Revokes every certificate of the principal named in `req`.
    pub async fn revoke_principal_certificates(&self, tenant: &str, req: &RevokeRequest) -> Result<RevokeResponse> {
        self.post(&["v1", "tenants", tenant, "certificates", "revoke"], req).await
    }

    /// GETs a text body (PEM).
    async fn text(&self, segments: &[&str]) -> Result<String> {
        let resp = self.send(&Method::GET, |url| self.http.get(url), segments).await?;
        let status = resp.status();
        let text = resp.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(e) => ClientError::Api { status: status.as_u16(), code: e.error.code, message: e.error.message },
                Err(_) => ClientError::Transport(format!("unexpected HTTP {status} without an API error body")),
            });
        }
        Ok(text)
    }
}
