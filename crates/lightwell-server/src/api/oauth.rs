//! The tenant's OAuth 2.0 protocol endpoints, under its issuer
//! `/oidc/{tenant}`: the token endpoint (RFC 6749 section 3.2; the client
//! credentials grant so far), token introspection (RFC 7662) and token
//! revocation (RFC 7009). All take
//! `application/x-www-form-urlencoded` bodies and answer the RFCs' JSON
//! (errors per RFC 6749 section 5.2, never the REST API's error body), with
//! `Cache-Control: no-store`. Clients authenticate with HTTP Basic or form
//! parameters (`client_secret_basic`, `client_secret_post`) or with the TLS
//! client certificate of the connection (`tls_client_auth`, RFC 8705).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use lightwell_core::{ClientCredential, Error};
use lightwell_proto::ErrorCode;
use serde_json::json;
use zeroize::Zeroizing;

use super::AppState;
use super::error::ApiPath;
use crate::tls::PeerCertificates;

/// An answer of RFC 6749 section 5.2.
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// The client tried HTTP Basic: a 401 names the scheme (RFC 6749 section 5.2).
    basic: bool,
    /// Seconds to wait, for a throttled caller (429).
    retry_after: Option<u64>,
}

fn invalid_request(description: impl Into<String>) -> OAuthError {
    OAuthError {
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        description: description.into(),
        basic: false,
        retry_after: None,
    }
}

impl OAuthError {
    fn from_service(e: Error, basic: bool) -> Self {
        let (status, error) = match e.code {
            ErrorCode::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_client"),
            ErrorCode::Forbidden | ErrorCode::AccountDisabled => (StatusCode::BAD_REQUEST, "unauthorized_client"),
            ErrorCode::PolicyViolation => (StatusCode::BAD_REQUEST, "invalid_scope"),
            ErrorCode::InvalidRequest | ErrorCode::InvalidName => (StatusCode::BAD_REQUEST, "invalid_request"),
            ErrorCode::TenantNotFound => (StatusCode::NOT_FOUND, "invalid_request"),
            ErrorCode::Unavailable | ErrorCode::Overloaded | ErrorCode::Timeout => {
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            }
            ErrorCode::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        };
        let description = if status == StatusCode::INTERNAL_SERVER_ERROR { "internal error".into() } else { e.message };
        Self { status, error, description, basic, retry_after: e.retry_after_secs }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut resp = (self.status, no_store(), axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            let scheme = if self.basic { "Basic realm=\"lightwell\"" } else { "Bearer realm=\"lightwell\"" };
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")]
}

/// The form parameters; a parameter given twice is refused (RFC 6749 section 3.2).
fn form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, Zeroizing<String>>, OAuthError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    {
        return Err(invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        let name = k.into_owned();
        if out.insert(name.clone(), Zeroizing::new(v.into_owned())).is_some() {
            return Err(invalid_request(format!(
                "parameter {:?} is given twice",
                name.chars().take(32).collect::<String>()
            )));
        }
    }
    Ok(out)
}

/// How the client authenticated, and whether it used HTTP Basic.
fn credential(
    headers: &HeaderMap,
    params: &HashMap<String, Zeroizing<String>>,
    peer: Option<&PeerCertificates>,
) -> Result<(ClientCredential, bool), OAuthError> {
    let unauthenticated = |basic| OAuthError {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        description: "client authentication failed".into(),
        basic,
        retry_after: None,
    };
    let basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, value) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| value.trim().to_string())
    });
    if let Some(value) = basic {
        if params.contains_key("client_secret") {
            return Err(invalid_request("more than one client authentication method"));
        }
        // RFC 6749 section 2.3.1: each half is form-urlencoded before base64.
        let decoded = base64::engine::general_purpose::STANDARD.decode(value).map_err(|_| unauthenticated(true))?;
        let decoded = Zeroizing::new(String::from_utf8(decoded).map_err(|_| unauthenticated(true))?);
        let (id, secret) = decoded.split_once(':').ok_or_else(|| unauthenticated(true))?;
        let unescape =
            |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        let client_id = unescape(id).ok_or_else(|| unauthenticated(true))?;
        let secret = Zeroizing::new(unescape(secret).ok_or_else(|| unauthenticated(true))?);
        if params.get("client_id").is_some_and(|c| c.as_str() != client_id) {
            return Err(invalid_request("client_id differs from the one authenticated"));
        }
        return Ok((ClientCredential::Secret { client_id, secret }, true));
    }
    let client_id = params.get("client_id").map(|c| c.to_string()).ok_or_else(|| unauthenticated(false))?;
    if let Some(secret) = params.get("client_secret") {
        return Ok((ClientCredential::Secret { client_id, secret: secret.clone() }, false));
    }
    let chain: Vec<Vec<u8>> = peer.map(|p| p.0.iter().map(|c| c.as_ref().to_vec()).collect()).unwrap_or_default();
    if chain.is_empty() {
        return Err(unauthenticated(false));
    }
    Ok((ClientCredential::Certificate { client_id, chain }, false))
}

/// A client's request: its form parameters and how it authenticated.
type ClientRequest = (HashMap<String, Zeroizing<String>>, ClientCredential, bool);

fn client_request(
    headers: &HeaderMap,
    body: &[u8],
    peer: Option<&PeerCertificates>,
) -> Result<ClientRequest, OAuthError> {
    let params = form(headers, body)?;
    let (credential, basic) = credential(headers, &params, peer)?;
    Ok((params, credential, basic))
}

/// `POST /oidc/{tenant}/token`.
pub(crate) async fn token(
    State(state): State<AppState>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    ApiPath(tenant): ApiPath<String>,
    peer: Option<Extension<PeerCertificates>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (params, credential, basic) = client_request(&headers, &body, peer.as_deref())?;
    match params.get("grant_type").map(|g| g.as_str()) {
        Some(lightwell_core::CLIENT_CREDENTIALS) => {}
        Some(other) => {
            return Err(OAuthError {
                status: StatusCode::BAD_REQUEST,
                error: "unsupported_grant_type",
                description: format!("grant_type {:?} is not supported", other.chars().take(32).collect::<String>()),
                basic,
                retry_after: None,
            });
        }
        None => return Err(invalid_request("grant_type is missing")),
    }
    let scope = params.get("scope").map(|s| s.to_string());
    let token = state
        .service
        .client_credentials_token(&tenant, credential, scope, source.ip())
        .await
        .map_err(|e| OAuthError::from_service(e, basic))?;
    let mut body = json!({ "access_token": token.token, "token_type": "Bearer", "expires_in": token.expires_in });
    if let Some(scope) = token.scope {
        body["scope"] = json!(scope);
    }
    Ok((no_store(), axum::Json(body)).into_response())
}

/// `POST /oidc/{tenant}/introspect`: for a client of the tenant.
pub(crate) async fn introspect(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    peer: Option<Extension<PeerCertificates>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (params, credential, basic) = client_request(&headers, &body, peer.as_deref())?;
    let token = params.get("token").map(|t| t.to_string()).ok_or_else(|| invalid_request("token is missing"))?;
    let answer =
        state.service.introspect(&tenant, credential, token).await.map_err(|e| OAuthError::from_service(e, basic))?;
    Ok((no_store(), axum::Json(answer)).into_response())
}

/// `POST /oidc/{tenant}/revoke` (RFC 7009): for the client the token was issued to; 200 whatever the token.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    peer: Option<Extension<PeerCertificates>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (params, credential, basic) = client_request(&headers, &body, peer.as_deref())?;
    let token = params.get("token").map(|t| t.to_string()).ok_or_else(|| invalid_request("token is missing"))?;
    state
        .service
        .revoke_access_token(&tenant, credential, token)
        .await
        .map_err(|e| OAuthError::from_service(e, basic))?;
    Ok((StatusCode::OK, no_store()).into_response())
}
