//! The tenant's OpenID provider, first part (DESIGN section 1, the STS):
//! registered clients, the client credentials grant (RFC 6749 section 4.4)
//! with access tokens as JWTs (RFC 9068), bound to the client's TLS
//! certificate when it authenticates with one (RFC 8705, `cnf.x5t#S256`),
//! and introspection (RFC 7662).
//!
//! A client acts as one directory principal, a service or a machine: its
//! tokens' `sub` is that principal's id. A client authenticates with a
//! secret (256 random bits, stored as its SHA-256, shown once) or with a
//! TLS client certificate this tenant issued to its principal (the
//! certificate the agent keeps), checked like every mutual-TLS caller. A
//! disabled or deleted principal, or a deleted client, gets no token, and
//! its tokens introspect as inactive from that moment.

use base64::Engine as _;
use lightwell_proto::ErrorCode;
use lightwell_store::{OidcClientRecord, PrincipalKind, PrincipalRecord, StoreExt, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::directory::resolve;
use super::join::{hash_secret, new_secret, secret_matches};
use super::{Inner, Service, Tenant, short, tenant_by_domain};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, Permission};
use crate::names::PrincipalRef;
use crate::{Error, Result};

/// Access token lifetime unless the client says otherwise.
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: i64 = 600;
const MIN_ACCESS_TOKEN_TTL_SECS: i64 = 60;
/// A bearer token cannot be recalled from a resource server that does not
/// introspect: an hour at most.
const MAX_ACCESS_TOKEN_TTL_SECS: i64 = 3600;
/// The audience of access tokens when the client names none: Lightwell's own API.
pub const DEFAULT_AUDIENCE: &str = "lightwell";
const MAX_CLIENT_NAME: usize = 64;
const MAX_AUDIENCES: usize = 8;
const MAX_SCOPES: usize = 32;
const CLIENT_SECRET_PREFIX: &str = "lwcs_";
/// Failed authentications of one client from one address (IPv6: a /64)
/// within 5 minutes before its further token requests from there are
/// refused unexamined (429): each refusal of a known client is an audit
/// record, so a wrong secret sent in a loop must not grow the chain
/// without bound. Keyed by client and address, so a stranger cannot lock
/// the client out everywhere.
pub(super) const CLIENT_FAILURE_LIMIT: crate::throttle::ThrottleLimit =
    crate::throttle::ThrottleLimit { max_failures: 10, window_secs: 300, max_keys: 4096 };

/// The only grant so far.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// How a client proves who it is at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// A secret, in HTTP Basic (`client_secret_basic`) or the form (`client_secret_post`).
    ClientSecret,
    /// A TLS client certificate this tenant issued to the client's principal (RFC 8705 `tls_client_auth`).
    TlsClientAuth,
}

impl ClientAuthMethod {
    /// Parses `client_secret` or `tls_client_auth`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "client_secret" | "client_secret_basic" | "client_secret_post" => Ok(Self::ClientSecret),
            "tls_client_auth" => Ok(Self::TlsClientAuth),
            _ => Err(Error::invalid(format!(
                "unknown client authentication {:?}: client_secret or tls_client_auth",
                short(s)
            ))),
        }
    }

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecret => "client_secret",
            Self::TlsClientAuth => "tls_client_auth",
        }
    }
}

/// The stored settings of a client (the `spec` column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ClientSpec {
    auth_method: ClientAuthMethod,
    grants: Vec<String>,
    audience: Vec<String>,
    scopes: Vec<String>,
    access_token_ttl_secs: i64,
}

/// What `oidc client create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewOidcClient {
    /// Client name, unique in the tenant.
    pub name: String,
    /// The service or machine it acts as (`service/web`).
    pub principal: String,
    /// `client_secret` (default) or `tls_client_auth`.
    pub auth_method: Option<String>,
    /// `aud` of its access tokens (default `lightwell`).
    pub audience: Vec<String>,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
    /// Access token lifetime (default 10 minutes).
    pub access_token_ttl_secs: Option<i64>,
}

/// A client as front ends show it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClientView {
    /// `client_id`.
    pub client_id: String,
    /// Name.
    pub name: String,
    /// The principal it acts as, `kind/name` (empty if it was deleted meanwhile).
    pub principal: String,
    /// How it authenticates.
    pub auth_method: ClientAuthMethod,
    /// Grants it may use.
    pub grants: Vec<String>,
    /// `aud` of its access tokens.
    pub audience: Vec<String>,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
    /// Access token lifetime, seconds.
    pub access_token_ttl_secs: i64,
    /// Creation time.
    pub created_at: i64,
}

/// A client just created or given a new secret: the secret, shown once.
pub struct OidcClientSecret {
    /// The client.
    pub client: OidcClientView,
    /// Its secret (none for `tls_client_auth`).
    pub secret: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for OidcClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClientSecret").field("client", &self.client).finish_non_exhaustive()
    }
}

/// How a caller of the token or introspection endpoint authenticated.
pub enum ClientCredential {
    /// `client_id` and secret (HTTP Basic or the form).
    Secret {
        /// `client_id`.
        client_id: String,
        /// The secret.
        secret: Zeroizing<String>,
    },
    /// `client_id` and the TLS client certificate chain of the connection.
    Certificate {
        /// `client_id`.
        client_id: String,
        /// Leaf first (DER).
        chain: Vec<Vec<u8>>,
    },
}

impl ClientCredential {
    /// The `client_id` it names.
    pub fn client_id(&self) -> &str {
        match self {
            Self::Secret { client_id, .. } | Self::Certificate { client_id, .. } => client_id,
        }
    }
}

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret { client_id, .. } => {
                f.debug_struct("Secret").field("client_id", client_id).finish_non_exhaustive()
            }
            Self::Certificate { client_id, .. } => {
                f.debug_struct("Certificate").field("client_id", client_id).finish_non_exhaustive()
            }
        }
    }
}

/// An access token issued.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The JWT.
    pub token: String,
    /// Seconds it lives.
    pub expires_in: i64,
    /// The scopes granted, space-separated, if any.
    pub scope: Option<String>,
}

fn client_not_found(name: &str) -> Error {
    Error::new(ErrorCode::NotFound, format!("no OpenID client {:?}", short(name)))
}

/// One answer for an unknown client and a wrong credential: a caller learns
/// nothing about which client ids exist.
fn invalid_client() -> Error {
    Error::new(ErrorCode::InvalidCredentials, "client authentication failed")
}

fn parse_client_name(name: &str) -> Result<String> {
    crate::names::label_name("OpenID client name", name, MAX_CLIENT_NAME)
}

/// `aud` values and scopes: 1 to 256 printable characters without spaces
/// (RFC 6749 section 3.3 `scope-token`).
fn parse_tokens(what: &str, values: &[String], max: usize) -> Result<Vec<String>> {
    if values.len() > max {
        return Err(Error::invalid(format!("at most {max} {what}")));
    }
    let ok = |v: &String| {
        !v.is_empty() && v.len() <= 256 && v.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    };
    if let Some(bad) = values.iter().find(|v| !ok(v)) {
        return Err(Error::invalid(format!("invalid {what} {:?}: printable characters without spaces", short(bad))));
    }
    let mut out = values.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

fn load(record: &OidcClientRecord) -> Result<ClientSpec> {
    serde_json::from_str(&record.spec).map_err(Error::internal)
}

fn view(tx: &mut dyn Tx, t: &Tenant, record: &OidcClientRecord) -> Result<OidcClientView> {
    let spec = load(record)?;
    let principal = tx
        .principal_by_id(&t.id, &record.principal_id)?
        .map(|p| format!("{}/{}", p.kind.as_str(), p.name))
        .unwrap_or_default();
    Ok(OidcClientView {
        client_id: record.id.clone(),
        name: record.name.clone(),
        principal,
        auth_method: spec.auth_method,
        grants: spec.grants,
        audience: spec.audience,
        scopes: spec.scopes,
        access_token_ttl_secs: spec.access_token_ttl_secs,
        created_at: record.created_at,
    })
}

/// The principal of a verified access token if the token still counts:
/// its client exists, its `jti` is not revoked (RFC 7009; a token without
/// one counts as revoked: this issuer always sets one), and its principal
/// exists and is enabled — all read now, so a deletion, a revocation or a
/// disable ends it at once. Else why not. The one decision introspection,
/// Lightwell's API and the Kubernetes token review share.
pub(super) fn live_principal(
    tx: &mut dyn Tx,
    t: &Tenant,
    claims: &Map<String, Value>,
) -> Result<std::result::Result<PrincipalRecord, &'static str>> {
    let Some(client_id) = claims.get("client_id").and_then(Value::as_str) else {
        return Ok(Err("the access token names no client"));
    };
    if tx.oidc_client(&t.id, client_id)?.is_none() {
        return Ok(Err("the token's client no longer exists"));
    }
    let revoked = match claims.get("jti").and_then(Value::as_str) {
        Some(jti) => tx.token_revoked(&t.id, jti)?,
        None => true,
    };
    if revoked {
        return Ok(Err("the token was revoked"));
    }
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
    Ok(match tx.principal_by_id(&t.id, sub)? {
        Some(p) if p.enabled => Ok(p),
        Some(_) => Err("the token's principal is disabled"),
        None => Err("the token's principal no longer exists"),
    })
}

/// Whether a bearer credential is a JWT (an access token) rather than a
/// Lightwell session token.
pub fn is_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|b| *b == b'.').count() == 2
}

/// RFC 8705 section 3.1: the base64url SHA-256 of the certificate's DER.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(lightwell_ca::fingerprint::sha256(der))
}

impl Service {
    /// Registers an OpenID client acting as a service or a machine
    /// (Administrators); returns it with its secret, shown this once.
    pub async fn create_oidc_client(
        &self,
        actor: &Actor,
        tenant: &str,
        new: NewOidcClient,
    ) -> Result<OidcClientSecret> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let name = parse_client_name(&new.name)?;
        let principal = PrincipalRef::parse(&new.principal)?;
        let auth_method =
            new.auth_method.as_deref().map_or(Ok(ClientAuthMethod::ClientSecret), ClientAuthMethod::parse)?;
        let mut audience = parse_tokens("audiences", &new.audience, MAX_AUDIENCES)?;
        if audience.is_empty() {
            audience.push(DEFAULT_AUDIENCE.into());
        }
        let scopes = parse_tokens("scopes", &new.scopes, MAX_SCOPES)?;
        let ttl = new.access_token_ttl_secs.unwrap_or(DEFAULT_ACCESS_TOKEN_TTL_SECS);
        if !(MIN_ACCESS_TOKEN_TTL_SECS..=MAX_ACCESS_TOKEN_TTL_SECS).contains(&ttl) {
            return Err(Error::invalid(format!(
                "an access token lives {MIN_ACCESS_TOKEN_TTL_SECS} to {MAX_ACCESS_TOKEN_TTL_SECS} seconds"
            )));
        }
        let secret = match auth_method {
            ClientAuthMethod::ClientSecret => Some(new_secret(CLIENT_SECRET_PREFIX)?),
            ClientAuthMethod::TlsClientAuth => None,
        };
        let spec = ClientSpec {
            auth_method,
            grants: vec![CLIENT_CREDENTIALS.into()],
            audience,
            scopes,
            access_token_ttl_secs: ttl,
        };
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        let secret_hash = secret.as_deref().map(|s| hash_secret(s));
        let client = self
            .blocking(move |inner| {
                inner.tenant_write(&tenant, |tx, t| {
                    if tx.oidc_client_by_name(&t.id, &name)?.is_some() {
                        return Err(Error::new(
                            ErrorCode::AlreadyExists,
                            format!("OpenID client {name:?} already exists"),
                        ));
                    }
                    let p = resolve(tx, t, &principal)?;
                    if !matches!(p.kind, PrincipalKind::Service | PrincipalKind::Machine) {
                        return Err(Error::invalid("an OpenID client acts as a service or a machine"));
                    }
                    if p.builtin {
                        return Err(Error::new(ErrorCode::BuiltinProtected, format!("{} is built in", p.name)));
                    }
                    let now = inner.now();
                    let record = OidcClientRecord {
                        id: uuid::Uuid::new_v4().to_string(),
                        tenant_id: t.id.clone(),
                        name: name.clone(),
                        principal_id: p.id.clone(),
                        secret_hash: secret_hash.clone(),
                        spec: serde_json::to_string(&spec).map_err(Error::internal)?,
                        created_at: now,
                        updated_at: now,
                    };
                    tx.insert_oidc_client(&record)?;
                    let detail = format!("{}/{}; {}", p.kind.as_str(), p.name, spec.auth_method.as_str());
                    let ev =
                        AuditEvent::success(actor_name.clone(), "oidc.client.create", name.clone()).with_detail(detail);
                    inner.audit(tx, t, ev)?;
                    view(tx, t, &record)
                })
            })
            .await?;
        Ok(OidcClientSecret { client, secret })
    }

    /// The tenant's OpenID clients, by name (Administrators).
    pub async fn list_oidc_clients(&self, actor: &Actor, tenant: &str) -> Result<Vec<OidcClientView>> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| tx.list_oidc_clients(&t.id)?.iter().map(|r| view(tx, t, r)).collect())
        })
        .await
    }

    /// One OpenID client (Administrators).
    pub async fn oidc_client(&self, actor: &Actor, tenant: &str, name: &str) -> Result<OidcClientView> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let record = tx.oidc_client_by_name(&t.id, &name)?.ok_or_else(|| client_not_found(&name))?;
                view(tx, t, &record)
            })
        })
        .await
    }

    /// Deletes an OpenID client (Administrators): its tokens introspect inactive from now on.
    pub async fn delete_oidc_client(&self, actor: &Actor, tenant: &str, name: &str) -> Result<()> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let (actor_name, tenant, name) = (actor.audit_name(), tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let record = tx.oidc_client_by_name(&t.id, &name)?.ok_or_else(|| client_not_found(&name))?;
                tx.delete_oidc_client(&t.id, &record.id)?;
                inner.audit(tx, t, AuditEvent::success(actor_name.clone(), "oidc.client.delete", record.name.clone()))
            })
        })
        .await
    }

    /// Gives a secret client a new secret (Administrators); the old one stops working at once.
    pub async fn rotate_oidc_client_secret(&self, actor: &Actor, tenant: &str, name: &str) -> Result<OidcClientSecret> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let secret = new_secret(CLIENT_SECRET_PREFIX)?;
        let secret_hash = hash_secret(&secret);
        let (actor_name, tenant, name) = (actor.audit_name(), tenant.to_string(), name.to_string());
        let client = self
            .blocking(move |inner| {
                inner.tenant_write(&tenant, |tx, t| {
                    let mut record = tx.oidc_client_by_name(&t.id, &name)?.ok_or_else(|| client_not_found(&name))?;
                    if load(&record)?.auth_method != ClientAuthMethod::ClientSecret {
                        return Err(Error::invalid(format!(
                            "OpenID client {} authenticates with its TLS certificate; it has no secret",
                            record.name
                        )));
                    }
                    record.secret_hash = Some(secret_hash.clone());
                    record.updated_at = inner.now();
                    tx.update_oidc_client(&record)?;
                    let ev = AuditEvent::success(actor_name.clone(), "oidc.client.rotate_secret", record.name.clone());
                    inner.audit(tx, t, ev)?;
                    view(tx, t, &record)
                })
            })
            .await?;
        Ok(OidcClientSecret { client, secret: Some(secret) })
    }

    /// The client credentials grant: an access token for the client's
    /// principal, certificate-bound when it authenticated with its TLS
    /// certificate. `scope` (space-separated) must be among the client's
    /// scopes. Audited, refusals of a known client included.
    pub async fn client_credentials_token(
        &self,
        tenant: &str,
        credential: ClientCredential,
        scope: Option<String>,
        source: std::net::IpAddr,
    ) -> Result<AccessToken> {
        let tenant = tenant.to_string();
        let key = format!("{tenant}/{}/{}", credential.client_id(), crate::throttle::address_key(source));
        if let Err(t) = self.inner.client_failures.check(&key, self.inner.now()) {
            return Err(Error::new(
                ErrorCode::TooManyRequests,
                "too many failed client authentications from this address; retry later",
            )
            .with_retry_after(t.retry_after_secs));
        }
        let outcome = self
            .blocking(move |inner| {
                // An unknown client is refused from a read: it names no tenant
                // object to record, and must cost no write.
                let known = inner.store.read(|tx| {
                    let t = tenant_by_domain(tx, &tenant)?;
                    Ok::<_, Error>(tx.oidc_client(&t.id, credential.client_id())?.is_some())
                })?;
                if !known {
                    return Err(invalid_client());
                }
                // Keys first, in their own transaction, as for JWT-SVIDs.
                inner.token_keys(&tenant)?;
                inner.write_committing_refusal(|tx| {
                    let t = tenant_by_domain(tx, &tenant)?;
                    let client_id = credential.client_id().to_string();
                    // Deleted since the read above: refused unrecorded too.
                    let Some(record) = tx.oidc_client(&t.id, &client_id)? else { return Ok(Err(invalid_client())) };
                    let outcome = inner.token_in_tx(tx, &t, &record, &credential, scope.as_deref());
                    match outcome {
                        Ok((token, detail)) => {
                            let ev = AuditEvent::success(
                                format!("oidc_client:{}", record.name),
                                "oidc.token",
                                record.name.clone(),
                            )
                            .with_detail(detail);
                            inner.audit(tx, &t, ev)?;
                            Ok(Ok(token))
                        }
                        Err(e) if e.is_undecided() => Err(e),
                        Err(e) => {
                            let ev = AuditEvent::failure(
                                format!("oidc_client:{}", record.name),
                                "oidc.token",
                                record.name.clone(),
                            )
                            .with_detail(format!("{}: {}", e.code, short(&e.message)));
                            inner.audit(tx, &t, ev)?;
                            Ok(Err(e))
                        }
                    }
                })
            })
            .await;
        if outcome.as_ref().is_err_and(|e| e.code == ErrorCode::InvalidCredentials) {
            self.inner.client_failures.record_failure(&key, self.inner.now());
        }
        outcome
    }

    /// Authenticates a bearer access token of a tenant's issuer for
    /// Lightwell's own API (audience `lightwell`): it verifies, is an access
    /// token (`typ: at+jwt`) that has not expired, its client still exists
    /// and its principal is enabled. A certificate-bound token counts only
    /// over a connection presenting that very certificate (`chain`, leaf
    /// first), and only if the certificate itself authenticates the
    /// principal to Lightwell (mutual TLS's rules, the requester rule
    /// included): a token adds no right the certificate lacks.
    pub async fn authenticate_access_token(&self, token: Zeroizing<String>, chain: Vec<Vec<u8>>) -> Result<Actor> {
        self.blocking(move |inner| inner.access_token_actor(&token, &chain)).await
    }

    /// Token revocation (RFC 7009) by the client the access token was
    /// issued to: from now on it introspects inactive and no longer
    /// authenticates anywhere. A token that does not verify, has expired, or
    /// belongs to another client changes nothing and is no error (RFC 7009
    /// section 2.2), so the answer tells a caller nothing about tokens.
    pub async fn revoke_access_token(&self, tenant: &str, credential: ClientCredential, token: String) -> Result<()> {
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            let keys = inner.published_token_keys(&tenant)?;
            inner.store.write(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let record = tx.oidc_client(&t.id, credential.client_id())?.ok_or_else(invalid_client)?;
                inner.authenticate_client(tx, &t, &record, &credential)?;
                let Some(claims) = inner.verified_access_token(&t, &keys, &token) else { return Ok(()) };
                if claims.get("client_id").and_then(Value::as_str) != Some(record.id.as_str()) {
                    return Ok(());
                }
                let (Some(jti), Some(exp)) =
                    (claims.get("jti").and_then(Value::as_str), claims.get("exp").and_then(Value::as_i64))
                else {
                    return Ok(());
                };
                if tx.revoke_token(&t.id, jti, exp, inner.now())? {
                    let ev = AuditEvent::success(
                        format!("oidc_client:{}", record.name),
                        "oidc.token.revoke",
                        record.name.clone(),
                    )
                    .with_detail(format!("jti {jti}"));
                    inner.audit(tx, &t, ev)?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Token introspection (RFC 7662) for a client of the tenant: the
    /// claims of an access token this tenant issued, if it verifies, has not
    /// expired, and its client and principal still exist and are enabled;
    /// else `{"active": false}`.
    pub async fn introspect(&self, tenant: &str, credential: ClientCredential, token: String) -> Result<Value> {
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            let keys = inner.published_token_keys(&tenant)?;
            inner.store.read(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let client_id = credential.client_id().to_string();
                let record = tx.oidc_client(&t.id, &client_id)?.ok_or_else(invalid_client)?;
                inner.authenticate_client(tx, &t, &record, &credential)?;
                Ok(inner.introspection(tx, &t, &keys, &token)?.unwrap_or_else(|| json!({ "active": false })))
            })
        })
        .await
    }
}

impl Inner {
    /// Checks `credential` against `record`: its method, then the secret or
    /// the certificate (issued by this tenant to the client's principal,
    /// valid now). Returns the principal and the certificate's thumbprint.
    fn authenticate_client(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        record: &OidcClientRecord,
        credential: &ClientCredential,
    ) -> Result<(PrincipalRecord, Option<String>)> {
        let spec = load(record)?;
        let thumbprint = match (spec.auth_method, credential) {
            (ClientAuthMethod::ClientSecret, ClientCredential::Secret { secret, .. }) => {
                let stored = record.secret_hash.as_deref().ok_or_else(invalid_client)?;
                if !secret_matches(secret, stored) {
                    return Err(invalid_client());
                }
                None
            }
            (ClientAuthMethod::TlsClientAuth, ClientCredential::Certificate { chain, .. }) => {
                let (of, _, p) = self.verified_certificate_in(tx, chain).map_err(|_| invalid_client())?;
                if of.id != t.id || p.id != record.principal_id {
                    return Err(invalid_client());
                }
                chain.first().map(|leaf| certificate_thumbprint(leaf))
            }
            _ => return Err(invalid_client()),
        };
        let principal = tx
            .principal_by_id(&t.id, &record.principal_id)?
            .ok_or_else(|| Error::new(ErrorCode::Forbidden, "the client's principal no longer exists"))?;
        if !principal.enabled {
            return Err(Error::new(ErrorCode::AccountDisabled, format!("{} is disabled", principal.name)));
        }
        Ok((principal, thumbprint))
    }

    fn token_in_tx(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        record: &OidcClientRecord,
        credential: &ClientCredential,
        scope: Option<&str>,
    ) -> Result<(AccessToken, String)> {
        let (principal, thumbprint) = self.authenticate_client(tx, t, record, credential)?;
        let spec = load(record)?;
        if !spec.grants.iter().any(|g| g == CLIENT_CREDENTIALS) {
            return Err(Error::new(ErrorCode::Forbidden, "this client may not use the client credentials grant"));
        }
        let asked: Vec<String> =
            scope.unwrap_or_default().split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
        if let Some(bad) = asked.iter().find(|s| !spec.scopes.contains(s)) {
            return Err(Error::new(ErrorCode::PolicyViolation, format!("scope {:?} is not this client's", short(bad))));
        }
        let now = self.now();
        let signer = self.token_signer(tx, t, now)?;
        let scope = (!asked.is_empty()).then(|| asked.join(" "));
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.token_issuer_of(t)));
        claims.insert("sub".into(), json!(principal.id));
        claims.insert("aud".into(), json!(spec.audience));
        claims.insert("client_id".into(), json!(record.id));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + spec.access_token_ttl_secs));
        claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        claims.insert("username".into(), json!(format!("{}/{}", principal.kind.as_str(), principal.name)));
        if let Some(s) = &scope {
            claims.insert("scope".into(), json!(s));
        }
        if let Some(x5t) = &thumbprint {
            claims.insert("cnf".into(), json!({ "x5t#S256": x5t }));
        }
        let payload = serde_json::to_vec(&claims).map_err(Error::internal)?;
        // RFC 9068 section 2.1: access tokens are typed, so no other JWT passes for one.
        let token = signer.sign_compact("at+jwt", &payload).map_err(Error::internal)?;
        let detail = format!(
            "client_credentials; {}/{}; aud {}{}",
            principal.kind.as_str(),
            principal.name,
            spec.audience.join(" "),
            thumbprint.as_deref().map(|x| format!("; bound to x5t#S256 {x}")).unwrap_or_default()
        );
        Ok((AccessToken { token, expires_in: spec.access_token_ttl_secs, scope }, detail))
    }

    fn access_token_actor(&self, token: &str, chain: &[Vec<u8>]) -> Result<Actor> {
        let invalid = || Error::new(ErrorCode::InvalidToken, "invalid or expired access token");
        let claims = lightwell_jose::jwt::unverified_claims(token).map_err(|_| invalid())?;
        let issuer = claims.get("iss").and_then(Value::as_str).ok_or_else(invalid)?;
        let tenant = issuer.strip_prefix(&format!("{}/oidc/", self.api_base)).ok_or_else(invalid)?.to_string();
        let keys = self.published_token_keys(&tenant).map_err(|_| invalid())?;
        let validation = lightwell_jose::Validation { audience: DEFAULT_AUDIENCE, now: self.now(), leeway: 0 };
        let verified = lightwell_jose::jwt::verify(token, &keys, &validation).map_err(|_| invalid())?;
        if verified.typ.as_deref() != Some("at+jwt") {
            return Err(invalid());
        }
        self.store.read(|tx| {
            let t = tenant_by_domain(tx, &tenant).map_err(|_| invalid())?;
            if self.token_issuer_of(&t) != issuer {
                return Err(invalid());
            }
            let p = live_principal(tx, &t, &verified.claims)?.map_err(|_| invalid())?;
            let bound = verified.claims.get("cnf").and_then(|c| c.get("x5t#S256")).and_then(Value::as_str);
            if let Some(x5t) = bound {
                let bound_error = || {
                    Error::new(
                        ErrorCode::InvalidToken,
                        "this access token is bound to a TLS client certificate the connection does not present",
                    )
                };
                let leaf = chain.first().ok_or_else(bound_error)?;
                if certificate_thumbprint(leaf) != x5t {
                    return Err(bound_error());
                }
                let (actor, _) = self.authenticate_certificate_in(tx, chain)?;
                if !matches!(&actor, Actor::Principal(a) if a.id.as_str() == p.id) {
                    return Err(bound_error());
                }
            }
            super::auth::actor_for(tx, Some(&t), &p)
        })
    }

    /// The claims of `token` if it is an unexpired access token (`typ:
    /// at+jwt`) of this tenant's issuer whose signature verifies.
    fn verified_access_token(
        &self,
        t: &Tenant,
        keys: &lightwell_jose::Jwks,
        token: &str,
    ) -> Option<Map<String, Value>> {
        let claims = lightwell_jose::jwt::unverified_claims(token).ok()?;
        let audience = claims.get("aud")?.as_array()?.first()?.as_str()?.to_string();
        let validation = lightwell_jose::Validation { audience: &audience, now: self.now(), leeway: 0 };
        let verified = lightwell_jose::jwt::verify(token, keys, &validation).ok()?;
        let issuer = verified.claims.get("iss").and_then(Value::as_str);
        (verified.typ.as_deref() == Some("at+jwt") && issuer == Some(self.token_issuer_of(t).as_str()))
            .then_some(verified.claims)
    }

    fn introspection(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        keys: &lightwell_jose::Jwks,
        token: &str,
    ) -> Result<Option<Value>> {
        let Some(mut claims) = self.verified_access_token(t, keys, token) else { return Ok(None) };
        if live_principal(tx, t, &claims)?.is_err() {
            return Ok(None);
        }
        claims.insert("active".into(), json!(true));
        claims.insert("token_type".into(), json!("Bearer"));
        Ok(Some(Value::Object(claims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_settings_are_checked() {
        assert_eq!(ClientAuthMethod::parse("client_secret_basic").unwrap(), ClientAuthMethod::ClientSecret);
        assert_eq!(ClientAuthMethod::parse("tls_client_auth").unwrap(), ClientAuthMethod::TlsClientAuth);
        assert!(ClientAuthMethod::parse("none").is_err(), "public clients have no grant here yet");
        assert_eq!(parse_tokens("scopes", &["b".into(), "a".into(), "b".into()], 4).unwrap(), ["a", "b"]);
        for bad in ["", "two words", "quo\"te", &"x".repeat(257)] {
            assert!(parse_tokens("scopes", &[bad.to_string()], 4).is_err(), "{bad:?}");
        }
        assert!(parse_tokens("scopes", &vec!["a".to_string(); 5], 4).is_err());
    }

    #[test]
    fn a_thumbprint_is_the_base64url_sha256_of_the_der() {
        // RFC 4648 base64url of SHA-256("") (no padding).
        assert_eq!(certificate_thumbprint(b""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
    }
}
