//! The tenant's public keys: its SPIFFE bundle endpoint,
//! `/spiffe/{tenant}/bundle` (the `https_web` profile of SPIFFE
//! federation), and its token issuer, `/oidc/{tenant}`: its JWKS and OpenID
//! discovery document (OpenID Connect Discovery 1.0, RFC 8414), public, so
//! any OIDC verifier (cloud IAM federation, Vault's JWT auth, a Kubernetes
//! API server) can validate the tenant's JWT-SVIDs and access tokens. The
//! token and introspection endpoints are in `oauth.rs`; the sign-in
//! (authorization code) endpoints come later.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;
use super::error::{ApiPath, ApiResult};

/// Verifiers may cache these for five minutes: keys are published a day
/// before they sign.
const CACHE: &str = "public, max-age=300";

/// `GET /oidc/{tenant}/jwks`: the tenant's published token keys.
pub(crate) async fn jwks(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let jwks = state.service.token_jwks(&tenant).await?;
    Ok(([(header::CACHE_CONTROL, CACHE)], axum::Json(jwks)))
}

/// `GET /spiffe/{tenant}/bundle`: the tenant's SPIFFE bundle, for other
/// trust domains (another tenant, a SPIRE server) to federate with it. A
/// consumer fetches it again after `spiffe_refresh_hint` seconds.
pub(crate) async fn spiffe_bundle(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let bundle = state.service.spiffe_bundle(&tenant).await?;
    let json = bundle.to_json().map_err(lightwell_core::Error::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, CACHE)], json))
}

/// `GET /oidc/{tenant}/.well-known/openid-configuration`.
pub(crate) async fn discovery(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let issuer = state.service.token_issuer(&tenant).await?;
    let doc = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "token_endpoint": format!("{issuer}/token"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "tls_client_auth"],
        "grant_types_supported": [lightwell_core::CLIENT_CREDENTIALS],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "tls_client_auth"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "tls_client_auth"],
        "tls_client_certificate_bound_access_tokens": true,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
    });
    Ok(([(header::CACHE_CONTROL, CACHE)], axum::Json(doc)))
}
