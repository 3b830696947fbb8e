//! A typed client for Lightwell's REST API v1.
//!
//! The server is always verified: either against a CA certificate file
//! (`server-ca.pem`) or against a pinned SHA-256 fingerprint of a certificate
//! in the server's chain. There is no way to turn verification off.
#![forbid(unsafe_code)]

mod ca;
mod join;
mod k8s;
mod trust;
mod workloads;

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

/// A client of one server, or of several equivalent servers (replicas)
/// tried in order, optionally with a bearer token.
///
/// With several servers, each request goes to the first one and moves on to
/// the next when a server does not answer (connection refused or timed out,
/// or HTTP 503 `unavailable`), so a stopped replica costs one failed connect
/// and a replica that returns gets its requests back at once. A request that
/// may change something (POST, PATCH) moves on only if it never reached the
/// server or the server answered 503 (nothing applied); one that was sent and
/// then lost its connection is reported, not repeated elsewhere.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    servers: std::sync::Arc<[Url]>,
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

fn parse_server(server: &str) -> Result<Url> {
    let url = Url::parse(server.trim()).map_err(|_| ClientError::InvalidUrl(server.into()))?;
    if url.scheme() != "https" || url.host().is_none() {
        return Err(ClientError::InvalidUrl(server.into()));
    }
    Ok(url)
}

impl Client {
    /// A client for the server at `server` (an `https://` URL) trusted by `trust`.
    pub fn new(server: &str, trust: &Trust) -> Result<Self> {
        Self::with_identity(server, trust, None)
    }

    /// A client that also presents a TLS client certificate (mutual TLS).
    pub fn with_identity(server: &str, trust: &Trust, identity: Option<&ClientIdentity>) -> Result<Self> {
        Self::with_servers(&[server], trust, identity)
    }

    /// A client of several equivalent servers (`https://` URLs, tried in
    /// order; see [`Client`]), all trusted by `trust`.
    pub fn with_servers(servers: &[&str], trust: &Trust, identity: Option<&ClientIdentity>) -> Result<Self> {
        if servers.is_empty() {
            return Err(ClientError::InvalidUrl(String::new()));
        }
        let servers = servers.iter().map(|s| parse_server(s)).collect::<Result<Vec<_>>>()?;
        let tls = trust.client_config(identity)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(std::time::Duration::from_secs(60))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(transport)?;
        Ok(Self { http, servers: servers.into(), token: None })
    }

    /// The same client, authenticating with a bearer token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Zeroizing::new(token.into()));
        self
    }

    fn url(base: &Url, segments: &[&str]) -> Url {
        let mut url = base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        url
    }

    /// Sends the request `build` makes for a server URL to each server in
    /// turn until one answers (see [`Client`] for when it moves on).
    async fn send(
        &self,
        method: &Method,
        build: impl Fn(Url) -> reqwest::RequestBuilder,
        segments: &[&str],
    ) -> Result<reqwest::Response> {
        let (last, others) = self.servers.split_last().ok_or_else(|| ClientError::InvalidUrl(String::new()))?;
        for base in others {
            match self.send_to(base, method, &build, segments).await {
                Ok(resp) if resp.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    tracing::warn!(server = %base, "server unavailable; trying the next one");
                }
                Ok(resp) => return Ok(resp),
                Err(e) if e.is_connect() || e.is_timeout() || method.is_idempotent() => {
                    tracing::warn!(server = %base, error = %transport(e), "server did not answer; trying the next one");
                }
                Err(e) => return Err(transport(e)),
            }
        }
        self.send_to(last, method, &build, segments).await.map_err(transport)
    }

    async fn send_to(
        &self,
        base: &Url,
        method: &Method,
        build: &impl Fn(Url) -> reqwest::RequestBuilder,
        segments: &[&str],
    ) -> std::result::Result<reqwest::Response, reqwest::Error> {
        let request = || {
            let req = build(Self::url(base, segments));
            match &self.token {
                Some(token) => req.bearer_auth(token.as_str()),
                None => req,
            }
        };
        match request().send().await {
            // A pooled keep-alive connection may have been closed by a server
            // that restarted; an idempotent request is safe to send once more.
            Err(e) if method.is_idempotent() && (e.is_request() || e.is_connect()) => request().send().await,
            other => other,
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T> {
        let build = |url: Url| {
            let mut req = self.http.request(method.clone(), url);
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            req
        };
        let resp = self.send(&method, build, segments).await?;
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

    /// Checkpoints every tenant chain into the system chain now (operator).
    pub async fn audit_checkpoint(&self) -> Result<AuditCheckpointReport> {
        self.call::<(), _>(Method::POST, &["v1", "audit", "checkpoint"], &[], None).await
    }
}
