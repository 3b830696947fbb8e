//! A consistent, read-only view of one tenant's whole directory, for front
//! ends that answer queries over many objects at once (LDAP search): every
//! principal with its resolved relationships, read in one transaction so a
//! search never mixes two states of the directory.
//!
//! Building one reads the whole tenant, so front ends keep it and ask
//! [`Service::directory_version`] on every request: one small read (the
//! tenant's directory revision, bumped in the same transaction as every
//! directory write) tells whether theirs is still current.

use std::collections::BTreeMap;

use crate::service::Tenant;
use lightwell_store::{CaStatus, CertificateFilter, StoreExt, TenantId};

use super::directory::{PrincipalView, view};
use super::graph::Graph;
use super::workloads::WorkloadView;
use super::{Service, tenant_by_domain};
use crate::authz::{self, Actor, Permission};
use crate::{Error, Result};

/// Which state of a tenant's directory a snapshot shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryVersion {
    /// The tenant's id (a tenant deleted and created again has a new one).
    pub tenant_id: TenantId,
    /// The tenant's directory revision.
    pub revision: i64,
}

/// One tenant's directory at one moment.
#[derive(Debug, Clone)]
pub struct DirectorySnapshot {
    /// The state it shows.
    pub version: DirectoryVersion,
    /// When the earliest certificate it holds expires (Unix seconds): from
    /// then on the snapshot is out of date even if nothing was written.
    pub valid_until: Option<i64>,
    /// The tenant (its id, domain and creation time; the policy is not for display).
    pub tenant: Tenant,
    /// Every principal of the tenant, ordered by kind and name, with
    /// member-of resolved through nesting and the direct members of groups.
    pub principals: Vec<PrincipalView>,
    /// The tenant's CAs (retired ones left out), each with its latest CRL.
    pub cas: Vec<CaObject>,
    /// Unrevoked, unexpired certificates (DER) by principal id.
    pub certificates: BTreeMap<String, Vec<Vec<u8>>>,
    /// The tenant's workload entries, by name (LDAP shows them under their service).
    pub workloads: Vec<WorkloadView>,
}

/// A CA as the directory publishes it: its certificate and latest CRL.
#[derive(Debug, Clone)]
pub struct CaObject {
    /// CA id.
    pub id: String,
    /// CA name (unique in the tenant).
    pub name: String,
    /// Certificate, DER.
    pub cert_der: Vec<u8>,
    /// Latest CRL, DER.
    pub crl_der: Option<Vec<u8>>,
    /// Latest delta CRL, DER (issuing CAs).
    pub delta_crl_der: Option<Vec<u8>>,
    /// Creation time.
    pub created_at: i64,
}

impl Service {
    /// The current version of a tenant's directory: one small read, for
    /// front ends that keep a snapshot to know whether it is current. Needs
    /// the same permission as the snapshot, checked on every call.
    pub async fn directory_version(&self, actor: &Actor, tenant: &str) -> Result<DirectoryVersion> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            inner.store.read(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                Ok::<_, Error>(DirectoryVersion { revision: tx.directory_revision(&t.id)?, tenant_id: t.id })
            })
        })
        .await
    }

    /// Reads a tenant's whole directory in one transaction. Needs the same
    /// permission as listing principals: any principal of the tenant.
    pub async fn directory_snapshot(&self, actor: &Actor, tenant: &str) -> Result<DirectorySnapshot> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            let now = inner.now();
            inner.store.read(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let version = DirectoryVersion { revision: tx.directory_revision(&t.id)?, tenant_id: t.id.clone() };
                let graph = Graph::load(tx, &t.id)?;
                let principals = graph.principals().into_iter().map(|p| view(&graph, p, now)).collect();
                let mut cas = Vec::new();
                for ca in tx.list_cas(&t.id)?.into_iter().filter(|c| c.status != CaStatus::Retired) {
                    let crl_der = tx.crl(&t.id, &ca.id)?.map(|c| c.der);
                    let delta_crl_der = tx.delta_crl(&t.id, &ca.id)?.map(|d| d.crl.der);
                    cas.push(CaObject {
                        id: ca.id,
                        name: ca.name,
                        cert_der: ca.cert_der,
                        crl_der,
                        delta_crl_der,
                        created_at: ca.created_at,
                    });
                }
                let mut certificates: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
                let mut valid_until: Option<i64> = None;
                let active = CertificateFilter { revoked: Some(false), ..Default::default() };
                for c in tx.list_certificates(&t.id, &active)?.into_iter().filter(|c| c.not_after > now) {
                    valid_until = Some(valid_until.map_or(c.not_after, |v| v.min(c.not_after)));
                    certificates.entry(c.principal_id).or_default().push(c.der);
                }
                let workloads = super::workloads::views(tx, &t)?;
                Ok::<_, Error>(DirectorySnapshot {
                    version,
                    valid_until,
                    tenant: t,
                    principals,
                    cas,
                    certificates,
                    workloads,
                })
            })
        })
        .await
    }
}
