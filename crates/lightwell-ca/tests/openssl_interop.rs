//! Interoperability with OpenSSL, an independent X.509 implementation. This
//! file needs `openssl` (the OpenSSL 3 command-line tool) on the PATH or at
//! /usr/bin/openssl; that outside dependency is why it is a separate test.
#![allow(clippy::unwrap_used)] // a panic in a test is a failing test
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use lightwell_ca::crl::Crl;
use lightwell_ca::csr::CertificateRequest;
use lightwell_ca::{Error, Profile, pem};

fn openssl() -> Command {
    let path = if Path::new("/usr/bin/openssl").exists() { "/usr/bin/openssl" } else { "openssl" };
    Command::new(path)
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write file");
    path
}

/// `openssl verify -x509_strict -purpose ... -CAfile root -untrusted inter leaf [-crl_check_all -CRLfile crls]`.
/// Returns whether it succeeded and what it printed.
fn openssl_verify(dir: &Path, h: &Hierarchy, leaf_der: &[u8], purpose: &str, crls: &[&Crl]) -> (bool, String) {
    let root = write(dir, "root.pem", &h.root.certificate().to_pem());
    let inter = write(dir, "inter.pem", &h.issuing.certificate().to_pem());
    let leaf = write(dir, "leaf.pem", &pem::encode("CERTIFICATE", leaf_der));
    let mut command = openssl();
    command.args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"]).arg(&root).arg("-untrusted").arg(&inter);
    if !crls.is_empty() {
        let all: String = crls.iter().map(|c| c.to_pem()).collect();
        command.arg("-crl_check_all").arg("-CRLfile").arg(write(dir, "crls.pem", &all));
    }
    let output = command.arg(&leaf).output().expect("openssl runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn purposes(profile: Profile) -> Vec<&'static str> {
    let mut out = Vec::new();
    if profile.server_auth() {
        out.push("sslserver");
    }
    if profile.client_auth() {
        out.push("sslclient");
    }
    out
}

#[test]
fn openssl_verifies_every_profile_and_key_type_and_sees_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let now = now();
    let csr_keys: Vec<_> = CSR_KEYS.iter().map(|k| (k, csr_key(*k))).collect();
    for ca_key in CA_KEYS {
        let h = hierarchy(ca_key, now);
        let root_crl = crl_of(&h.root, None, 1, &[], now);
        for (kind, key) in &csr_keys {
            for profile in Profile::ALL {
                let what = format!("CA {ca_key}, CSR key {kind:?}, profile {profile}");
                let (leaf, serial) = issue(&h.issuing, &simple_csr(key, HOST), &machine_subject(), profile, now);
                let empty = crl_of(&h.issuing, Some(ISSUING_CRL_URL), 1, &[], now);
                let revoking = crl_of(&h.issuing, Some(ISSUING_CRL_URL), 2, &[serial], now);
                for purpose in purposes(profile) {
                    let (ok, out) = openssl_verify(dir.path(), &h, &leaf, purpose, &[]);
                    assert!(ok && out.contains(": OK"), "{what} {purpose}: {out}");
                    let (ok, out) = openssl_verify(dir.path(), &h, &leaf, purpose, &[&root_crl, &empty]);
                    assert!(ok, "{what} {purpose} with empty CRLs: {out}");
                    let (ok, out) = openssl_verify(dir.path(), &h, &leaf, purpose, &[&root_crl, &revoking]);
                    assert!(!ok && out.contains("certificate revoked"), "{what} {purpose} revoked: {out}");
                }
            }
        }
    }
}

#[test]
fn openssl_refuses_a_leaf_for_a_purpose_its_profile_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let now = now();
    let h = hierarchy(lightwell_ca::KeyAlgorithm::EcdsaP256, now);
    let (leaf, _) =
        issue(&h.issuing, &simple_csr(&csr_key(CsrKey::P256), "alice"), &user_subject(), Profile::Client, now);
    let (ok, out) = openssl_verify(dir.path(), &h, &leaf, "sslserver", &[]);
    assert!(!ok && out.contains("unsuitable certificate purpose"), "{out}");
}

#[test]
fn revoking_the_issuing_ca_fails_every_leaf_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let now = now();
    let h = hierarchy(lightwell_ca::KeyAlgorithm::EcdsaP384, now);
    let issuing_crl = crl_of(&h.issuing, Some(ISSUING_CRL_URL), 1, &[], now);
    let root_crl = crl_of(&h.root, None, 2, &[h.issuing.certificate().serial().unwrap()], now);
    for (kind, subject, profile) in
        [(CsrKey::P256, machine_subject(), Profile::ServerClient), (CsrKey::Ed25519, user_subject(), Profile::Client)]
    {
        let (leaf, _) = issue(&h.issuing, &simple_csr(&csr_key(kind), "x"), &subject, profile, now);
        let (ok, out) = openssl_verify(dir.path(), &h, &leaf, "sslclient", &[&root_crl, &issuing_crl]);
        assert!(!ok && out.contains("certificate revoked"), "{out}");
    }
}

#[test]
fn openssl_reads_the_crl_as_lightwell_describes_it() {
    let dir = tempfile::tempdir().unwrap();
    let now = now();
    let h = hierarchy(lightwell_ca::KeyAlgorithm::Rsa3072, now);
    let serial = lightwell_ca::Serial::random().unwrap();
    let crl = crl_of(&h.issuing, Some(ISSUING_CRL_URL), 42, std::slice::from_ref(&serial), now);
    let crl_path = write(dir.path(), "crl.pem", &crl.to_pem());
    let issuer = write(dir.path(), "issuer.pem", &h.issuing.certificate().to_pem());
    let output =
        openssl().args(["crl", "-noout", "-text", "-in"]).arg(&crl_path).arg("-CAfile").arg(&issuer).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{text}");
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("Version 2 (0x1)"), "{text}");
    assert!(text.contains("X509v3 CRL Number: \n                42"), "{text}");
    assert!(text.contains("X509v3 Issuing Distribution Point: critical"), "{text}");
    assert!(text.contains(&format!("URI:{ISSUING_CRL_URL}")), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    assert!(text.contains(&serial.to_hex().to_uppercase()), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
}

#[test]
fn openssl_reads_every_entry_of_a_large_crl() {
    use lightwell_ca::Serial;
    use lightwell_ca::crl::{self, CrlSpec, RevocationReason, RevokedCertificate};
    use time::macros::datetime;

    let dir = tempfile::tempdir().unwrap();
    let now = now();
    let h = hierarchy(lightwell_ca::KeyAlgorithm::EcdsaP256, now);
    let edge_serials = [Serial::from_bytes(&[1]).unwrap(), Serial::from_bytes(&[0, 0x80]).unwrap()];
    let revoked: Vec<RevokedCertificate> = (0..70_000usize)
        .map(|i| RevokedCertificate {
            serial: edge_serials.get(i).cloned().unwrap_or_else(|| Serial::random().unwrap()),
            revoked_at: if i % 2 == 0 { now } else { datetime!(2050-01-01 00:00:00 UTC) },
            reason: RevocationReason::ALL[i % RevocationReason::ALL.len()],
        })
        .collect();
    let spec = CrlSpec {
        number: 5,
        this_update: now,
        next_update: now + crl::DEFAULT_VALIDITY,
        distribution_point: Some(ISSUING_CRL_URL),
        revoked: &revoked,
    };
    let crl = crl::build(&h.issuing, &spec).unwrap();
    let crl_path = dir.path().join("crl.der");
    std::fs::write(&crl_path, crl.der()).unwrap();
    let issuer = write(dir.path(), "issuer.pem", &h.issuing.certificate().to_pem());
    let output = openssl()
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&crl_path)
        .arg("-CAfile")
        .arg(&issuer)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && errors.contains("verify OK"), "{errors}");
    assert_eq!(text.matches("Serial Number: ").count(), revoked.len());
    assert!(text.contains("Serial Number: 01\n"), "one-octet serial");
    assert!(text.contains("Serial Number: 80\n"), "serial with a sign octet, which openssl does not print");
    assert!(text.contains("Revocation Date: Jan  1 00:00:00 2050 GMT"), "GeneralizedTime entry");
    let with_reason = revoked.iter().filter(|e| e.reason != RevocationReason::Unspecified).count();
    assert_eq!(text.matches("X509v3 CRL Reason Code:").count(), with_reason, "no reason code for unspecified");
    for name in ["Key Compromise", "CA Compromise", "Superseded", "Certificate Hold", "AA Compromise"] {
        assert!(text.contains(name), "{name}");
    }
}

#[test]
fn openssl_accepts_the_intermediate_csr_lightwell_makes() {
    let dir = tempfile::tempdir().unwrap();
    let key = lightwell_ca::SigningKey::generate(lightwell_ca::KeyAlgorithm::EcdsaP256).unwrap();
    let csr =
        lightwell_ca::ca::intermediate_csr(&lightwell_ca::ca::CaSpec::intermediate(TENANT, "issuing"), &key).unwrap();
    let path = write(dir.path(), "inter.csr", &pem::encode("CERTIFICATE REQUEST", &csr));
    let output = openssl().args(["req", "-verify", "-noout", "-text", "-in"]).arg(&path).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{text}");
    assert!(text.contains("verify OK") || text.contains("Certificate request self-signature verify OK"), "{text}");
    assert!(text.contains("O = Lightwell, OU = corp.example, CN = issuing"), "{text}");
    assert!(text.contains("CA:TRUE"), "{text}");
}

#[test]
fn csrs_with_keys_openssl_can_make_but_lightwell_refuses_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 2] = [
        (&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], "P-521"),
        (&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], "RSA-1024"),
    ];
    for (keygen, name) in cases {
        let key = dir.path().join("key.pem");
        let status = openssl().args(keygen).arg("-out").arg(&key).output().unwrap();
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
        let csr = dir.path().join("req.csr");
        let status = openssl()
            .args(["req", "-new", "-subj", "/CN=node1.corp.example", "-key"])
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .output()
            .unwrap();
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
        let err = CertificateRequest::parse(&std::fs::read(&csr).unwrap()).unwrap_err();
        assert!(matches!(&err, Error::UnsupportedKey { found, .. } if found == name), "{err}");
    }
}

/// RFC 5280 5.2.4: a revocation after the base CRL was signed is seen from
/// the delta CRL alone, by `openssl verify -crl_check -use_deltas`; without
/// the delta the base still accepts the certificate.
#[test]
fn openssl_sees_a_revocation_listed_only_in_the_delta_crl() {
    use lightwell_ca::crl::{self, CrlSpec, RevocationReason, RevokedCertificate};

    const DELTA_URL: &str = "http://pki.corp.example/tenants/corp.example/ca/issuing/delta.crl";
    let dir = tempfile::tempdir().unwrap();
    let now = now();
    let h = hierarchy(lightwell_ca::KeyAlgorithm::EcdsaP256, now);
    let (leaf, serial) =
        issue(&h.issuing, &simple_csr(&csr_key(CsrKey::P256), HOST), &machine_subject(), Profile::ServerClient, now);
    let window = |number, revoked| CrlSpec {
        number,
        this_update: now - time::Duration::minutes(1),
        next_update: now + crl::DEFAULT_VALIDITY,
        distribution_point: Some(ISSUING_CRL_URL),
        revoked,
    };
    let base = crl::build_complete(&h.issuing, &window(7, &[]), DELTA_URL).unwrap();
    let entry = [RevokedCertificate { serial, revoked_at: now, reason: RevocationReason::KeyCompromise }];
    let delta = crl::build_delta(&h.issuing, &window(8, &entry), 7).unwrap();

    let verify = |crls: &[&Crl]| {
        let root = write(dir.path(), "root.pem", &h.root.certificate().to_pem());
        let inter = write(dir.path(), "inter.pem", &h.issuing.certificate().to_pem());
        let leaf = write(dir.path(), "leaf.pem", &pem::encode("CERTIFICATE", &leaf));
        let all: String = crls.iter().map(|c| c.to_pem()).collect();
        let output = openssl()
            .args(["verify", "-x509_strict", "-crl_check", "-use_deltas", "-CAfile"])
            .arg(&root)
            .arg("-untrusted")
            .arg(&inter)
            .arg("-CRLfile")
            .arg(write(dir.path(), "crls.pem", &all))
            .arg(&leaf)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    };
    let (ok, out) = verify(&[&base]);
    assert!(ok, "the base alone does not list it: {out}");
    let (ok, out) = verify(&[&base, &delta]);
    assert!(!ok && out.contains("certificate revoked"), "base + delta: {out}");

    let crl_path = write(dir.path(), "delta.pem", &delta.to_pem());
    let output = openssl().args(["crl", "-noout", "-text", "-in"]).arg(&crl_path).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("X509v3 Delta CRL Indicator: critical"), "{text}");
    let crl_path = write(dir.path(), "base.pem", &base.to_pem());
    let output = openssl().args(["crl", "-noout", "-text", "-in"]).arg(&crl_path).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("X509v3 Freshest CRL") && text.contains(DELTA_URL), "{text}");
}
