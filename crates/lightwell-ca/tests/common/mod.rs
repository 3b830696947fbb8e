//! Setup shared by the integration tests: a tenant hierarchy, CSRs of every
//! accepted key type, leaves, CRLs, and verification with rustls-webpki.
#![allow(dead_code, unreachable_pub)] // each test file uses a different part

use std::net::IpAddr;

use lightwell_ca::ca::{self, CaSpec, ParentLinks};
use lightwell_ca::crl::{self, Crl, CrlSpec, RevocationReason, RevokedCertificate};
use lightwell_ca::csr::CertificateRequest;
use lightwell_ca::leaf::{self, LeafRequest, LeafSubject};
use lightwell_ca::{Issuer, KeyAlgorithm, Profile, Serial, SigningKey, SpiffeId};
use rustls_pki_types::{CertificateDer, UnixTime};
use time::{Duration, OffsetDateTime};

pub const TENANT: &str = "corp.example";
pub const HOST: &str = "node1.corp.example";
pub const ROOT_CRL_URL: &str = "http://pki.corp.example/tenants/corp.example/ca/root/crl";
pub const ROOT_CERT_URL: &str = "http://pki.corp.example/tenants/corp.example/ca/root/cert";
pub const ISSUING_CRL_URL: &str = "http://pki.corp.example/tenants/corp.example/ca/issuing/crl";
pub const ISSUING_CERT_URL: &str = "http://pki.corp.example/tenants/corp.example/ca/issuing/cert";

/// The issuing CA key types the matrix covers (RSA-4096 is tested once, separately).
pub const CA_KEYS: [KeyAlgorithm; 4] =
    [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Ed25519, KeyAlgorithm::Rsa3072];

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A tenant's root and default issuing CA.
pub struct Hierarchy {
    pub root: Issuer,
    pub issuing: Issuer,
}

pub fn hierarchy(algorithm: KeyAlgorithm, now: OffsetDateTime) -> Hierarchy {
    let root = ca::create_root(
        &CaSpec::root(TENANT, "corp.example root CA"),
        SigningKey::generate(algorithm).expect("root key"),
        now,
    )
    .expect("root CA");
    let issuing = ca::create_intermediate(
        &CaSpec::intermediate(TENANT, "corp.example issuing CA"),
        SigningKey::generate(algorithm).expect("issuing key"),
        &root,
        root_links(),
        now,
    )
    .expect("issuing CA");
    Hierarchy { root, issuing }
}

pub fn root_links() -> ParentLinks<'static> {
    ParentLinks { crl_url: ROOT_CRL_URL, ca_issuers_url: ROOT_CERT_URL }
}

/// Key types a CSR may carry.
#[derive(Debug, Clone, Copy)]
pub enum CsrKey {
    P256,
    P384,
    Ed25519,
    Rsa2048,
}

pub const CSR_KEYS: [CsrKey; 4] = [CsrKey::P256, CsrKey::P384, CsrKey::Ed25519, CsrKey::Rsa2048];

pub fn csr_key(kind: CsrKey) -> rcgen::KeyPair {
    match kind {
        CsrKey::P256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        CsrKey::P384 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        CsrKey::Ed25519 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519),
        CsrKey::Rsa2048 => rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048),
    }
    .expect("CSR key")
}

/// A CSR as a client would send it, with whatever the test wants in `params`.
pub fn csr_with(key: &rcgen::KeyPair, params: rcgen::CertificateParams) -> Vec<u8> {
    params.serialize_request(key).expect("CSR").der().to_vec()
}

pub fn simple_csr(key: &rcgen::KeyPair, common_name: &str) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    csr_with(key, params)
}

/// The machine `node1.corp.example` as the policy table of DESIGN section 2 binds it.
pub fn machine_subject() -> LeafSubject {
    LeafSubject {
        common_name: Some(HOST.into()),
        organizations: Vec::new(),
        organizational_unit: None,
        dns_names: vec![HOST.into(), "node1".into()],
        ip_addresses: vec!["192.0.2.10".parse::<IpAddr>().expect("ip")],
        emails: Vec::new(),
        spiffe_id: Some(SpiffeId::new(TENANT, &["machine", HOST]).expect("spiffe id")),
    }
}

/// The user `alice`.
pub fn user_subject() -> LeafSubject {
    LeafSubject {
        common_name: Some("alice".into()),
        organizations: Vec::new(),
        organizational_unit: None,
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        emails: vec!["alice@corp.example".into()],
        spiffe_id: Some(SpiffeId::new(TENANT, &["user", "alice"]).expect("spiffe id")),
    }
}

/// Issues a 24-hour leaf for `subject` from a CSR, backdated 5 minutes.
pub fn issue(
    issuer: &Issuer,
    csr_der: &[u8],
    subject: &LeafSubject,
    profile: Profile,
    now: OffsetDateTime,
) -> (Vec<u8>, Serial) {
    let request = CertificateRequest::parse(csr_der).expect("CSR parses");
    let serial = Serial::random().expect("serial");
    let der = leaf::issue(
        issuer,
        &LeafRequest {
            delta_crl_url: None,
            subject,
            public_key: request.public_key(),
            profile,
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::hours(24),
            serial: &serial,
            crl_url: ISSUING_CRL_URL,
            ca_issuers_url: ISSUING_CERT_URL,
            ocsp_url: None,
        },
    )
    .expect("leaf issues");
    (der, serial)
}

/// A CRL revoking `revoked` for key compromise; `url` is its issuing
/// distribution point (`None` for a root's full-scope CRL).
pub fn crl_of(issuer: &Issuer, url: Option<&str>, number: u64, revoked: &[Serial], now: OffsetDateTime) -> Crl {
    let entries: Vec<RevokedCertificate> = revoked
        .iter()
        .map(|serial| RevokedCertificate {
            serial: serial.clone(),
            revoked_at: now - Duration::minutes(1),
            reason: RevocationReason::KeyCompromise,
        })
        .collect();
    crl::build(
        issuer,
        &CrlSpec {
            number,
            this_update: now - Duration::minutes(1),
            next_update: now + crl::DEFAULT_VALIDITY,
            distribution_point: url,
            revoked: &entries,
        },
    )
    .expect("CRL builds")
}

pub fn unix_time(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(u64::try_from(t.unix_timestamp()).expect("after 1970")))
}

/// Verifies `leaf` up to `h.root` with rustls-webpki for every usage of the
/// profile, checking revocation of the whole chain when CRLs are given.
pub fn webpki_verify(
    h: &Hierarchy,
    leaf: &[u8],
    profile: Profile,
    crls: &[&Crl],
    now: OffsetDateTime,
) -> Result<(), webpki::Error> {
    let root = CertificateDer::from(h.root.certificate().der());
    let anchors = [webpki::anchor_from_trusted_cert(&root)?];
    let intermediates = [CertificateDer::from(h.issuing.certificate().der().to_vec())];
    let leaf = CertificateDer::from(leaf);
    let ee = webpki::EndEntityCert::try_from(&leaf)?;
    let parsed: Vec<webpki::CertRevocationList<'_>> = crls
        .iter()
        .map(|c| webpki::BorrowedCertRevocationList::from_der(c.der()).map(Into::into))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&webpki::CertRevocationList<'_>> = parsed.iter().collect();
    let mut usages = Vec::new();
    if profile.server_auth() {
        usages.push(webpki::KeyUsage::server_auth());
    }
    if profile.client_auth() {
        usages.push(webpki::KeyUsage::client_auth());
    }
    for usage in usages {
        let revocation = (!refs.is_empty()).then(|| {
            webpki::RevocationOptionsBuilder::new(&refs)
                .expect("CRLs given")
                .with_depth(webpki::RevocationCheckDepth::Chain)
                .with_status_policy(webpki::UnknownStatusPolicy::Deny)
                .build()
        });
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            unix_time(now),
            usage,
            revocation,
            None,
        )?;
    }
    Ok(())
}
