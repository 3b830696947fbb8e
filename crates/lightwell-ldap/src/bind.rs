//! Bind: simple (a DN or `user@domain` with a password) goes through
//! `Service::login` with the connection's peer address, so a failed bind is
//! audited and counts toward the same lockout and address throttle as a
//! REST login. SASL EXTERNAL binds with the connection's TLS client
//! certificate through `Service::authenticate_certificate` (the service
//! decides: issued by the tenant's CA, unrevoked, requested by its
//! principal itself, principal enabled), checked again before every operation.

use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapBindResponse, LdapResultCode};
use lightwell_core::{LoginScope, PrincipalKind};
use lightwell_proto::ErrorCode;
use zeroize::Zeroizing;

use crate::dn::Dn;
use crate::result::{LdapError, success};
use crate::session::{Bound, Credential, Session};
use crate::tree::{self, Container, Location};

/// Handles a bind request.
pub(crate) async fn bind(s: &mut Session, req: LdapBindRequest) -> LdapBindResponse {
    let res = match run(s, req).await {
        Ok(()) => success(),
        Err(e) => e.into_result(),
    };
    LdapBindResponse { res, saslcreds: None }
}

async fn run(s: &mut Session, req: LdapBindRequest) -> Result<(), LdapError> {
    // Any bind first drops the previous identity (RFC 4513 section 4).
    s.unbind().await;
    if req.version != 3 {
        return Err(LdapError::new(LdapResultCode::ProtocolError, "only LDAPv3 is supported"));
    }
    match req.cred {
        LdapBindCred::Simple(pw) => simple(s, &req.dn, Zeroizing::new(pw)).await,
        LdapBindCred::SASL(sasl) if sasl.mechanism.eq_ignore_ascii_case("EXTERNAL") => sasl_external(s).await,
        LdapBindCred::SASL(sasl) => Err(LdapError::new(
            LdapResultCode::AuthMethodNotSupported,
            format!("SASL mechanism {:?} is not supported", sasl.mechanism.chars().take(32).collect::<String>()),
        )),
        _ => Err(LdapError::new(LdapResultCode::AuthMethodNotSupported, "unsupported authentication choice")),
    }
}

async fn simple(s: &mut Session, dn: &str, pw: Zeroizing<String>) -> Result<(), LdapError> {
    match (dn.is_empty(), pw.is_empty()) {
        (true, true) => return Ok(()), // anonymous
        (false, true) => {
            // RFC 4513 section 5.1.2: an unauthenticated bind is refused by default.
            return Err(LdapError::new(
                LdapResultCode::UnwillingToPerform,
                "a bind with a name but no password (unauthenticated bind) is not allowed",
            ));
        }
        (true, false) => return Err(invalid()),
        (false, false) => {}
    }
    if !s.secure && !s.config.allow_plaintext_bind {
        return Err(LdapError::new(
            LdapResultCode::ConfidentialityRequired,
            "simple binds need TLS: use LDAPS or StartTLS first",
        ));
    }
    let Some((tenant, user)) = identity(dn) else { return Err(invalid()) };
    match s.service.login(LoginScope::Tenant(tenant.clone()), user.clone(), pw, s.peer).await {
        Ok(ok) => {
            // The DN as stored (names compare without case; show the stored form).
            let dn = match &ok.actor {
                lightwell_core::authz::Actor::Principal(p) => tree::object_dn(&p.tenant, p.kind, &p.name),
                lightwell_core::authz::Actor::Operator { .. } => tree::object_dn(&tenant, PrincipalKind::User, &user),
            };
            s.bound = Some(Bound { credential: Credential::Session(ok.token), dn, checked: None });
            Ok(())
        }
        // A locked account answers like a wrong password (the service says so).
        Err(e) => Err(match e.code {
            ErrorCode::AccountDisabled => LdapError::new(LdapResultCode::InvalidCredentials, "account disabled"),
            // An unknown tenant looks like any other wrong name or password.
            ErrorCode::InvalidCredentials | ErrorCode::TenantNotFound | ErrorCode::InvalidName => invalid(),
            _ => e.into(),
        }),
    }
}

fn invalid() -> LdapError {
    LdapError::new(LdapResultCode::InvalidCredentials, "invalid credentials")
}

/// The (tenant, user name) a bind name designates: `uid=alice,cn=Users,dc=corp,dc=example`
/// or `alice@corp.example`.
pub(crate) fn identity(name: &str) -> Option<(String, String)> {
    if !name.contains('=') {
        let (user, domain) = name.rsplit_once('@')?;
        return (!user.is_empty() && !domain.is_empty()).then(|| (domain.to_ascii_lowercase(), user.to_string()));
    }
    match tree::locate(&Dn::parse(name).ok()?)? {
        Location::Object { tenant, container: Container::Users, name } => Some((tenant, name)),
        _ => None,
    }
}

/// SASL EXTERNAL (RFC 4422 appendix A): the identity is the TLS client
/// certificate, validated by the service layer exactly as for the REST API —
/// issued by the tenant's CA, unexpired, unrevoked, of an enabled principal.
async fn sasl_external(s: &mut Session) -> Result<(), LdapError> {
    if s.peer_certificates.is_empty() {
        return Err(LdapError::new(
            LdapResultCode::InappropriateAuthentication,
            "SASL EXTERNAL needs a TLS client certificate (LDAPS or StartTLS with a certificate)",
        ));
    }
    let chain: Vec<Vec<u8>> = s.peer_certificates.iter().map(|c| c.as_ref().to_vec()).collect();
    match s.service.authenticate_certificate(chain.clone()).await {
        Ok(lightwell_core::authz::Actor::Principal(p)) => {
            let dn = tree::object_dn(&p.tenant, p.kind, &p.name);
            s.bound = Some(Bound { credential: Credential::Certificate(chain), dn, checked: None });
            Ok(())
        }
        Ok(_) => Err(invalid()),
        Err(e) if matches!(e.code, ErrorCode::InvalidClientCertificate | ErrorCode::AccountDisabled) => {
            Err(LdapError::new(LdapResultCode::InvalidCredentials, e.message))
        }
        Err(e) => Err(e.into()),
    }
}

/// Forgets the bound identity without logging out (its session is gone already).
pub(crate) fn forget(s: &mut Session) {
    s.bound = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_names_are_dns_or_user_at_domain() {
        let alice = Some(("corp.example".to_string(), "alice".to_string()));
        assert_eq!(identity("uid=alice,cn=Users,dc=corp,dc=example"), alice);
        assert_eq!(identity("cn=alice,cn=users,DC=Corp,DC=Example"), alice);
        assert_eq!(identity("alice@Corp.Example"), alice);
        assert_eq!(identity("cn=engineers,cn=Groups,dc=corp,dc=example"), None);
        assert_eq!(identity("alice"), None);
        assert_eq!(identity("@corp.example"), None);
    }
}
