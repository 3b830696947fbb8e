//! Authentication: the bearer-token extractor, login, logout, whoami.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use lightwell_core::authz::Actor;
use lightwell_core::clock::rfc3339;
use lightwell_core::{LoginScope, Requester};
use lightwell_proto::{ErrorBody, ErrorCode, Identity, LoginRequest, LoginResponse};
use zeroize::Zeroizing;

use super::AppState;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::tls::PeerCertificates;

/// The authenticated caller of a request.
#[derive(Debug)]
pub(crate) struct Auth(pub(crate) Actor);

pub(crate) fn bearer(headers: &HeaderMap) -> Option<Zeroizing<String>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| Zeroizing::new(token.trim().to_string()))
}

/// The caller's credentials with a client certificate not yet verified:
/// for handlers that let the service verify it in their own transaction
/// (issuance). Everything else takes [`Auth`].
#[derive(Debug)]
pub(crate) struct Credentials(pub(crate) Requester);

impl FromRequestParts<AppState> for Credentials {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let chain = parts.extensions.get::<PeerCertificates>().map(|p| p.0.clone()).unwrap_or_default();
        if let Some(token) = bearer(&parts.headers) {
            // A JWT is an access token of a tenant's issuer; anything else a session.
            let actor = if lightwell_core::is_jwt(&token) {
                let chain = chain.iter().map(|c| c.as_ref().to_vec()).collect();
                state.service.authenticate_access_token(token, chain).await?
            } else {
                state.service.authenticate(token).await?
            };
            return Ok(Self(Requester::Actor(actor)));
        }
        // Without a token, a TLS client certificate of the tenant authenticates (the service verifies it).
        if chain.is_empty() {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "log in first: send Authorization: Bearer <token> or a TLS client certificate",
            ));
        }
        Ok(Self(Requester::ClientCertificate(chain.iter().map(|c| c.as_ref().to_vec()).collect())))
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Credentials::from_request_parts(parts, state).await?.0 {
            Requester::Actor(actor) => Ok(Self(actor)),
            Requester::ClientCertificate(chain) => Ok(Self(state.service.authenticate_certificate(chain).await?)),
        }
    }
}

pub(crate) fn identity(actor: &Actor) -> Identity {
    match actor {
        Actor::Operator { .. } => Identity {
            tenant: None,
            kind: "operator".into(),
            name: lightwell_core::authz::OPERATOR.into(),
            groups: vec![],
            tls_client_certificate: None,
        },
        Actor::Principal(p) => Identity {
            tenant: Some(p.tenant.clone()),
            kind: p.kind.as_str().into(),
            name: p.name.clone(),
            groups: p.groups.iter().cloned().collect(),
            tls_client_certificate: None,
        },
    }
}

async fn login(
    state: &AppState,
    peer: SocketAddr,
    scope: LoginScope,
    req: LoginRequest,
) -> ApiResult<axum::Json<LoginResponse>> {
    // The TCP peer is the caller's address: lightwelld trusts no forwarding header.
    let ok = state.service.login(scope, req.user, Zeroizing::new(req.password), peer.ip()).await?;
    Ok(axum::Json(LoginResponse {
        token: ok.token.to_string(),
        expires_at: rfc3339(ok.expires_at),
        identity: identity(&ok.actor),
    }))
}

/// Log in as the system operator. A wrong password, an unknown user and a
/// locked account all answer 401 `invalid_credentials`; 429 (too many
/// failures from this address) and 503 `overloaded` carry `Retry-After`.
#[utoipa::path(post, path = "/v1/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn operator_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<axum::Json<LoginResponse>> {
    login(&state, peer, LoginScope::System, req).await
}

/// Log in to a tenant with a user name and password. Answers as the
/// operator's login does.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/login", tag = "auth", request_body = LoginRequest,
    params(("tenant" = String, Path, description = "tenant domain")),
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn tenant_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<axum::Json<LoginResponse>> {
    login(&state, peer, LoginScope::Tenant(tenant), req).await
}

/// End the session of the presented token.
#[utoipa::path(post, path = "/v1/logout", tag = "auth", responses((status = 204)))]
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<StatusCode> {
    if let Some(token) = bearer(&headers) {
        state.service.logout(token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Who the presented credentials authenticate.
#[utoipa::path(get, path = "/v1/whoami", tag = "auth", responses((status = 200, body = Identity), (status = 401, body = ErrorBody)))]
pub(crate) async fn whoami(Auth(actor): Auth, peer: Option<Extension<PeerCertificates>>) -> axum::Json<Identity> {
    let mut id = identity(&actor);
    id.tls_client_certificate =
        peer.and_then(|Extension(p)| p.0.first().map(|c| lightwell_ca::fingerprint::cert_fingerprint(c)));
    axum::Json(id)
}
