//! Rows of the certificate authority: CAs, issued certificates, CRLs.
//! Times are Unix seconds (UTC); serials are lower-case hex.

use crate::{PrincipalKind, TenantId};

/// Where a CA sits in its tenant's hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaRole {
    /// A self-signed root.
    Root,
    /// An intermediate (issuing CA) under a root.
    Intermediate,
}

impl CaRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Intermediate => "intermediate",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Root, Self::Intermediate].into_iter().find(|r| r.as_str() == s)
    }
}

/// Whether a CA may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaStatus {
    /// Signs (if it is the default issuing CA) and is trusted.
    Active,
    /// Revoked: listed on its parent's CRL; signs CRLs only.
    Revoked,
    /// Created by a root rotation and not yet activated: in the trust bundle, issues nothing.
    Pending,
    /// Replaced by an activated root rotation: still in the trust bundle
    /// until the last certificate under it expires; signs CRLs only.
    Superseded,
    /// Dropped from the trust bundle after a rotation, once every certificate under it expired.
    Retired,
}

impl CaStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Pending => "pending",
            Self::Superseded => "superseded",
            Self::Retired => "retired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Revoked, Self::Pending, Self::Superseded, Self::Retired]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A CA of a tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct CaRecord {
    /// Stable id (UUID); part of the CA's plain-HTTP URLs.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique per tenant regardless of case.
    pub name: String,
    /// The CA that signed this one (`None` for a root).
    pub parent_id: Option<String>,
    /// Root or intermediate.
    pub role: CaRole,
    /// The CA certificate, DER.
    pub cert_der: Vec<u8>,
    /// The PKCS#8 private key sealed under the KEK (context: the CA id).
    pub sealed_key: Vec<u8>,
    /// Active, revoked, pending, superseded or retired.
    pub status: CaStatus,
    /// Whether this is the tenant's default issuing CA.
    pub is_default: bool,
    /// The CRL Number the next CRL of this CA gets.
    pub next_crl_number: i64,
    /// When the CA was revoked.
    pub revoked_at: Option<i64>,
    /// Why (a revocation reason name).
    pub revocation_reason: Option<String>,
    /// Creation time.
    pub created_at: i64,
}

impl std::fmt::Debug for CaRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The sealed key is left out, as for `CaRequestRecord`.
        f.debug_struct("CaRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("parent_id", &self.parent_id)
            .field("role", &self.role)
            .field("status", &self.status)
            .field("is_default", &self.is_default)
            .field("next_crl_number", &self.next_crl_number)
            .finish_non_exhaustive()
    }
}

/// An issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Serial, lower-case hex; unique across the store.
    pub serial: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The issuing CA.
    pub ca_id: String,
    /// The principal the certificate is bound to.
    pub principal_id: String,
    /// Its kind.
    pub principal_kind: PrincipalKind,
    /// Its name at issuance.
    pub principal_name: String,
    /// The profile (`server`, `client`, `server-client`).
    pub profile: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Start of validity.
    pub not_before: i64,
    /// End of validity.
    pub not_after: i64,
    /// Who asked for it (audit name).
    pub requester: String,
    /// Issuance time.
    pub created_at: i64,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// Why (a revocation reason name).
    pub revocation_reason: Option<String>,
}

/// Which certificates to list; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateFilter {
    /// Issued by this CA.
    pub ca_id: Option<String>,
    /// Bound to this principal.
    pub principal_id: Option<String>,
    /// Revoked (`Some(true)`) or not (`Some(false)`).
    pub revoked: Option<bool>,
    /// Requested by this actor (`machine:node1.corp.example`), whoever it names.
    pub requester: Option<String>,
}

/// A CRL entry as stored: a revoked certificate's serial, time and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial, lower-case hex.
    pub serial: String,
    /// When it was revoked, Unix seconds.
    pub revoked_at: i64,
    /// RFC 5280 reason name, if recorded.
    pub reason: Option<String>,
}

/// The latest CRL of a CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRecord {
    /// The CA that signed it.
    pub ca_id: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Its CRL Number.
    pub number: i64,
    /// The CRL, DER.
    pub der: Vec<u8>,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: i64,
}

/// A CA's latest delta CRL: the revocations since the complete CRL numbered
/// `base_number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaCrlRecord {
    /// The delta CRL (its own number, DER, thisUpdate, nextUpdate).
    pub crl: CrlRecord,
    /// The CRL Number of the complete CRL it applies to.
    pub base_number: i64,
    /// That complete CRL's thisUpdate (Unix seconds).
    pub base_this_update: i64,
}

/// A CA whose stored CRL misses revocations acknowledged since it was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlPending {
    /// The CA.
    pub ca_id: String,
    /// Grows with every revocation that marks the CA; a signer clears only the generation it read.
    pub generation: i64,
    /// When the CA was first marked (Unix seconds).
    pub marked_at: i64,
}

/// The delegated OCSP responder of a CA: a short-lived certificate the CA
/// signed (EKU id-kp-OCSPSigning) and its key. One per CA; rotation replaces it.
#[derive(Clone, PartialEq, Eq)]
pub struct OcspResponderRecord {
    /// The CA it answers for.
    pub ca_id: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The responder certificate, DER.
    pub cert_der: Vec<u8>,
    /// The PKCS#8 private key sealed under the KEK (context: `ocsp:` and the CA id).
    pub sealed_key: Vec<u8>,
    /// Start of the certificate's validity.
    pub not_before: i64,
    /// End of the certificate's validity.
    pub not_after: i64,
    /// When it was issued.
    pub created_at: i64,
}

impl std::fmt::Debug for OcspResponderRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The sealed key is left out, as for `CaRecord`.
        f.debug_struct("OcspResponderRecord")
            .field("ca_id", &self.ca_id)
            .field("tenant_id", &self.tenant_id)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// An intermediate whose key Lightwell generated and sealed, waiting for an
/// enterprise CA to sign its CSR. Installing the signed certificate turns it
/// into a [`CaRecord`] with the same id.
#[derive(Clone, PartialEq, Eq)]
pub struct CaRequestRecord {
    /// Stable id (UUID); becomes the CA's id, and is the sealed key's context.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name the CA will have, unique per tenant regardless of case.
    pub name: String,
    /// The PKCS#10 request, DER.
    pub csr_der: Vec<u8>,
    /// The PKCS#8 private key sealed under the KEK (context: the id).
    pub sealed_key: Vec<u8>,
    /// Creation time.
    pub created_at: i64,
}

impl std::fmt::Debug for CaRequestRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The sealed key is left out: it is useless without the KEK, but logs need not carry it.
        f.debug_struct("CaRequestRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}
