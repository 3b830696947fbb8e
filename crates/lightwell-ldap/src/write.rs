//! Add, modify and delete of users, groups and group membership. Each maps
//! onto the service-layer operation REST uses (`create_user`, `create_group`,
//! `modify_principal` — what `update_principal`, `add_member` and
//! `remove_member` are made of, several parts in one transaction — `set_password`,
//! `delete_principal`), which checks the permission (tenant Administrators),
//! validates and writes the audit record. This module only translates, and
//! validates a whole request before making its first change, so a malformed
//! request changes nothing.

use std::collections::BTreeMap;

use ldap3_proto::proto::{
    LdapAddRequest, LdapModifyRequest, LdapModifyType, LdapPartialAttribute, LdapResult, LdapResultCode,
};
use lightwell_core::authz::Actor;
use lightwell_core::{Modification, NewUser, PrincipalKind, PrincipalPatch};
use zeroize::Zeroizing;

use crate::dn::Dn;
use crate::result::{LdapError, OpResult, success};
use crate::schema::{self, AttrDef};
use crate::search::view;
use crate::session::Session;
use crate::tree::{self, Container, Location};

fn err(code: LdapResultCode, message: impl Into<String>) -> LdapError {
    LdapError::new(code, message)
}

fn respond(r: OpResult<()>) -> LdapResult {
    match r {
        Ok(()) => success(),
        Err(e) => e.into_result(),
    }
}

/// Workload entries are shown over LDAP, never written there.
fn workloads_read_only() -> LdapError {
    err(LdapResultCode::UnwillingToPerform, "workload entries are managed through the API (lightwell workload)")
}

/// A principal a write names: the caller, the tenant, where it is.
struct Target {
    actor: Actor,
    tenant: String,
    dn: Dn,
    location: Location,
}

async fn target(s: &mut Session, dn: &str) -> OpResult<Target> {
    let parsed = Dn::parse(dn).map_err(|e| err(LdapResultCode::InvalidDNSyntax, e.to_string()))?;
    let actor = s.require_actor().await?;
    let Actor::Principal(p) = &actor else { return Err(LdapError::no_such_object("")) };
    let tenant = p.tenant.clone();
    let location = tree::locate(&parsed).ok_or_else(|| LdapError::no_such_object(""))?;
    // Another tenant's names look like names that do not exist.
    if location.tenant().is_some_and(|t| t != tenant) {
        return Err(LdapError::no_such_object(""));
    }
    Ok(Target { actor, tenant, dn: parsed, location })
}

fn texts(a: &LdapPartialAttribute) -> OpResult<Vec<String>> {
    a.vals
        .iter()
        .map(|v| {
            String::from_utf8(v.clone()).map_err(|_| {
                err(LdapResultCode::InvalidAttributeSyntax, format!("a value of {} is not UTF-8", short(&a.atype)))
            })
        })
        .collect()
}

fn one(def: &AttrDef, values: Vec<String>) -> OpResult<String> {
    let mut values = values;
    match values.len() {
        1 => Ok(values.remove(0)),
        0 => Err(err(LdapResultCode::InvalidAttributeSyntax, format!("{} needs a value", def.name))),
        _ => Err(err(LdapResultCode::ConstraintViolation, format!("{} takes a single value", def.name))),
    }
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

fn def_of(atype: &str) -> OpResult<&'static AttrDef> {
    schema::attr(atype).ok_or_else(|| {
        err(LdapResultCode::UndefinedAttributeType, format!("unknown attribute type {:?}", short(atype)))
    })
}

/// Refuses attributes clients may never write.
fn writable(def: &AttrDef) -> OpResult<()> {
    if def.no_user_modification {
        return Err(err(LdapResultCode::ConstraintViolation, format!("{} is maintained by the server", def.name)));
    }
    Ok(())
}

/// A plaintext password from a userPassword value; pre-hashed values
/// (`{SSHA}...`) are refused rather than stored as a password.
fn plaintext_password(v: String) -> OpResult<Zeroizing<String>> {
    let v = Zeroizing::new(v);
    let hashed = v
        .strip_prefix('{')
        .and_then(|r| r.split_once('}'))
        .is_some_and(|(scheme, _)| !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if hashed {
        return Err(err(
            LdapResultCode::UnwillingToPerform,
            "pre-hashed passwords are not accepted; send the password",
        ));
    }
    Ok(v)
}

/// A member DN of the caller's tenant as (kind, name).
fn member_ref(tenant: &str, value: &str) -> OpResult<(PrincipalKind, String)> {
    let bad = || {
        err(
            LdapResultCode::InvalidAttributeSyntax,
            format!("member {:?} is not a principal of this tenant", short(value)),
        )
    };
    let dn = Dn::parse(value).map_err(|_| bad())?;
    match tree::locate(&dn) {
        Some(Location::Object { tenant: t, container, name }) if t == tenant => Ok((container.kind(), name)),
        _ => Err(bad()),
    }
}

fn check_classes(values: &[String], allowed: &[&str]) -> OpResult<()> {
    for v in values {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
            return Err(err(
                LdapResultCode::ObjectClassViolation,
                format!("object class {:?} is not allowed here", short(v)),
            ));
        }
    }
    Ok(())
}

fn check_rdn(def: &AttrDef, values: &[String], name: &str) -> OpResult<()> {
    if values.len() != 1 || !values[0].eq_ignore_ascii_case(name) {
        return Err(err(LdapResultCode::NamingViolation, format!("{} must equal the name in the DN", def.name)));
    }
    Ok(())
}

/// Ensures every member exists before any change is made.
async fn members_exist(s: &Session, actor: &Actor, tenant: &str, members: &[(PrincipalKind, String)]) -> OpResult<()> {
    for (kind, name) in members {
        s.service.principal(actor, tenant, *kind, name).await.map_err(|e| {
            if e.code == lightwell_proto::ErrorCode::PrincipalNotFound {
                err(LdapResultCode::ConstraintViolation, format!("member {} {name:?} does not exist", kind.as_str()))
            } else {
                e.into()
            }
        })?;
    }
    Ok(())
}

/// Handles an add request.
pub(crate) async fn add(s: &mut Session, req: LdapAddRequest) -> LdapResult {
    respond(add_inner(s, req).await)
}

async fn add_inner(s: &mut Session, req: LdapAddRequest) -> OpResult<()> {
    let t = target(s, &req.dn).await?;
    let (container, name) = match &t.location {
        Location::Object { container, name, .. } => (*container, name.clone()),
        Location::RootDse | Location::Subschema | Location::Domain { .. } | Location::Container { .. } => {
            return Err(err(LdapResultCode::EntryAlreadyExists, "the entry already exists"));
        }
        Location::Configuration { .. } => {
            return Err(err(LdapResultCode::UnwillingToPerform, "CA objects are managed through the API"));
        }
        Location::Workload { .. } => return Err(workloads_read_only()),
    };
    match container {
        Container::Users => {
            let mut new = NewUser { name: name.clone(), ..Default::default() };
            for a in &req.attributes {
                let def = def_of(&a.atype)?;
                if def.name == "userPassword" {
                    let v = one(def, texts(a)?)?;
                    new.password = Some(plaintext_password(v)?);
                    continue;
                }
                writable(def)?;
                let values = texts(a)?;
                match def.name {
                    "objectClass" => {
                        check_classes(&values, &["top", "person", "organizationalPerson", "inetOrgPerson"])?
                    }
                    "uid" => check_rdn(def, &values, &name)?,
                    // Derived from the name; accepted so standard inetOrgPerson LDIF loads.
                    "cn" | "sn" | "givenName" => {}
                    "displayName" => new.display_name = Some(one(def, values)?),
                    "mail" => new.email = Some(one(def, values)?),
                    other => {
                        return Err(err(
                            LdapResultCode::ObjectClassViolation,
                            format!("users have no attribute {other}"),
                        ));
                    }
                }
            }
            s.service.create_user(&t.actor, &t.tenant, new).await?;
            Ok(())
        }
        Container::Groups => {
            let mut display = None;
            let mut members = Vec::new();
            for a in &req.attributes {
                let def = def_of(&a.atype)?;
                writable(def)?;
                let values = texts(a)?;
                match def.name {
                    "objectClass" => check_classes(&values, &["top", "groupOfNames"])?,
                    "cn" => check_rdn(def, &values, &name)?,
                    "displayName" => display = Some(one(def, values)?),
                    "member" => {
                        for v in &values {
                            members.push(member_ref(&t.tenant, v)?);
                        }
                    }
                    other => {
                        return Err(err(
                            LdapResultCode::ObjectClassViolation,
                            format!("groups have no attribute {other}"),
                        ));
                    }
                }
            }
            members_exist(s, &t.actor, &t.tenant, &members).await?;
            s.service.create_group(&t.actor, &t.tenant, &name, display.as_deref()).await?;
            if !members.is_empty() {
                let m = Modification { add_members: members, ..Default::default() };
                s.service.modify_principal(&t.actor, &t.tenant, PrincipalKind::Group, &name, m).await?;
            }
            Ok(())
        }
        Container::Computers | Container::Services => Err(err(
            LdapResultCode::UnwillingToPerform,
            "machines join with a join token and services are created through the API; LDAP adds users and groups",
        )),
    }
}

/// Handles a delete request.
pub(crate) async fn delete(s: &mut Session, dn: &str) -> LdapResult {
    let run = async {
        let t = target(s, dn).await?;
        match &t.location {
            Location::Object { container: c @ (Container::Users | Container::Groups), name, .. } => {
                s.service.delete_principal(&t.actor, &t.tenant, c.kind(), name).await?;
                Ok(())
            }
            Location::Object { .. } => {
                Err(err(LdapResultCode::UnwillingToPerform, "machines and services are deleted through the API"))
            }
            Location::Domain { .. } | Location::Container { .. } => {
                Err(err(LdapResultCode::NotAllowedOnNonLeaf, "the tenant's base and containers cannot be deleted"))
            }
            Location::RootDse | Location::Subschema | Location::Configuration { .. } => {
                Err(err(LdapResultCode::UnwillingToPerform, "not deletable"))
            }
            Location::Workload { .. } => Err(workloads_read_only()),
        }
    };
    respond(run.await)
}

/// A single-valued text attribute being modified.
fn modify_single(
    def: &AttrDef,
    current: &mut Option<String>,
    op: &LdapModifyType,
    values: Vec<String>,
) -> OpResult<()> {
    match op {
        LdapModifyType::Add => {
            let v = one(def, values)?;
            if current.is_some() {
                return Err(err(LdapResultCode::AttributeOrValueExists, format!("{} already has a value", def.name)));
            }
            *current = Some(v);
        }
        LdapModifyType::Replace => {
            if values.len() > 1 {
                return Err(err(LdapResultCode::ConstraintViolation, format!("{} takes a single value", def.name)));
            }
            *current = values.into_iter().next();
        }
        LdapModifyType::Delete => {
            let matches = match (values.first(), current.as_deref()) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(v), Some(c)) => def.syntax.normalize(v) == def.syntax.normalize(c),
            };
            if !matches || values.len() > 1 {
                return Err(err(LdapResultCode::NoSuchAttribute, format!("{} has no such value", def.name)));
            }
            *current = None;
        }
        LdapModifyType::Increment => return Err(increment()),
    }
    Ok(())
}

fn increment() -> LdapError {
    err(LdapResultCode::UnwillingToPerform, "increment is not supported")
}

/// Handles a modify request.
pub(crate) async fn modify(s: &mut Session, req: LdapModifyRequest) -> LdapResult {
    respond(modify_inner(s, req).await)
}

async fn modify_inner(s: &mut Session, req: LdapModifyRequest) -> OpResult<()> {
    let t = target(s, &req.dn).await?;
    let (container, name) = match &t.location {
        Location::Object { container: c @ (Container::Users | Container::Groups), name, .. } => (*c, name.clone()),
        Location::Workload { .. } => return Err(workloads_read_only()),
        _ => return Err(err(LdapResultCode::UnwillingToPerform, "only users and groups are modified through LDAP")),
    };
    let kind = container.kind();
    let view = view(s, &t.dn, false).await?;
    let entry = view.base_entry();
    let current = |n: &'static str| entry.get(schema::known(n)).and_then(|v| v.first().cloned());
    let (orig_display, orig_mail) = (current("displayName"), current("mail"));
    let (mut display, mut mail) = (orig_display.clone(), orig_mail.clone());
    let mut new_password = None;
    let mut old_password = None;
    let member_def = schema::known("member");
    let orig_members: BTreeMap<String, (PrincipalKind, String)> = entry
        .get(member_def)
        .unwrap_or_default()
        .iter()
        .map(|m| member_ref(&t.tenant, m).map(|r| (member_def.syntax.normalize(m), r)))
        .collect::<OpResult<_>>()?;
    let mut members = orig_members.clone();

    for change in &req.changes {
        let a = &change.modification;
        let def = def_of(&a.atype)?;
        if def.name == "objectClass" {
            return Err(err(LdapResultCode::ObjectClassModsProhibited, "object classes cannot be changed"));
        }
        if def.name == container.naming_attr() || def.name == "cn" || (kind == PrincipalKind::User && def.name == "sn")
        {
            return Err(err(
                LdapResultCode::NotALlowedOnRDN,
                format!("{} is derived from the name; renaming is not supported", def.name),
            ));
        }
        writable(def)?;
        let values = texts(a)?;
        match (kind, def.name) {
            (_, "displayName") => modify_single(def, &mut display, &change.operation, values)?,
            (PrincipalKind::User, "mail") => modify_single(def, &mut mail, &change.operation, values)?,
            (PrincipalKind::User, "userPassword") => match change.operation {
                LdapModifyType::Delete if !values.is_empty() => old_password = Some(Zeroizing::new(one(def, values)?)),
                LdapModifyType::Add | LdapModifyType::Replace => {
                    new_password = Some(plaintext_password(one(def, values)?)?)
                }
                _ => return Err(err(LdapResultCode::UnwillingToPerform, "a password can be changed but not removed")),
            },
            (PrincipalKind::Group, "member") => {
                let refs: Vec<(String, (PrincipalKind, String))> = values
                    .iter()
                    .map(|v| member_ref(&t.tenant, v).map(|r| (member_def.syntax.normalize(v), r)))
                    .collect::<OpResult<_>>()?;
                match change.operation {
                    LdapModifyType::Add => {
                        for (key, r) in refs {
                            if members.insert(key, r).is_some() {
                                return Err(err(LdapResultCode::AttributeOrValueExists, "already a member"));
                            }
                        }
                    }
                    LdapModifyType::Delete if refs.is_empty() => members.clear(),
                    LdapModifyType::Delete => {
                        for (key, _) in refs {
                            if members.remove(&key).is_none() {
                                return Err(err(LdapResultCode::NoSuchAttribute, "not a direct member"));
                            }
                        }
                    }
                    LdapModifyType::Replace => members = refs.into_iter().collect(),
                    LdapModifyType::Increment => return Err(increment()),
                }
            }
            (_, other) => {
                return Err(err(LdapResultCode::UnwillingToPerform, format!("{other} cannot be changed through LDAP")));
            }
        }
    }
    if new_password.is_none() && old_password.is_some() {
        return Err(err(LdapResultCode::UnwillingToPerform, "a password can be changed but not removed"));
    }
    let added: Vec<(PrincipalKind, String)> =
        members.iter().filter(|(k, _)| !orig_members.contains_key(*k)).map(|(_, r)| r.clone()).collect();
    let removed: Vec<(PrincipalKind, String)> =
        orig_members.iter().filter(|(k, _)| !members.contains_key(*k)).map(|(_, r)| r.clone()).collect();
    members_exist(s, &t.actor, &t.tenant, &added).await?;

    // Everything is valid: the attributes and members change in one
    // transaction (all or nothing); a password change comes after it.
    let patch = PrincipalPatch {
        display_name: (display != orig_display).then(|| display.clone().unwrap_or_default()),
        email: (mail != orig_mail).then(|| mail.clone().unwrap_or_default()),
        ..Default::default()
    };
    if patch.display_name.is_some() || patch.email.is_some() || !removed.is_empty() || !added.is_empty() {
        let m = Modification { patch, remove_members: removed, add_members: added };
        s.service.modify_principal(&t.actor, &t.tenant, kind, &name, m).await?;
    }
    if let Some(new) = new_password {
        let own = matches!(&t.actor, Actor::Principal(p) if p.name.eq_ignore_ascii_case(&name) && kind == PrincipalKind::User);
        s.service.set_password(&t.actor, &t.tenant, &name, new, old_password).await?;
        if own {
            crate::bind::forget(s);
        }
    }
    Ok(())
}
