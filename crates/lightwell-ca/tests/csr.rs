//! CSR parsing: accepted keys, what a request asks for, and every kind of
//! malformed input getting its specific error rather than a panic. Fixtures
//! that only OpenSSL can make live in `data/` (see `data/regenerate.sh`).
#![allow(clippy::unwrap_used)] // a panic in a test is a failing test
mod common;

use common::*;
use lightwell_ca::csr::{self, CertificateRequest, MAX_CSR_BYTES};
use lightwell_ca::{Error, KeyAlgorithm, PublicKeyAlgorithm, SigningKey};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture exists")
}

fn pem(der: &[u8]) -> String {
    lightwell_ca::pem::encode("CERTIFICATE REQUEST", der)
}

#[test]
fn every_accepted_key_type_parses_from_pem_and_der() {
    let expected = [
        (CsrKey::P256, PublicKeyAlgorithm::EcdsaP256),
        (CsrKey::P384, PublicKeyAlgorithm::EcdsaP384),
        (CsrKey::Ed25519, PublicKeyAlgorithm::Ed25519),
        (CsrKey::Rsa2048, PublicKeyAlgorithm::Rsa { bits: 2048 }),
    ];
    for (kind, algorithm) in expected {
        let der = simple_csr(&csr_key(kind), HOST);
        let from_der = CertificateRequest::parse(&der).expect("DER parses");
        let from_pem = CertificateRequest::parse(pem(&der).as_bytes()).expect("PEM parses");
        assert_eq!(from_der, from_pem);
        assert_eq!(from_der.public_key().algorithm(), algorithm);
        assert_eq!(from_der.common_name(), Some(HOST));
        assert_eq!(from_der.der(), der);
    }
}

#[test]
fn a_csr_made_by_lightwell_for_its_own_key_parses() {
    let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let request = CertificateRequest::parse(&csr::create(&key, "alice").unwrap()).unwrap();
    assert_eq!(request.public_key().spki_der(), key.public_key_der());
    assert_eq!(request.common_name(), Some("alice"));
    assert!(request.requested_extensions().is_empty());
    // Without a name the subject is empty: the server names the certificate.
    let anonymous = CertificateRequest::parse(&csr::create(&key, "").unwrap()).unwrap();
    assert_eq!(anonymous.common_name(), None);
}

#[test]
fn truncated_der_is_malformed() {
    let der = simple_csr(&csr_key(CsrKey::P256), HOST);
    for cut in [1, 10, der.len() / 2, der.len() - 1] {
        let err = CertificateRequest::parse(&der[..cut]).unwrap_err();
        assert!(matches!(err, Error::MalformedCsr(_)), "cut at {cut}: {err}");
    }
}

#[test]
fn trailing_data_after_der_is_malformed() {
    let mut der = simple_csr(&csr_key(CsrKey::P256), HOST);
    der.extend_from_slice(b"extra");
    assert!(matches!(CertificateRequest::parse(&der), Err(Error::MalformedCsr(_))));
}

#[test]
fn garbage_pem_is_malformed() {
    let cases: [&[u8]; 5] = [
        b"-----BEGIN CERTIFICATE REQUEST-----\n@@@not base64@@@\n-----END CERTIFICATE REQUEST-----\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE REQUEST-----\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n",
        b"-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n",
        b"-----\xff\xfe",
    ];
    for input in cases {
        let err = CertificateRequest::parse(input).unwrap_err();
        assert!(matches!(err, Error::MalformedCsr(_)), "{}: {err}", String::from_utf8_lossy(input));
    }
    assert!(matches!(CertificateRequest::parse(b""), Err(Error::MalformedCsr(_))));
    assert!(matches!(CertificateRequest::parse(b"hello world"), Err(Error::MalformedCsr(_))));
}

#[test]
fn a_bad_signature_is_refused() {
    let mut der = simple_csr(&csr_key(CsrKey::P256), HOST);
    // Change the subject after signing: "node1" becomes "node2".
    let at = der.windows(5).position(|w| w == b"node1").expect("CN in DER");
    der[at + 4] = b'2';
    assert!(matches!(CertificateRequest::parse(&der), Err(Error::CsrSignatureInvalid)));
}

#[test]
fn several_megabytes_are_refused_before_parsing() {
    let huge = vec![0x30u8; 5 * 1024 * 1024];
    let err = CertificateRequest::parse(&huge).unwrap_err();
    assert!(matches!(err, Error::CsrTooLarge { size, limit } if size == huge.len() && limit == MAX_CSR_BYTES));
    let huge_pem = pem(&huge);
    assert!(matches!(CertificateRequest::parse(huge_pem.as_bytes()), Err(Error::CsrTooLarge { .. })));
}

fn unsupported_key(input: &[u8]) -> String {
    match CertificateRequest::parse(input) {
        Err(Error::UnsupportedKey { found, .. }) => found,
        other => panic!("expected UnsupportedKey, got {other:?}"),
    }
}

#[test]
fn unsupported_keys_are_refused_by_name() {
    assert_eq!(unsupported_key(&fixture("p521.csr.pem")), "P-521");
    assert_eq!(unsupported_key(&fixture("rsa1024.csr.pem")), "RSA-1024");
    assert!(unsupported_key(&fixture("ed448.csr.pem")).starts_with("key algorithm Ed448"));
    let p521 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    assert_eq!(unsupported_key(&simple_csr(&p521, HOST)), "P-521");
}

#[test]
fn a_sha1_signature_is_refused() {
    let err = CertificateRequest::parse(&fixture("p256-sha1.csr.pem")).unwrap_err();
    assert!(matches!(err, Error::UnsupportedSignatureAlgorithm(ref alg) if alg.contains("SHA-1")), "{err}");
}

#[test]
fn a_request_for_ca_true_and_key_cert_sign_is_reported() {
    let key = csr_key(CsrKey::P256);
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let request = CertificateRequest::parse(&csr_with(&key, params)).unwrap();
    assert!(request.requests_ca());
    assert!(request.requests_key_cert_sign());
    let oids: Vec<_> = request.requested_extensions().iter().map(|e| e.oid.as_str()).collect();
    assert!(oids.contains(&"2.5.29.19") && oids.contains(&"2.5.29.15"), "{oids:?}");

    let mut sign_only = rcgen::CertificateParams::default();
    sign_only.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let request = CertificateRequest::parse(&csr_with(&key, sign_only)).unwrap();
    assert!(!request.requests_ca());
    assert!(request.requests_key_cert_sign());

    let plain = CertificateRequest::parse(&simple_csr(&key, HOST)).unwrap();
    assert!(!plain.requests_ca() && !plain.requests_key_cert_sign());
}

#[test]
fn every_requested_name_is_reported() {
    let key = csr_key(CsrKey::Ed25519);
    let mut params = rcgen::CertificateParams::new(vec![HOST.to_string(), "192.0.2.10".to_string()]).unwrap();
    params.subject_alt_names.push(rcgen::SanType::Rfc822Name("alice@corp.example".try_into().unwrap()));
    params.subject_alt_names.push(rcgen::SanType::URI("spiffe://corp.example/machine/x".try_into().unwrap()));
    params.subject_alt_names.push(rcgen::SanType::OtherName((
        vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
        rcgen::OtherNameValue::Utf8String("alice@corp.example".into()),
    )));
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:masters");
    params.distinguished_name.push(rcgen::DnType::OrganizationalUnitName, "ops");
    params.distinguished_name.push(rcgen::DnType::CommonName, HOST);
    let request = CertificateRequest::parse(&csr_with(&key, params)).unwrap();
    assert_eq!(request.common_name(), Some(HOST));
    assert_eq!(request.organizations(), ["system:masters"]);
    assert_eq!(request.other_subject_attributes(), ["2.5.4.11"]);
    assert_eq!(request.dns_names(), [HOST]);
    assert_eq!(request.ip_addresses(), ["192.0.2.10".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(request.emails(), ["alice@corp.example"]);
    assert_eq!(request.uris(), ["spiffe://corp.example/machine/x"]);
    assert_eq!(request.other_names(), ["otherName 1.3.6.1.4.1.311.20.2.3"]);
}
