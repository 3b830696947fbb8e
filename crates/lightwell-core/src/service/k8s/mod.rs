//! Kubernetes clusters (DESIGN section 1, item 8): each cluster gets three
//! issuing CAs under the tenant root (the cluster CA, the front-proxy CA and
//! the etcd CA, as kubeadm lays a cluster out), its control-plane
//! certificates as kubeadm generates them, kubelet identities for the joined
//! machines an administrator made its nodes, and user certificates whose
//! groups come from the directory. Deleting a cluster revokes its CAs, which
//! cuts off every identity they issued.
//!
//! A cluster's settings, CA ids and nodes are one JSON document in the
//! store; the control-plane certificates are recorded under a service
//! principal `k8s-<cluster>` so they can be listed and revoked like any other.

mod subjects;

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::service::Tenant;
use lightwell_ca::crl::RevocationReason;
use lightwell_ca::csr::CertificateRequest;
use lightwell_proto::ErrorCode;
use lightwell_store::{CertificateFilter, K8sClusterRecord, PrincipalKind, PrincipalRecord, Tx};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::ca::{Binding, CaView, CertificateView, checked_ttl, refuse_extras};
use super::ca::{CertificateUse, parse_name_constraints};
use super::directory::check_machine_name;
use super::{Inner, Service, short, tenant_by_domain};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, Permission};
use crate::names::{AccountName, Hostname};
use crate::{Error, Result};
use lightwell_ca::constraints::NameConstraints;

pub use self::subjects::Component;

/// Longest cluster name: CA names (`k8s-<name>-<id>-front-proxy`) stay within 64 characters.
const MAX_CLUSTER_NAME: usize = 32;

/// The stored settings of a cluster (the `spec` column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ClusterSpec {
    pub(super) api_server: Option<String>,
    pub(super) dns_domain: String,
    pub(super) service_cidr: String,
    pub(super) service_ip: String,
    pub(super) name_constraints: Vec<String>,
    /// (directory group, Kubernetes group); empty: every group as is.
    pub(super) group_mapping: Vec<(String, String)>,
    pub(super) ca_id: String,
    pub(super) front_proxy_ca_id: String,
    pub(super) etcd_ca_id: String,
    /// The service principal the control-plane certificates are recorded under.
    pub(super) service_id: String,
    /// Machine principal ids allowed kubelet identities.
    pub(super) nodes: Vec<String>,
    /// Whether the cluster CA's key may be handed out (`pki export` without `--external-ca`).
    #[serde(default)]
    pub(super) ca_key_exportable: bool,
}

/// What `k8s cluster create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewCluster {
    /// Name, unique in the tenant.
    pub name: String,
    /// API server URL for kubeconfigs.
    pub api_server: Option<String>,
    /// Cluster DNS domain (default `cluster.local`).
    pub dns_domain: Option<String>,
    /// Service CIDR (default `10.96.0.0/12`).
    pub service_cidr: Option<String>,
    /// DNS name constraints of the cluster's CAs.
    pub name_constraints: Vec<String>,
    /// `DIRECTORY=KUBERNETES` or `NAME`.
    pub group_mapping: Vec<String>,
    /// Allow the cluster CA's private key to leave the server (for clusters
    /// that sign kubelet CSRs themselves).
    pub allow_ca_key_export: bool,
}

/// A cluster as front ends show it.
#[derive(Debug, Clone)]
pub struct ClusterView {
    /// Name.
    pub name: String,
    /// API server URL.
    pub api_server: Option<String>,
    /// DNS domain.
    pub dns_domain: String,
    /// Service CIDR.
    pub service_cidr: String,
    /// The `kubernetes` service IP.
    pub service_ip: String,
    /// DNS name constraints of its CAs.
    pub name_constraints: Vec<String>,
    /// `DIRECTORY=KUBERNETES` pairs.
    pub group_mapping: Vec<String>,
    /// The cluster CA.
    pub ca: CaView,
    /// The front-proxy CA.
    pub front_proxy_ca: CaView,
    /// The etcd CA.
    pub etcd_ca: CaView,
    /// Host names of its nodes.
    pub nodes: Vec<String>,
    /// Whether its CA key may be exported.
    pub ca_key_exportable: bool,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// A control-plane certificate request.
#[derive(Debug, Clone)]
pub struct ComponentRequest {
    /// Which certificate.
    pub component: Component,
    /// PKCS#10, PEM or DER.
    pub csr: Vec<u8>,
    /// Control-plane hosts (DNS names or IPs).
    pub control_plane: Vec<String>,
    /// Lifetime; default the tenant maximum.
    pub ttl_secs: Option<i64>,
}

fn cluster_not_found(name: &str) -> Error {
    Error::new(ErrorCode::ClusterNotFound, format!("no Kubernetes cluster {:?}", short(name)))
}

/// Loads a cluster and its spec.
pub(super) fn load_cluster(tx: &mut dyn Tx, t: &Tenant, name: &str) -> Result<(K8sClusterRecord, ClusterSpec)> {
    let record = tx.k8s_cluster(&t.id, name)?.ok_or_else(|| cluster_not_found(name))?;
    let spec = serde_json::from_str(&record.spec).map_err(Error::internal)?;
    Ok((record, spec))
}

/// Stores a changed spec; returns the updated record.
fn save_spec(tx: &mut dyn Tx, record: &K8sClusterRecord, spec: &ClusterSpec) -> Result<K8sClusterRecord> {
    let mut record = record.clone();
    record.spec = serde_json::to_string(spec).map_err(Error::internal)?;
    tx.update_k8s_cluster(&record)?;
    Ok(record)
}

fn parse_cluster_name(name: &str) -> Result<String> {
    crate::names::label_name("cluster name", name, MAX_CLUSTER_NAME)
}

/// Parses `https://host[:port][/path]` and returns it with its host.
fn parse_api_server(url: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::invalid(format!("invalid API server URL {:?}: {why}", short(url)));
    let rest = url.strip_prefix("https://").ok_or_else(|| bad("it must start with https://"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("no host, or user info or white space"));
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (ip, _) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        ip.parse::<std::net::Ipv6Addr>().map_err(|_| bad("bad IPv6 address"))?.to_string()
    } else {
        let (host, port) = authority.split_once(':').map_or((authority, None), |(h, p)| (h, Some(p)));
        if let Some(port) = port {
            port.parse::<u16>().map_err(|_| bad("bad port"))?;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => Hostname::parse(host).map_err(|_| bad("bad host name"))?.into_string(),
        }
    };
    Ok((url.trim_end_matches('/').to_string(), host))
}

/// An address as a number with its family's width (32 or 128 bits).
fn ip_bits(ip: IpAddr) -> (u32, u128) {
    match ip {
        IpAddr::V4(a) => (32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (128, u128::from(a)),
    }
}

/// The address of a number in a family of `bits` width.
fn ip_of(bits: u32, value: u128) -> IpAddr {
    match u32::try_from(value) {
        Ok(v4) if bits == 32 => IpAddr::from(v4.to_be_bytes()),
        _ => IpAddr::from(value.to_be_bytes()),
    }
}

/// `ADDRESS/PREFIX` as (width, prefix length, network number); `None` if malformed.
fn parse_cidr(cidr: &str) -> Option<(u32, u32, u128)> {
    let (addr, len) = cidr.split_once('/')?;
    let (bits, value) = ip_bits(addr.parse().ok()?);
    let len: u32 = len.parse().ok().filter(|l| *l <= bits)?;
    let host_bits = bits - len;
    let network = if host_bits >= 128 { 0 } else { (value >> host_bits) << host_bits };
    Some((bits, len, network))
}

/// Parses a service CIDR and returns it normalized with its first address
/// (the `kubernetes` service IP, as kube-apiserver allocates it).
fn parse_service_cidr(cidr: &str) -> Result<(String, IpAddr)> {
    let bad = |why: &str| Error::invalid(format!("invalid service CIDR {:?}: {why}", short(cidr)));
    let (bits, len, network) = parse_cidr(cidr).ok_or_else(|| bad("expected ADDRESS/PREFIX"))?;
    // At least one usable address after the network's.
    if len > bits - 2 || len < bits / 4 {
        return Err(bad("the prefix must leave room for services and not exceed the address family"));
    }
    Ok((format!("{}/{len}", ip_of(bits, network)), ip_of(bits, network + 1)))
}

/// Whether `ip` lies in `cidr` (anything unparsable contains nothing).
pub(super) fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (ip_width, value) = ip_bits(ip);
    parse_cidr(cidr).is_some_and(|(bits, len, network)| {
        let host_bits = bits - len;
        bits == ip_width && (host_bits >= 128 || (value >> host_bits) << host_bits == network)
    })
}

/// The name constraints of a cluster's CAs (as listed, and as written into
/// them): what was given (DNS names, IP ranges), plus the in-cluster names
/// every cluster's certificates need, so constraining a cluster never breaks
/// its API server. A cluster whose CA key may be exported is always
/// constrained, since whoever holds that key signs what they like under the
/// tenant root: by default to the cluster's DNS domain, the API server's
/// name, loopback and the service CIDR, and never to a URI (no SPIFFE ID of
/// any trust domain) or an e-mail name.
fn cluster_constraints(
    given: &[String],
    dns_domain: &str,
    service_cidr: &str,
    api_host: Option<&str>,
    exportable: bool,
) -> Result<(Vec<String>, NameConstraints)> {
    let mut entries = given.to_vec();
    let push = |e: String, entries: &mut Vec<String>| {
        if !entries.contains(&e) {
            entries.push(e);
        }
    };
    let given_dns = given.iter().any(|e| !e.contains('/'));
    if exportable {
        if !given_dns {
            push(dns_domain.to_string(), &mut entries);
            if let Some(host) = api_host.filter(|h| h.parse::<IpAddr>().is_err()) {
                push(host.to_string(), &mut entries);
            }
        }
        for range in [service_cidr, "127.0.0.0/8", "::1/128"] {
            push(range.to_string(), &mut entries);
        }
        if let Some(ip) = api_host.and_then(|h| h.parse::<IpAddr>().ok()) {
            push(format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }), &mut entries);
        }
    }
    if given_dns || exportable {
        for name in subjects::in_cluster_names(dns_domain).into_iter().chain(["localhost".to_string()]) {
            push(name, &mut entries);
        }
    }
    let mut constraints = parse_name_constraints(&entries)?;
    constraints.no_uri_or_email = exportable;
    Ok((entries, constraints))
}

/// An exportable cluster CA's key signs whatever its constraints allow, so
/// they must not cover the whole tenant: no DNS constraint may be the
/// tenant's domain, a domain its machines are named in, or a parent of one.
fn exportable_constraints_spare_the_tenant(t: &Tenant, constraints: &NameConstraints) -> Result<()> {
    let policy = t.policy.clone();
    let domains: Vec<&str> =
        std::iter::once(t.domain.as_str()).chain(policy.machine_domains.iter().map(String::as_str)).collect();
    for c in &constraints.dns {
        let base = c.trim_start_matches('.').to_ascii_lowercase();
        if let Some(d) = domains.iter().find(|d| **d == base || d.ends_with(&format!(".{base}"))) {
            return Err(super::ca::refuse(format!(
                "name constraint {c:?} covers {d}, where the tenant's machines are named; a cluster whose CA key may be exported is constrained to names of its own (for example .prod.{d})"
            )));
        }
    }
    Ok(())
}

/// Control-plane hosts name the cluster's own machines, not anyone else:
/// each host name is a fully qualified name inside the tenant's domains
/// that no principal claims, or that a node of this cluster does; each
/// address belongs to no principal but a node of this cluster. (Control-plane
/// certificates carry these names and addresses, and the etcd ones the first
/// as CN; under the tenant root they must not impersonate a user, another
/// machine or a service.)
fn control_plane_is_the_clusters(
    tx: &mut dyn Tx,
    t: &Tenant,
    spec: &ClusterSpec,
    hosts: &subjects::ControlPlane,
) -> Result<()> {
    let refuse = |what: String| super::ca::refuse(format!("control-plane host {what}"));
    for name in hosts.names() {
        check_machine_name(t, &Hostname::parse(name)?).map_err(|e| refuse(e.message))?;
        if let Some(owner) = tx.name_owner(&t.id, name)?
            && !spec.nodes.contains(&owner)
        {
            return Err(refuse(format!("{name:?} is registered to a principal that is not a node of this cluster")));
        }
    }
    if !hosts.ips().is_empty() {
        for kind in [PrincipalKind::Machine, PrincipalKind::Service] {
            for p in tx.list_principals(&t.id, Some(kind))? {
                if spec.nodes.contains(&p.id) {
                    continue;
                }
                if let Some(ip) = hosts.ips().iter().find(|ip| p.ips.iter().any(|own| own.parse().ok() == Some(**ip))) {
                    return Err(refuse(format!(
                        "{ip} is registered to {} {}, not a node of this cluster",
                        kind.as_str(),
                        p.name
                    )));
                }
            }
        }
    }
    Ok(())
}

fn parse_group_mapping(tx: &mut dyn Tx, t: &Tenant, mapping: &[String]) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for m in mapping {
        let (dir, k8s) = m.split_once('=').unwrap_or((m.as_str(), m.as_str()));
        let dir = AccountName::parse(dir.trim())?.as_str().to_string();
        let k8s = k8s.trim();
        let k8s_ok = !k8s.is_empty()
            && k8s.len() <= 64
            && k8s.bytes().all(|b| b.is_ascii_alphanumeric() || b":._-".contains(&b));
        if !k8s_ok {
            return Err(Error::invalid(format!(
                "invalid Kubernetes group {:?}: 1 to 64 letters, digits, ':', '.', '_' and '-'",
                short(k8s)
            )));
        }
        let group = tx
            .principal(&t.id, PrincipalKind::Group, &dir)?
            .ok_or_else(|| Error::new(ErrorCode::PrincipalNotFound, format!("no group {:?} to map", short(&dir))))?;
        if out.iter().any(|(d, _)| d.eq_ignore_ascii_case(&group.name)) {
            return Err(Error::invalid(format!("group {} is mapped twice", group.name)));
        }
        out.push((group.name, k8s.to_string()));
    }
    Ok(out)
}

impl Inner {
    fn cluster_view(&self, tx: &mut dyn Tx, t: &Tenant, record: &K8sClusterRecord) -> Result<ClusterView> {
        let spec: ClusterSpec = serde_json::from_str(&record.spec).map_err(Error::internal)?;
        let mut ca_view = |id: &str| -> Result<CaView> {
            let ca = tx.ca(&t.id, id)?.ok_or_else(|| Error::internal(format!("cluster CA {id} vanished")))?;
            self.ca_view(tx, t, ca)
        };
        let (ca, front_proxy_ca, etcd_ca) =
            (ca_view(&spec.ca_id)?, ca_view(&spec.front_proxy_ca_id)?, ca_view(&spec.etcd_ca_id)?);
        let mut nodes = Vec::new();
        for id in &spec.nodes {
            // A deleted machine is no longer a node.
            if let Some(p) = tx.principal_by_id(&t.id, id)? {
                nodes.push(p.name);
            }
        }
        nodes.sort();
        Ok(ClusterView {
            name: record.name.clone(),
            api_server: spec.api_server,
            dns_domain: spec.dns_domain,
            service_cidr: spec.service_cidr,
            service_ip: spec.service_ip,
            name_constraints: spec.name_constraints,
            group_mapping: spec.group_mapping.iter().map(|(d, k)| format!("{d}={k}")).collect(),
            ca,
            front_proxy_ca,
            etcd_ca,
            nodes,
            ca_key_exportable: spec.ca_key_exportable,
            created_at: record.created_at,
        })
    }

    /// The binding and CA of a kubelet or user certificate of a cluster.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::service) fn bind_k8s(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        cluster: &str,
        csr: &CertificateRequest,
        principal: &PrincipalRecord,
        profile: Option<&str>,
        ttl_secs: Option<i64>,
    ) -> Result<(Binding, lightwell_store::CaRecord)> {
        let (record, spec) = load_cluster(tx, t, cluster)?;
        refuse_extras(csr)?;
        let policy = t.policy.clone().ca;
        let kind = principal.kind;
        let bound = match profile.and_then(CertificateUse::parse) {
            Some(u @ (CertificateUse::KubeletClient | CertificateUse::KubeletServing)) => {
                let p = u.label();
                if kind != PrincipalKind::Machine {
                    return Err(super::ca::refuse(format!("profile {p} is for joined machines only")));
                }
                if !spec.nodes.contains(&principal.id) {
                    return Err(Error::forbidden(format!(
                        "machine {} is not a node of cluster {}; an administrator adds it with `lightwell k8s node add --cluster {} --machine {}`",
                        principal.name, record.name, record.name, principal.name
                    )));
                }
                subjects::node(&t.domain, principal, u == CertificateUse::KubeletServing, &spec)?
            }
            Some(CertificateUse::KubernetesUser) => {
                if kind != PrincipalKind::User {
                    return Err(super::ca::refuse("profile k8s-user is for users only"));
                }
                let groups = super::graph::Graph::load_ancestry(tx, &t.id, &principal.id)?.member_of(&principal.id);
                subjects::user(&t.domain, principal, &mapped_groups(&groups, &spec.group_mapping))?
            }
            _ => {
                return Err(Error::invalid(format!(
                    "with a cluster the profile is k8s-node, k8s-node-serving or k8s-user, not {:?}",
                    short(profile.unwrap_or_default())
                )));
            }
        };
        subjects::within(csr, &bound.subject)?;
        let default_ttl = if kind == PrincipalKind::User { policy.user_ttl_secs } else { policy.host_ttl_secs };
        let ttl_secs = checked_ttl(ttl_secs.unwrap_or(default_ttl), &policy)?;
        let ca = tx.ca(&t.id, &spec.ca_id)?.ok_or_else(|| Error::internal("the cluster CA vanished"))?;
        Ok((Binding { ttl_secs, ..bound }, ca))
    }
}

/// The Kubernetes groups of a user: every directory group as is, or with a
/// mapping only the mapped ones, renamed.
fn mapped_groups(groups: &BTreeSet<String>, mapping: &[(String, String)]) -> Vec<String> {
    if mapping.is_empty() {
        return groups.iter().cloned().collect();
    }
    let out: BTreeSet<String> = mapping
        .iter()
        .filter(|(dir, _)| groups.iter().any(|g| g.eq_ignore_ascii_case(dir)))
        .map(|(_, k8s)| k8s.clone())
        .collect();
    out.into_iter().collect()
}

impl Service {
    /// Creates a cluster: its three CAs under the tenant's active root and its
    /// control-plane service principal, in one transaction.
    pub async fn create_cluster(&self, actor: &Actor, tenant: &str, new: NewCluster) -> Result<ClusterView> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let name = parse_cluster_name(&new.name)?;
        let api_server = new.api_server.as_deref().map(parse_api_server).transpose()?.map(|(url, _)| url);
        let dns_domain =
            crate::names::DomainName::parse(new.dns_domain.as_deref().unwrap_or("cluster.local"))?.as_str().to_string();
        let (service_cidr, service_ip) = parse_service_cidr(new.service_cidr.as_deref().unwrap_or("10.96.0.0/12"))?;
        let api_host = new.api_server.as_deref().map(parse_api_server).transpose()?.map(|(_, host)| host);
        let (name_constraints, constraints) = cluster_constraints(
            &new.name_constraints,
            &dns_domain,
            &service_cidr,
            api_host.as_deref(),
            new.allow_ca_key_export,
        )?;
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        self.blocking(move |inner| {
            let (t, root, root_issuer) = inner.active_root(&tenant)?;
            if new.allow_ca_key_export {
                exportable_constraints_spare_the_tenant(&t, &constraints)?;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let tag = &id[..6];
            let mut cas = Vec::new();
            for suffix in ["", "-front-proxy", "-etcd"] {
                let ca_name = format!("k8s-{name}-{tag}{suffix}");
                cas.push(inner.build_intermediate(&t, &root, &root_issuer, &ca_name, &constraints, None)?.record);
            }
            inner.tenant_write(&tenant, |tx, t| {
                if tx.k8s_cluster(&t.id, &name)?.is_some() {
                    return Err(Error::new(ErrorCode::AlreadyExists, format!("cluster {name:?} already exists")));
                }
                let group_mapping = parse_group_mapping(tx, t, &new.group_mapping)?;
                let service_name = format!("k8s-{name}");
                if tx.principal(&t.id, PrincipalKind::Service, &service_name)?.is_some() {
                    return Err(Error::new(
                        ErrorCode::AlreadyExists,
                        format!("service {service_name:?} exists; the cluster's control plane needs that name"),
                    ));
                }
                let mut service =
                    super::tenants::new_principal(&t.id, PrincipalKind::Service, &service_name, inner.now());
                // Built in: only deleting the cluster deletes it (with its certificates).
                service.builtin = true;
                tx.insert_principal(&service)?;
                inner.store_cas(tx, t, &cas)?;
                let spec = ClusterSpec {
                    api_server: api_server.clone(),
                    dns_domain: dns_domain.clone(),
                    service_cidr: service_cidr.clone(),
                    service_ip: service_ip.to_string(),
                    name_constraints: name_constraints.clone(),
                    group_mapping,
                    ca_id: cas[0].id.clone(),
                    front_proxy_ca_id: cas[1].id.clone(),
                    etcd_ca_id: cas[2].id.clone(),
                    service_id: service.id.clone(),
                    nodes: vec![],
                    ca_key_exportable: new.allow_ca_key_export,
                };
                let record = K8sClusterRecord {
                    id: id.clone(),
                    tenant_id: t.id.clone(),
                    name: name.clone(),
                    spec: serde_json::to_string(&spec).map_err(Error::internal)?,
                    created_at: inner.now(),
                };
                tx.insert_k8s_cluster(&record)?;
                let detail = format!(
                    "CAs {}, {}, {}; name constraints [{}]",
                    cas[0].name,
                    cas[1].name,
                    cas[2].name,
                    name_constraints.join(", ")
                );
                inner.audit(
                    tx,
                    t,
                    AuditEvent::success(actor_name.clone(), "k8s.cluster.create", name.clone()).with_detail(detail),
                )?;
                inner.cluster_view(tx, t, &record)
            })
        })
        .await
    }

    /// The clusters of a tenant.
    pub async fn list_clusters(&self, actor: &Actor, tenant: &str) -> Result<Vec<ClusterView>> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let records = tx.list_k8s_clusters(&t.id)?;
                records.iter().map(|r| inner.cluster_view(tx, t, r)).collect()
            })
        })
        .await
    }

    /// One cluster.
    pub async fn cluster(&self, actor: &Actor, tenant: &str, name: &str) -> Result<ClusterView> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let (record, _) = load_cluster(tx, t, &name)?;
                inner.cluster_view(tx, t, &record)
            })
        })
        .await
    }

    /// Deletes a cluster: revokes its three CAs (and so every certificate they
    /// issued), deletes its control-plane service principal and the cluster.
    /// Returns the serials revoked.
    pub async fn delete_cluster(&self, actor: &Actor, tenant: &str, name: &str) -> Result<Vec<String>> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let (actor_name, tenant, name) = (actor.audit_name(), tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let (record, spec) = load_cluster(tx, t, &name)?;
                let mut revoked = Vec::new();
                for id in [&spec.ca_id, &spec.front_proxy_ca_id, &spec.etcd_ca_id] {
                    let ca = tx.ca(&t.id, id)?.ok_or_else(|| Error::internal(format!("cluster CA {id} vanished")))?;
                    if ca.status != lightwell_store::CaStatus::Revoked {
                        revoked.extend(inner.revoke_ca_in_tx(tx, t, ca, RevocationReason::CessationOfOperation)?);
                    }
                }
                tx.delete_principal(&t.id, &spec.service_id)?;
                tx.delete_k8s_cluster(&t.id, &record.id)?;
                let detail = format!("CAs revoked; {} certificates revoked", revoked.len());
                inner.audit(
                    tx,
                    t,
                    AuditEvent::success(actor_name.clone(), "k8s.cluster.delete", record.name.clone())
                        .with_detail(detail),
                )?;
                Ok(revoked)
            })
        })
        .await
    }

    /// Lets a joined machine obtain kubelet identities of a cluster.
    pub async fn add_cluster_node(
        &self,
        actor: &Actor,
        tenant: &str,
        cluster: &str,
        machine: &str,
    ) -> Result<ClusterView> {
        self.change_nodes(actor, tenant, cluster, machine, true).await
    }

    /// Withdraws a machine from a cluster and revokes its kubelet certificates.
    pub async fn remove_cluster_node(
        &self,
        actor: &Actor,
        tenant: &str,
        cluster: &str,
        machine: &str,
    ) -> Result<ClusterView> {
        self.change_nodes(actor, tenant, cluster, machine, false).await
    }

    async fn change_nodes(
        &self,
        actor: &Actor,
        tenant: &str,
        cluster: &str,
        machine: &str,
        add: bool,
    ) -> Result<ClusterView> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let (actor_name, tenant, cluster, machine) =
            (actor.audit_name(), tenant.to_string(), cluster.to_string(), machine.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let (record, mut spec) = load_cluster(tx, t, &cluster)?;
                let m = tx.principal(&t.id, PrincipalKind::Machine, &machine)?.ok_or_else(|| {
                    Error::new(ErrorCode::PrincipalNotFound, format!("no machine {:?}; join it first", short(&machine)))
                })?;
                let present = spec.nodes.contains(&m.id);
                let action = if add {
                    if present {
                        return Err(Error::new(
                            ErrorCode::AlreadyExists,
                            format!("{} is already a node of {}", m.name, record.name),
                        ));
                    }
                    spec.nodes.push(m.id.clone());
                    "k8s.node.add"
                } else {
                    if !present {
                        return Err(Error::new(
                            ErrorCode::PrincipalNotFound,
                            format!("{} is not a node of {}", m.name, record.name),
                        ));
                    }
                    spec.nodes.retain(|id| id != &m.id);
                    let filter = CertificateFilter {
                        principal_id: Some(m.id.clone()),
                        ca_id: Some(spec.ca_id.clone()),
                        revoked: Some(false),
                        ..Default::default()
                    };
                    let certs: Vec<_> =
                        tx.list_certificates(&t.id, &filter)?.into_iter().map(|c| (c.serial, c.ca_id)).collect();
                    inner.revoke_serials(tx, t, &certs, RevocationReason::PrivilegeWithdrawn)?;
                    "k8s.node.remove"
                };
                let record = save_spec(tx, &record, &spec)?;
                inner.audit(
                    tx,
                    t,
                    AuditEvent::success(actor_name.clone(), action, m.name.clone())
                        .with_detail(format!("cluster {}", record.name)),
                )?;
                inner.cluster_view(tx, t, &record)
            })
        })
        .await
    }

    /// Issues a control-plane certificate laid out as kubeadm does (CA administrators).
    pub async fn issue_component(
        &self,
        actor: &Actor,
        tenant: &str,
        cluster: &str,
        req: ComponentRequest,
    ) -> Result<CertificateView> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let hosts = subjects::ControlPlane::parse(&req.control_plane)?;
        let (actor, tenant, cluster) = (actor.clone(), tenant.to_string(), cluster.to_string());
        self.blocking(move |inner| {
            let parsed = CertificateRequest::parse(&req.csr).map_err(super::ca::ca_error);
            let actor_name = actor.audit_name();
            inner.write_committing_refusal(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let target = format!("k8s:{}:{}", short(&cluster), req.component.as_str());
                let outcome = parsed.clone().and_then(|csr| {
                    let (_, spec) = load_cluster(tx, &t, &cluster)?;
                    refuse_extras(&csr)?;
                    control_plane_is_the_clusters(tx, &t, &spec, &hosts)?;
                    let (binding, ca_id) = subjects::component(&spec, req.component, &hosts)?;
                    subjects::within(&csr, &binding.subject)?;
                    let policy = t.policy.clone().ca;
                    let ttl_secs = checked_ttl(req.ttl_secs.unwrap_or(policy.max_ttl_secs), &policy)?;
                    let service =
                        tx.principal_by_id(&t.id, &spec.service_id)?.filter(|p| p.enabled).ok_or_else(|| {
                            Error::new(
                                ErrorCode::CaUnavailable,
                                format!(
                                    "the control plane of cluster {cluster} (service k8s-{cluster}) is disabled or gone"
                                ),
                            )
                        })?;
                    let ca = tx.ca(&t.id, &ca_id)?.ok_or_else(|| Error::internal("a cluster CA vanished"))?;
                    inner.sign_and_record(tx, &t, &actor, &service, &csr, &Binding { ttl_secs, ..binding }, ca)
                });
                inner.audit_issuance(tx, &t, &actor_name, target, outcome)
            })
        })
        .await
    }

    /// The cluster CA's certificate and private key (PKCS#8 PEM), for a
    /// cluster that signs kubelet CSRs itself. Only the cluster CA's key ever
    /// leaves the server this way, only to the tenant's Administrators (a
    /// CA key is more than CA operations: CAAdmins cannot take one), only
    /// for a cluster created to allow it (whose CAs are name-constrained and
    /// can sign no SPIFFE ID), and audited.
    pub async fn cluster_ca_key(
        &self,
        actor: &Actor,
        tenant: &str,
        cluster: &str,
    ) -> Result<(String, Zeroizing<String>)> {
        authz::check(actor, Some(tenant), Permission::CaKeyHeldOutside)?;
        let (actor_name, tenant, cluster) = (actor.audit_name(), tenant.to_string(), cluster.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let (record, spec) = load_cluster(tx, t, &cluster)?;
                if !spec.ca_key_exportable {
                    return Err(super::ca::refuse(format!(
                        "cluster {} was created without --allow-ca-key-export: its CA key never leaves the server; use kubeadm's external CA mode (`pki export --external-ca`)",
                        record.name
                    )));
                }
                let ca = tx.ca(&t.id, &spec.ca_id)?.ok_or_else(|| Error::internal("the cluster CA vanished"))?;
                if ca.status != lightwell_store::CaStatus::Active {
                    return Err(Error::new(
                        ErrorCode::CaUnavailable,
                        format!("CA {} is {}", ca.name, ca.status.as_str()),
                    ));
                }
                let issuer = inner.issuer(&ca)?;
                let key = Zeroizing::new(lightwell_ca::pem::encode("PRIVATE KEY", &issuer.key().to_pkcs8_der()));
                let cert = lightwell_ca::pem::encode("CERTIFICATE", &ca.cert_der);
                inner.audit(
                    tx,
                    t,
                    AuditEvent::success(actor_name.clone(), "k8s.ca-key.export", record.name.clone())
                        .with_detail(format!("ca {}", ca.name)),
                )?;
                Ok((cert, key.clone()))
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_cidrs_give_their_first_address() {
        assert_eq!(parse_service_cidr("10.96.0.0/12").unwrap(), ("10.96.0.0/12".into(), "10.96.0.1".parse().unwrap()));
        assert_eq!(parse_service_cidr("10.96.7.9/16").unwrap().1, "10.96.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(parse_service_cidr("fd00:10::/108").unwrap().1, "fd00:10::1".parse::<IpAddr>().unwrap());
        for bad in ["", "10.96.0.0", "10.96.0.0/31", "10.96.0.0/33", "x/12", "10.96.0.0/-1", "10.0.0.0/4"] {
            assert!(parse_service_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs_contain_their_addresses_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("10.96.0.0/12", ip("10.96.0.1")));
        assert!(cidr_contains("10.96.0.0/12", ip("10.111.255.254")));
        assert!(!cidr_contains("10.96.0.0/12", ip("10.112.0.1")));
        assert!(!cidr_contains("10.96.0.0/12", ip("::1")));
        assert!(cidr_contains("fd00:10::/108", ip("fd00:10::1")));
        assert!(!cidr_contains("garbage", ip("10.96.0.1")));
    }

    #[test]
    fn api_server_urls_must_be_https_with_a_host() {
        assert_eq!(parse_api_server("https://k8s.corp.example:6443").unwrap().1, "k8s.corp.example");
        assert_eq!(
            parse_api_server("https://10.0.0.1:6443/").unwrap(),
            ("https://10.0.0.1:6443".into(), "10.0.0.1".into())
        );
        assert_eq!(parse_api_server("https://[::1]:6443").unwrap().1, "::1");
        for bad in
            ["http://k8s:6443", "https://", "https://a@b", "https://k8s:port", "https://bad host", "https://[::1"]
        {
            assert!(parse_api_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cluster_names_are_dns_labels() {
        assert!(parse_cluster_name("prod-1").is_ok());
        for bad in ["", "Prod", "1prod", "prod-", "a_b", &"a".repeat(33), "prod;rm"] {
            assert!(parse_cluster_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn constraints_gain_the_in_cluster_names() {
        let given = ["corp.example".to_string(), ".svc.corp.example".to_string()];
        let (c, nc) = cluster_constraints(&given, "cluster.local", "10.96.0.0/12", None, false).unwrap();
        assert_eq!(c[..2], given);
        assert!(c.contains(&"kubernetes.default.svc.cluster.local".to_string()));
        assert!(c.contains(&"localhost".to_string()));
        assert!(nc.ip_ranges.is_empty() && !nc.no_uri_or_email);
        assert!(cluster_constraints(&[], "cluster.local", "10.96.0.0/12", None, false).unwrap().0.is_empty());
        assert!(cluster_constraints(&["*.corp.example".into()], "cluster.local", "10.96.0.0/12", None, false).is_err());
        assert!(cluster_constraints(&["10.0.0.1/8".into()], "cluster.local", "10.96.0.0/12", None, false).is_err());
    }

    #[test]
    fn an_exportable_cluster_is_always_constrained_and_never_signs_uris() {
        let (c, nc) =
            cluster_constraints(&[], "cluster.local", "10.96.0.0/12", Some("api.corp.example"), true).unwrap();
        for entry in ["cluster.local", "api.corp.example", "10.96.0.0/12", "127.0.0.0/8", "kubernetes"] {
            assert!(c.contains(&entry.to_string()), "{entry} in {c:?}");
        }
        assert!(nc.no_uri_or_email);
        assert!(nc.ip_ranges.iter().any(|r| r.contains("10.96.0.1".parse().unwrap())));
        assert!(!nc.dns.iter().any(|d| d == "corp.example"), "never the tenant's whole domain by default");
        // Given DNS names replace the defaults; the service CIDR stays.
        let (c, _) =
            cluster_constraints(&[".prod.corp.example".into()], "cluster.local", "10.96.0.0/12", None, true).unwrap();
        assert!(!c.contains(&"cluster.local".to_string()) && c.contains(&"10.96.0.0/12".to_string()));
    }

    #[test]
    fn groups_are_carried_as_is_or_mapped() {
        let groups: BTreeSet<String> = ["dev".to_string(), "ops".to_string()].into();
        assert_eq!(mapped_groups(&groups, &[]), ["dev", "ops"]);
        let mapping =
            vec![("Dev".to_string(), "developers".to_string()), ("sre".to_string(), "system:masters".to_string())];
        assert_eq!(mapped_groups(&groups, &mapping), ["developers"]);
    }
}
