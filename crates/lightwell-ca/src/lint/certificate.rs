//! Pre-issuance rules for certificates, leaves and CAs.
use std::net::IpAddr;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension, X509Extension};
use x509_parser::oid_registry::{
    OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS, OID_PKIX_ACCESS_DESCRIPTOR_OCSP, OID_PKIX_AUTHORITY_INFO_ACCESS,
    OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_CRL_DISTRIBUTION_POINTS,
    OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE, OID_X509_EXT_NAME_CONSTRAINTS,
    OID_X509_EXT_SUBJECT_ALT_NAME, OID_X509_EXT_SUBJECT_KEY_IDENTIFIER, Oid,
};
use x509_parser::x509::X509Version;

use super::{LintRule, ensure, fail, freshest_crl, required, serial, unique};
use crate::issuer::CaCertificate;
use crate::profile::Profile;
use crate::public_key::PublicKeyAlgorithm;
use crate::spiffe::SpiffeId;
use crate::{Error, timestamp};

/// What the certificate being linted is meant to be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    /// `svid`: the leaf must carry exactly one URI SAN, a SPIFFE ID; without
    /// it, no URI SAN at all.
    Leaf {
        profile: Profile,
        key: PublicKeyAlgorithm,
        svid: bool,
    },
    Ca,
    /// A delegated OCSP responder: EKU id-kp-OCSPSigning only, keyUsage
    /// digitalSignature, id-pkix-ocsp-nocheck.
    OcspResponder,
}

/// What the lint compares the to-be-signed certificate against.
pub(crate) struct Expected<'a> {
    pub(crate) role: Role,
    /// DER SubjectPublicKeyInfo the certificate must carry.
    pub(crate) subject_public_key: &'a [u8],
    /// The issuing CA; `None` for a self-signed root.
    pub(crate) issuer: Option<&'a CaCertificate>,
    /// The delta CRL URL a leaf's Freshest CRL extension must name; `None`:
    /// no Freshest CRL.
    pub(crate) delta_crl_url: Option<&'a str>,
}

/// Extensions Lightwell may mark critical.
fn known_critical(oid: &Oid<'_>) -> bool {
    [
        OID_X509_EXT_BASIC_CONSTRAINTS,
        OID_X509_EXT_KEY_USAGE,
        OID_X509_EXT_SUBJECT_ALT_NAME,
        OID_X509_EXT_NAME_CONSTRAINTS,
    ]
    .contains(oid)
}

/// Lints a to-be-signed certificate (see `signing::ToBeSigned::unsigned`).
pub(crate) fn certificate(der: &[u8], expected: &Expected<'_>) -> Result<(), Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| Error::Encoding("to-be-signed certificate does not parse"))?;
    let exts = cert.extensions();
    ensure(cert.version() == X509Version::V3, LintRule::Version, "not X.509 v3")?;
    serial(cert.raw_serial(), LintRule::SerialNumber)?;
    validity(&cert, expected.issuer)?;
    issuer_name(&cert, expected.issuer)?;
    ensure(
        cert.public_key().raw == expected.subject_public_key,
        LintRule::SubjectPublicKey,
        "certified key differs from the requested key",
    )?;
    for ext in exts {
        if ext.critical && !known_critical(&ext.oid) {
            return Err(fail(LintRule::UnknownCriticalExtension, format!("critical extension {}", ext.oid)));
        }
    }
    key_identifiers(&cert, expected.issuer)?;
    let ParsedExtension::BasicConstraints(bc) =
        required(exts, &OID_X509_EXT_BASIC_CONSTRAINTS, LintRule::BasicConstraints, true)?
    else {
        return Err(fail(LintRule::BasicConstraints, "unexpected content"));
    };
    let ParsedExtension::KeyUsage(ku) = required(exts, &OID_X509_EXT_KEY_USAGE, LintRule::KeyUsage, true)? else {
        return Err(fail(LintRule::KeyUsage, "unexpected content"));
    };
    let eku = unique(exts, &OID_X509_EXT_EXTENDED_KEY_USAGE, LintRule::ExtendedKeyUsage)?;
    match expected.role {
        Role::Ca => {
            ensure(bc.ca, LintRule::BasicConstraints, "a CA certificate must have cA true")?;
            ensure(ku.key_cert_sign() && ku.crl_sign(), LintRule::KeyUsage, "a CA needs keyCertSign and cRLSign")?;
            ensure(ku.flags & !KU_CA == 0, LintRule::KeyUsage, "a CA gets only keyCertSign and cRLSign")?;
            ensure(eku.is_none(), LintRule::ExtendedKeyUsage, "a CA certificate carries no extendedKeyUsage")?;
            if let Some(nc) = unique(exts, &OID_X509_EXT_NAME_CONSTRAINTS, LintRule::NameConstraints)? {
                ensure(nc.critical, LintRule::NameConstraints, "nameConstraints must be critical")?;
            }
        }
        Role::Leaf { profile, key, svid } => {
            ensure(
                !bc.ca && bc.path_len_constraint.is_none(),
                LintRule::BasicConstraints,
                "a leaf must have cA false",
            )?;
            let mut want = KU_DIGITAL_SIGNATURE;
            if profile.key_encipherment(key) {
                want |= KU_KEY_ENCIPHERMENT;
            }
            ensure(ku.flags == want, LintRule::KeyUsage, "key usage does not match the profile")?;
            leaf_eku(eku, profile)?;
            leaf_names(&cert, expected.issuer, svid)?;
            leaf_pointers(&cert)?;
            freshest_crl(cert.extensions(), expected.delta_crl_url)?;
        }
        Role::OcspResponder => {
            ensure(
                !bc.ca && bc.path_len_constraint.is_none(),
                LintRule::BasicConstraints,
                "a responder must have cA false",
            )?;
            ensure(ku.flags == KU_DIGITAL_SIGNATURE, LintRule::KeyUsage, "a responder gets only digitalSignature")?;
            let rule = LintRule::ExtendedKeyUsage;
            let ext = eku.ok_or_else(|| fail(rule, "extension is missing"))?;
            ensure(!ext.critical, rule, "must not be critical")?;
            let ParsedExtension::ExtendedKeyUsage(eku) = ext.parsed_extension() else {
                return Err(fail(rule, "unexpected content"));
            };
            let only_ocsp = eku.ocsp_signing
                && !eku.any
                && !eku.server_auth
                && !eku.client_auth
                && !eku.code_signing
                && !eku.email_protection
                && !eku.time_stamping
                && eku.other.is_empty();
            ensure(only_ocsp, rule, "a responder gets only id-kp-OCSPSigning")?;
            let nocheck = exts.iter().filter(|e| e.oid.as_bytes() == crate::ocsp::OID_NOCHECK_CONTENT).count();
            ensure(nocheck == 1, LintRule::OcspNoCheck, "id-pkix-ocsp-nocheck must appear once")?;
        }
    }
    Ok(())
}

/// keyUsage bits in x509-parser's `flags` (bit n is KeyUsage bit n).
const KU_DIGITAL_SIGNATURE: u16 = 1;
const KU_KEY_ENCIPHERMENT: u16 = 1 << 2;
const KU_CA: u16 = (1 << 5) | (1 << 6);

fn validity(cert: &X509Certificate<'_>, issuer: Option<&CaCertificate>) -> Result<(), Error> {
    let not_before = timestamp::from_asn1(cert.validity().not_before);
    let not_after = timestamp::from_asn1(cert.validity().not_after);
    ensure(not_before < not_after, LintRule::ValidityWindow, "notBefore is not before notAfter")?;
    if let Some(issuer) = issuer {
        ensure(
            not_before >= issuer.not_before() && not_after <= issuer.not_after(),
            LintRule::ValidityWithinIssuer,
            "validity extends outside the issuer's",
        )?;
    }
    Ok(())
}

fn issuer_name(cert: &X509Certificate<'_>, issuer: Option<&CaCertificate>) -> Result<(), Error> {
    let want = issuer.map_or(cert.subject().as_raw(), CaCertificate::subject_der);
    ensure(cert.issuer().as_raw() == want, LintRule::IssuerName, "issuer name is not the issuing CA's subject")
}

fn key_identifiers(cert: &X509Certificate<'_>, issuer: Option<&CaCertificate>) -> Result<(), Error> {
    let exts = cert.extensions();
    let ParsedExtension::SubjectKeyIdentifier(_) =
        required(exts, &OID_X509_EXT_SUBJECT_KEY_IDENTIFIER, LintRule::SubjectKeyIdentifier, false)?
    else {
        return Err(fail(LintRule::SubjectKeyIdentifier, "unexpected content"));
    };
    // RFC 5280 4.2.1.1 lets a self-signed root omit the AKI.
    let Some(issuer) = issuer else { return Ok(()) };
    let ParsedExtension::AuthorityKeyIdentifier(aki) =
        required(exts, &OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, LintRule::AuthorityKeyIdentifier, false)?
    else {
        return Err(fail(LintRule::AuthorityKeyIdentifier, "unexpected content"));
    };
    ensure(
        aki.key_identifier.as_ref().is_some_and(|id| id.0 == issuer.key_id()),
        LintRule::AuthorityKeyIdentifier,
        "keyIdentifier is not the issuer's subject key identifier",
    )
}

fn leaf_eku(eku: Option<&X509Extension<'_>>, profile: Profile) -> Result<(), Error> {
    let rule = LintRule::ExtendedKeyUsage;
    let ext = eku.ok_or_else(|| fail(rule, "extension is missing"))?;
    ensure(!ext.critical, rule, "must not be critical")?;
    let ParsedExtension::ExtendedKeyUsage(eku) = ext.parsed_extension() else {
        return Err(fail(rule, "unexpected content"));
    };
    let only_tls = !eku.any && !eku.code_signing && !eku.email_protection && !eku.time_stamping && !eku.ocsp_signing;
    ensure(only_tls && eku.other.is_empty(), rule, "only serverAuth and clientAuth are allowed")?;
    ensure(
        eku.server_auth == profile.server_auth() && eku.client_auth == profile.client_auth(),
        rule,
        "extended key usage does not match the profile",
    )
}

fn leaf_names(cert: &X509Certificate<'_>, issuer: Option<&CaCertificate>, svid: bool) -> Result<(), Error> {
    let subject_empty = cert.subject().iter().next().is_none();
    let rule = LintRule::SubjectAltName;
    let ext = unique(cert.extensions(), &OID_X509_EXT_SUBJECT_ALT_NAME, rule)?;
    // An SVID always has SANs; a leaf without a SPIFFE ID (a kubeadm client
    // certificate) may be named by its subject alone (RFC 5280 4.1.2.6).
    if ext.is_none() && !svid && !subject_empty {
        return Ok(());
    }
    let ext = ext.ok_or_else(|| fail(rule, "a leaf must have subjectAltName"))?;
    ensure(ext.critical == subject_empty, rule, "subjectAltName must be critical exactly when the subject is empty")?;
    let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() else {
        return Err(fail(rule, "unexpected content"));
    };
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    let mut uris = Vec::new();
    let mut emails = 0;
    for name in &san.general_names {
        match name {
            GeneralName::DNSName(d) => dns.push(*d),
            GeneralName::IPAddress(ip) => ips.push(ip_from_bytes(ip).ok_or_else(|| fail(rule, "malformed IP SAN"))?),
            GeneralName::URI(u) => uris.push(*u),
            GeneralName::RFC822Name(_) => emails += 1,
            other => return Err(fail(rule, format!("unsupported SAN type {other:?}"))),
        }
    }
    ensure(!san.general_names.is_empty(), rule, "subjectAltName is empty")?;
    match (svid, &uris[..]) {
        (true, [uri]) => uri.parse::<SpiffeId>().map(|_| ()).map_err(|e| fail(LintRule::SpiffeUri, e.to_string()))?,
        (true, _) => {
            return Err(fail(LintRule::SpiffeUri, format!("{} URI SANs, exactly one is required", uris.len())));
        }
        (false, []) => {}
        (false, _) => return Err(fail(LintRule::SpiffeUri, "a leaf without a SPIFFE ID carries no URI SAN")),
    }
    for cn in cert.subject().iter_common_name() {
        let cn = cn.as_str().map_err(|_| fail(LintRule::CommonNameInSubjectAltName, "CN is not a string"))?;
        if let Ok(ip) = cn.parse::<IpAddr>() {
            ensure(
                ips.contains(&ip),
                LintRule::CommonNameInSubjectAltName,
                "CN is an IP address missing from the SANs",
            )?;
        } else if looks_like_hostname(cn) {
            ensure(
                dns.iter().any(|d| d.eq_ignore_ascii_case(cn)),
                LintRule::CommonNameInSubjectAltName,
                "CN is a DNS name missing from the SANs",
            )?;
        }
    }
    if let Some(permitted) = issuer.and_then(CaCertificate::permitted_dns_domains) {
        for name in &dns {
            ensure(
                permitted.iter().any(|base| within_dns_constraint(name, base)),
                LintRule::NameConstraints,
                "a DNS SAN lies outside the issuer's permitted name constraints",
            )?;
        }
    }
    if let Some(nc) = issuer.and_then(CaCertificate::name_constraints) {
        if !nc.ip_ranges.is_empty() {
            for ip in &ips {
                ensure(
                    nc.ip_ranges.iter().any(|r| r.contains(*ip)),
                    LintRule::NameConstraints,
                    "an IP SAN lies outside the issuer's permitted name constraints",
                )?;
            }
        }
        ensure(
            !nc.no_uri_or_email || (uris.is_empty() && emails == 0),
            LintRule::NameConstraints,
            "the issuer's name constraints permit no URI or e-mail SAN",
        )?;
    }
    Ok(())
}

fn leaf_pointers(cert: &X509Certificate<'_>) -> Result<(), Error> {
    let exts = cert.extensions();
    let rule = LintRule::CrlDistributionPoint;
    let ParsedExtension::CRLDistributionPoints(cdp) =
        required(exts, &OID_X509_EXT_CRL_DISTRIBUTION_POINTS, rule, false)?
    else {
        return Err(fail(rule, "unexpected content"));
    };
    let has_uri = cdp.points.iter().any(|p| match &p.distribution_point {
        Some(DistributionPointName::FullName(names)) => names.iter().any(|n| matches!(n, GeneralName::URI(_))),
        _ => false,
    });
    ensure(has_uri, rule, "no URI distribution point")?;

    let rule = LintRule::AuthorityInfoAccess;
    let ParsedExtension::AuthorityInfoAccess(aia) = required(exts, &OID_PKIX_AUTHORITY_INFO_ACCESS, rule, false)?
    else {
        return Err(fail(rule, "unexpected content"));
    };
    let has_ca_issuers = aia.accessdescs.iter().any(|d| {
        d.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS && matches!(d.access_location, GeneralName::URI(_))
    });
    ensure(has_ca_issuers, rule, "no caIssuers URI")?;
    // An OCSP location, when named, is one a client can reach over HTTP.
    let ocsp_is_http = aia.accessdescs.iter().filter(|d| d.access_method == OID_PKIX_ACCESS_DESCRIPTOR_OCSP).all(
        |d| matches!(d.access_location, GeneralName::URI(u) if u.starts_with("http://") || u.starts_with("https://")),
    );
    ensure(ocsp_is_http, rule, "an OCSP location that is not an http URI")
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// A CN "looks like" a host name when it has a dot and only host-name
/// characters; user names (`alice`) and Kubernetes names (`system:node:x`) do not.
fn looks_like_hostname(cn: &str) -> bool {
    cn.contains('.') && cn.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.*".contains(&b))
}

/// RFC 5280 4.2.1.10: a DNS constraint matches the name itself and any
/// name made by adding labels on the left. A leading dot means subdomains only.
pub(crate) fn within_dns_constraint(name: &str, base: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let base = base.to_ascii_lowercase();
    if base.is_empty() {
        return true;
    }
    if let Some(sub_only) = base.strip_prefix('.') {
        return name.ends_with(&format!(".{sub_only}"));
    }
    name == base || name.ends_with(&format!(".{base}"))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType};
    use time::{Duration, OffsetDateTime};

    use super::*;
    use crate::keys::{KeyAlgorithm, SigningKey};
    use crate::leaf::{LeafRequest, LeafSubject};
    use crate::lint::testing::{root, rule_of};
    use crate::serial::Serial;
    use crate::signing::{Signer, ToBeSigned};

    fn lint_leaf(spoil: impl FnOnce(&mut CertificateParams)) -> Result<(), Error> {
        lint_leaf_as(true, spoil)
    }

    /// Lints a leaf laid out for an SVID (or, with `svid` false, judged as a
    /// leaf without a SPIFFE ID) after `spoil` changed its parameters.
    fn lint_leaf_as(svid: bool, spoil: impl FnOnce(&mut CertificateParams)) -> Result<(), Error> {
        let issuer = root();
        let now = OffsetDateTime::now_utc();
        let subject_key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap().public_key();
        let subject = LeafSubject {
            common_name: Some("node1.corp.example".into()),
            organizations: Vec::new(),
            organizational_unit: None,
            dns_names: vec!["node1.corp.example".into()],
            ip_addresses: Vec::new(),
            emails: Vec::new(),
            spiffe_id: Some(SpiffeId::new("corp.example", &["machine", "node1.corp.example"]).unwrap()),
        };
        let serial = Serial::random().unwrap();
        let request = LeafRequest {
            delta_crl_url: None,
            subject: &subject,
            public_key: &subject_key,
            profile: Profile::ServerClient,
            not_before: now,
            not_after: now + Duration::hours(1),
            serial: &serial,
            crl_url: "http://pki.corp.example/crl",
            ca_issuers_url: "http://pki.corp.example/ca",
            ocsp_url: None,
        };
        let (mut params, name) = crate::leaf::layout(&issuer, &request).unwrap();
        spoil(&mut params);
        let rcgen_key = rcgen::SubjectPublicKeyInfo::from_der(subject_key.spki_der()).unwrap();
        let tbs = ToBeSigned::certificate(&params, &rcgen_key, &name, &Signer::issuer(&issuer))?;
        let expected = Expected {
            delta_crl_url: None,
            role: Role::Leaf { profile: Profile::ServerClient, key: subject_key.algorithm(), svid },
            subject_public_key: subject_key.spki_der(),
            issuer: Some(issuer.certificate()),
        };
        certificate(&tbs.unsigned(), &expected)
    }

    #[test]
    fn a_correct_leaf_passes() {
        lint_leaf(|_| {}).unwrap();
        // With an OCSP location as well.
        lint_leaf(|p| {
            let aia =
                crate::urls::authority_info_access("http://pki.corp.example/ca", Some("http://pki.corp.example/ocsp"));
            p.custom_extensions = vec![aia];
        })
        .unwrap();
    }

    #[test]
    fn a_leaf_carries_a_freshest_crl_exactly_when_its_ca_publishes_delta_crls() {
        let delta = "http://pki.corp.example/delta.crl";
        // `lint_leaf` expects none: a Freshest CRL nobody asked for fails.
        let result = lint_leaf(|p| p.custom_extensions.push(crate::urls::freshest_crl(delta)));
        assert_eq!(rule_of(result), LintRule::CrlFreshest);
    }

    #[test]
    fn each_spoiled_leaf_fails_its_own_rule() {
        type Spoil = Box<dyn FnOnce(&mut CertificateParams)>;
        let cases: Vec<(LintRule, Spoil)> = vec![
            (
                LintRule::SerialNumber,
                Box::new(|p| p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x11; 21]))),
            ),
            (LintRule::ValidityWithinIssuer, Box::new(|p| p.not_after += Duration::days(20 * 365))),
            (
                LintRule::BasicConstraints,
                Box::new(|p| p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained)),
            ),
            // rcgen then omits both basicConstraints and the SKI; the SKI is checked first.
            (LintRule::SubjectKeyIdentifier, Box::new(|p| p.is_ca = rcgen::IsCa::NoCa)),
            (LintRule::KeyUsage, Box::new(|p| p.key_usages.push(KeyUsagePurpose::KeyCertSign))),
            (LintRule::KeyUsage, Box::new(|p| p.key_usages.clear())),
            (
                LintRule::ExtendedKeyUsage,
                Box::new(|p| p.extended_key_usages.push(ExtendedKeyUsagePurpose::CodeSigning)),
            ),
            (
                LintRule::ExtendedKeyUsage,
                Box::new(|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]),
            ),
            (LintRule::AuthorityKeyIdentifier, Box::new(|p| p.use_authority_key_identifier_extension = false)),
            (LintRule::SpiffeUri, Box::new(|p| p.subject_alt_names.retain(|n| !matches!(n, SanType::URI(_))))),
            (
                LintRule::SpiffeUri,
                Box::new(|p| p.subject_alt_names.push(SanType::URI("https://corp.example/".try_into().unwrap()))),
            ),
            (
                LintRule::CommonNameInSubjectAltName,
                Box::new(|p| p.subject_alt_names.retain(|n| !matches!(n, SanType::DnsName(_)))),
            ),
            (LintRule::CrlDistributionPoint, Box::new(|p| p.crl_distribution_points.clear())),
            (LintRule::AuthorityInfoAccess, Box::new(|p| p.custom_extensions.clear())),
            (
                LintRule::AuthorityInfoAccess,
                Box::new(|p| {
                    let aia = crate::urls::authority_info_access("http://pki.corp.example/ca", Some("ldap://ocsp"));
                    p.custom_extensions = vec![aia];
                }),
            ),
            (
                LintRule::UnknownCriticalExtension,
                Box::new(|p| {
                    let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x05, 0x00]);
                    ext.set_criticality(true);
                    p.custom_extensions.push(ext);
                }),
            ),
        ];
        for (rule, spoil) in cases {
            assert_eq!(rule_of(lint_leaf(spoil)), rule);
        }
    }

    #[test]
    fn a_leaf_without_a_spiffe_id_has_no_uri_and_may_have_no_sans() {
        let no_uri = |p: &mut CertificateParams| p.subject_alt_names.retain(|n| !matches!(n, SanType::URI(_)));
        lint_leaf_as(false, no_uri).unwrap();
        lint_leaf_as(false, |p| p.subject_alt_names.clear()).unwrap();
        assert_eq!(rule_of(lint_leaf_as(false, |_| {})), LintRule::SpiffeUri, "a URI SAN on a non-SVID leaf");
        // An SVID still needs its SANs.
        assert_eq!(rule_of(lint_leaf_as(true, |p| p.subject_alt_names.clear())), LintRule::SubjectAltName);
    }

    #[test]
    fn a_leaf_for_another_key_fails_subject_public_key() {
        let issuer = root();
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.not_before = now;
        params.not_after = now + Duration::hours(1);
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let other = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let tbs = ToBeSigned::certificate(&params, key.pair(), &crate::name::Name::default(), &Signer::issuer(&issuer))
            .unwrap();
        let expected = Expected {
            delta_crl_url: None,
            role: Role::Ca,
            subject_public_key: &other.public_key_der(),
            issuer: Some(issuer.certificate()),
        };
        assert_eq!(rule_of(certificate(&tbs.unsigned(), &expected)), LintRule::SubjectPublicKey);
    }

    #[test]
    fn dns_constraints_match_the_domain_and_its_subdomains_only() {
        assert!(within_dns_constraint("corp.example", "corp.example"));
        assert!(within_dns_constraint("a.b.corp.example", "corp.example"));
        assert!(!within_dns_constraint("evilcorp.example", "corp.example"));
        assert!(!within_dns_constraint("corp.example", ".corp.example"));
        assert!(within_dns_constraint("x.corp.example", ".corp.example"));
        assert!(within_dns_constraint("X.Corp.Example", "corp.example"));
    }

    #[test]
    fn hostnames_are_told_apart_from_user_and_kubernetes_names() {
        assert!(looks_like_hostname("node1.corp.example"));
        assert!(!looks_like_hostname("alice"));
        assert!(!looks_like_hostname("system:node:node1.corp.example"));
        assert!(!looks_like_hostname("Alice Smith"));
    }
}
