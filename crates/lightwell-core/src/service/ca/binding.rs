//! The issuance policy: which subject, names, profile and lifetime a
//! principal may have in a certificate (DESIGN section 2), decided from the
//! directory, never from the CSR. A CSR may ask for a subset of what the
//! principal owns; anything else is refused with a message naming it.
//!
//! | principal | subject | SANs |
//! | --- | --- | --- |
//! | machine | OU=machine, CN=its host name | its registered DNS names and IPs |
//! | user | OU=user, CN=its name | its e-mail, if set |
//! | service | OU=service, CN=its name | its registered DNS names and IPs |
//!
//! plus exactly one URI SAN, `spiffe://<tenant>/<kind>/<name>`. The OU
//! makes subjects of different kinds differ even where names coincide, and
//! names are unique across kinds anyway (the store's claimed names), so
//! software that authorizes by subject or by CN alone cannot take one
//! principal for another.
//!
//! Lifetime: the request's TTL or the tenant default (machines and services
//! 24 h, users 8 h). A TTL above the tenant maximum (30 days) is *refused*,
//! not clipped, so automation notices; the end of validity is clipped to the
//! issuing CA's notAfter.

use std::net::IpAddr;

use lightwell_ca::csr::CertificateRequest;
use lightwell_ca::leaf::LeafSubject;
use lightwell_ca::{Profile, SpiffeId};
use lightwell_proto::ErrorCode;
use lightwell_store::{PrincipalKind, PrincipalRecord};

use crate::policy::CaPolicy;
use crate::{Error, Result};

/// What the policy decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::service) struct Binding {
    pub(in crate::service) subject: LeafSubject,
    /// Key usage and extended key usage.
    pub(in crate::service) profile: Profile,
    /// What the certificate is for, recorded with it as its profile label.
    pub(in crate::service) usage: CertificateUse,
    pub(in crate::service) ttl_secs: i64,
}

/// What a certificate is for, recorded with it as its profile label
/// (`server`, `k8s-node`, `k8s-apiserver`, ...): the one place that knows
/// the labels and what each may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateUse {
    /// A directory principal's own certificate: server, client or both.
    Directory(Profile),
    /// A kubelet's client certificate (`k8s-node`).
    KubeletClient,
    /// A kubelet's serving certificate (`k8s-node-serving`).
    KubeletServing,
    /// A kubeconfig's user certificate (`k8s-user`).
    KubernetesUser,
    /// A control-plane component's certificate (`k8s-apiserver`, ...).
    ControlPlane(crate::service::Component),
    /// A workload's X.509-SVID (`x509-svid`), issued to a machine's agent
    /// for a workload entry of a service.
    WorkloadSvid,
}

impl CertificateUse {
    /// The label recorded with the certificate.
    pub fn label(self) -> &'static str {
        match self {
            Self::Directory(p) => p.as_str(),
            Self::KubeletClient => "k8s-node",
            Self::KubeletServing => "k8s-node-serving",
            Self::KubernetesUser => "k8s-user",
            Self::ControlPlane(c) => c.label(),
            Self::WorkloadSvid => "x509-svid",
        }
    }

    /// The use a recorded label names; `None` for a label this build does
    /// not know (which then authenticates nothing).
    pub fn parse(label: &str) -> Option<Self> {
        if let Ok(p) = label.parse::<Profile>() {
            return Some(Self::Directory(p));
        }
        [Self::KubeletClient, Self::KubeletServing, Self::KubernetesUser, Self::WorkloadSvid]
            .into_iter()
            .chain(crate::service::Component::ALL.into_iter().map(Self::ControlPlane))
            .find(|u| u.label() == label)
    }

    /// Whether a certificate of this use authenticates its principal to
    /// Lightwell (REST mutual TLS, LDAP SASL EXTERNAL): only a directory
    /// principal's own; Kubernetes identities (kubeconfigs, kubelet and
    /// control-plane certificates) are for their cluster, and a copied
    /// kubeconfig must not be a Lightwell credential. Nor is a workload's
    /// SVID: it names a workload of a service, not the service's account.
    pub fn authenticates(self) -> bool {
        matches!(self, Self::Directory(_))
    }
}

pub(in crate::service) fn refuse(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::PolicyViolation, message)
}

/// Parses a lifetime: plain seconds, or a number with `s`, `m`, `h` or `d`.
pub fn parse_ttl(s: &str) -> Result<i64> {
    let s = s.trim();
    let bad = || Error::invalid(format!("invalid TTL {:?}: use seconds or a number with s, m, h or d", short(s)));
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).ok_or_else(bad)?;
    if secs <= 0 {
        return Err(Error::invalid("the TTL must be positive"));
    }
    Ok(secs)
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Refuses what no leaf may have, whoever asks: CA:true, keyCertSign,
/// other names, subject attributes beyond CN and O.
pub(in crate::service) fn refuse_extras(csr: &CertificateRequest) -> Result<()> {
    if csr.requests_ca() {
        return Err(refuse("the CSR asks for CA:true (basicConstraints); leaf certificates cannot be CAs"));
    }
    if csr.requests_key_cert_sign() {
        return Err(refuse("the CSR asks for keyCertSign (keyUsage); leaf certificates cannot sign certificates"));
    }
    if let Some(other) = csr.other_names().first() {
        return Err(refuse(format!("the CSR asks for a {other} name; only DNS, IP, e-mail and URI names exist here")));
    }
    if !csr.other_subject_attributes().is_empty() {
        return Err(refuse(format!(
            "the CSR asks for subject attributes {} ; only CN and O are allowed",
            csr.other_subject_attributes().join(", ")
        )));
    }
    Ok(())
}

/// A lifetime within tenant policy: above the maximum is refused, not clipped.
pub(in crate::service) fn checked_ttl(ttl_secs: i64, policy: &CaPolicy) -> Result<i64> {
    if ttl_secs <= 0 {
        return Err(Error::invalid("the TTL must be positive"));
    }
    if ttl_secs > policy.max_ttl_secs {
        return Err(refuse(format!(
            "TTL of {ttl_secs} s refused: the tenant maximum is {} s (requests above it are refused, not clipped)",
            policy.max_ttl_secs
        )));
    }
    Ok(ttl_secs)
}

/// Decides the certificate a principal gets for a CSR.
pub(super) fn bind(
    csr: &CertificateRequest,
    principal: &PrincipalRecord,
    tenant_domain: &str,
    profile: Option<&str>,
    ttl_secs: Option<i64>,
    policy: &CaPolicy,
) -> Result<Binding> {
    let kind = principal.kind;
    if kind == PrincipalKind::Group {
        return Err(refuse("groups cannot hold certificates"));
    }
    refuse_extras(csr)?;
    if let Some(o) = csr.organizations().first() {
        return Err(refuse(format!("the CSR asks for O={o:?}; organizations are set by the server")));
    }
    let spiffe_id = SpiffeId::new(tenant_domain, &[kind.as_str(), &principal.name])
        .map_err(|e| refuse(format!("the principal's name cannot form a SPIFFE ID: {e}")))?;
    for uri in csr.uris() {
        if uri != spiffe_id.as_str() {
            return Err(refuse(format!(
                "the CSR asks for URI {:?}; this principal's only URI is {spiffe_id}",
                short(uri)
            )));
        }
    }
    if let Some(cn) = csr.common_name()
        && !cn.eq_ignore_ascii_case(&principal.name)
    {
        return Err(refuse(format!(
            "the CSR asks for CN={:?}; this principal's CN is {:?}",
            short(cn),
            principal.name
        )));
    }
    if let Some(wild) = csr.dns_names().iter().find(|d| d.contains('*'))
        && !policy.allow_wildcards
    {
        return Err(refuse(format!(
            "wildcard DNS name {:?} refused: the tenant policy does not allow wildcards",
            short(wild)
        )));
    }
    let owned_ips: Vec<IpAddr> = principal.ips.iter().filter_map(|ip| ip.parse().ok()).collect();
    let subject = match kind {
        PrincipalKind::User => {
            if let Some(dns) = csr.dns_names().first() {
                return Err(refuse(format!("the CSR asks for DNS name {:?}; users cannot have DNS names", short(dns))));
            }
            if let Some(ip) = csr.ip_addresses().first() {
                return Err(refuse(format!("the CSR asks for IP address {ip}; users cannot have IP addresses")));
            }
            for email in csr.emails() {
                if !principal.email.as_deref().is_some_and(|own| own.eq_ignore_ascii_case(email)) {
                    return Err(refuse(format!(
                        "the CSR asks for e-mail {:?}, which is not this user's",
                        short(email)
                    )));
                }
            }
            LeafSubject {
                common_name: Some(principal.name.clone()),
                organizations: vec![],
                organizational_unit: Some(kind.as_str().to_string()),
                dns_names: vec![],
                ip_addresses: vec![],
                emails: principal.email.iter().cloned().collect(),
                spiffe_id: Some(spiffe_id.clone()),
            }
        }
        _ => {
            for dns in csr.dns_names() {
                if !principal.hostnames.iter().any(|h| h.eq_ignore_ascii_case(dns)) {
                    return Err(refuse(format!(
                        "the CSR asks for DNS name {:?}, which is not registered to {} {}",
                        short(dns),
                        kind.as_str(),
                        principal.name
                    )));
                }
            }
            for ip in csr.ip_addresses() {
                if !owned_ips.contains(ip) {
                    return Err(refuse(format!(
                        "the CSR asks for IP address {ip}, which is not registered to {} {}",
                        kind.as_str(),
                        principal.name
                    )));
                }
            }
            if let Some(email) = csr.emails().first() {
                return Err(refuse(format!(
                    "the CSR asks for e-mail {:?}; only users have e-mail names",
                    short(email)
                )));
            }
            LeafSubject {
                common_name: Some(principal.name.clone()),
                organizations: vec![],
                organizational_unit: Some(kind.as_str().to_string()),
                dns_names: principal.hostnames.clone(),
                ip_addresses: owned_ips,
                emails: vec![],
                spiffe_id: Some(spiffe_id.clone()),
            }
        }
    };
    let profile = match (kind, profile) {
        (PrincipalKind::User, None) => Profile::Client,
        (_, None) => Profile::ServerClient,
        (_, Some(name)) => name.parse::<Profile>().map_err(|e| Error::invalid(e.to_string()))?,
    };
    if kind == PrincipalKind::User && profile != Profile::Client {
        return Err(refuse(format!("profile {profile} refused: users get client certificates only")));
    }
    let default_ttl = if kind == PrincipalKind::User { policy.user_ttl_secs } else { policy.host_ttl_secs };
    let ttl_secs = checked_ttl(ttl_secs.unwrap_or(default_ttl), policy)?;
    Ok(Binding { subject, profile, usage: CertificateUse::Directory(profile), ttl_secs })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use lightwell_ca::{KeyAlgorithm, SigningKey};
    use lightwell_store::TenantId;

    use super::*;

    fn principal(kind: PrincipalKind, name: &str) -> PrincipalRecord {
        let mut p = crate::service::tenants::new_principal(&TenantId::new("t"), kind, name, 0);
        if kind != PrincipalKind::User {
            p.hostnames = vec![name.to_string(), format!("alt.{name}")];
            p.ips = vec!["10.0.0.1".into()];
        }
        p
    }

    fn csr(dns: &[&str], cn: &str) -> CertificateRequest {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let mut params = rcgen_params(cn);
        params.subject_alt_names = dns.iter().map(|d| rcgen::SanType::DnsName((*d).try_into().unwrap())).collect();
        let der = params.serialize_request(&rcgen::KeyPair::try_from(key.to_pkcs8_der().as_slice()).unwrap()).unwrap();
        CertificateRequest::parse(der.der()).unwrap()
    }

    fn rcgen_params(cn: &str) -> rcgen::CertificateParams {
        let mut params = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, cn);
        params.distinguished_name = dn;
        params
    }

    fn code(r: Result<Binding>) -> ErrorCode {
        r.unwrap_err().code
    }

    #[test]
    fn a_machine_gets_its_registered_names_and_nothing_else() {
        let m = principal(PrincipalKind::Machine, "node1.corp.example");
        let policy = CaPolicy::default();
        let ok = bind(&csr(&["alt.node1.corp.example"], "node1.corp.example"), &m, "corp.example", None, None, &policy)
            .unwrap();
        assert_eq!(ok.subject.dns_names, m.hostnames);
        assert_eq!(ok.subject.organizational_unit.as_deref(), Some("machine"), "the kind is in the subject");
        assert_eq!(ok.subject.spiffe_id.unwrap().as_str(), "spiffe://corp.example/machine/node1.corp.example");
        assert_eq!((ok.profile, ok.ttl_secs), (Profile::ServerClient, 24 * 3600));
        assert_eq!(ok.usage, CertificateUse::Directory(Profile::ServerClient));
        let other = csr(&["node2.corp.example"], "node1.corp.example");
        assert_eq!(code(bind(&other, &m, "corp.example", None, None, &policy)), ErrorCode::PolicyViolation);
        let wildcard = csr(&["*.corp.example"], "node1.corp.example");
        assert_eq!(code(bind(&wildcard, &m, "corp.example", None, None, &policy)), ErrorCode::PolicyViolation);
        let cn = csr(&[], "node2.corp.example");
        assert_eq!(code(bind(&cn, &m, "corp.example", None, None, &policy)), ErrorCode::PolicyViolation);
    }

    #[test]
    fn users_get_client_certificates_without_dns_names() {
        let mut u = principal(PrincipalKind::User, "alice");
        u.email = Some("alice@corp.example".into());
        let policy = CaPolicy::default();
        let ok = bind(&csr(&[], "alice"), &u, "corp.example", None, None, &policy).unwrap();
        assert_eq!((ok.profile, ok.ttl_secs), (Profile::Client, 8 * 3600));
        assert_eq!(ok.subject.emails, vec!["alice@corp.example".to_string()]);
        assert_eq!(ok.subject.organizational_unit.as_deref(), Some("user"));
        assert_eq!(
            code(bind(&csr(&["alice.corp.example"], "alice"), &u, "corp.example", None, None, &policy)),
            ErrorCode::PolicyViolation
        );
        assert_eq!(
            code(bind(&csr(&[], "alice"), &u, "corp.example", Some("server"), None, &policy)),
            ErrorCode::PolicyViolation
        );
        assert_eq!(
            code(bind(&csr(&[], "alice"), &u, "corp.example", None, Some(31 * 86400), &policy)),
            ErrorCode::PolicyViolation
        );
    }

    #[test]
    fn every_use_has_one_label_and_only_directory_certificates_authenticate() {
        let all: Vec<CertificateUse> = Profile::ALL
            .into_iter()
            .map(CertificateUse::Directory)
            .chain([
                CertificateUse::KubeletClient,
                CertificateUse::KubeletServing,
                CertificateUse::KubernetesUser,
                CertificateUse::WorkloadSvid,
            ])
            .chain(crate::service::Component::ALL.into_iter().map(CertificateUse::ControlPlane))
            .collect();
        let mut labels: Vec<&str> = all.iter().map(|u| u.label()).collect();
        for u in &all {
            assert_eq!(CertificateUse::parse(u.label()), Some(*u));
            assert_eq!(u.authenticates(), !u.label().starts_with("k8s-") && u.label() != "x509-svid", "{u:?}");
        }
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), all.len(), "labels are unique");
        assert_eq!(CertificateUse::parse("k8s-something-new"), None);
        assert_eq!(CertificateUse::parse(""), None);
    }

    #[test]
    fn ttls_parse_with_units() {
        assert_eq!(parse_ttl("90").unwrap(), 90);
        assert_eq!(parse_ttl("2h").unwrap(), 7200);
        assert_eq!(parse_ttl("30d").unwrap(), 30 * 86400);
        for bad in ["", "0", "-1h", "1w", "h", "99999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
