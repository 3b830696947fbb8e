//! Workload entries (DESIGN section 1, item 9): the directory decides who a
//! workload is. An entry binds a SPIFFE ID of a service
//! (`spiffe://<tenant>/service/<name>[/<path>]`) to selectors and to the
//! machines, or groups of machines, it may run on. The agent on such a
//! machine attests local processes against the entry's selectors and asks
//! for X.509-SVIDs over mutual TLS; the decision whether that machine may
//! hold the entry's identity is made here, in the issuing transaction,
//! never by the agent.
//!
//! SVIDs are recorded as certificates of the service (profile label
//! `x509-svid`), so disabling, deleting or revoking the service revokes them
//! like any of its certificates; deleting an entry revokes the SVIDs issued
//! for it. An SVID does not authenticate to Lightwell itself (it is the
//! workload's, not the service's directory credential).

use lightwell_ca::Profile;
use lightwell_ca::SpiffeId;
use lightwell_ca::crl::RevocationReason;
use lightwell_ca::csr::CertificateRequest;
use lightwell_ca::leaf::LeafSubject;
use lightwell_proto::{ErrorCode, parse_selectors};
use lightwell_store::{CertificateFilter, PrincipalKind, PrincipalRecord, Tx, WorkloadEntryRecord};
use serde::{Deserialize, Serialize};

use super::ca::{Binding, CertificateUse, CertificateView, checked_ttl, default_issuing_ca, refuse, refuse_extras};
use super::directory::find;
use super::graph::Graph;
use super::{Inner, Service, Tenant, short, tenant_by_domain};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, Permission};
use crate::{Error, Result};

/// SVID lifetime unless the entry says otherwise (the Workload API rotates at half of it).
pub const DEFAULT_SVID_TTL_SECS: i64 = 3600;
/// Shortest SVID lifetime: rotation at half-life must stay well above the agent's round trip.
const MIN_SVID_TTL_SECS: i64 = 60;
const MAX_ENTRY_NAME: usize = 64;
const MAX_SELECTORS: usize = 32;
const MAX_HOSTS: usize = 256;

/// The stored settings of an entry (the `spec` column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct WorkloadSpec {
    /// The SPIFFE ID the entry grants.
    spiffe_id: String,
    /// Sub-path under the service's SPIFFE ID, if any.
    path: Option<String>,
    /// Canonical selectors, sorted.
    selectors: Vec<String>,
    /// Machine principal ids.
    hosts: Vec<String>,
    /// Group principal ids whose machines (members, nested) may run it.
    host_groups: Vec<String>,
    ttl_secs: i64,
    dns_names: Vec<String>,
}

/// What `workload create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewWorkload {
    /// Entry name, unique in the tenant.
    pub name: String,
    /// The service whose identity the workload holds.
    pub service: String,
    /// Sub-path under the service's SPIFFE ID.
    pub path: Option<String>,
    /// Machines (host names) it may run on.
    pub hosts: Vec<String>,
    /// Groups of machines it may run on.
    pub host_groups: Vec<String>,
    /// Selectors, all of which must hold.
    pub selectors: Vec<String>,
    /// SVID lifetime; default one hour.
    pub ttl_secs: Option<i64>,
    /// DNS names for the SVIDs, each registered to the service.
    pub dns_names: Vec<String>,
}

/// An entry as front ends show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadView {
    /// Stable id (LDAP's `entryUUID`).
    pub id: String,
    /// Entry name.
    pub name: String,
    /// The SPIFFE ID its workloads get.
    pub spiffe_id: String,
    /// The service.
    pub service: String,
    /// Host names of the machines it may run on (deleted machines left out).
    pub hosts: Vec<String>,
    /// Names of the groups whose machines may run it.
    pub host_groups: Vec<String>,
    /// Selectors.
    pub selectors: Vec<String>,
    /// SVID lifetime, seconds.
    pub ttl_secs: i64,
    /// DNS names in its SVIDs.
    pub dns_names: Vec<String>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// An entry as an agent sees it: what to attest, what to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedWorkload {
    /// Entry name.
    pub name: String,
    /// The SPIFFE ID.
    pub spiffe_id: String,
    /// Selectors.
    pub selectors: Vec<String>,
    /// SVID lifetime, seconds.
    pub ttl_secs: i64,
}

fn workload_not_found(name: &str) -> Error {
    Error::new(ErrorCode::WorkloadNotFound, format!("no workload entry {:?}", short(name)))
}

fn parse_entry_name(name: &str) -> Result<String> {
    crate::names::label_name("workload entry name", name, MAX_ENTRY_NAME)
}

/// The path segments under the service: lower-case letters, digits, `.`, `-`, `_`.
fn parse_path(path: &str) -> Result<Vec<&str>> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ok = segments.len() <= 8
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s != &"."
                && s != &".."
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
    if !ok {
        return Err(Error::invalid(format!(
            "invalid workload path {:?}: up to 8 segments of lower-case letters, digits, '.', '-' and '_', separated by '/'",
            short(path)
        )));
    }
    Ok(segments)
}

fn load(record: &WorkloadEntryRecord) -> Result<WorkloadSpec> {
    serde_json::from_str(&record.spec).map_err(Error::internal)
}

/// Whether `machine` may run the workloads of `spec`: listed itself, or a
/// member (directly or through nested groups) of a listed group.
fn assigned_to(tx: &mut dyn Tx, t: &Tenant, spec: &WorkloadSpec, machine_id: &str) -> Result<bool> {
    if spec.hosts.iter().any(|h| h == machine_id) {
        return Ok(true);
    }
    if spec.host_groups.is_empty() {
        return Ok(false);
    }
    let graph = Graph::load_ancestry(tx, &t.id, machine_id)?;
    Ok(spec.host_groups.iter().any(|g| graph.is_member_of(machine_id, g)))
}

/// Every workload entry of the tenant, by name.
pub(super) fn views(tx: &mut dyn Tx, t: &Tenant) -> Result<Vec<WorkloadView>> {
    let records = tx.list_workload_entries(&t.id)?;
    records.iter().map(|r| view(tx, t, r)).collect()
}

fn view(tx: &mut dyn Tx, t: &Tenant, record: &WorkloadEntryRecord) -> Result<WorkloadView> {
    let spec = load(record)?;
    let mut name_of = |id: &str| -> Result<Option<String>> { Ok(tx.principal_by_id(&t.id, id)?.map(|p| p.name)) };
    let service = name_of(&record.service_id)?.unwrap_or_default();
    let mut hosts = Vec::new();
    for id in &spec.hosts {
        hosts.extend(name_of(id)?);
    }
    let mut host_groups = Vec::new();
    for id in &spec.host_groups {
        host_groups.extend(name_of(id)?);
    }
    Ok(WorkloadView {
        id: record.id.clone(),
        name: record.name.clone(),
        spiffe_id: spec.spiffe_id,
        service,
        hosts,
        host_groups,
        selectors: spec.selectors,
        ttl_secs: spec.ttl_secs,
        dns_names: spec.dns_names,
        created_at: record.created_at,
    })
}

/// The service whose workload entry grants `spiffe_id`, if an entry does.
pub(super) fn service_of_spiffe_id(tx: &mut dyn Tx, t: &Tenant, spiffe_id: &str) -> Result<Option<PrincipalRecord>> {
    for record in tx.list_workload_entries(&t.id)? {
        if load(&record)?.spiffe_id == spiffe_id {
            return Ok(tx.principal_by_id(&t.id, &record.service_id)?);
        }
    }
    Ok(None)
}

/// The SPIFFE ID (URI SAN) of a recorded certificate.
fn uri_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) => Some((*u).to_string()),
        _ => None,
    })
}

impl Service {
    /// Creates a workload entry (Administrators).
    pub async fn create_workload(&self, actor: &Actor, tenant: &str, new: NewWorkload) -> Result<WorkloadView> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let name = parse_entry_name(&new.name)?;
        let selectors = parse_selectors(&new.selectors).map_err(|e| Error::invalid(e.to_string()))?;
        if selectors.len() > MAX_SELECTORS {
            return Err(Error::invalid(format!("an entry has at most {MAX_SELECTORS} selectors")));
        }
        if new.hosts.is_empty() && new.host_groups.is_empty() {
            return Err(Error::invalid("an entry needs at least one host or host group to run on"));
        }
        if new.hosts.len() + new.host_groups.len() > MAX_HOSTS {
            return Err(Error::invalid(format!("an entry names at most {MAX_HOSTS} hosts and host groups")));
        }
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                if tx.workload_entry(&t.id, &name)?.is_some() {
                    return Err(Error::new(ErrorCode::AlreadyExists, format!("workload entry {name:?} already exists")));
                }
                let service = find(tx, t, PrincipalKind::Service, &new.service)?;
                if service.builtin {
                    return Err(Error::new(
                        ErrorCode::BuiltinProtected,
                        format!("service {} is built in; its identity is not for workloads", service.name),
                    ));
                }
                let mut segments = vec![PrincipalKind::Service.as_str(), service.name.as_str()];
                let path = new.path.as_deref().filter(|p| !p.trim_matches('/').is_empty());
                if let Some(p) = path {
                    segments.extend(parse_path(p)?);
                }
                let spiffe_id = SpiffeId::new(&t.domain, &segments)
                    .map_err(|e| Error::invalid(format!("the entry's SPIFFE ID is invalid: {e}")))?;
                let mut hosts = Vec::new();
                for h in &new.hosts {
                    hosts.push(find(tx, t, PrincipalKind::Machine, h)?.id);
                }
                let mut host_groups = Vec::new();
                for g in &new.host_groups {
                    host_groups.push(find(tx, t, PrincipalKind::Group, g)?.id);
                }
                hosts.sort();
                hosts.dedup();
                host_groups.sort();
                host_groups.dedup();
                for dns in &new.dns_names {
                    if !service.hostnames.iter().any(|h| h.eq_ignore_ascii_case(dns)) {
                        return Err(refuse(format!(
                            "DNS name {:?} is not registered to service {}; register it with `lightwell service update {} --dns {}`",
                            short(dns),
                            service.name,
                            service.name,
                            short(dns)
                        )));
                    }
                }
                for other in tx.list_workload_entries(&t.id)? {
                    if load(&other)?.spiffe_id == spiffe_id.as_str() {
                        return Err(Error::new(
                            ErrorCode::AlreadyExists,
                            format!("workload entry {:?} already grants {spiffe_id}; add hosts or a path instead", other.name),
                        ));
                    }
                }
                let ttl_secs = new.ttl_secs.unwrap_or(DEFAULT_SVID_TTL_SECS);
                if ttl_secs < MIN_SVID_TTL_SECS {
                    return Err(Error::invalid(format!("an SVID lives at least {MIN_SVID_TTL_SECS} s")));
                }
                let ttl_secs = checked_ttl(ttl_secs, &t.policy.ca)?;
                let spec = WorkloadSpec {
                    spiffe_id: spiffe_id.as_str().to_string(),
                    path: path.map(|p| p.trim_matches('/').to_string()),
                    selectors: selectors.iter().map(ToString::to_string).collect(),
                    hosts,
                    host_groups,
                    ttl_secs,
                    dns_names: new.dns_names.iter().map(|d| d.to_ascii_lowercase()).collect(),
                };
                let record = WorkloadEntryRecord {
                    id: uuid::Uuid::new_v4().to_string(),
                    tenant_id: t.id.clone(),
                    name: name.clone(),
                    service_id: service.id.clone(),
                    spec: serde_json::to_string(&spec).map_err(Error::internal)?,
                    created_at: inner.now(),
                };
                tx.insert_workload_entry(&record)?;
                let ev = AuditEvent::success(actor_name.clone(), "workload.create", name.clone())
                    .with_detail(format!("{}; selectors {}", spec.spiffe_id, spec.selectors.join(" ")));
                inner.audit(tx, t, ev)?;
                view(tx, t, &record)
            })
        })
        .await
    }

    /// The tenant's workload entries, by name.
    pub async fn list_workloads(&self, actor: &Actor, tenant: &str) -> Result<Vec<WorkloadView>> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| inner.tenant_read(&tenant, views)).await
    }

    /// One workload entry.
    pub async fn workload(&self, actor: &Actor, tenant: &str, name: &str) -> Result<WorkloadView> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let record = tx.workload_entry(&t.id, &name)?.ok_or_else(|| workload_not_found(&name))?;
                view(tx, t, &record)
            })
        })
        .await
    }

    /// Deletes a workload entry (Administrators) and revokes every SVID
    /// issued for it; returns their serials.
    pub async fn delete_workload(&self, actor: &Actor, tenant: &str, name: &str) -> Result<Vec<String>> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let (actor_name, tenant, name) = (actor.audit_name(), tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let record = tx.workload_entry(&t.id, &name)?.ok_or_else(|| workload_not_found(&name))?;
                let spec = load(&record)?;
                let filter = CertificateFilter {
                    principal_id: Some(record.service_id.clone()),
                    revoked: Some(false),
                    ..Default::default()
                };
                let now = inner.now();
                let svids: Vec<(String, String)> = tx
                    .list_certificates(&t.id, &filter)?
                    .into_iter()
                    .filter(|c| c.profile == CertificateUse::WorkloadSvid.label() && c.not_after > now)
                    .filter(|c| uri_of(&c.der).as_deref() == Some(spec.spiffe_id.as_str()))
                    .map(|c| (c.serial, c.ca_id))
                    .collect();
                let revoked = inner.revoke_serials(tx, t, &svids, RevocationReason::CessationOfOperation)?;
                tx.delete_workload_entry(&t.id, &record.id)?;
                let detail = match revoked.is_empty() {
                    true => spec.spiffe_id.clone(),
                    false => format!("{}; revoked {}", spec.spiffe_id, revoked.join(" ")),
                };
                let ev =
                    AuditEvent::success(actor_name.clone(), "workload.delete", record.name.clone()).with_detail(detail);
                inner.audit(tx, t, ev)?;
                Ok(revoked)
            })
        })
        .await
    }

    /// The entries the calling machine may run, for its agent to attest
    /// workloads against. Entries of disabled services are left out.
    pub async fn assigned_workloads(&self, actor: &Actor, tenant: &str) -> Result<Vec<AssignedWorkload>> {
        let me = calling_machine(actor, tenant)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let mut out = Vec::new();
                for record in tx.list_workload_entries(&t.id)? {
                    let spec = load(&record)?;
                    let enabled = tx.principal_by_id(&t.id, &record.service_id)?.is_some_and(|s| s.enabled);
                    if enabled && assigned_to(tx, t, &spec, &me)? {
                        out.push(AssignedWorkload {
                            name: record.name,
                            spiffe_id: spec.spiffe_id,
                            selectors: spec.selectors,
                            ttl_secs: spec.ttl_secs,
                        });
                    }
                }
                Ok(out)
            })
        })
        .await
    }

    /// Issues an X.509-SVID of entry `name` to the calling machine for a key
    /// its agent made: only if the entry is assigned to that machine and its
    /// service is enabled, decided in the transaction that records it. The
    /// outcome, refusals included, is audited.
    pub async fn issue_svid(&self, actor: &Actor, tenant: &str, name: &str, csr: Vec<u8>) -> Result<CertificateView> {
        let me = calling_machine(actor, tenant)?;
        let (actor, tenant, name) = (actor.clone(), tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            let csr = CertificateRequest::parse(&csr).map_err(super::ca::ca_error);
            let actor_name = actor.audit_name();
            inner.write_committing_refusal(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let outcome = csr.clone().and_then(|csr| inner.svid_in_tx(tx, &t, &actor, &me, &name, &csr));
                inner.audit_issuance(tx, &t, &actor_name, format!("workload:{}", short(&name)), outcome)
            })
        })
        .await
    }
}

/// The id of the machine calling, or why it may not ask.
pub(super) fn calling_machine(actor: &Actor, tenant: &str) -> Result<String> {
    authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
    match actor {
        Actor::Principal(p) if p.kind == PrincipalKind::Machine => Ok(p.id.to_string()),
        _ => Err(Error::forbidden("only a joined machine's agent asks for workload identities")),
    }
}

impl Inner {
    fn svid_in_tx(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        actor: &Actor,
        machine_id: &str,
        name: &str,
        csr: &CertificateRequest,
    ) -> Result<CertificateView> {
        let (spec, service) = assigned_entry(tx, t, machine_id, name)?;
        let binding = bind_svid(csr, &service, &spec, &t.policy.ca)?;
        let ca = default_issuing_ca(tx, t)?;
        self.sign_and_record(tx, t, actor, &service, csr, &binding, ca)
    }
}

/// Entry `name` and its service, if `machine_id` may hold the entry's
/// identity now: the entry is assigned to it and the service is enabled.
fn assigned_entry(
    tx: &mut dyn Tx,
    t: &Tenant,
    machine_id: &str,
    name: &str,
) -> Result<(WorkloadSpec, PrincipalRecord)> {
    let record = tx.workload_entry(&t.id, name)?.ok_or_else(|| workload_not_found(name))?;
    let spec = load(&record)?;
    // Not assigned answers as "no such entry": a machine learns nothing
    // about entries that are not its own.
    if !assigned_to(tx, t, &spec, machine_id)? {
        return Err(workload_not_found(name));
    }
    let service = tx
        .principal_by_id(&t.id, &record.service_id)?
        .ok_or_else(|| Error::new(ErrorCode::PrincipalNotFound, "the entry's service no longer exists"))?;
    if !service.enabled {
        return Err(Error::new(ErrorCode::AccountDisabled, format!("service {} is disabled", service.name)));
    }
    Ok((spec, service))
}

/// The SPIFFE ID of entry `name` if `machine_id` may hold it now (see
/// [`assigned_entry`]), for a JWT-SVID.
pub(super) fn entry_identity_for(tx: &mut dyn Tx, t: &Tenant, machine_id: &str, name: &str) -> Result<String> {
    assigned_entry(tx, t, machine_id, name).map(|(spec, _)| spec.spiffe_id)
}

/// What an SVID holds: the entry's SPIFFE ID and DNS names, nothing the CSR
/// adds. The subject is `OU=workload, CN=<service>`, distinct from the
/// service's own certificates (`OU=service`).
fn bind_svid(
    csr: &CertificateRequest,
    service: &PrincipalRecord,
    spec: &WorkloadSpec,
    policy: &crate::policy::CaPolicy,
) -> Result<Binding> {
    refuse_extras(csr)?;
    for uri in csr.uris() {
        if uri != &spec.spiffe_id {
            return Err(refuse(format!("the CSR asks for URI {:?}; this entry's is {}", short(uri), spec.spiffe_id)));
        }
    }
    if !csr.dns_names().is_empty() || !csr.ip_addresses().is_empty() || !csr.emails().is_empty() {
        return Err(refuse("an SVID's names come from its entry; the CSR asks for others"));
    }
    if let Some(gone) = spec.dns_names.iter().find(|d| !service.hostnames.iter().any(|h| h.eq_ignore_ascii_case(d))) {
        return Err(refuse(format!(
            "the entry names DNS name {:?}, which is no longer registered to service {}",
            short(gone),
            service.name
        )));
    }
    let spiffe_id: SpiffeId = spec.spiffe_id.parse().map_err(Error::internal)?;
    let subject = LeafSubject {
        common_name: Some(service.name.clone()),
        organizations: vec![],
        organizational_unit: Some("workload".into()),
        dns_names: spec.dns_names.clone(),
        ip_addresses: vec![],
        emails: vec![],
        spiffe_id: Some(spiffe_id),
    };
    let ttl_secs = checked_ttl(spec.ttl_secs, policy)?;
    Ok(Binding { subject, profile: Profile::ServerClient, usage: CertificateUse::WorkloadSvid, ttl_secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_and_paths_are_checked() {
        assert!(parse_entry_name("payments-worker").is_ok());
        for bad in ["", "Payments", "9lives", "a-", "a_b", &"a".repeat(65)] {
            assert!(parse_entry_name(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_path("/worker/blue/").unwrap(), ["worker", "blue"]);
        for bad in ["..", "a//b", "A", "a/../b", "a b", "x/y/z/1/2/3/4/5/6"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }
}
