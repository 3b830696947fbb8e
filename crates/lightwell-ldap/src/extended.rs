//! Extended operations: StartTLS (RFC 4511 section 4.14), Who am I?
//! (RFC 4532) and Password Modify (RFC 3062, through `Service::set_password`:
//! the tenant's password policy, the same audit records, and the same end
//! of every session of the user).

use ldap3_proto::proto::{LdapExtendedRequest, LdapExtendedResponse, LdapPasswordModifyRequest, LdapResultCode};
use lightwell_core::authz::Actor;
use zeroize::Zeroizing;

use crate::bind;
use crate::bind::identity;
use crate::entry::{OID_PASSWORD_MODIFY, OID_STARTTLS, OID_WHOAMI};
use crate::result::{LdapError, OpResult, success};
use crate::session::{Flow, Session};

/// Handles an extended request; the flow says whether to start TLS next.
pub(crate) async fn handle(s: &mut Session, req: LdapExtendedRequest) -> (LdapExtendedResponse, Flow) {
    let name = req.name.clone();
    let outcome = match name.as_str() {
        OID_STARTTLS => start_tls(s).map(|()| (None, Flow::StartTls)),
        OID_WHOAMI => whoami(s).await.map(|v| (Some(v.into_bytes()), Flow::Continue)),
        OID_PASSWORD_MODIFY => password_modify(s, &req).await.map(|()| (None, Flow::Continue)),
        _ => Err(LdapError::new(LdapResultCode::ProtocolError, "unsupported extended operation")),
    };
    match outcome {
        Ok((value, flow)) => {
            let name = (name != OID_WHOAMI && name != OID_PASSWORD_MODIFY).then_some(name);
            (LdapExtendedResponse { res: success(), name, value }, flow)
        }
        Err(e) => (LdapExtendedResponse { res: e.into_result(), name: None, value: None }, Flow::Continue),
    }
}

fn start_tls(s: &Session) -> OpResult<()> {
    // LDAPS connections are secure from the start.
    if s.secure {
        return Err(LdapError::new(LdapResultCode::OperationsError, "TLS is already established"));
    }
    Ok(())
}

/// `dn:<bound DN>`, or the empty string for anonymous.
async fn whoami(s: &mut Session) -> OpResult<String> {
    s.actor().await?;
    Ok(s.bound.as_ref().map(|b| format!("dn:{}", b.dn)).unwrap_or_default())
}

async fn password_modify(s: &mut Session, req: &LdapExtendedRequest) -> OpResult<()> {
    let pm = match &req.value {
        None => LdapPasswordModifyRequest { user_identity: None, old_password: None, new_password: None },
        Some(_) => LdapPasswordModifyRequest::try_from(req)
            .map_err(|_| LdapError::new(LdapResultCode::ProtocolError, "malformed password modify request"))?,
    };
    if !s.secure && !s.config.allow_plaintext_bind {
        return Err(LdapError::new(LdapResultCode::ConfidentialityRequired, "passwords are only changed over TLS"));
    }
    let actor = s.require_actor().await?;
    let Actor::Principal(me) = &actor else {
        return Err(LdapError::new(LdapResultCode::InsufficentAccessRights, "only tenant principals change passwords"));
    };
    let user = match pm.user_identity.as_deref() {
        None | Some("") => me.name.clone(),
        Some(id) => {
            let id = id.strip_prefix("dn:").unwrap_or(id);
            let (tenant, user) = identity(id)
                .or_else(|| id.strip_prefix("u:").map(|u| (me.tenant.clone(), u.to_string())))
                .ok_or_else(|| LdapError::no_such_object(""))?;
            if !tenant.eq_ignore_ascii_case(&me.tenant) {
                return Err(LdapError::no_such_object(""));
            }
            user
        }
    };
    let new = pm.new_password.map(Zeroizing::new).ok_or_else(|| {
        LdapError::new(LdapResultCode::UnwillingToPerform, "give the new password; generated passwords are not offered")
    })?;
    let old = pm.old_password.map(Zeroizing::new);
    let own = user.eq_ignore_ascii_case(&me.name);
    // RFC 3062 lets a server take the bind's credentials instead of oldPasswd;
    // Lightwell does not (a bound connection may be a stolen one, and the
    // change ends every session): it asks for the current password.
    if own && old.is_none() {
        return Err(LdapError::new(
            LdapResultCode::UnwillingToPerform,
            "changing your own password needs the current one: ldappasswd -a OLD (or -A to be asked)",
        ));
    }
    let tenant = me.tenant.clone();
    s.service.set_password(&actor, &tenant, &user, new, old).await?;
    if own {
        // The change ended every session of the user, this bind's included.
        bind::forget(s);
    }
    Ok(())
}
