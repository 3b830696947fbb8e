//! An ECDSA P-256 root and issuing CA made in this process with
//! `lightwell-ca`, the code `lightwelld` issues with: the crypto-limit
//! baseline, the CRLs of the CRL benchmark and the certificates seeded by
//! the scale benchmark.

use anyhow::Result;
use lightwell_ca::ca::{self, CaSpec, ParentLinks};
use lightwell_ca::csr::CertificateRequest;
use lightwell_ca::leaf::{self, LeafRequest, LeafSubject};
use lightwell_ca::{Issuer, KeyAlgorithm, Profile, Serial, SigningKey, SpiffeId};
use time::{Duration, OffsetDateTime};

/// URLs of the shape `lightwelld` writes into certificates.
const CRL_URL: &str = "http://127.0.0.1:8080/pki/bench.example/ca/00000000-0000-0000-0000-000000000000.crl";
const CA_URL: &str = "http://127.0.0.1:8080/pki/bench.example/ca/00000000-0000-0000-0000-000000000000.crt";

/// A tenant-like CA pair.
pub(crate) struct LocalCa {
    /// The issuing CA (what signs leaves and CRLs).
    pub(crate) issuing: Issuer,
}

impl LocalCa {
    /// A new P-256 root and issuing CA for `tenant`.
    pub(crate) fn new(tenant: &str) -> Result<Self> {
        let now = OffsetDateTime::now_utc();
        let root = ca::create_root(
            &CaSpec::root(tenant, &format!("{tenant} root CA")),
            SigningKey::generate(KeyAlgorithm::EcdsaP256)?,
            now,
        )?;
        let links = ParentLinks { crl_url: CRL_URL, ca_issuers_url: CA_URL };
        let issuing = ca::create_intermediate(
            &CaSpec::intermediate(tenant, &format!("{tenant} issuing CA")),
            SigningKey::generate(KeyAlgorithm::EcdsaP256)?,
            &root,
            links,
            now,
        )?;
        Ok(Self { issuing })
    }

    /// Parses the CSR (verifying its signature) and issues a one-day client
    /// certificate for user `name` of `tenant`, as `lightwelld` would.
    pub(crate) fn issue(&self, tenant: &str, name: &str, csr_pem: &[u8]) -> Result<Vec<u8>> {
        let csr = CertificateRequest::parse(csr_pem)?;
        let subject = LeafSubject {
            common_name: Some(name.to_owned()),
            organizations: Vec::new(),
            organizational_unit: None,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            emails: Vec::new(),
            spiffe_id: Some(SpiffeId::new(tenant, &["user", name])?),
        };
        let now = OffsetDateTime::now_utc();
        let der = leaf::issue(
            &self.issuing,
            &LeafRequest {
                delta_crl_url: None,
                subject: &subject,
                public_key: csr.public_key(),
                profile: Profile::Client,
                not_before: now - Duration::minutes(5),
                not_after: now + Duration::days(1),
                serial: &Serial::random()?,
                crl_url: CRL_URL,
                ca_issuers_url: CA_URL,
                ocsp_url: None,
            },
        )?;
        Ok(der)
    }
}
