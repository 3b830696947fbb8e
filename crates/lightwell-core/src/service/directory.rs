//! Users, groups, machines and services of a tenant.

use crate::service::Tenant;
use lightwell_proto::ErrorCode;
use lightwell_store::{PrincipalKind, PrincipalRecord, StoreExt, Tx};
use zeroize::Zeroizing;

use super::ca::CredentialChange;
use super::graph::Graph;
use super::tenants::new_principal;
use super::{Inner, Service, short, tenant_by_domain};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, DOMAIN_CLIENTS, Permission, USERS};
use crate::names::{AccountName, Hostname, PrincipalRef, parse_display_name, parse_email, parse_ip};
use crate::{Error, PrincipalId, Result, lockout, password};

/// A principal as front ends may see it: everything but its credentials
/// (password hash, machine secret digest) and lockout counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable id.
    pub id: PrincipalId,
    /// Kind of principal.
    pub kind: PrincipalKind,
    /// Name, unique per tenant and kind.
    pub name: String,
    /// Display name.
    pub display_name: Option<String>,
    /// E-mail address (users).
    pub email: Option<String>,
    /// DNS names (machines and services).
    pub hostnames: Vec<String>,
    /// IP addresses (machines and services).
    pub ips: Vec<String>,
    /// Disabled principals cannot authenticate.
    pub enabled: bool,
    /// Built-in objects cannot be deleted.
    pub builtin: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last modification time.
    pub updated_at: i64,
}

impl From<&PrincipalRecord> for Principal {
    fn from(r: &PrincipalRecord) -> Self {
        Self {
            id: PrincipalId::stored(&r.id),
            kind: r.kind,
            name: r.name.clone(),
            display_name: r.display_name.clone(),
            email: r.email.clone(),
            hostnames: r.hostnames.clone(),
            ips: r.ips.clone(),
            enabled: r.enabled,
            builtin: r.builtin,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A principal with its resolved relationships, as front ends show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalView {
    /// The principal.
    pub principal: Principal,
    /// Groups it belongs to, directly or through nesting.
    pub member_of: Vec<String>,
    /// Direct members (groups only).
    pub members: Option<Vec<(PrincipalKind, String)>>,
    /// Whether it is locked out now.
    pub locked: bool,
}

/// A user to create.
#[derive(Default)]
pub struct NewUser {
    /// Name.
    pub name: String,
    /// Initial password.
    pub password: Option<Zeroizing<String>>,
    /// E-mail address.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The initial password is left out.
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .finish()
    }
}

/// A machine or service to create.
#[derive(Debug, Default)]
pub struct NewHostPrincipal {
    /// Machine host name or service name.
    pub name: String,
    /// DNS names.
    pub hostnames: Vec<String>,
    /// IP addresses.
    pub ips: Vec<String>,
    /// Display name.
    pub display_name: Option<String>,
}

/// Changes to a principal; `Some("")` clears a text field.
#[derive(Debug, Clone, Default)]
pub struct PrincipalPatch {
    /// Display name.
    pub display_name: Option<String>,
    /// E-mail (users).
    pub email: Option<String>,
    /// Host names (machines and services).
    pub hostnames: Option<Vec<String>>,
    /// IP addresses (machines and services).
    pub ips: Option<Vec<String>>,
}

fn not_found(kind: PrincipalKind, name: &str) -> Error {
    Error::new(ErrorCode::PrincipalNotFound, format!("no {} {:?}", kind.as_str(), short(name)))
}

pub(super) fn find(tx: &mut dyn Tx, t: &Tenant, kind: PrincipalKind, name: &str) -> Result<PrincipalRecord> {
    tx.principal(&t.id, kind, name)?.ok_or_else(|| not_found(kind, name))
}

pub(super) fn view(graph: &Graph, p: &PrincipalRecord, now: i64) -> PrincipalView {
    PrincipalView {
        member_of: graph.member_of(&p.id).into_iter().collect(),
        members: matches!(p.kind, PrincipalKind::Group | PrincipalKind::Service).then(|| graph.members(&p.id)),
        locked: lockout::is_locked(p, now),
        principal: Principal::from(p),
    }
}

pub(super) fn view_of(tx: &mut dyn Tx, t: &Tenant, p: &PrincipalRecord, now: i64) -> Result<PrincipalView> {
    Ok(view(&Graph::load(tx, &t.id)?, p, now))
}

/// The principal a [`PrincipalRef`] names: of its kind, or — for a bare
/// name — the one principal of the tenant with that name (names are unique
/// across users, services and machines; a group of the same name makes the
/// name ambiguous, and the error lists the candidates).
pub(super) fn resolve(tx: &mut dyn Tx, t: &Tenant, r: &PrincipalRef) -> Result<PrincipalRecord> {
    if let Some(kind) = r.kind {
        return find(tx, t, kind, &r.name);
    }
    let mut found = Vec::new();
    for kind in PrincipalKind::ALL {
        if let Some(p) = tx.principal(&t.id, kind, &r.name)? {
            found.push(p);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::new(ErrorCode::PrincipalNotFound, format!("no principal named {:?}", short(&r.name)))),
        _ => {
            let names: Vec<String> = found.iter().map(|p| format!("{}/{}", p.kind.as_str(), p.name)).collect();
            Err(Error::invalid(format!(
                "{:?} names several principals: {}; write one of them",
                short(&r.name),
                names.join(", ")
            )))
        }
    }
}

/// Checks that a machine's host name is a fully qualified name inside the
/// tenant's domain or one its policy lists (`machine_domains`): a machine can
/// never be called `administrator`, nor anything outside the tenant.
pub(super) fn check_machine_name(t: &Tenant, name: &Hostname) -> Result<()> {
    let policy = t.policy.clone();
    let mut domains = std::iter::once(t.domain.as_str()).chain(policy.machine_domains.iter().map(String::as_str));
    if domains.any(|d| name.is_inside(d)) {
        return Ok(());
    }
    let listed = std::iter::once(t.domain.clone()).chain(policy.machine_domains).collect::<Vec<_>>().join(", ");
    Err(Error::new(
        ErrorCode::InvalidName,
        format!(
            "invalid host name {:?}: a machine is named by a fully qualified name inside {listed}",
            short(name.as_str())
        ),
    ))
}

/// Checks that no other principal of the tenant claims a name `p` would
/// claim (its own name, or a DNS name registered to it): names are unique
/// across users, services and machines, so no certificate of one can carry
/// another's CN or DNS name. The store enforces the same with a unique key;
/// this check names the owner. `before` is the principal as stored, for an update.
pub(super) fn ensure_names_free(
    tx: &mut dyn Tx,
    t: &Tenant,
    before: Option<&PrincipalRecord>,
    p: &PrincipalRecord,
) -> Result<()> {
    // Only names `p` takes now: one it kept may belong to someone else since
    // before names were claimed, and keeping it takes nothing.
    let kept = before.map(PrincipalRecord::claimed_names).unwrap_or_default();
    for name in p.claimed_names().difference(&kept) {
        let Some(owner) = tx.name_owner(&t.id, name)?.filter(|id| *id != p.id) else { continue };
        let who = match tx.principal_by_id(&t.id, &owner)? {
            Some(o) => format!("{} {}", o.kind.as_str(), o.name),
            None => "another principal".to_string(),
        };
        return Err(Error::new(ErrorCode::AlreadyExists, format!("the name {name:?} is already registered to {who}")));
    }
    Ok(())
}

/// Validates the name of a principal of `kind`, returning its stored form.
fn parse_name(kind: PrincipalKind, name: &str) -> Result<String> {
    match kind {
        PrincipalKind::Machine => Ok(Hostname::parse(name)?.into_string()),
        _ => Ok(AccountName::parse(name)?.as_str().to_string()),
    }
}

fn parse_hostnames(own: Option<&str>, names: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = own.map(str::to_string).into_iter().collect();
    for n in names {
        let h = Hostname::parse(n)?.into_string();
        if !out.contains(&h) {
            out.push(h);
        }
    }
    Ok(out)
}

fn parse_ips(ips: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for ip in ips {
        let ip = parse_ip(ip)?;
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

fn optional_text(v: Option<&str>, parse: impl Fn(&str) -> Result<String>) -> Result<Option<String>> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => parse(s).map(Some),
    }
}

impl Inner {
    pub(super) fn tenant_write<T>(
        &self,
        domain: &str,
        mut f: impl FnMut(&mut dyn Tx, &Tenant) -> Result<T>,
    ) -> Result<T> {
        self.store.write(|tx| {
            let t = tenant_by_domain(tx, domain)?;
            let out = f(tx, &t)?;
            // Every committed tenant write may change what the directory
            // shows; caches of it (LDAP search) compare this number.
            tx.bump_directory_revision(&t.id)?;
            Ok(out)
        })
    }

    pub(super) fn tenant_read<T>(
        &self,
        domain: &str,
        mut f: impl FnMut(&mut dyn Tx, &Tenant) -> Result<T>,
    ) -> Result<T> {
        self.store.read(|tx| {
            let t = tenant_by_domain(tx, domain)?;
            f(tx, &t)
        })
    }

    /// Inserts a new principal, adds it to `auto_group`, audits, returns its view.
    fn insert_principal(
        &self,
        actor: &str,
        domain: &str,
        p: &PrincipalRecord,
        auto_group: Option<&str>,
    ) -> Result<PrincipalView> {
        self.tenant_write(domain, |tx, t| {
            let mut p = p.clone();
            p.tenant_id = t.id.clone();
            if tx.principal(&t.id, p.kind, &p.name)?.is_some() {
                return Err(Error::new(
                    ErrorCode::AlreadyExists,
                    format!("{} {:?} already exists", p.kind.as_str(), p.name),
                ));
            }
            if p.kind == PrincipalKind::Machine {
                check_machine_name(t, &Hostname::parse(&p.name)?)?;
            }
            ensure_names_free(tx, t, None, &p)?;
            tx.insert_principal(&p)?;
            if let Some(group) = auto_group {
                let g = find(tx, t, PrincipalKind::Group, group)?;
                tx.add_member(&t.id, &g.id, &p.id)?;
            }
            let action = match p.kind {
                PrincipalKind::User => "user.create",
                PrincipalKind::Group => "group.create",
                PrincipalKind::Machine => "machine.create",
                PrincipalKind::Service => "service.create",
            };
            self.audit(tx, t, AuditEvent::success(actor, action, p.name.clone()))?;
            view_of(tx, t, &p, self.now())
        })
    }
}

impl Inner {
    /// Adds `member` to group `g` (refusing a cycle or a duplicate) or removes
    /// it (refusing a non-member), with its audit record, in `tx`.
    #[allow(clippy::too_many_arguments)]
    fn membership_in_tx(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        actor_name: &str,
        g: &PrincipalRecord,
        member_kind: PrincipalKind,
        member: &str,
        add: bool,
    ) -> Result<()> {
        let m = find(tx, t, member_kind, member)?;
        let target = format!("{}:{}", member_kind.as_str(), m.name);
        if add {
            if Graph::load_ancestry(tx, &t.id, &g.id)?.would_cycle(&g.id, &m.id) {
                return Err(Error::new(
                    ErrorCode::GroupCycle,
                    format!("adding {} to {} would make a group contain itself", m.name, g.name),
                ));
            }
            tx.add_member(&t.id, &g.id, &m.id).map_err(|e| match e {
                lightwell_store::StoreError::Conflict(_) => {
                    Error::new(ErrorCode::AlreadyExists, format!("{} is already a member of {}", m.name, g.name))
                }
                other => other.into(),
            })?;
        } else if !tx.remove_member(&t.id, &g.id, &m.id)? {
            return Err(Error::new(
                ErrorCode::PrincipalNotFound,
                format!("{} is not a direct member of {}", m.name, g.name),
            ));
        }
        let action = if add { "group.add_member" } else { "group.remove_member" };
        self.audit(tx, t, AuditEvent::success(actor_name, action, g.name.clone()).with_detail(target))
    }
}

/// Changes to one principal, applied together by [`Service::modify_principal`].
#[derive(Debug, Clone, Default)]
pub struct Modification {
    /// Attribute changes.
    pub patch: PrincipalPatch,
    /// Members (kind, name) to remove (groups only), before those added.
    pub remove_members: Vec<(PrincipalKind, String)>,
    /// Members (kind, name) to add (groups only).
    pub add_members: Vec<(PrincipalKind, String)>,
}

/// A [`PrincipalPatch`] checked for a kind of principal.
#[derive(Debug, Clone)]
struct ValidPatch {
    kind: PrincipalKind,
    display_name: Option<Option<String>>,
    email: Option<Option<String>>,
    hostnames: Option<Vec<String>>,
    ips: Option<Vec<String>>,
}

impl ValidPatch {
    fn parse(kind: PrincipalKind, patch: PrincipalPatch) -> Result<Self> {
        let hosty = matches!(kind, PrincipalKind::Machine | PrincipalKind::Service);
        if !hosty && (patch.hostnames.is_some() || patch.ips.is_some()) {
            return Err(Error::invalid("only machines and services have host names and IP addresses"));
        }
        if kind != PrincipalKind::User && patch.email.is_some() {
            return Err(Error::invalid("only users have an e-mail address"));
        }
        Ok(Self {
            kind,
            display_name: patch
                .display_name
                .as_deref()
                .map(|d| optional_text(Some(d), parse_display_name))
                .transpose()?,
            email: patch.email.as_deref().map(|e| optional_text(Some(e), parse_email)).transpose()?,
            hostnames: patch.hostnames,
            ips: patch.ips.as_deref().map(parse_ips).transpose()?,
        })
    }

    fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.email.is_none() && self.hostnames.is_none() && self.ips.is_none()
    }

    fn apply(&self, p: &mut PrincipalRecord) -> Result<()> {
        if let Some(d) = &self.display_name {
            p.display_name = d.clone();
        }
        if let Some(e) = &self.email {
            p.email = e.clone();
        }
        if let Some(h) = &self.hostnames {
            let own = (self.kind == PrincipalKind::Machine).then_some(p.name.as_str());
            p.hostnames = parse_hostnames(own, h)?;
        }
        if let Some(i) = &self.ips {
            p.ips = i.clone();
        }
        Ok(())
    }
}

impl Service {
    /// Creates a user (a member of `Users`).
    pub async fn create_user(&self, actor: &Actor, tenant: &str, new: NewUser) -> Result<PrincipalView> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let name = parse_name(PrincipalKind::User, &new.name)?;
        let email = optional_text(new.email.as_deref(), parse_email)?;
        let display_name = optional_text(new.display_name.as_deref(), parse_display_name)?;
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        let permit = match &new.password {
            Some(_) => Some(self.hash_permit().await?),
            None => None,
        };
        self.blocking(move |inner| {
            let hash = match (&new.password, permit) {
                (Some(pw), Some(permit)) => {
                    let policy = inner.tenant_read(&tenant, |_, t| Ok(t.policy.clone()))?;
                    password::check_policy(&policy.password, &name, pw)?;
                    Some(permit.hash(pw)?)
                }
                _ => None,
            };
            let mut p = new_principal(&lightwell_store::TenantId::system(), PrincipalKind::User, &name, inner.now());
            p.email = email;
            p.display_name = display_name;
            p.password_hash = hash;
            inner.insert_principal(&actor_name, &tenant, &p, Some(USERS))
        })
        .await
    }

    /// Creates a group.
    pub async fn create_group(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        display_name: Option<&str>,
    ) -> Result<PrincipalView> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let name = parse_name(PrincipalKind::Group, name)?;
        let display_name = optional_text(display_name, parse_display_name)?;
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        self.blocking(move |inner| {
            let mut p = new_principal(&lightwell_store::TenantId::system(), PrincipalKind::Group, &name, inner.now());
            p.display_name = display_name;
            inner.insert_principal(&actor_name, &tenant, &p, None)
        })
        .await
    }

    /// Creates a machine (a member of `DomainClients`) or a service.
    pub async fn create_host_principal(
        &self,
        actor: &Actor,
        tenant: &str,
        kind: PrincipalKind,
        new: NewHostPrincipal,
    ) -> Result<PrincipalView> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        if !matches!(kind, PrincipalKind::Machine | PrincipalKind::Service) {
            return Err(Error::invalid("only machines and services have host names"));
        }
        let name = parse_name(kind, &new.name)?;
        let own = (kind == PrincipalKind::Machine).then_some(name.as_str());
        let hostnames = parse_hostnames(own, &new.hostnames)?;
        let ips = parse_ips(&new.ips)?;
        let display_name = optional_text(new.display_name.as_deref(), parse_display_name)?;
        let auto_group = (kind == PrincipalKind::Machine).then_some(DOMAIN_CLIENTS);
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        self.blocking(move |inner| {
            let mut p = new_principal(&lightwell_store::TenantId::system(), kind, &name, inner.now());
            p.hostnames = hostnames;
            p.ips = ips;
            p.display_name = display_name;
            inner.insert_principal(&actor_name, &tenant, &p, auto_group)
        })
        .await
    }

    /// Lists principals of a tenant, optionally of one kind.
    pub async fn list_principals(
        &self,
        actor: &Actor,
        tenant: &str,
        kind: Option<PrincipalKind>,
    ) -> Result<Vec<PrincipalView>> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            let now = inner.now();
            inner.tenant_read(&tenant, |tx, t| {
                let graph = Graph::load(tx, &t.id)?;
                Ok(graph
                    .principals()
                    .into_iter()
                    .filter(|p| kind.is_none_or(|k| p.kind == k))
                    .map(|p| view(&graph, p, now))
                    .collect())
            })
        })
        .await
    }

    /// Shows one principal.
    pub async fn principal(
        &self,
        actor: &Actor,
        tenant: &str,
        kind: PrincipalKind,
        name: &str,
    ) -> Result<PrincipalView> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let p = find(tx, t, kind, &name)?;
                view_of(tx, t, &p, inner.now())
            })
        })
        .await
    }

    /// Updates attributes of a principal.
    pub async fn update_principal(
        &self,
        actor: &Actor,
        tenant: &str,
        kind: PrincipalKind,
        name: &str,
        patch: PrincipalPatch,
    ) -> Result<PrincipalView> {
        self.modify_principal(actor, tenant, kind, name, Modification { patch, ..Default::default() }).await
    }

    /// Applies several changes to one principal in one transaction: its
    /// attributes, then (groups only) the members removed and added. All
    /// of it commits, with one audit record per change, or none of it does
    /// (an LDAP modify with several parts is one operation).
    pub async fn modify_principal(
        &self,
        actor: &Actor,
        tenant: &str,
        kind: PrincipalKind,
        name: &str,
        m: Modification,
    ) -> Result<PrincipalView> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        if kind != PrincipalKind::Group && !(m.add_members.is_empty() && m.remove_members.is_empty()) {
            return Err(Error::invalid("only groups have members"));
        }
        let patch = ValidPatch::parse(kind, m.patch)?;
        let (actor_name, tenant, name) = (actor.audit_name(), tenant.to_string(), name.to_string());
        let (removed, added) = (m.remove_members, m.add_members);
        self.blocking(move |inner| {
            let now = inner.now();
            inner.tenant_write(&tenant, |tx, t| {
                let mut p = find(tx, t, kind, &name)?;
                if !patch.is_empty() {
                    let before = p.clone();
                    patch.apply(&mut p)?;
                    p.updated_at = now;
                    ensure_names_free(tx, t, Some(&before), &p)?;
                    tx.update_principal(&p)?;
                    let action = format!("{}.update", kind.as_str());
                    inner.audit(
                        tx,
                        t,
                        AuditEvent::success(actor_name.clone(), "principal.update", p.name.clone()).with_detail(action),
                    )?;
                }
                for (mk, member) in &removed {
                    inner.membership_in_tx(tx, t, &actor_name, &p, *mk, member, false)?;
                }
                for (mk, member) in &added {
                    inner.membership_in_tx(tx, t, &actor_name, &p, *mk, member, true)?;
                }
                view_of(tx, t, &p, now)
            })
        })
        .await
    }

    /// Deletes a principal (built-in objects are protected).
    pub async fn delete_principal(&self, actor: &Actor, tenant: &str, kind: PrincipalKind, name: &str) -> Result<()> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let (actor_name, tenant, name) = (actor.audit_name(), tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let p = find(tx, t, kind, &name)?;
                if p.builtin {
                    return Err(Error::new(ErrorCode::BuiltinProtected, format!("{} is built in", p.name)));
                }
                inner.revoke_on_credential_change(tx, t, &p, &actor_name, CredentialChange::Deleted)?;
                if p.kind == PrincipalKind::Service {
                    // Its workload entries grant its identity: they go with it.
                    tx.delete_service_workload_entries(&t.id, &p.id)?;
                }
                // So do the OpenID clients acting as it.
                tx.delete_principal_oidc_clients(&t.id, &p.id)?;
                tx.delete_principal(&t.id, &p.id)?;
                let ev = AuditEvent::success(actor_name.clone(), "principal.delete", p.name.clone())
                    .with_detail(kind.as_str());
                inner.audit(tx, t, ev)
            })
        })
        .await
    }

    /// Changes a user's password: by the user (old password required) or
    /// reset by an administrator. Bumps the credential epoch, ends all of the
    /// user's sessions and clears any lockout.
    pub async fn set_password(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        new_password: Zeroizing<String>,
        old_password: Option<Zeroizing<String>>,
    ) -> Result<()> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let (actor, tenant, name) = (actor.clone(), tenant.to_string(), name.to_string());
        let permit = self.hash_permit().await?;
        self.blocking(move |inner| {
            let (target, policy) =
                inner.tenant_read(&tenant, |tx, t| Ok((find(tx, t, PrincipalKind::User, &name)?, t.policy.clone())))?;
            authz::check(&actor, Some(&tenant), Permission::ChangePassword(&target.id))?;
            let own = matches!(&actor, Actor::Principal(p) if p.id == target.id);
            if own {
                inner.check_current_password(
                    &actor,
                    &tenant,
                    &target,
                    &policy,
                    old_password.as_ref().map(|p| p.as_str()),
                    &permit,
                )?;
            }
            password::check_policy(&policy.password, &target.name, &new_password)?;
            let hash = permit.hash(&new_password)?;
            drop(permit);
            let now = inner.now();
            inner.tenant_write(&tenant, |tx, t| {
                let mut p = find(tx, t, PrincipalKind::User, &name)?;
                if p.id != target.id || p.credential_epoch != target.credential_epoch {
                    return Err(Error::new(ErrorCode::AlreadyExists, "the password changed meanwhile; try again"));
                }
                if own && lockout::is_locked(&p, now) {
                    return Err(super::auth::locked());
                }
                p.password_hash = Some(hash.clone());
                p.credential_epoch += 1;
                lockout::clear(&mut p);
                p.updated_at = now;
                tx.update_principal(&p)?;
                tx.delete_sessions_of(&t.id, &p.id)?;
                inner.revoke_on_credential_change(tx, t, &p, &actor.audit_name(), CredentialChange::Password)?;
                let action = if own { "user.password_change" } else { "user.password_reset" };
                inner.audit(tx, t, AuditEvent::success(actor.audit_name(), action, p.name.clone()))
            })
        })
        .await
    }

    /// Enables or disables a principal; disabling ends its sessions.
    pub async fn set_enabled(
        &self,
        actor: &Actor,
        tenant: &str,
        kind: PrincipalKind,
        name: &str,
        enabled: bool,
    ) -> Result<()> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let (actor_name, tenant, name) = (actor.audit_name(), tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            let now = inner.now();
            inner.tenant_write(&tenant, |tx, t| {
                let mut p = find(tx, t, kind, &name)?;
                if kind == PrincipalKind::Group {
                    return Err(Error::invalid("groups cannot be disabled"));
                }
                p.enabled = enabled;
                p.updated_at = now;
                tx.update_principal(&p)?;
                if !enabled {
                    tx.delete_sessions_of(&t.id, &p.id)?;
                    inner.revoke_on_credential_change(tx, t, &p, &actor_name, CredentialChange::Disabled)?;
                }
                let action = if enabled { "principal.enable" } else { "principal.disable" };
                inner.audit(
                    tx,
                    t,
                    AuditEvent::success(actor_name.clone(), action, p.name.clone()).with_detail(kind.as_str()),
                )
            })
        })
        .await
    }

    /// Clears a user's lockout.
    pub async fn unlock(&self, actor: &Actor, tenant: &str, name: &str) -> Result<()> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let (actor_name, tenant, name) = (actor.audit_name(), tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            let now = inner.now();
            inner.tenant_write(&tenant, |tx, t| {
                let mut p = find(tx, t, PrincipalKind::User, &name)?;
                lockout::clear(&mut p);
                p.updated_at = now;
                tx.update_principal(&p)?;
                inner.audit(tx, t, AuditEvent::success(actor_name.clone(), "user.unlock", p.name.clone()))
            })
        })
        .await
    }

    /// Adds a member (any kind of principal) to a group; refuses cycles.
    pub async fn add_member(
        &self,
        actor: &Actor,
        tenant: &str,
        group: &str,
        member_kind: PrincipalKind,
        member: &str,
    ) -> Result<PrincipalView> {
        self.change_membership(actor, tenant, group, member_kind, member, true).await
    }

    /// Removes a direct member from a group.
    pub async fn remove_member(
        &self,
        actor: &Actor,
        tenant: &str,
        group: &str,
        member_kind: PrincipalKind,
        member: &str,
    ) -> Result<PrincipalView> {
        self.change_membership(actor, tenant, group, member_kind, member, false).await
    }

    async fn change_membership(
        &self,
        actor: &Actor,
        tenant: &str,
        group: &str,
        member_kind: PrincipalKind,
        member: &str,
        add: bool,
    ) -> Result<PrincipalView> {
        let members = vec![(member_kind, member.to_string())];
        let m = if add {
            Modification { add_members: members, ..Default::default() }
        } else {
            Modification { remove_members: members, ..Default::default() }
        };
        self.modify_principal(actor, tenant, PrincipalKind::Group, group, m).await
    }
}
