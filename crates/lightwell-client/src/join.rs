//! Domain join and trust sync.

use lightwell_proto::{
    AddServiceHostRequest, CreateJoinTokenRequest, EnrollResponse, JoinRequestBody, JoinResponse, JoinToken,
    LeaveRequest, LeaveResponse, MachineDomains, MachineSecret, Principal, ReenrollRequest, RotateMachineSecretRequest,
    TrustChangesBody, TrustRevision, TrustStateBody,
};
use reqwest::Method;

use crate::{Client, Result};

impl Client {
    /// Creates a join token (Administrators).
    pub async fn create_join_token(&self, tenant: &str, req: &CreateJoinTokenRequest) -> Result<JoinToken> {
        self.post(&["v1", "tenants", tenant, "join-tokens"], req).await
    }

    /// Lists join tokens.
    pub async fn list_join_tokens(&self, tenant: &str) -> Result<Vec<JoinToken>> {
        self.get(&["v1", "tenants", tenant, "join-tokens"]).await
    }

    /// Revokes a join token.
    pub async fn revoke_join_token(&self, tenant: &str, id: &str) -> Result<()> {
        self.delete(&["v1", "tenants", tenant, "join-tokens", id]).await
    }

    /// Joins a host (with a join token in the body, or this client's bearer token).
    pub async fn join(&self, tenant: &str, req: &JoinRequestBody) -> Result<JoinResponse> {
        self.post(&["v1", "tenants", tenant, "join"], req).await
    }

    /// Re-enrols a machine with its machine secret.
    pub async fn reenroll(&self, tenant: &str, req: &ReenrollRequest) -> Result<EnrollResponse> {
        self.post(&["v1", "tenants", tenant, "reenroll"], req).await
    }

    /// Replaces this machine's secret (mutual TLS as the machine, and the current secret).
    pub async fn rotate_machine_secret(&self, tenant: &str, current: &str, new: Option<&str>) -> Result<MachineSecret> {
        let req = RotateMachineSecretRequest {
            machine_secret: current.to_string(),
            new_machine_secret: new.map(str::to_string),
        };
        self.post(&["v1", "tenants", tenant, "machine-secret"], &req).await
    }

    /// Leaves the domain (by the machine secret): revokes every certificate
    /// the machine holds or obtained, forgets its secret, disables its account.
    pub async fn leave(&self, tenant: &str, req: &LeaveRequest) -> Result<LeaveResponse> {
        self.post(&["v1", "tenants", tenant, "leave"], req).await
    }

    /// The DNS domains, besides the tenant's own, that machines may be named inside.
    pub async fn machine_domains(&self, tenant: &str) -> Result<MachineDomains> {
        self.get(&["v1", "tenants", tenant, "machine-domains"]).await
    }

    /// Replaces those domains (Administrators).
    pub async fn set_machine_domains(&self, tenant: &str, domains: &MachineDomains) -> Result<MachineDomains> {
        self.call(Method::PUT, &["v1", "tenants", tenant, "machine-domains"], &[], Some(domains)).await
    }

    /// The trust bundle and CRLs at the current revision.
    pub async fn trust(&self, tenant: &str) -> Result<TrustStateBody> {
        self.get(&["v1", "tenants", tenant, "trust"]).await
    }

    /// Waits (long poll, at most `timeout_secs`) for the trust revision to exceed `since`.
    pub async fn watch_trust(&self, tenant: &str, since: i64, timeout_secs: u64) -> Result<TrustRevision> {
        let query = [("since", since.to_string()), ("timeout_secs", timeout_secs.to_string())];
        self.call::<(), _>(Method::GET, &["v1", "tenants", tenant, "trust", "watch"], &query, None).await
    }

    /// What changed in the trust state after `since` (long poll, at most
    /// `timeout_secs`), or that the caller must fetch it whole.
    pub async fn trust_changes(&self, tenant: &str, since: i64, timeout_secs: u64) -> Result<TrustChangesBody> {
        let query = [("since", since.to_string()), ("timeout_secs", timeout_secs.to_string())];
        self.call::<(), _>(Method::GET, &["v1", "tenants", tenant, "trust", "changes"], &query, None).await
    }

    /// Lets a machine hold a service's identity (Administrators).
    pub async fn add_service_host(&self, tenant: &str, service: &str, machine: &str) -> Result<Principal> {
        let req = AddServiceHostRequest { machine: machine.into() };
        self.post(&["v1", "tenants", tenant, "services", service, "hosts"], &req).await
    }

    /// Withdraws a machine's right to a service's identity.
    pub async fn remove_service_host(&self, tenant: &str, service: &str, machine: &str) -> Result<Principal> {
        self.call::<(), _>(Method::DELETE, &["v1", "tenants", tenant, "services", service, "hosts", machine], &[], None)
            .await
    }
}
