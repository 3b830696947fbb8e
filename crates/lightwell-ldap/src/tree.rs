//! The directory tree of a tenant and how DNs map onto it.
//!
//! ```text
//! dc=corp,dc=example                        the tenant corp.example
//!   cn=Users      uid=alice,cn=Users,...    users (inetOrgPerson)
//!   cn=Groups     cn=engineers,cn=Groups,.. groups (groupOfNames)
//!   ou=Computers  cn=node1.corp.example,... machines (device, ipHost)
//!   cn=Services   cn=payments,cn=Services,. services (applicationProcess)
//!                   cn=worker,cn=payments,. its workload entries (read only)
//! ```

use lightwell_core::PrincipalKind;

use crate::dn::{Dn, escape};

/// The four containers under a tenant's base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    /// `cn=Users`.
    Users,
    /// `cn=Groups`.
    Groups,
    /// `ou=Computers`.
    Computers,
    /// `cn=Services`.
    Services,
}

impl Container {
    /// All containers, in tree order.
    pub(crate) const ALL: [Container; 4] = [Self::Users, Self::Groups, Self::Computers, Self::Services];

    /// The container's RDN as (type, value).
    pub(crate) fn rdn(self) -> (&'static str, &'static str) {
        match self {
            Self::Users => ("cn", "Users"),
            Self::Groups => ("cn", "Groups"),
            Self::Computers => ("ou", "Computers"),
            Self::Services => ("cn", "Services"),
        }
    }

    /// The kind of principal it holds.
    pub(crate) fn kind(self) -> PrincipalKind {
        match self {
            Self::Users => PrincipalKind::User,
            Self::Groups => PrincipalKind::Group,
            Self::Computers => PrincipalKind::Machine,
            Self::Services => PrincipalKind::Service,
        }
    }

    /// The container of a kind of principal.
    pub(crate) fn of(kind: PrincipalKind) -> Self {
        match kind {
            PrincipalKind::User => Self::Users,
            PrincipalKind::Group => Self::Groups,
            PrincipalKind::Machine => Self::Computers,
            PrincipalKind::Service => Self::Services,
        }
    }

    /// The RDN type naming objects in it (`uid` for users, `cn` otherwise).
    pub(crate) fn naming_attr(self) -> &'static str {
        if self == Self::Users { "uid" } else { "cn" }
    }

    fn parse(attr: &str, value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| {
            let (a, v) = c.rdn();
            a == attr && v.eq_ignore_ascii_case(value)
        })
    }
}

/// Where a DN points in the server's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// The root DSE (the empty DN).
    RootDse,
    /// The subschema entry.
    Subschema,
    /// A tenant's base entry.
    Domain {
        /// Tenant domain, lower case.
        tenant: String,
    },
    /// One of a tenant's containers.
    Container {
        /// Tenant domain.
        tenant: String,
        /// Which container.
        container: Container,
    },
    /// `cn=Configuration` of a tenant or anything below it (CA objects); read only.
    Configuration {
        /// Tenant domain.
        tenant: String,
    },
    /// A workload entry, below its service; read only.
    Workload {
        /// Tenant domain.
        tenant: String,
    },
    /// A principal.
    Object {
        /// Tenant domain.
        tenant: String,
        /// Its container (and so its kind).
        container: Container,
        /// Its name, as written in the DN.
        name: String,
    },
}

impl Location {
    /// The tenant a location belongs to, if any.
    pub(crate) fn tenant(&self) -> Option<&str> {
        match self {
            Self::RootDse | Self::Subschema => None,
            Self::Domain { tenant }
            | Self::Container { tenant, .. }
            | Self::Configuration { tenant }
            | Self::Workload { tenant }
            | Self::Object { tenant, .. } => Some(tenant),
        }
    }
}

/// Maps a DN onto the namespace; `None` for names that cannot exist here.
pub(crate) fn locate(dn: &Dn) -> Option<Location> {
    if dn.is_root() {
        return Some(Location::RootDse);
    }
    if dn.rdns.len() == 1 && dn.single(0).is_some_and(|(a, v)| a == "cn" && v.eq_ignore_ascii_case("subschema")) {
        return Some(Location::Subschema);
    }
    // The tenant: the trailing run of dc= components.
    let mut labels = Vec::new();
    let mut i = dn.rdns.len();
    while i > 0 {
        match dn.single(i - 1) {
            Some(("dc", v)) if !v.is_empty() => labels.push(v.to_ascii_lowercase()),
            _ => break,
        }
        i -= 1;
    }
    if labels.len() < 2 {
        return None;
    }
    labels.reverse();
    let tenant = labels.join(".");
    if i > 0 && dn.single(i - 1).is_some_and(|(a, v)| a == "cn" && v.eq_ignore_ascii_case("configuration")) {
        return Some(Location::Configuration { tenant });
    }
    match i {
        0 => Some(Location::Domain { tenant }),
        1 => {
            let (a, v) = dn.single(0)?;
            Some(Location::Container { tenant, container: Container::parse(a, v)? })
        }
        2 => {
            let (ca, cv) = dn.single(1)?;
            let container = Container::parse(ca, cv)?;
            let (a, v) = dn.single(0)?;
            // Users may also be named by cn (their cn is their name).
            let ok = a == container.naming_attr() || (container == Container::Users && a == "cn");
            ok.then(|| Location::Object { tenant, container, name: v.to_string() })
        }
        3 => {
            let (ca, cv) = dn.single(2)?;
            let service = dn.single(1)?.0 == "cn" && dn.single(0)?.0 == "cn";
            (Container::parse(ca, cv)? == Container::Services && service).then_some(Location::Workload { tenant })
        }
        _ => None,
    }
}

/// `dc=corp,dc=example` for `corp.example`.
pub(crate) fn base_dn(tenant: &str) -> String {
    tenant.split('.').map(|l| format!("dc={}", escape(l))).collect::<Vec<_>>().join(",")
}

/// The DN of a container.
pub(crate) fn container_dn(tenant: &str, c: Container) -> String {
    let (a, v) = c.rdn();
    format!("{a}={v},{}", base_dn(tenant))
}

/// The DN of a principal.
/// `cn=Configuration,dc=corp,dc=example`.
pub(crate) fn configuration_dn(tenant: &str) -> String {
    format!("cn=Configuration,{}", base_dn(tenant))
}

/// `cn=Certificate-Authorities,cn=Configuration,dc=corp,dc=example`.
pub(crate) fn certificate_authorities_dn(tenant: &str) -> String {
    format!("cn=Certificate-Authorities,{}", configuration_dn(tenant))
}

pub(crate) fn object_dn(tenant: &str, kind: PrincipalKind, name: &str) -> String {
    let c = Container::of(kind);
    format!("{}={},{}", c.naming_attr(), escape(name), container_dn(tenant, c))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn loc(s: &str) -> Option<Location> {
        locate(&Dn::parse(s).unwrap())
    }

    #[test]
    fn dns_map_onto_tenants_containers_and_principals() {
        assert_eq!(loc(""), Some(Location::RootDse));
        assert_eq!(loc("CN=Subschema"), Some(Location::Subschema));
        assert_eq!(loc("dc=Corp,dc=Example"), Some(Location::Domain { tenant: "corp.example".into() }));
        assert_eq!(
            loc("ou=computers,dc=corp,dc=example"),
            Some(Location::Container { tenant: "corp.example".into(), container: Container::Computers })
        );
        assert_eq!(
            loc("uid=Alice,cn=Users,dc=corp,dc=example"),
            Some(Location::Object { tenant: "corp.example".into(), container: Container::Users, name: "Alice".into() })
        );
        assert_eq!(loc("uid=alice,cn=Groups,dc=corp,dc=example"), None, "groups are named by cn");
        assert_eq!(loc("dc=example"), None);
        assert_eq!(loc("a=b,uid=x,cn=Users,dc=corp,dc=example"), None);
        assert_eq!(
            loc("cn=worker,cn=payments,cn=Services,dc=corp,dc=example"),
            Some(Location::Workload { tenant: "corp.example".into() })
        );
        assert_eq!(loc("cn=worker,uid=alice,cn=Users,dc=corp,dc=example"), None, "only services hold entries");
        assert_eq!(loc("uid=worker,cn=payments,cn=Services,dc=corp,dc=example"), None);
    }

    #[test]
    fn dns_are_built_back() {
        assert_eq!(object_dn("corp.example", PrincipalKind::User, "alice"), "uid=alice,cn=Users,dc=corp,dc=example");
        assert_eq!(
            object_dn("corp.example", PrincipalKind::Machine, "n1.corp.example"),
            "cn=n1.corp.example,ou=Computers,dc=corp,dc=example"
        );
    }
}
