//! CA objects over LDAP (RFC 4523): every CA under
//! `cn=Certificate-Authorities,cn=Configuration` with `cACertificate;binary`,
//! `certificateRevocationList;binary` and (issuing CAs) `deltaRevocationList;binary`, and users' active certificates as
//! `userCertificate;binary` — byte-identical to what the API serves.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use lightwell_proto::RevokeRequest;
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, ADMIN_PASSWORD};
use rustls_pki_types::pem::PemObject;

const T: &str = "corp.example";
const ADMIN_DN: &str = "uid=administrator,cn=Users,dc=corp,dc=example";

/// Runs ldapsearch (LDIF, no wrapping) and returns entries as DN → attribute → values (binary decoded).
fn search(server: &TestServer, base: &str, filter: &str, attrs: &[&str]) -> lightwell_testkit::ldap::Ldif {
    let url = server.ldaps_url();
    let mut args =
        vec!["-LLL", "-o", "ldif-wrap=no", "-x", "-H", &url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, "-b", base, filter];
    args.extend_from_slice(attrs);
    let out = server.ldap_tool("ldapsearch", &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    lightwell_testkit::ldap::parse_ldif(&String::from_utf8(out.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn roots_crls_and_user_certificates_over_ldap_equal_the_apis() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::user(&server, &admin, T, "alice").await;
    // A revocation, so the issuing CA's CRL has an entry.
    let (_, csr) = pki::Files::new().csr("a", "ec:P-256", "/CN=alice", &[]);
    let req = lightwell_proto::IssueCertificateRequest {
        csr: csr.clone(),
        principal: Some("user/alice".into()),
        ..Default::default()
    };
    let first = admin.issue_certificate(T, &req).await.unwrap();
    let kept = admin.issue_certificate(T, &req).await.unwrap();
    admin
        .revoke_certificate(T, &first.serial, &RevokeRequest { reason: Some("key-compromise".into()), principal: None })
        .await
        .unwrap();

    let cas = search(
        &server,
        "cn=Certificate-Authorities,cn=Configuration,dc=corp,dc=example",
        "(objectClass=pkiCA)",
        &["cACertificate;binary", "certificateRevocationList;binary", "deltaRevocationList;binary", "entryUUID"],
    );
    assert_eq!(cas.len(), 2, "the root and the issuing CA: {cas:?}");
    let trust = server.client().trust(T).await.unwrap();
    let bundle: Vec<Vec<u8>> = rustls_pki_types::CertificateDer::pem_slice_iter(trust.bundle.as_bytes())
        .map(|c| c.unwrap().to_vec())
        .collect();
    let api_crls: BTreeMap<String, Vec<u8>> = trust
        .crls
        .iter()
        .map(|c| {
            (
                c.ca_id.clone(),
                rustls_pki_types::CertificateRevocationListDer::from_pem_slice(c.pem.as_bytes()).unwrap().to_vec(),
            )
        })
        .collect();
    let infos = admin.list_cas(T).await.unwrap();
    let mut roots_seen = 0;
    for (dn, attrs) in &cas {
        let id = String::from_utf8(attrs["entryUUID"][0].clone()).unwrap();
        let cert = &attrs["cACertificate;binary"][0];
        let crl = &attrs["certificateRevocationList;binary"][0];
        assert_eq!(Some(crl), api_crls.get(&id), "{dn}: the CRL over LDAP is the API's, byte for byte");
        if bundle.contains(cert) {
            roots_seen += 1;
        }
        let info = infos.iter().find(|i| i.id == id).unwrap();
        // An issuing CA's delta CRL (RFC 4523 deltaRevocationList) is the PKI listener's; a root has none.
        let delta_url = format!("{}/pki/{T}/ca/{id}.delta.crl", server.pki_url());
        let (status, served_delta) = pki::http_get(&delta_url).await;
        match info.role.as_str() {
            "intermediate" => {
                assert_eq!(status, 200, "GET {delta_url}");
                assert_eq!(attrs.get("deltaRevocationList;binary"), Some(&vec![served_delta]), "{dn}");
            }
            _ => assert_eq!((status, attrs.get("deltaRevocationList;binary")), (404, None), "{dn}"),
        }
        let (status, api_cert) = pki::http_get(&info.certificate_url).await;
        assert_eq!(status, 200);
        assert_eq!(cert, &api_cert, "{dn}: the CA certificate over LDAP is the one served over plain HTTP");
    }
    assert_eq!(roots_seen, bundle.len(), "every root of the trust bundle is published");

    // Alice's active certificate (and not the revoked one) is her userCertificate.
    let users = search(&server, "cn=Users,dc=corp,dc=example", "(uid=alice)", &["userCertificate;binary"]);
    let certs = &users["uid=alice,cn=Users,dc=corp,dc=example"]["userCertificate;binary"];
    let pem_der = |pem: &str| rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec();
    assert_eq!(certs, &vec![pem_der(&kept.pem)]);

    // CA objects are read only over LDAP.
    let ldif = server.scratch().join("del.ldif");
    std::fs::write(&ldif, "dn: cn=Certificate-Authorities,cn=Configuration,dc=corp,dc=example\nchangetype: delete\n")
        .unwrap();
    let out = server.ldap_tool(
        "ldapmodify",
        &["-x", "-H", &server.ldaps_url(), "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, "-f", ldif.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(53), "unwillingToPerform: {}", String::from_utf8_lossy(&out.stderr));
}
