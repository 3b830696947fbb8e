//! Entries as LDAP shows them: the root DSE, the subschema entry, and each
//! tenant's tree built from a service-layer [`DirectorySnapshot`].

use lightwell_core::{DirectorySnapshot, PrincipalKind, PrincipalView, WorkloadView};
use time::OffsetDateTime;

use crate::dn::normalize;
use crate::schema::{self, AttrDef, SUBSCHEMA_DN};
use crate::tree::{self, Container};

/// OIDs of the extended operations the server implements.
pub(crate) const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";
/// RFC 4532 Who am I?
pub(crate) const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
/// RFC 3062 Password Modify.
pub(crate) const OID_PASSWORD_MODIFY: &str = "1.3.6.1.4.1.4203.1.11.1";
/// RFC 2696 simple paged results.
pub(crate) const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
/// RFC 3296 ManageDsaIT (honoured trivially: there are no referrals).
pub(crate) const OID_MANAGE_DSA_IT: &str = "2.16.840.1.113730.3.4.2";
/// RFC 3673: `+` returns all operational attributes.
const OID_ALL_OPERATIONAL: &str = "1.3.6.1.4.1.4203.1.5.1";
/// SASL mechanisms offered. EXTERNAL is not offered yet: mapping a client
/// certificate to a principal needs tenant certificates (the CA), which the
/// service layer does not have on this branch; see `bind.rs`.
pub(crate) const SASL_MECHANISMS: &[&str] = &["EXTERNAL"];

/// One entry: its DN (as shown and normalized), its parent, its attributes.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// DN as returned.
    pub(crate) dn: String,
    /// Normalized DN.
    pub(crate) norm: String,
    /// Normalized DN of the parent (`None` for the root DSE and subschema).
    pub(crate) parent: Option<String>,
    /// Attributes with their values, in a stable order.
    pub(crate) attrs: Vec<(&'static AttrDef, Vec<String>)>,
    /// The values of `attrs[i]` in the form filters compare
    /// (`Syntax::normalize`), computed once when the tree is built so that
    /// evaluating a filter term costs a comparison, not a DN parse; `None`
    /// where they are already in that form (most names), to save memory.
    matching: Vec<Option<Vec<String>>>,
    /// Binary attributes (certificates, CRLs: DER), returned with `;binary`.
    pub(crate) binary: Vec<(&'static AttrDef, Vec<Vec<u8>>)>,
}

impl Entry {
    fn new(dn: String, parent: Option<&str>) -> Self {
        Self {
            norm: normalize(&dn).unwrap_or_else(|| dn.to_lowercase()),
            parent: parent.map(str::to_string),
            dn,
            attrs: vec![],
            matching: vec![],
            binary: vec![],
        }
    }

    fn add_binary(&mut self, name: &'static str, values: Vec<Vec<u8>>) {
        if !values.is_empty() {
            self.binary.push((schema::known(name), values));
        }
    }

    /// Whether the entry has an attribute (text or binary).
    pub(crate) fn has(&self, def: &AttrDef) -> bool {
        self.get(def).is_some() || self.binary.iter().any(|(d, _)| std::ptr::eq(*d, def))
    }

    fn add(&mut self, name: &'static str, values: Vec<String>) {
        if !values.is_empty() {
            let def = schema::known(name);
            let normalized: Vec<String> = values.iter().map(|v| def.syntax.normalize(v)).collect();
            self.matching.push((normalized != values).then_some(normalized));
            self.attrs.push((def, values));
        }
    }

    fn add_one(&mut self, name: &'static str, value: impl Into<String>) {
        self.add(name, vec![value.into()]);
    }

    /// Values of an attribute, if present.
    pub(crate) fn get(&self, def: &AttrDef) -> Option<&[String]> {
        self.attrs.iter().find(|(d, _)| std::ptr::eq(*d, def)).map(|(_, v)| v.as_slice())
    }

    /// The entry with `name`'s values replaced by `values`.
    #[cfg(test)]
    pub(crate) fn replaced(mut self, name: &'static str, values: Vec<String>) -> Self {
        let def = schema::known(name);
        if let Some(i) = self.attrs.iter().position(|(d, _)| std::ptr::eq(*d, def)) {
            self.attrs.remove(i);
            self.matching.remove(i);
        }
        self.add(name, values);
        self
    }

    /// Values of an attribute normalized for matching (see `Syntax::normalize`), if present.
    pub(crate) fn normalized(&self, def: &AttrDef) -> Option<&[String]> {
        let i = self.attrs.iter().position(|(d, _)| std::ptr::eq(*d, def))?;
        match self.matching.get(i)? {
            Some(normalized) => Some(normalized),
            None => Some(&self.attrs[i].1),
        }
    }

    fn operational(&mut self, uuid: Option<&str>, created: i64, modified: i64, leaf: bool) {
        if let Some(u) = uuid {
            self.add_one("entryUUID", u);
        }
        self.add_one("createTimestamp", generalized_time(created));
        self.add_one("modifyTimestamp", generalized_time(modified));
        let dn = self.dn.clone();
        self.add_one("entryDN", dn);
        self.add_one("subschemaSubentry", SUBSCHEMA_DN);
        self.add_one("hasSubordinates", if leaf { "FALSE" } else { "TRUE" });
    }
}

/// GeneralizedTime (`20261126225308Z`) of Unix seconds.
pub(crate) fn generalized_time(unix: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}{:02}{:02}{:02}{:02}{:02}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// The root DSE; `naming_contexts` are the bases the caller may see.
pub(crate) fn root_dse(naming_contexts: Vec<String>) -> Entry {
    let mut e = Entry::new(String::new(), None);
    e.add("objectClass", vec!["top".into()]);
    e.add("namingContexts", naming_contexts);
    e.add_one("supportedLDAPVersion", "3");
    e.add("supportedExtension", vec![OID_STARTTLS.into(), OID_WHOAMI.into(), OID_PASSWORD_MODIFY.into()]);
    e.add("supportedControl", vec![OID_PAGED_RESULTS.into(), OID_MANAGE_DSA_IT.into()]);
    e.add("supportedSASLMechanisms", SASL_MECHANISMS.iter().map(|s| s.to_string()).collect());
    e.add("supportedFeatures", vec![OID_ALL_OPERATIONAL.into()]);
    e.add_one("vendorName", "Lightwell");
    e.add_one("vendorVersion", env!("CARGO_PKG_VERSION"));
    e.add_one("subschemaSubentry", SUBSCHEMA_DN);
    e
}

/// The subschema entry.
pub(crate) fn subschema() -> Entry {
    let mut e = Entry::new(SUBSCHEMA_DN.into(), None);
    for (name, values) in schema::subschema_attributes() {
        e.add(name, values);
    }
    e.add_one("subschemaSubentry", SUBSCHEMA_DN);
    e
}

/// Every entry of a tenant's tree, parents before children.
pub(crate) fn tenant_entries(snap: &DirectorySnapshot) -> Vec<Entry> {
    let tenant = snap.tenant.domain.as_str();
    let created = snap.tenant.created_at;
    let base = tree::base_dn(tenant);
    let base_norm = normalize(&base).unwrap_or_default();
    let mut out = Vec::with_capacity(snap.principals.len() + 5);

    let mut domain = Entry::new(base.clone(), Some(""));
    domain.add("objectClass", vec!["top".into(), "domain".into(), "dcObject".into()]);
    domain.add_one("dc", tenant.split('.').next().unwrap_or(tenant));
    domain.operational(Some(snap.tenant.id.as_str()), created, created, false);
    out.push(domain);

    for c in Container::ALL {
        let (attr, value) = c.rdn();
        let mut e = Entry::new(tree::container_dn(tenant, c), Some(&base_norm));
        if attr == "ou" {
            e.add("objectClass", vec!["top".into(), "organizationalUnit".into()]);
            e.add_one("ou", value);
        } else {
            e.add("objectClass", vec!["top".into(), "container".into()]);
            e.add_one("cn", value);
        }
        let any = snap.principals.iter().any(|p| p.principal.kind == c.kind());
        e.operational(None, created, created, !any);
        out.push(e);
    }
    for c in Container::ALL {
        let parent = normalize(&tree::container_dn(tenant, c)).unwrap_or_default();
        for p in snap.principals.iter().filter(|p| p.principal.kind == c.kind()) {
            let workloads: Vec<&WorkloadView> = match p.principal.kind {
                PrincipalKind::Service => snap.workloads.iter().filter(|w| w.service == p.principal.name).collect(),
                _ => Vec::new(),
            };
            let mut e = principal_entry(tenant, &parent, p, workloads.is_empty());
            if p.principal.kind == PrincipalKind::User {
                e.add_binary(
                    "userCertificate",
                    snap.certificates.get(p.principal.id.as_str()).cloned().unwrap_or_default(),
                );
            }
            let service_dn = e.dn.clone();
            out.push(e);
            out.extend(workloads.into_iter().map(|w| workload_entry(tenant, &service_dn, w)));
        }
    }
    out.extend(ca_entries(snap, &base_norm));
    out
}

/// A workload entry below its service (read only): its SPIFFE ID as
/// `labeledURI`, each selector a `description`, the machines and groups it
/// may run on as `seeAlso`, its DNS names as `dNSHostName`.
fn workload_entry(tenant: &str, service_dn: &str, w: &WorkloadView) -> Entry {
    let parent = normalize(service_dn).unwrap_or_default();
    let mut e = Entry::new(format!("cn={},{service_dn}", crate::dn::escape(&w.name)), Some(&parent));
    e.add(
        "objectClass",
        ["top", "applicationProcess", "labeledURIObject", "extensibleObject"].map(String::from).into(),
    );
    e.add_one("cn", w.name.clone());
    e.add_one("labeledURI", w.spiffe_id.clone());
    e.add("description", w.selectors.clone());
    let hosts = w.hosts.iter().map(|h| tree::object_dn(tenant, PrincipalKind::Machine, h));
    let groups = w.host_groups.iter().map(|g| tree::object_dn(tenant, PrincipalKind::Group, g));
    e.add("seeAlso", hosts.chain(groups).collect());
    e.add("dNSHostName", w.dns_names.clone());
    e.operational(Some(&w.id), w.created_at, w.created_at, true);
    e
}

/// `cn=Configuration` and `cn=Certificate-Authorities` below it, with one
/// `pkiCA` entry per CA (RFC 4523): any LDAP tool can fetch roots and CRLs.
fn ca_entries(snap: &DirectorySnapshot, base_norm: &str) -> Vec<Entry> {
    let tenant = snap.tenant.domain.as_str();
    let created = snap.tenant.created_at;
    let config_dn = tree::configuration_dn(tenant);
    let cas_dn = tree::certificate_authorities_dn(tenant);
    let mut out = Vec::with_capacity(snap.cas.len() + 2);
    for (dn, parent, cn) in [
        (&config_dn, base_norm.to_string(), "Configuration"),
        (&cas_dn, normalize(&config_dn).unwrap_or_default(), "Certificate-Authorities"),
    ] {
        let mut e = Entry::new(dn.clone(), Some(&parent));
        e.add("objectClass", vec!["top".into(), "container".into()]);
        e.add_one("cn", cn);
        e.operational(None, created, created, false);
        out.push(e);
    }
    let parent = normalize(&cas_dn).unwrap_or_default();
    for ca in &snap.cas {
        let mut e = Entry::new(format!("cn={},{cas_dn}", crate::dn::escape(&ca.name)), Some(&parent));
        let mut classes = vec!["top".to_string(), "applicationProcess".into(), "pkiCA".into()];
        classes.extend(ca.delta_crl_der.is_some().then(|| "deltaCRL".to_string()));
        e.add("objectClass", classes);
        e.add_one("cn", ca.name.clone());
        e.add_binary("cACertificate", vec![ca.cert_der.clone()]);
        e.add_binary("certificateRevocationList", ca.crl_der.iter().cloned().collect());
        e.add_binary("deltaRevocationList", ca.delta_crl_der.iter().cloned().collect());
        e.operational(Some(&ca.id), ca.created_at, ca.created_at, true);
        out.push(e);
    }
    out
}

fn principal_entry(tenant: &str, parent: &str, v: &PrincipalView, leaf: bool) -> Entry {
    let p = &v.principal;
    let mut e = Entry::new(tree::object_dn(tenant, p.kind, &p.name), Some(parent));
    let classes: &[&str] = match p.kind {
        PrincipalKind::User => &["top", "person", "organizationalPerson", "inetOrgPerson", "pkiUser"],
        PrincipalKind::Group => &["top", "groupOfNames"],
        PrincipalKind::Machine => &["top", "device", "ipHost", "extensibleObject"],
        PrincipalKind::Service => &["top", "applicationProcess", "extensibleObject"],
    };
    e.add("objectClass", classes.iter().map(|s| s.to_string()).collect());
    if p.kind == PrincipalKind::User {
        e.add_one("uid", p.name.clone());
    }
    e.add_one("cn", p.name.clone());
    if p.kind == PrincipalKind::User {
        e.add_one("sn", p.name.clone());
    }
    e.add("displayName", p.display_name.iter().cloned().collect());
    e.add("mail", p.email.iter().cloned().collect());
    if let Some(members) = &v.members {
        // A group's members are `member`; a service's hosts are `seeAlso`, so
        // an LDAP client walking `member` for nested groups never counts a
        // host as a member of the service's groups.
        let attribute = if p.kind == PrincipalKind::Service { "seeAlso" } else { "member" };
        e.add(attribute, members.iter().map(|(k, n)| tree::object_dn(tenant, *k, n)).collect());
    }
    if matches!(p.kind, PrincipalKind::Machine | PrincipalKind::Service) {
        e.add("dNSHostName", p.hostnames.clone());
        e.add("ipHostNumber", p.ips.clone());
    }
    e.add("memberOf", v.member_of.iter().map(|g| tree::object_dn(tenant, PrincipalKind::Group, g)).collect());
    e.operational(Some(p.id.as_str()), p.created_at, p.updated_at, leaf);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_the_entries_use_is_in_the_schema() {
        // `schema::known` falls back to objectClass for a name missing from
        // the schema; a second objectClass in an entry would reveal one.
        let mut all = tenant_entries(&crate::testdata::snapshot());
        all.push(root_dse(vec!["dc=corp,dc=example".into()]));
        all.push(subschema());
        for e in &all {
            let mut names: Vec<_> = e.attrs.iter().map(|(d, _)| d.name).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{}: {names:?}", e.dn);
        }
        for name in ["displayName", "mail", "member"] {
            assert_eq!(schema::known(name).name, name, "used by write.rs");
        }
    }

    #[test]
    fn values_are_kept_normalized_for_matching() {
        let all = tenant_entries(&crate::testdata::snapshot());
        let alice = all.iter().find(|e| e.dn.starts_with("uid=alice")).unwrap_or(&all[0]);
        let normalized = |name| alice.normalized(schema::known(name)).unwrap_or_default().to_vec();
        assert_eq!(normalized("displayName"), ["alice liddell"]);
        assert_eq!(normalized("uid"), ["alice"]);
        assert_eq!(normalized("entryDN"), ["uid=alice,cn=users,dc=corp,dc=example"]);
        assert!(normalized("memberOf").contains(&"cn=engineers,cn=groups,dc=corp,dc=example".to_string()));
        let original = alice.get(schema::known("displayName")).unwrap_or_default();
        assert_eq!(original, ["Alice Liddell"], "values are returned as stored");
        assert_eq!(alice.normalized(schema::known("member")), None, "absent");
    }

    #[test]
    fn workload_entries_are_children_of_their_service() {
        let all = tenant_entries(&crate::testdata::snapshot());
        let service = all.iter().find(|e| e.dn == "cn=payments,cn=Services,dc=corp,dc=example").unwrap();
        let worker = all.iter().position(|e| e.dn == "cn=worker,cn=payments,cn=Services,dc=corp,dc=example").unwrap();
        let worker_entry = &all[worker];
        assert_eq!(worker_entry.parent.as_deref(), Some(service.norm.as_str()));
        assert!(all.iter().position(|e| std::ptr::eq(e, service)).unwrap() < worker, "parents before children");
        let get = |e: &Entry, n| e.get(schema::known(n)).unwrap_or_default().to_vec();
        assert_eq!(get(service, "hasSubordinates"), ["TRUE"]);
        assert_eq!(get(worker_entry, "hasSubordinates"), ["FALSE"]);
        assert_eq!(get(worker_entry, "labeledURI"), ["spiffe://corp.example/service/payments/worker"]);
        assert_eq!(get(worker_entry, "description"), ["unix:uid:1000", "unix:path:/usr/bin/pay"]);
        assert_eq!(
            get(worker_entry, "seeAlso"),
            ["cn=node1.corp.example,ou=Computers,dc=corp,dc=example", "cn=engineers,cn=Groups,dc=corp,dc=example"]
        );
        assert_eq!(get(worker_entry, "entryUUID"), ["00000000-0000-4000-a000-000000000001"]);
        let ca = all.iter().find(|e| e.dn.starts_with("cn=root,")).unwrap();
        assert!(get(ca, "objectClass").contains(&"deltaCRL".to_string()));
        assert!(ca.has(schema::known("deltaRevocationList")));
    }

    #[test]
    fn generalized_time_is_utc_seconds() {
        assert_eq!(generalized_time(0), "19700101000000Z");
        assert_eq!(generalized_time(1_796_165_588), "20261201225308Z");
    }
}
