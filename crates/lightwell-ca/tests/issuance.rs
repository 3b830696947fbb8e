//! Issuance end to end, checked with x509-parser and rustls-webpki (no
//! outside programs; see openssl_interop.rs for those).
#![allow(clippy::unwrap_used)] // a panic in a test is a failing test
mod common;

use common::*;
use lightwell_ca::ca::{self, CaSpec};
use lightwell_ca::csr::CertificateRequest;
use lightwell_ca::leaf::{self, LeafRequest, LeafSubject};
use lightwell_ca::{CaCertificate, Error, KeyAlgorithm, LintRule, Profile, Serial, SigningKey};
use time::Duration;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_PKIX_AUTHORITY_INFO_ACCESS, OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS,
    OID_X509_EXT_CRL_DISTRIBUTION_POINTS, OID_X509_EXT_ISSUER_DISTRIBUTION_POINT, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_NAME_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME,
};

fn parse(der: &[u8]) -> X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).expect("certificate parses").1
}

fn ski(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
        .expect("SKI present")
}

fn aki(cert: &X509Certificate<'_>) -> Vec<u8> {
    let ext = cert.get_extension_unique(&OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER).unwrap().expect("AKI present");
    let ParsedExtension::AuthorityKeyIdentifier(aki) = ext.parsed_extension() else { panic!("AKI content") };
    aki.key_identifier.as_ref().expect("AKI keyIdentifier").0.to_vec()
}

#[test]
fn every_profile_and_key_type_chains_to_the_root_in_webpki_and_revocation_is_seen() {
    let now = now();
    let csr_keys: Vec<_> = CSR_KEYS.iter().map(|k| (k, csr_key(*k))).collect();
    for ca_key in CA_KEYS {
        let h = hierarchy(ca_key, now);
        let empty_root_crl = crl_of(&h.root, None, 1, &[], now);
        for (kind, key) in &csr_keys {
            for profile in Profile::ALL {
                let what = format!("CA {ca_key}, CSR key {kind:?}, profile {profile}");
                let (leaf, serial) = issue(&h.issuing, &simple_csr(key, HOST), &machine_subject(), profile, now);
                webpki_verify(&h, &leaf, profile, &[], now).unwrap_or_else(|e| panic!("{what}: {e:?}"));
                let empty = crl_of(&h.issuing, Some(ISSUING_CRL_URL), 1, &[], now);
                webpki_verify(&h, &leaf, profile, &[&empty_root_crl, &empty], now)
                    .unwrap_or_else(|e| panic!("{what} with empty CRLs: {e:?}"));
                let revoking = crl_of(&h.issuing, Some(ISSUING_CRL_URL), 2, &[serial], now);
                assert_eq!(
                    webpki_verify(&h, &leaf, profile, &[&empty_root_crl, &revoking], now),
                    Err(webpki::Error::CertRevoked),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn a_leaf_carries_every_extension_lightwell_promises() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let (der, serial) =
        issue(&h.issuing, &simple_csr(&csr_key(CsrKey::P256), HOST), &machine_subject(), Profile::ServerClient, now);
    let leaf = parse(&der);
    let issuing = parse(h.issuing.certificate().der());

    assert_eq!(leaf.raw_serial(), serial.as_bytes());
    assert_eq!(leaf.issuer().as_raw(), issuing.subject().as_raw());
    assert_eq!(aki(&leaf), ski(&issuing));
    assert!(!ski(&leaf).is_empty());

    let bc = leaf.get_extension_unique(&OID_X509_EXT_BASIC_CONSTRAINTS).unwrap().unwrap();
    assert!(bc.critical);
    assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);

    let ku = leaf.get_extension_unique(&OID_X509_EXT_KEY_USAGE).unwrap().unwrap();
    assert!(ku.critical);
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_encipherment() && !ku.key_cert_sign());

    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth && !eku.any);

    let san_ext = leaf.get_extension_unique(&OID_X509_EXT_SUBJECT_ALT_NAME).unwrap().unwrap();
    assert!(!san_ext.critical, "the subject is not empty");
    let san = &leaf.subject_alternative_name().unwrap().unwrap().value.general_names;
    let uris: Vec<_> = san.iter().filter_map(|n| if let GeneralName::URI(u) = n { Some(*u) } else { None }).collect();
    assert_eq!(uris, ["spiffe://corp.example/machine/node1.corp.example"]);
    assert!(san.contains(&GeneralName::DNSName(HOST)));
    assert!(san.contains(&GeneralName::IPAddress(&[192, 0, 2, 10])));

    let cdp = leaf.get_extension_unique(&OID_X509_EXT_CRL_DISTRIBUTION_POINTS).unwrap().unwrap();
    let ParsedExtension::CRLDistributionPoints(cdp) = cdp.parsed_extension() else { panic!("CDP content") };
    assert_eq!(
        cdp.points[0].distribution_point,
        Some(DistributionPointName::FullName(vec![GeneralName::URI(ISSUING_CRL_URL)]))
    );

    let aia = leaf.get_extension_unique(&OID_PKIX_AUTHORITY_INFO_ACCESS).unwrap().unwrap();
    let ParsedExtension::AuthorityInfoAccess(aia) = aia.parsed_extension() else { panic!("AIA content") };
    assert_eq!(aia.accessdescs.len(), 1);
    assert_eq!(aia.accessdescs[0].access_location, GeneralName::URI(ISSUING_CERT_URL));

    assert_eq!(leaf.subject().to_string(), format!("CN={HOST}"));
    leaf.verify_signature(Some(issuing.public_key())).expect("signed by the issuing CA");
}

#[test]
fn only_rsa_server_keys_get_key_encipherment() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let rsa = simple_csr(&csr_key(CsrKey::Rsa2048), HOST);
    let ec = simple_csr(&csr_key(CsrKey::P256), HOST);
    let key_encipherment = |csr: &[u8], profile| {
        let (der, _) = issue(&h.issuing, csr, &machine_subject(), profile, now);
        parse(&der).key_usage().unwrap().unwrap().value.key_encipherment()
    };
    assert!(key_encipherment(&rsa, Profile::Server));
    assert!(key_encipherment(&rsa, Profile::ServerClient));
    assert!(!key_encipherment(&rsa, Profile::Client));
    assert!(!key_encipherment(&ec, Profile::Server));
}

#[test]
fn san_is_critical_when_the_subject_is_empty() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let subject = LeafSubject { common_name: None, ..machine_subject() };
    let (der, _) = issue(&h.issuing, &simple_csr(&csr_key(CsrKey::P256), HOST), &subject, Profile::Server, now);
    let leaf = parse(&der);
    assert!(leaf.subject().as_raw() == [0x30, 0x00]);
    assert!(leaf.get_extension_unique(&OID_X509_EXT_SUBJECT_ALT_NAME).unwrap().unwrap().critical);
    webpki_verify(&h, &der, Profile::Server, &[], now).expect("verifies");
}

#[test]
fn a_kubernetes_user_keeps_every_group_as_an_organization() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let subject = LeafSubject { organizations: vec!["system:masters".into(), "dev".into()], ..user_subject() };
    let (der, _) = issue(&h.issuing, &simple_csr(&csr_key(CsrKey::P256), "alice"), &subject, Profile::Client, now);
    assert_eq!(parse(&der).subject().to_string(), "O=system:masters, O=dev, CN=alice");
    webpki_verify(&h, &der, Profile::Client, &[], now).expect("verifies");
}

fn leaf_request<'a>(
    subject: &'a LeafSubject,
    key: &'a lightwell_ca::PublicKey,
    serial: &'a Serial,
    now: time::OffsetDateTime,
) -> LeafRequest<'a> {
    LeafRequest {
        delta_crl_url: None,
        subject,
        public_key: key,
        profile: Profile::ServerClient,
        not_before: now - Duration::minutes(5),
        not_after: now + Duration::hours(24),
        serial,
        crl_url: ISSUING_CRL_URL,
        ca_issuers_url: ISSUING_CERT_URL,
        ocsp_url: None,
    }
}

#[test]
fn not_after_beyond_the_issuer_is_refused() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let request = CertificateRequest::parse(&simple_csr(&csr_key(CsrKey::P256), HOST)).unwrap();
    let (subject, serial) = (machine_subject(), Serial::random().unwrap());
    let mut too_long = leaf_request(&subject, request.public_key(), &serial, now);
    too_long.not_after = h.issuing.certificate().not_after() + Duration::seconds(1);
    assert!(matches!(leaf::issue(&h.issuing, &too_long), Err(Error::BeyondIssuer { .. })));

    let mut reversed = leaf_request(&subject, request.public_key(), &serial, now);
    reversed.not_after = reversed.not_before;
    assert!(matches!(leaf::issue(&h.issuing, &reversed), Err(Error::InvalidTimeWindow(_))));
}

#[test]
fn backdating_stops_at_the_issuers_not_before() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let request = CertificateRequest::parse(&simple_csr(&csr_key(CsrKey::P256), HOST)).unwrap();
    let (subject, serial) = (machine_subject(), Serial::random().unwrap());
    let mut early = leaf_request(&subject, request.public_key(), &serial, now);
    early.not_before = h.issuing.certificate().not_before() - Duration::hours(1);
    let der = leaf::issue(&h.issuing, &early).unwrap();
    let not_before = parse(&der).validity().not_before.to_datetime();
    assert_eq!(not_before, h.issuing.certificate().not_before());
}

#[test]
fn lint_refuses_a_hostname_cn_missing_from_the_dns_sans() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let request = CertificateRequest::parse(&simple_csr(&csr_key(CsrKey::P256), HOST)).unwrap();
    let subject = LeafSubject { dns_names: vec!["other.corp.example".into()], ..machine_subject() };
    let serial = Serial::random().unwrap();
    let err = leaf::issue(&h.issuing, &leaf_request(&subject, request.public_key(), &serial, now)).unwrap_err();
    assert!(matches!(err, Error::Lint { rule: LintRule::CommonNameInSubjectAltName, .. }), "{err}");
    assert!(err.to_string().contains("common-name-in-san"), "{err}");
}

#[test]
fn name_constrained_issuing_ca_signs_inside_its_domain_and_lint_refuses_outside() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let mut spec = CaSpec::intermediate(TENANT, "cluster-a issuing CA");
    spec.name_constraints.dns = vec!["corp.example".into()];
    let constrained = ca::create_intermediate(
        &spec,
        SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap(),
        &h.root,
        root_links(),
        now,
    )
    .unwrap();
    let nc =
        parse(constrained.certificate().der()).get_extension_unique(&OID_X509_EXT_NAME_CONSTRAINTS).unwrap().cloned();
    assert!(nc.expect("name constraints present").critical);
    assert_eq!(constrained.certificate().permitted_dns_domains(), Some(&["corp.example".to_string()][..]));

    let csr = simple_csr(&csr_key(CsrKey::P256), HOST);
    let inside = LeafSubject { dns_names: vec![HOST.into()], ..machine_subject() };
    let (der, _) = issue(&constrained, &csr, &inside, Profile::ServerClient, now);
    let chain = Hierarchy {
        root: ca::import(h.root.certificate().clone(), reload(h.root.key()), now).unwrap(),
        issuing: constrained,
    };
    webpki_verify(&chain, &der, Profile::ServerClient, &[], now).expect("inside the constraints verifies");

    let request = CertificateRequest::parse(&csr).unwrap();
    let outside = LeafSubject { dns_names: vec![HOST.into(), "www.evil.example".into()], ..machine_subject() };
    let serial = Serial::random().unwrap();
    let err = leaf::issue(&chain.issuing, &leaf_request(&outside, request.public_key(), &serial, now)).unwrap_err();
    assert!(matches!(err, Error::Lint { rule: LintRule::NameConstraints, .. }), "{err}");
}

/// A CA whose key may leave the server (a Kubernetes cluster CA exported
/// for kubeadm) is closed to URIs and e-mail names and bound to IP ranges:
/// the lint refuses a SPIFFE ID or an address outside them, and a leaf
/// without either still verifies with rustls-webpki.
#[test]
fn a_closed_ca_signs_no_uri_and_only_its_ip_ranges() {
    use lightwell_ca::constraints::IpRange;
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let mut spec = CaSpec::intermediate(TENANT, "cluster-b CA");
    spec.name_constraints.dns = vec!["corp.example".into()];
    spec.name_constraints.ip_ranges = vec![IpRange::parse("10.96.0.0/12").unwrap()];
    spec.name_constraints.no_uri_or_email = true;
    let closed = ca::create_intermediate(
        &spec,
        SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap(),
        &h.root,
        root_links(),
        now,
    )
    .unwrap();
    assert_eq!(closed.certificate().name_constraints(), Some(&spec.name_constraints), "read back as written");
    let csr = simple_csr(&csr_key(CsrKey::P256), HOST);
    let request = CertificateRequest::parse(&csr).unwrap();
    let refused = |subject: &LeafSubject| {
        let serial = Serial::random().unwrap();
        let err = leaf::issue(&closed, &leaf_request(subject, request.public_key(), &serial, now)).unwrap_err();
        assert!(matches!(err, Error::Lint { rule: LintRule::NameConstraints, .. }), "{err}");
    };
    // A SPIFFE ID (every directory leaf has one) and an address outside the range.
    refused(&LeafSubject { dns_names: vec![HOST.into()], ip_addresses: vec![], ..machine_subject() });
    let no_uri = LeafSubject {
        dns_names: vec![HOST.into()],
        ip_addresses: vec!["10.96.0.1".parse().unwrap()],
        spiffe_id: None,
        ..machine_subject()
    };
    refused(&LeafSubject { ip_addresses: vec!["192.0.2.1".parse().unwrap()], ..no_uri.clone() });
    let (der, _) = issue(&closed, &csr, &no_uri, Profile::Server, now);
    let chain = Hierarchy {
        root: ca::import(h.root.certificate().clone(), reload(h.root.key()), now).unwrap(),
        issuing: closed,
    };
    webpki_verify(&chain, &der, Profile::Server, &[], now).expect("a leaf inside every constraint verifies");
}

fn reload(key: &SigningKey) -> SigningKey {
    SigningKey::from_pkcs8_der(&key.to_pkcs8_der()).unwrap()
}

#[test]
fn ca_certificates_have_the_lightwell_subject_and_critical_constraints() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP384, now);
    let root = parse(h.root.certificate().der());
    let issuing = parse(h.issuing.certificate().der());
    assert_eq!(root.subject().to_string(), "O=Lightwell, OU=corp.example, CN=corp.example root CA");
    assert_eq!(issuing.issuer().as_raw(), root.subject().as_raw());
    assert_eq!(aki(&issuing), ski(&root));
    for cert in [&root, &issuing] {
        assert!(cert.get_extension_unique(&OID_X509_EXT_BASIC_CONSTRAINTS).unwrap().unwrap().critical);
        assert!(cert.get_extension_unique(&OID_X509_EXT_KEY_USAGE).unwrap().unwrap().critical);
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
        assert_eq!(cert.raw_serial().len(), 16);
    }
    assert_eq!(root.basic_constraints().unwrap().unwrap().value.path_len_constraint, None);
    assert_eq!(issuing.basic_constraints().unwrap().unwrap().value.path_len_constraint, Some(0));
    assert_eq!(
        h.root.certificate().not_after() - h.root.certificate().not_before(),
        ca::ROOT_VALIDITY + ca::CLOCK_SKEW
    );
    assert!(h.root.certificate().is_self_issued() && !h.issuing.certificate().is_self_issued());
    root.verify_signature(None).expect("root is self-signed");
}

#[test]
fn an_intermediate_is_clipped_to_its_parents_validity() {
    let now = now();
    let mut spec = CaSpec::root(TENANT, "short root");
    spec.validity = Duration::days(30);
    let root = ca::create_root(&spec, SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap(), now).unwrap();
    let issuing = ca::create_intermediate(
        &CaSpec::intermediate(TENANT, "issuing"),
        SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap(),
        &root,
        root_links(),
        now,
    )
    .unwrap();
    assert_eq!(issuing.certificate().not_after(), root.certificate().not_after());
}

#[test]
fn an_issuing_ca_with_path_length_zero_cannot_sign_another_ca() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    assert_eq!(h.issuing.certificate().path_len_constraint(), Some(0));
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let err = ca::create_intermediate(&CaSpec::intermediate(TENANT, "too deep"), key, &h.issuing, root_links(), now)
        .unwrap_err();
    assert!(matches!(err, Error::PathLength { parent: 0 }), "{err}");
}

#[test]
fn no_intermediate_is_signed_by_an_expired_parent() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let later = h.root.certificate().not_after() + Duration::days(1);
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let err =
        ca::create_intermediate(&CaSpec::intermediate(TENANT, "late"), key, &h.root, root_links(), later).unwrap_err();
    assert!(matches!(err, Error::NotValidAt { .. }), "{err}");
}

#[test]
fn revoking_the_issuing_ca_in_the_root_crl_rejects_its_leaves() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let (leaf, _) =
        issue(&h.issuing, &simple_csr(&csr_key(CsrKey::P256), HOST), &machine_subject(), Profile::Server, now);
    let issuing_serial = h.issuing.certificate().serial().unwrap();
    let root_crl = crl_of(&h.root, None, 7, &[issuing_serial], now);
    let issuing_crl = crl_of(&h.issuing, Some(ISSUING_CRL_URL), 1, &[], now);
    assert_eq!(
        webpki_verify(&h, &leaf, Profile::Server, &[&root_crl, &issuing_crl], now),
        Err(webpki::Error::CertRevoked)
    );
}

#[test]
fn a_crl_carries_number_aki_issuing_distribution_point_and_reasons() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::Ed25519, now);
    let serial = Serial::random().unwrap();
    let crl = crl_of(&h.issuing, Some(ISSUING_CRL_URL), 300, std::slice::from_ref(&serial), now);
    assert!(crl.to_pem().starts_with("-----BEGIN X509 CRL-----\n"));
    let (_, parsed) = x509_parser::parse_x509_crl(crl.der()).unwrap();
    assert_eq!(parsed.version(), Some(x509_parser::x509::X509Version::V2));
    assert_eq!(parsed.crl_number().unwrap().to_string(), "300");
    assert_eq!(parsed.issuer().as_raw(), h.issuing.certificate().subject_der());
    let idp = parsed.extensions().iter().find(|e| e.oid == OID_X509_EXT_ISSUER_DISTRIBUTION_POINT).expect("IDP");
    assert!(idp.critical);
    let ParsedExtension::IssuingDistributionPoint(idp) = idp.parsed_extension() else { panic!("IDP content") };
    assert_eq!(idp.distribution_point, Some(DistributionPointName::FullName(vec![GeneralName::URI(ISSUING_CRL_URL)])));
    let aki = parsed.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref().map(|k| k.0.to_vec()),
        _ => None,
    });
    assert_eq!(aki.as_deref(), Some(h.issuing.certificate().key_id()));
    let entry = parsed.iter_revoked_certificates().next().expect("one entry");
    assert_eq!(entry.raw_serial(), serial.as_bytes());
    assert_eq!(entry.reason_code().map(|(_, r)| r.0), Some(1));
    parsed.verify_signature(parse(h.issuing.certificate().der()).public_key()).expect("signed by the CA");
}

#[test]
fn a_root_crl_has_full_scope_without_an_issuing_distribution_point() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let crl = crl_of(&h.root, None, 1, &[h.issuing.certificate().serial().unwrap()], now);
    let (_, parsed) = x509_parser::parse_x509_crl(crl.der()).unwrap();
    assert!(parsed.extensions().iter().all(|e| e.oid != OID_X509_EXT_ISSUER_DISTRIBUTION_POINT));
    assert_eq!(parsed.crl_number().unwrap().to_string(), "1");
}

#[test]
fn a_crl_whose_next_update_is_not_after_this_update_is_refused() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let spec = lightwell_ca::crl::CrlSpec {
        number: 1,
        this_update: now,
        next_update: now,
        distribution_point: Some(ISSUING_CRL_URL),
        revoked: &[],
    };
    assert!(matches!(lightwell_ca::crl::build(&h.issuing, &spec), Err(Error::InvalidTimeWindow(_))));
    let spec = lightwell_ca::crl::CrlSpec {
        distribution_point: Some("ftp://x"),
        next_update: now + Duration::days(1),
        ..spec
    };
    assert!(matches!(lightwell_ca::crl::build(&h.issuing, &spec), Err(Error::InvalidName { .. })));
}

#[test]
fn import_checks_ca_ness_key_and_validity() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::EcdsaP256, now);
    let root_cert = h.root.certificate().clone();
    let imported = ca::import(root_cert.clone(), reload(h.root.key()), now).expect("root imports with its key");
    assert_eq!(imported.certificate(), h.root.certificate());

    let other_key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    assert!(matches!(ca::import(root_cert.clone(), other_key, now), Err(Error::KeyMismatch)));

    let expired_at = root_cert.not_after() + Duration::seconds(1);
    assert!(matches!(ca::import(root_cert.clone(), reload(h.root.key()), expired_at), Err(Error::NotValidAt { .. })));

    let (leaf, _) =
        issue(&h.issuing, &simple_csr(&csr_key(CsrKey::P256), HOST), &machine_subject(), Profile::Server, now);
    assert!(matches!(CaCertificate::from_der(&leaf), Err(Error::NotACa(_))));
    assert!(matches!(CaCertificate::from_der(b"junk"), Err(Error::MalformedCertificate(_))));
    assert_eq!(CaCertificate::from_pem(&root_cert.to_pem()).unwrap(), root_cert);
}

#[test]
fn an_intermediate_signed_by_an_enterprise_ca_installs_and_issues() {
    let now = now();
    // The enterprise CA is played by plain rcgen, outside Lightwell.
    let enterprise_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut enterprise_params = rcgen::CertificateParams::default();
    enterprise_params.distinguished_name = rcgen::DistinguishedName::new();
    enterprise_params.distinguished_name.push(rcgen::DnType::CommonName, "Enterprise Root");
    enterprise_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    enterprise_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    enterprise_params.not_before = now - Duration::days(1);
    enterprise_params.not_after = now + Duration::days(3650);
    let enterprise_cert = enterprise_params.self_signed(&enterprise_key).unwrap();
    let enterprise = rcgen::Issuer::new(enterprise_params, enterprise_key);

    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let csr = ca::intermediate_csr(&CaSpec::intermediate(TENANT, "corp.example issuing CA"), &key).unwrap();
    let asked = CertificateRequest::parse(&csr).unwrap();
    assert!(asked.requests_ca() && asked.requests_key_cert_sign());

    let mut signing = rcgen::CertificateSigningRequestParams::from_der(&csr.clone().into()).unwrap();
    signing.params.not_before = now - Duration::hours(1);
    signing.params.not_after = now + Duration::days(365);
    signing.params.use_authority_key_identifier_extension = true;
    let signed = signing.signed_by(&enterprise).unwrap();

    let installed =
        ca::install_signed(&csr, CaCertificate::from_der(signed.der()).unwrap(), key, now).expect("installs");
    let (leaf, _) =
        issue(&installed, &simple_csr(&csr_key(CsrKey::Ed25519), HOST), &machine_subject(), Profile::Server, now);
    let anchor_der = rustls_pki_types::CertificateDer::from(enterprise_cert.der().to_vec());
    let anchors = [webpki::anchor_from_trusted_cert(&anchor_der).unwrap()];
    let intermediates = [rustls_pki_types::CertificateDer::from(installed.certificate().der().to_vec())];
    let leaf = rustls_pki_types::CertificateDer::from(leaf);
    webpki::EndEntityCert::try_from(&leaf)
        .unwrap()
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            unix_time(now),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .expect("leaf chains to the enterprise root");

    // A certificate for some other key does not answer this CSR.
    let stranger = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut other = rcgen::CertificateSigningRequestParams::from_der(&simple_csr_ca(&stranger).into()).unwrap();
    other.params.not_after = now + Duration::days(30);
    let wrong = other.signed_by(&enterprise).unwrap();
    let key = SigningKey::from_pkcs8_der(&installed.key().to_pkcs8_der()).unwrap();
    let err = ca::install_signed(&csr, CaCertificate::from_der(wrong.der()).unwrap(), key, now).unwrap_err();
    assert!(matches!(err, Error::CsrKeyMismatch), "{err}");
}

fn simple_csr_ca(key: &rcgen::KeyPair) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    csr_with(key, params)
}

#[test]
fn an_rsa_4096_hierarchy_issues_verifiable_leaves() {
    // RSA-4096 key generation is slow: this is the one test that does it.
    let now = now();
    let root = ca::create_root(
        &CaSpec::root(TENANT, "rsa4096 root"),
        SigningKey::generate(KeyAlgorithm::Rsa4096).unwrap(),
        now,
    )
    .unwrap();
    assert_eq!(root.key().algorithm(), KeyAlgorithm::Rsa4096);
    let reloaded = SigningKey::from_pem(&root.key().to_pkcs8_pem()).unwrap();
    assert_eq!(reloaded.algorithm(), KeyAlgorithm::Rsa4096);
    let issuing = ca::create_intermediate(
        &CaSpec::intermediate(TENANT, "issuing"),
        SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap(),
        &root,
        root_links(),
        now,
    )
    .unwrap();
    let h = Hierarchy { root, issuing };
    let (leaf, _) =
        issue(&h.issuing, &simple_csr(&csr_key(CsrKey::P256), HOST), &machine_subject(), Profile::Server, now);
    let crls = [&crl_of(&h.root, None, 1, &[], now), &crl_of(&h.issuing, Some(ISSUING_CRL_URL), 1, &[], now)];
    webpki_verify(&h, &leaf, Profile::Server, &crls, now).expect("verifies");
}

#[test]
fn a_ca_key_survives_a_pkcs8_round_trip_and_still_signs() {
    let now = now();
    let h = hierarchy(KeyAlgorithm::Rsa3072, now);
    let (cert, key) = h.issuing.into_parts();
    let sealed_form = key.to_pkcs8_der();
    let issuing = lightwell_ca::Issuer::new(cert, SigningKey::from_pkcs8_der(&sealed_form).unwrap()).unwrap();
    let h = Hierarchy { root: h.root, issuing };
    let (leaf, _) =
        issue(&h.issuing, &simple_csr(&csr_key(CsrKey::P384), "alice"), &user_subject(), Profile::Client, now);
    webpki_verify(&h, &leaf, Profile::Client, &[], now).expect("verifies");
}
