//! What each Kubernetes certificate contains. The control-plane certificates
//! follow kubeadm's certificate list (`cmd/kubeadm/app/phases/certs/certlist.go`,
//! v1.29 and later) field for field: subject, SANs and extended key usage;
//! kubelet and user certificates follow the Kubernetes node and user
//! conventions (`system:node:<name>` in `system:nodes`; the user name with
//! its groups as O) and, being bound to directory principals, carry their
//! SPIFFE ID like every other Lightwell identity.

use std::net::IpAddr;
use std::str::FromStr;

use lightwell_ca::csr::CertificateRequest;
use lightwell_ca::leaf::LeafSubject;
use lightwell_ca::{Profile, SpiffeId};
use lightwell_store::PrincipalRecord;

use super::ClusterSpec;
use crate::names::Hostname;
use crate::service::ca::{Binding, CertificateUse, refuse};
use crate::service::short;
use crate::{Error, Result};

/// A control-plane certificate of kubeadm's PKI directory or of one of its
/// kubeconfig files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `apiserver.crt`: the API server's serving certificate.
    ApiServer,
    /// `apiserver-kubelet-client.crt`: the API server towards kubelets.
    ApiServerKubeletClient,
    /// `front-proxy-client.crt`: the aggregation layer's client (front-proxy CA).
    FrontProxyClient,
    /// `etcd/server.crt` (etcd CA).
    EtcdServer,
    /// `etcd/peer.crt` (etcd CA).
    EtcdPeer,
    /// `etcd/healthcheck-client.crt` (etcd CA).
    EtcdHealthcheckClient,
    /// `apiserver-etcd-client.crt` (etcd CA).
    ApiServerEtcdClient,
    /// `admin.conf`'s client certificate (`kubernetes-admin` in `kubeadm:cluster-admins`).
    Admin,
    /// `super-admin.conf`'s client certificate (`kubernetes-super-admin` in `system:masters`).
    SuperAdmin,
    /// `controller-manager.conf`'s client certificate.
    ControllerManager,
    /// `scheduler.conf`'s client certificate.
    Scheduler,
    /// `kubelet.conf`'s client certificate for the control-plane node.
    Kubelet,
}

impl Component {
    /// Every component, in kubeadm's order.
    pub const ALL: [Self; 12] = [
        Self::ApiServer,
        Self::ApiServerKubeletClient,
        Self::FrontProxyClient,
        Self::EtcdServer,
        Self::EtcdPeer,
        Self::EtcdHealthcheckClient,
        Self::ApiServerEtcdClient,
        Self::Admin,
        Self::SuperAdmin,
        Self::ControllerManager,
        Self::Scheduler,
        Self::Kubelet,
    ];

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiServer => "apiserver",
            Self::ApiServerKubeletClient => "apiserver-kubelet-client",
            Self::FrontProxyClient => "front-proxy-client",
            Self::EtcdServer => "etcd-server",
            Self::EtcdPeer => "etcd-peer",
            Self::EtcdHealthcheckClient => "etcd-healthcheck-client",
            Self::ApiServerEtcdClient => "apiserver-etcd-client",
            Self::Admin => "admin",
            Self::SuperAdmin => "super-admin",
            Self::ControllerManager => "controller-manager",
            Self::Scheduler => "scheduler",
            Self::Kubelet => "kubelet",
        }
    }

    /// The profile recorded with the certificate.
    pub(in crate::service) fn label(self) -> &'static str {
        match self {
            Self::ApiServer => "k8s-apiserver",
            Self::ApiServerKubeletClient => "k8s-apiserver-kubelet-client",
            Self::FrontProxyClient => "k8s-front-proxy-client",
            Self::EtcdServer => "k8s-etcd-server",
            Self::EtcdPeer => "k8s-etcd-peer",
            Self::EtcdHealthcheckClient => "k8s-etcd-healthcheck-client",
            Self::ApiServerEtcdClient => "k8s-apiserver-etcd-client",
            Self::Admin => "k8s-admin",
            Self::SuperAdmin => "k8s-super-admin",
            Self::ControllerManager => "k8s-controller-manager",
            Self::Scheduler => "k8s-scheduler",
            Self::Kubelet => "k8s-control-plane-kubelet",
        }
    }
}

impl FromStr for Component {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|c| c.as_str()).collect();
            Error::invalid(format!("unknown component {:?}; one of {}", short(s), names.join(", ")))
        })
    }
}

/// The DNS names the API server answers to inside the cluster.
pub(super) fn in_cluster_names(dns_domain: &str) -> Vec<String> {
    ["kubernetes", "kubernetes.default", "kubernetes.default.svc"]
        .into_iter()
        .map(String::from)
        .chain([format!("kubernetes.default.svc.{dns_domain}")])
        .collect()
}

/// Control-plane hosts: DNS names (the first is the node name) and IPs
/// (advertise addresses).
#[derive(Debug, Clone, Default)]
pub(super) struct ControlPlane {
    names: Vec<String>,
    ips: Vec<IpAddr>,
}

impl ControlPlane {
    pub(super) fn parse(hosts: &[String]) -> Result<Self> {
        let mut cp = Self::default();
        if hosts.len() > 16 {
            return Err(Error::invalid("at most 16 control-plane hosts"));
        }
        for h in hosts {
            match h.parse::<IpAddr>() {
                Ok(ip) => push_unique(&mut cp.ips, ip),
                Err(_) => push_unique(&mut cp.names, Hostname::parse(h)?.into_string()),
            }
        }
        Ok(cp)
    }

    /// The host names given.
    pub(super) fn names(&self) -> &[String] {
        &self.names
    }

    /// The addresses given.
    pub(super) fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// kubeadm's node name: the first host name, else the first address.
    fn node_name(&self) -> Option<String> {
        self.names.first().cloned().or_else(|| self.ips.first().map(IpAddr::to_string))
    }
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

fn subject(cn: &str, organizations: &[&str]) -> LeafSubject {
    LeafSubject {
        common_name: Some(cn.to_string()),
        organizations: organizations.iter().map(|o| (*o).to_string()).collect(),
        organizational_unit: None,
        dns_names: vec![],
        ip_addresses: vec![],
        emails: vec![],
        spiffe_id: None,
    }
}

/// A control-plane certificate's subject, usage and issuing CA id (TTL left to the caller).
pub(super) fn component(spec: &ClusterSpec, c: Component, hosts: &ControlPlane) -> Result<(Binding, String)> {
    let need_host = || {
        hosts
            .node_name()
            .ok_or_else(|| Error::invalid(format!("{} needs at least one --control-plane host", c.as_str())))
    };
    let (subject, profile, ca) = match c {
        Component::ApiServer => {
            need_host()?;
            let mut s = subject("kube-apiserver", &[]);
            s.dns_names = hosts.names.clone();
            for n in in_cluster_names(&spec.dns_domain) {
                push_unique(&mut s.dns_names, n);
            }
            let service_ip: IpAddr = spec.service_ip.parse().map_err(Error::internal)?;
            s.ip_addresses = vec![service_ip];
            for ip in &hosts.ips {
                push_unique(&mut s.ip_addresses, *ip);
            }
            // kubeadm adds the control-plane endpoint: here the API server URL's host.
            if let Some((_, host)) = spec.api_server.as_deref().map(super::parse_api_server).transpose()? {
                match host.parse::<IpAddr>() {
                    Ok(ip) => push_unique(&mut s.ip_addresses, ip),
                    Err(_) => push_unique(&mut s.dns_names, host),
                }
            }
            (s, Profile::Server, &spec.ca_id)
        }
        Component::ApiServerKubeletClient => {
            (subject("kube-apiserver-kubelet-client", &["kubeadm:cluster-admins"]), Profile::Client, &spec.ca_id)
        }
        Component::FrontProxyClient => (subject("front-proxy-client", &[]), Profile::Client, &spec.front_proxy_ca_id),
        Component::EtcdServer | Component::EtcdPeer => {
            let mut s = subject(&need_host()?, &[]);
            s.dns_names = hosts.names.clone();
            push_unique(&mut s.dns_names, "localhost".to_string());
            s.ip_addresses = hosts.ips.clone();
            for ip in [IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)] {
                push_unique(&mut s.ip_addresses, ip);
            }
            (s, Profile::ServerClient, &spec.etcd_ca_id)
        }
        Component::EtcdHealthcheckClient => {
            (subject("kube-etcd-healthcheck-client", &[]), Profile::Client, &spec.etcd_ca_id)
        }
        Component::ApiServerEtcdClient => {
            (subject("kube-apiserver-etcd-client", &[]), Profile::Client, &spec.etcd_ca_id)
        }
        // The kubeconfig files of kubeadm's kubeconfig phase.
        Component::Admin => (subject("kubernetes-admin", &["kubeadm:cluster-admins"]), Profile::Client, &spec.ca_id),
        Component::SuperAdmin => (subject("kubernetes-super-admin", &["system:masters"]), Profile::Client, &spec.ca_id),
        Component::ControllerManager => (subject("system:kube-controller-manager", &[]), Profile::Client, &spec.ca_id),
        Component::Scheduler => (subject("system:kube-scheduler", &[]), Profile::Client, &spec.ca_id),
        Component::Kubelet => {
            (subject(&format!("system:node:{}", need_host()?), &["system:nodes"]), Profile::Client, &spec.ca_id)
        }
    };
    Ok((Binding { subject, profile, usage: CertificateUse::ControlPlane(c), ttl_secs: 0 }, ca.clone()))
}

fn spiffe_of(domain: &str, p: &PrincipalRecord) -> Result<SpiffeId> {
    SpiffeId::new(domain, &[p.kind.as_str(), &p.name])
        .map_err(|e| refuse(format!("the principal's name cannot form a SPIFFE ID: {e}")))
}

/// A kubelet's client (`system:node:<name>` in `system:nodes`) or serving
/// certificate (the same subject with the machine's own names). A serving
/// certificate never names what the API server answers to — the in-cluster
/// names, the API server URL's host, an address in the service CIDR —
/// since the cluster CA is the anchor that pods and kubelets verify the API
/// server with; a machine registered with one of those is refused.
pub(super) fn node(domain: &str, machine: &PrincipalRecord, serving: bool, spec: &ClusterSpec) -> Result<Binding> {
    let mut s = subject(&format!("system:node:{}", machine.name), &["system:nodes"]);
    s.spiffe_id = Some(spiffe_of(domain, machine)?);
    let (profile, usage) = if serving {
        s.dns_names = machine.hostnames.clone();
        s.ip_addresses = machine.ips.iter().filter_map(|ip| ip.parse().ok()).collect();
        let api_host = spec.api_server.as_deref().map(super::parse_api_server).transpose()?.map(|(_, h)| h);
        let reserved: Vec<String> = in_cluster_names(&spec.dns_domain).into_iter().chain(api_host).collect();
        let taken = |name: &str| reserved.iter().any(|r| r.eq_ignore_ascii_case(name));
        if let Some(name) = s.dns_names.iter().find(|n| taken(n)).cloned() {
            return Err(refuse(format!(
                "machine {} is registered with {name:?}, a name of the cluster's API server; kubelet serving certificates cannot carry it",
                machine.name
            )));
        }
        let api_ip = |ip: &IpAddr| taken(&ip.to_string()) || super::cidr_contains(&spec.service_cidr, *ip);
        if let Some(ip) = s.ip_addresses.iter().find(|ip| api_ip(ip)) {
            return Err(refuse(format!(
                "machine {} is registered with {ip}, an address of the cluster's API server or its service CIDR {}; kubelet serving certificates cannot carry it",
                machine.name, spec.service_cidr
            )));
        }
        (Profile::Server, CertificateUse::KubeletServing)
    } else {
        (Profile::Client, CertificateUse::KubeletClient)
    };
    Ok(Binding { subject: s, profile, usage, ttl_secs: 0 })
}

/// A user's client certificate: CN the user name, O the (mapped) groups.
pub(super) fn user(domain: &str, user: &PrincipalRecord, groups: &[String]) -> Result<Binding> {
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let mut s = subject(&user.name, &groups);
    s.spiffe_id = Some(spiffe_of(domain, user)?);
    Ok(Binding { subject: s, profile: Profile::Client, usage: CertificateUse::KubernetesUser, ttl_secs: 0 })
}

/// Refuses a CSR that asks for anything beyond `decided`: another CN, an O,
/// DNS name, IP, e-mail or URI the certificate will not carry.
pub(super) fn within(csr: &CertificateRequest, decided: &LeafSubject) -> Result<()> {
    if let (Some(cn), Some(want)) = (csr.common_name(), &decided.common_name)
        && !cn.eq_ignore_ascii_case(want)
    {
        return Err(refuse(format!("the CSR asks for CN={:?}; this certificate's CN is {want:?}", short(cn))));
    }
    if let Some(o) = csr.organizations().iter().find(|o| !decided.organizations.iter().any(|d| d == *o)) {
        return Err(refuse(format!(
            "the CSR asks for O={:?}; the server sets O to [{}]",
            short(o),
            decided.organizations.join(", ")
        )));
    }
    if let Some(dns) = csr.dns_names().iter().find(|d| !decided.dns_names.iter().any(|x| x.eq_ignore_ascii_case(d))) {
        return Err(refuse(format!(
            "the CSR asks for DNS name {:?}, which this certificate does not carry",
            short(dns)
        )));
    }
    if let Some(ip) = csr.ip_addresses().iter().find(|ip| !decided.ip_addresses.contains(ip)) {
        return Err(refuse(format!("the CSR asks for IP address {ip}, which this certificate does not carry")));
    }
    if let Some(email) = csr.emails().first() {
        return Err(refuse(format!("the CSR asks for e-mail {:?}; Kubernetes certificates carry none", short(email))));
    }
    let own = decided.spiffe_id.as_ref().map(SpiffeId::as_str);
    if let Some(uri) = csr.uris().iter().find(|u| Some(u.as_str()) != own) {
        return Err(refuse(format!("the CSR asks for URI {:?}, which this certificate does not carry", short(uri))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use lightwell_ca::{KeyAlgorithm, SigningKey};

    use super::*;

    fn spec() -> ClusterSpec {
        ClusterSpec {
            api_server: Some("https://k8s.corp.example:6443".into()),
            dns_domain: "cluster.local".into(),
            service_cidr: "10.96.0.0/12".into(),
            service_ip: "10.96.0.1".into(),
            name_constraints: vec![],
            group_mapping: vec![],
            ca_id: "ca".into(),
            front_proxy_ca_id: "fp".into(),
            etcd_ca_id: "etcd".into(),
            service_id: "svc".into(),
            nodes: vec![],
            ca_key_exportable: false,
        }
    }

    fn csr(cn: &str, o: Option<&str>, dns: &[&str]) -> CertificateRequest {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        if let Some(o) = o {
            dn.push(rcgen::DnType::OrganizationName, o);
        }
        dn.push(rcgen::DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.subject_alt_names = dns.iter().map(|d| rcgen::SanType::DnsName((*d).try_into().unwrap())).collect();
        let der = params.serialize_request(&rcgen::KeyPair::try_from(key.to_pkcs8_der().as_slice()).unwrap()).unwrap();
        CertificateRequest::parse(der.der()).unwrap()
    }

    #[test]
    fn components_follow_kubeadm_and_pick_their_ca() {
        let hosts = ControlPlane::parse(&["cp1.corp.example".into(), "10.0.0.10".into()]).unwrap();
        let (api, ca) = component(&spec(), Component::ApiServer, &hosts).unwrap();
        assert_eq!(
            (api.subject.common_name.as_deref(), ca.as_str(), api.profile),
            (Some("kube-apiserver"), "ca", Profile::Server)
        );
        assert!(api.subject.dns_names.contains(&"k8s.corp.example".to_string()));
        assert_eq!(api.subject.ip_addresses[0].to_string(), "10.96.0.1");
        assert!(api.subject.spiffe_id.is_none());
        let (etcd, ca) = component(&spec(), Component::EtcdPeer, &hosts).unwrap();
        assert_eq!((etcd.subject.common_name.as_deref(), ca.as_str()), (Some("cp1.corp.example"), "etcd"));
        let (fp, ca) = component(&spec(), Component::FrontProxyClient, &hosts).unwrap();
        assert_eq!((fp.profile, ca.as_str()), (Profile::Client, "fp"));
        let none = ControlPlane::parse(&[]).unwrap();
        assert!(component(&spec(), Component::ApiServer, &none).is_err(), "the API server needs a host");
        assert!(component(&spec(), Component::ApiServerEtcdClient, &none).is_ok());
        assert!(ControlPlane::parse(&["bad host".into()]).is_err());
        assert!("kubelet-client".parse::<Component>().is_err());
    }

    #[test]
    fn a_csr_may_ask_for_a_subset_only() {
        let mut machine = crate::service::tenants::new_principal(
            &lightwell_store::TenantId::new("t"),
            lightwell_store::PrincipalKind::Machine,
            "node1.corp.example",
            0,
        );
        machine.hostnames = vec!["node1.corp.example".into()];
        let serving = node("corp.example", &machine, true, &spec()).unwrap();
        within(&csr("system:node:node1.corp.example", Some("system:nodes"), &["node1.corp.example"]), &serving.subject)
            .unwrap();
        within(&csr("system:node:node1.corp.example", None, &[]), &serving.subject).unwrap();
        // Names and addresses of the API server never go into a kubelet serving certificate.
        for (dns, ip) in
            [("kubernetes.default.svc", None), ("k8s.corp.example", None), ("node1.corp.example", Some("10.96.0.1"))]
        {
            let mut m = machine.clone();
            m.hostnames = vec![dns.into()];
            m.ips = ip.into_iter().map(String::from).collect();
            assert_eq!(
                node("corp.example", &m, true, &spec()).unwrap_err().code,
                lightwell_proto::ErrorCode::PolicyViolation
            );
            node("corp.example", &m, false, &spec()).unwrap();
        }
        for bad in [
            csr("system:node:node2.corp.example", None, &[]),
            csr("system:node:node1.corp.example", Some("system:masters"), &[]),
            csr("system:node:node1.corp.example", None, &["node2.corp.example"]),
        ] {
            assert_eq!(within(&bad, &serving.subject).unwrap_err().code, lightwell_proto::ErrorCode::PolicyViolation);
        }
    }
}
