//! A consistent, read-only view of one tenant's whole directory, for front
//! ends that answer queries over many objects at once (LDAP search): every
//! principal with its resolved relationships, read in one transaction so a
//! search never mixes two states of the directory.

use lightwell_store::{StoreExt, TenantRecord};

use super::directory::{PrincipalView, view};
use super::graph::Graph;
use super::{Service, tenant_by_domain};
use crate::authz::{self, Actor, Permission};
use crate::{Error, Result};

/// One tenant's directory at one moment.
#[derive(Debug, Clone)]
pub struct DirectorySnapshot {
    /// The tenant (its id, domain and creation time; the policy is not for display).
    pub tenant: TenantRecord,
    /// Every principal of the tenant, ordered by kind and name, with
    /// member-of resolved through nesting and the direct members of groups.
    pub principals: Vec<PrincipalView>,
}

impl Service {
    /// Reads a tenant's whole directory in one transaction. Needs the same
    /// permission as listing principals: any principal of the tenant.
    pub async fn directory_snapshot(&self, actor: &Actor, tenant: &str) -> Result<DirectorySnapshot> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            let now = inner.now();
            inner.store.read(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let graph = Graph::load(tx, &t.id)?;
                let principals = graph.principals().into_iter().map(|p| view(&graph, p, now)).collect();
                Ok::<_, Error>(DirectorySnapshot { tenant: t, principals })
            })
        })
        .await
    }
}
