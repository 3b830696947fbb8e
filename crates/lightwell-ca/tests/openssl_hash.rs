//! The CApath hash agrees with `openssl x509 -hash` and `openssl crl -hash`
//! (needs the openssl command).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use lightwell_ca::KeyAlgorithm;
use lightwell_ca::crl::{self, CrlSpec};
use lightwell_ca::openssl_hash::{certificate_subject_hash, crl_issuer_hash};

fn openssl_hash(kind: &str, pem_path: &std::path::Path) -> String {
    let out = Command::new("openssl").args([kind, "-noout", "-hash", "-in"]).arg(pem_path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn certificate_hashes_match_openssl_for_awkward_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let subjects = [
        "/CN=plain",
        "/O=Lightwell/OU=corp.example/CN=corp.example root CA",
        "/CN=  Mixed   CASE\tand Spaces  /O=ACME",
        "/C=US/ST=New York/L=New York/O=Example, Inc./CN=www.example.com",
        "/CN=Ünïcödé Root/O=Grüße",
        "/DC=corp/DC=example/CN=Users",
    ];
    for (i, subject) in subjects.iter().enumerate() {
        let (key, cert) = (dir.path().join(format!("{i}.key")), dir.path().join(format!("{i}.pem")));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-utf8", "-subj", subject, "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let pem = std::fs::read(&cert).unwrap();
        let (_, parsed) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let ours = format!("{:08x}", certificate_subject_hash(&parsed.contents).unwrap());
        assert_eq!(ours, openssl_hash("x509", &cert), "subject {subject}");
    }
}

#[test]
fn crl_and_ca_hashes_of_our_own_hierarchy_match_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let h = common::hierarchy(KeyAlgorithm::EcdsaP256, common::now());
    let cert = dir.path().join("issuing.pem");
    std::fs::write(&cert, h.issuing.certificate().to_pem()).unwrap();
    let now = common::now();
    let spec = CrlSpec {
        number: 1,
        this_update: now,
        next_update: now + time::Duration::days(7),
        distribution_point: Some(common::ISSUING_CRL_URL),
        revoked: &[],
    };
    let built = crl::build(&h.issuing, &spec).unwrap();
    let crl_path = dir.path().join("issuing.crl.pem");
    std::fs::write(&crl_path, built.to_pem()).unwrap();
    let ca_hash = format!("{:08x}", certificate_subject_hash(h.issuing.certificate().der()).unwrap());
    let crl_hash = format!("{:08x}", crl_issuer_hash(built.der()).unwrap());
    assert_eq!(ca_hash, openssl_hash("x509", &cert));
    assert_eq!(crl_hash, openssl_hash("crl", &crl_path));
    assert_eq!(ca_hash, crl_hash, "a CRL hashes like its issuer");
}
