//! A typed client for Lightwell's REST API v1.
//!
//! The server is always verified: either against a CA certificate file
//! (`server-ca.pem`) or against a pinned SHA-256 fingerprint of a certificate
//! in the server's chain. There is no way to turn verification off.
#![forbid(unsafe_code)]

mod ca;
mod join;
mod trust;

use lightwell_proto::*;
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

pub use trust::{ClientIdentity, Trust};

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an API error.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: ErrorCode,
        /// Message from the server.
        message: String,
    },
    /// The server could not be reached or did not speak the API.
    #[error("cannot talk to the server: {0}")]
    Transport(String),
    /// The server URL is not an https:// URL.
    #[error("invalid server URL {0:?}: expected https://HOST[:PORT]")]
    InvalidUrl(String),
    /// The trust settings are unusable.
    #[error("server trust: {0}")]
    Trust(String),
}

impl ClientError {
    /// The API error code, if the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Result with [`ClientError`].
pub type Result<T> = std::result::Result<T, ClientError>;

/// A client bound to one server, optionally with a bearer token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<Zeroizing<String>>,
}

fn transport(e: reqwest::Error) -> ClientError {
    // Walk the source chain: the TLS reason (for example a fingerprint mismatch) is deep inside.
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    ClientError::Transport(msg)
}

impl Client {
    /// A client for the server at `server` (an `https://` URL) trusted by `trust`.
    pub fn new(server: &str, trust: &Trust) -> Result<Self> {
        Self::with_identity(server, trust, None)
    }

    /// A client that also presents a TLS client certificate (mutual TLS).
    pub fn with_identity(server: &str, trust: &Trust, identity: Option<&ClientIdentity>) -> Result<Self> {
        let base = Url::parse(server).map_err(|_| ClientError::InvalidUrl(server.into()))?;
        if base.scheme() != "https" || base.host().is_none() {
            return Err(ClientError::InvalidUrl(server.into()));
        }
        let tls = trust.client_config(identity)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(std::time::Duration::from_secs(60))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(transport)?;
        Ok(Self { http, base, token: None })
    }

    /// The same client, authenticating with a bearer token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Zeroizing::new(token.into()));
        self
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        url
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T> {
        let build = || {
            let mut req = self.http.request(method.clone(), self.url(segments));
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(token) = &self.token {
                req = req.bearer_auth(token.as_str());
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            req
        };
        let resp = match build().send().await {
            Ok(resp) => resp,
            // A pooled keep-alive connection may have been closed by a server
            // that restarted; an idempotent request is safe to send once more.
            Err(e) if method.is_idempotent() && (e.is_request() || e.is_connect()) => {
                build().send().await.map_err(transport)?
            }
            Err(e) => return Err(transport(e)),
        };
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => ClientError::Api { status: status.as_u16(), code: e.error.code, message: e.error.message },
                Err(_) => ClientError::Transport(format!("unexpected HTTP {status} without an API error body")),
            });
        }
        let bytes = if status == StatusCode::NO_CONTENT || bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Transport(format!("unexpected response: {e}")))
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        self.call::<(), T>(Method::GET, segments, &[], None).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, segments: &[&str], body: &B) -> Result<T> {
        self.call(Method::POST, segments, &[], Some(body)).await
    }

    async fn delete(&self, segments: &[&str]) -> Result<()> {
        self.call::<(), ()>(Method::DELETE, segments, &[], None).await
    }

    /// Logs in as the system operator.
    pub async fn operator_login(&self, user: &str, password: &str) -> Result<LoginResponse> {
        self.post(&["v1", "login"], &LoginRequest { user: user.into(), password: password.into() }).await
    }

    /// Logs in to a tenant.
    pub async fn login(&self, tenant: &str, user: &str, password: &str) -> Result<LoginResponse> {
        self.post(&["v1", "tenants", tenant, "login"], &LoginRequest { user: user.into(), password: password.into() })
            .await
    }

    /// Ends the current session.
    pub async fn logout(&self) -> Result<()> {
        self.call::<(), ()>(Method::POST, &["v1", "logout"], &[], None).await
    }

    /// Who the current credentials authenticate.
    pub async fn whoami(&self) -> Result<Identity> {
        self.get(&["v1", "whoami"]).await
    }

    /// Creates a tenant.
    pub async fn create_tenant(&self, req: &CreateTenantRequest) -> Result<CreateTenantResponse> {
        self.post(&["v1", "tenants"], req).await
    }

    /// Lists tenants.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.get(&["v1", "tenants"]).await
    }

    /// Shows a tenant.
    pub async fn tenant(&self, tenant: &str) -> Result<Tenant> {
        self.get(&["v1", "tenants", tenant]).await
    }

    /// Deletes a tenant.
    pub async fn delete_tenant(&self, tenant: &str) -> Result<()> {
        self.delete(&["v1", "tenants", tenant]).await
    }

    /// Creates a principal in `collection` (`users`, `groups`, `machines`, `services`)
    /// from the matching request type.
    pub async fn create_principal<B: Serialize>(&self, tenant: &str, collection: &str, req: &B) -> Result<Principal> {
        self.post(&["v1", "tenants", tenant, collection], req).await
    }

    /// Lists a collection.
    pub async fn list_principals(&self, tenant: &str, collection: &str) -> Result<Vec<Principal>> {
        self.get(&["v1", "tenants", tenant, collection]).await
    }

    /// Shows a principal.
    pub async fn principal(&self, tenant: &str, collection: &str, name: &str) -> Result<Principal> {
        self.get(&["v1", "tenants", tenant, collection, name]).await
    }

    /// Updates a principal.
    pub async fn update_principal(
        &self,
        tenant: &str,
        collection: &str,
        name: &str,
        req: &UpdatePrincipalRequest,
    ) -> Result<Principal> {
        self.call(Method::PATCH, &["v1", "tenants", tenant, collection, name], &[], Some(req)).await
    }

    /// Deletes a principal.
    pub async fn delete_principal(&self, tenant: &str, collection: &str, name: &str) -> Result<()> {
        self.delete(&["v1", "tenants", tenant, collection, name]).await
    }

    /// Runs a state action (`enable`, `disable`, `unlock`) on a principal.
    pub async fn principal_action(&self, tenant: &str, collection: &str, name: &str, action: &str) -> Result<()> {
        self.call::<(), ()>(Method::POST, &["v1", "tenants", tenant, collection, name, action], &[], None).await
    }

    /// Changes or resets a user's password.
    pub async fn set_password(&self, tenant: &str, user: &str, req: &SetPasswordRequest) -> Result<()> {
        self.call(Method::PUT, &["v1", "tenants", tenant, "users", user, "password"], &[], Some(req)).await
    }

    /// Adds a member to a group.
    pub async fn add_member(&self, tenant: &str, group: &str, req: &AddMemberRequest) -> Result<Principal> {
        self.post(&["v1", "tenants", tenant, "groups", group, "members"], req).await
    }

    /// Removes a member from a group.
    pub async fn remove_member(&self, tenant: &str, group: &str, kind: &str, member: &str) -> Result<Principal> {
        self.call::<(), Principal>(
            Method::DELETE,
            &["v1", "tenants", tenant, "groups", group, "members", kind, member],
            &[],
            None,
        )
        .await
    }

    /// Audit records of a tenant, or of the system chain when `tenant` is `None`.
    pub async fn audit(&self, tenant: Option<&str>, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let query = [("after", after.to_string()), ("limit", limit.to_string())];
        match tenant {
            Some(t) => self.call::<(), _>(Method::GET, &["v1", "tenants", t, "audit"], &query, None).await,
            None => self.call::<(), _>(Method::GET, &["v1", "audit"], &query, None).await,
        }
    }

    /// Verifies an audit chain.
    pub async fn audit_verify(&self, tenant: Option<&str>) -> Result<AuditVerification> {
        match tenant {
            Some(t) => self.get(&["v1", "tenants", t, "audit", "verify"]).await,
            None => self.get(&["v1", "audit", "verify"]).await,
        }
    }
}
