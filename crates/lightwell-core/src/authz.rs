//! Who may do what. One explicit check per operation, here in the service
//! layer, never in handlers.
//!
//! | permission | who |
//! | --- | --- |
//! | manage tenants (create, list, delete) | the system operator |
//! | read the directory of a tenant | any enabled principal of that tenant |
//! | manage the directory (create, update, delete, reset passwords, unlock) | the tenant's `Administrators` |
//! | change one's own password (old password required) | the principal itself |
//! | read and verify a tenant's audit log | the tenant's `Administrators` |
//! | read and verify the system audit log | the system operator |
//! | request a certificate for oneself, read the tenant's CAs | any enabled principal of that tenant |
//! | manage CAs, issue on behalf of others, revoke anyone's certificates | `Administrators` and `CAAdmins` |
//! | have a CA whose key is held outside the server: export an exportable Kubernetes cluster CA's key, import a CA with its key | `Administrators` |
//!
//! The operator has no rights inside tenants; a principal has none outside
//! its own tenant. Whoever acts for another principal (a certificate on its
//! behalf) must rank at least as high as that principal ([`Rank`]), and
//! such a certificate never authenticates to Lightwell (`service::ca::mtls`).

use std::collections::BTreeSet;

use lightwell_store::{PrincipalKind, TenantId};

use crate::{Error, PrincipalId, Result};

/// Built-in group: tenant administrators.
pub const ADMINISTRATORS: &str = "Administrators";
/// Built-in group: CA operations and revocation.
pub const CA_ADMINS: &str = "CAAdmins";
/// Built-in group: every joined machine.
pub const DOMAIN_CLIENTS: &str = "DomainClients";
/// Built-in group: every user.
pub const USERS: &str = "Users";
/// The built-in groups every tenant has.
pub const BUILTIN_GROUPS: [&str; 4] = [ADMINISTRATORS, CA_ADMINS, DOMAIN_CLIENTS, USERS];
/// Name of the first administrator of every tenant.
pub const FIRST_ADMIN: &str = "administrator";
/// Name of the system operator.
pub const OPERATOR: &str = "operator";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The system operator.
    Operator {
        /// Principal id of the operator.
        id: PrincipalId,
    },
    /// A principal of a tenant.
    Principal(PrincipalActor),
}

/// A tenant principal acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalActor {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Tenant domain.
    pub tenant: String,
    /// Principal id.
    pub id: PrincipalId,
    /// Principal kind.
    pub kind: PrincipalKind,
    /// Principal name.
    pub name: String,
    /// Groups, direct and nested.
    pub groups: BTreeSet<String>,
}

impl PrincipalActor {
    /// Whether the principal belongs (directly or through nesting) to `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g.eq_ignore_ascii_case(group))
    }
}

impl Actor {
    /// How the actor appears in audit records (`operator`, `user:alice`).
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Operator { .. } => OPERATOR.to_string(),
            Actor::Principal(p) => principal_name(p.kind, &p.name),
        }
    }
}

/// How a principal appears in audit records and as a certificate's
/// requester: `kind:name`.
pub fn principal_name(kind: PrincipalKind, name: &str) -> String {
    format!("{}:{name}", kind.as_str())
}

/// The privilege lattice inside a tenant, lowest first: what a principal's
/// built-in groups let it do. Acting for someone else (a certificate on
/// their behalf) needs a rank at least theirs, so nobody obtains a
/// credential with more rights than their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// No administrative group.
    Member,
    /// `CAAdmins`: CA operations and revocation.
    CaAdmin,
    /// `Administrators`: everything in the tenant.
    Administrator,
}

impl Rank {
    /// The rank that a set of (nested) group names confers.
    pub fn of<'a>(groups: impl IntoIterator<Item = &'a String>) -> Self {
        groups.into_iter().fold(Rank::Member, |rank, g| {
            let this = if g.eq_ignore_ascii_case(ADMINISTRATORS) {
                Rank::Administrator
            } else if g.eq_ignore_ascii_case(CA_ADMINS) {
                Rank::CaAdmin
            } else {
                Rank::Member
            };
            rank.max(this)
        })
    }
}

/// Operations that need permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission<'a> {
    /// Create, list, show and delete tenants.
    ManageTenants,
    /// Read users, groups, machines and services of a tenant.
    ReadDirectory,
    /// Create, change and delete directory objects; reset passwords; unlock.
    ManageDirectory,
    /// Change the password of the principal with this id.
    ChangePassword(&'a str),
    /// Read and verify the tenant's audit log.
    ReadAudit,
    /// Create and revoke CAs, issue on behalf of others, revoke anyone's certificates.
    ManageCa,
    /// Have a CA whose private key is held outside the server: export a
    /// CA's key, or import a CA with the key someone brought. Whoever holds
    /// it signs what they like under the tenant root, so this is more than
    /// CA operations.
    CaKeyHeldOutside,
}

/// Checks that `actor` may do `perm` in the tenant with domain `tenant`
/// (`None` for system-scope operations).
pub fn check(actor: &Actor, tenant: Option<&str>, perm: Permission<'_>) -> Result<()> {
    let denied = || Err(Error::forbidden("you are not allowed to do this"));
    match (actor, tenant) {
        (Actor::Operator { .. }, None) => match perm {
            Permission::ManageTenants | Permission::ReadAudit => Ok(()),
            _ => denied(),
        },
        (Actor::Operator { .. }, Some(_)) => match perm {
            Permission::ManageTenants => Ok(()),
            _ => Err(Error::forbidden("the system operator has no rights inside a tenant")),
        },
        (Actor::Principal(_), None) => denied(),
        (Actor::Principal(p), Some(t)) => {
            if !p.tenant.eq_ignore_ascii_case(t) {
                return Err(Error::forbidden("you have no rights in another tenant"));
            }
            let admin = p.in_group(ADMINISTRATORS);
            let allowed = match perm {
                Permission::ManageTenants => false,
                Permission::ReadDirectory => true,
                Permission::ManageDirectory | Permission::ReadAudit | Permission::CaKeyHeldOutside => admin,
                Permission::ChangePassword(id) => admin || p.id == id,
                Permission::ManageCa => admin || p.in_group(CA_ADMINS),
            };
            if allowed { Ok(()) } else { denied() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(tenant: &str, groups: &[&str]) -> Actor {
        Actor::Principal(PrincipalActor {
            tenant_id: TenantId::new(format!("id-{tenant}")),
            tenant: tenant.into(),
            id: PrincipalId::stored("p1"),
            kind: PrincipalKind::User,
            name: "alice".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        })
    }

    #[test]
    fn permission_table() {
        let op = Actor::Operator { id: PrincipalId::stored("op") };
        let admin_a = principal("a.example", &[ADMINISTRATORS, USERS]);
        let user_a = principal("a.example", &[USERS]);
        let cases: &[(&Actor, Option<&str>, Permission<'_>, bool)] = &[
            (&op, None, Permission::ManageTenants, true),
            (&op, Some("a.example"), Permission::ManageTenants, true),
            (&op, Some("a.example"), Permission::ReadDirectory, false),
            (&op, Some("a.example"), Permission::ManageDirectory, false),
            (&admin_a, Some("a.example"), Permission::ManageDirectory, true),
            (&admin_a, Some("A.Example"), Permission::ReadAudit, true),
            (&admin_a, Some("b.example"), Permission::ReadDirectory, false),
            (&admin_a, Some("b.example"), Permission::ManageDirectory, false),
            (&admin_a, None, Permission::ManageTenants, false),
            (&admin_a, Some("a.example"), Permission::ManageTenants, false),
            (&user_a, Some("a.example"), Permission::ReadDirectory, true),
            (&user_a, Some("a.example"), Permission::ManageDirectory, false),
            (&user_a, Some("a.example"), Permission::ReadAudit, false),
            (&user_a, Some("a.example"), Permission::ChangePassword("p1"), true),
            (&user_a, Some("a.example"), Permission::ChangePassword("p2"), false),
            (&user_a, Some("a.example"), Permission::ManageCa, false),
            (&admin_a, Some("a.example"), Permission::ManageCa, true),
            (&principal("a.example", &[CA_ADMINS]), Some("a.example"), Permission::ManageCa, true),
            (&admin_a, Some("b.example"), Permission::ManageCa, false),
            (&op, Some("a.example"), Permission::ManageCa, false),
            (&admin_a, Some("a.example"), Permission::CaKeyHeldOutside, true),
            (&principal("a.example", &[CA_ADMINS]), Some("a.example"), Permission::CaKeyHeldOutside, false),
            (&user_a, Some("a.example"), Permission::CaKeyHeldOutside, false),
            (&op, Some("a.example"), Permission::CaKeyHeldOutside, false),
        ];
        for (actor, tenant, perm, allowed) in cases {
            assert_eq!(check(actor, *tenant, *perm).is_ok(), *allowed, "{actor:?} {tenant:?} {perm:?}");
        }
    }

    #[test]
    fn ranks_follow_the_builtin_groups() {
        let rank = |gs: &[&str]| Rank::of(&gs.iter().map(|g| g.to_string()).collect::<Vec<_>>());
        assert_eq!(rank(&[]), Rank::Member);
        assert_eq!(rank(&[USERS, DOMAIN_CLIENTS, "engineers"]), Rank::Member);
        assert_eq!(rank(&["caadmins"]), Rank::CaAdmin);
        assert_eq!(rank(&[CA_ADMINS, ADMINISTRATORS]), Rank::Administrator);
        assert!(Rank::Member < Rank::CaAdmin && Rank::CaAdmin < Rank::Administrator);
    }
}
