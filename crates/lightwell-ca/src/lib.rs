//! Lightwell's certificate authority primitives.
//!
//! Everything here is pure and synchronous: no storage, no network, and the
//! current time is always a parameter (its source, the [`clock::Clock`]
//! trait shared by the server and the agent, is defined here too). The
//! service layer (`lightwell-core`) decides *what* to issue; this crate
//! computes it.
//!
//! The path of a leaf: [`csr::CertificateRequest::parse`] reads and checks a
//! PKCS#10 request, the service layer binds identity into a
//! [`leaf::LeafSubject`], and [`leaf::issue`] lays the certificate out, runs
//! the pre-issuance [`lint`] on exactly the bytes to be signed, and only then
//! signs with the issuing CA's key. CA certificates ([`ca`]) and CRLs
//! ([`crl`]) take the same path.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Tests may unwrap: a panic there is a failing test, not a crashed server.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod ca;
pub mod clock;
pub mod constraints;
pub mod crl;
pub mod csr;
mod der;
pub mod fingerprint;
pub mod issuer;
pub mod kek;
pub mod keys;
pub mod leaf;
pub mod lint;
mod name;
pub mod ocsp;
pub mod openssl_hash;
pub mod pem;
pub mod profile;
pub mod public_key;
pub mod random;
pub mod serial;
pub mod server_tls;
mod signing;
pub mod spiffe;
mod timestamp;
mod urls;

use time::OffsetDateTime;

pub use crate::issuer::{CaCertificate, Issuer};
pub use crate::keys::{KeyAlgorithm, SigningKey};
pub use crate::lint::LintRule;
pub use crate::profile::Profile;
pub use crate::public_key::{PublicKey, PublicKeyAlgorithm};
pub use crate::serial::Serial;
pub use crate::spiffe::SpiffeId;

/// Errors from the CA primitives. Each variant names what was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Building or signing a certificate failed.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Sealing or opening encrypted key material failed (wrong key or tampered data).
    #[error("key material could not be decrypted: wrong key-encryption key or corrupted data")]
    Unseal,
    /// Encrypted key material or a key file has the wrong format.
    #[error("malformed key material: {0}")]
    Malformed(&'static str),
    /// The system random generator failed.
    #[error("random number generator failed")]
    Random,
    /// A key algorithm name is not one of `p256`, `p384`, `ed25519`, `rsa3072`, `rsa4096`.
    #[error("unknown key algorithm {0:?} (expected p256, p384, ed25519, rsa3072 or rsa4096)")]
    UnknownKeyAlgorithm(String),
    /// A profile name is not one Lightwell knows.
    #[error("unknown certificate profile {0:?} (expected server, client or server-client)")]
    UnknownProfile(String),
    /// A revocation reason name or code is not one a CRL may carry.
    #[error(
        "unknown revocation reason {0:?} (one of unspecified, key-compromise, ca-compromise, affiliation-changed, superseded, cessation-of-operation, certificate-hold, privilege-withdrawn, aa-compromise; RFC 5280 names such as keyCompromise work too)"
    )]
    UnknownRevocationReason(String),
    /// A public or private key is of a type or size Lightwell does not accept.
    #[error("unsupported key: {found} (accepted: {accepted})")]
    UnsupportedKey {
        /// What the key is, for example `P-521` or `RSA-1024`.
        found: String,
        /// What would have been accepted in this place.
        accepted: &'static str,
    },
    /// A CSR is larger than [`csr::MAX_CSR_BYTES`]; it was not parsed.
    #[error("certificate signing request is {size} bytes, above the limit of {limit} bytes")]
    CsrTooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A CSR is not well-formed PEM or DER PKCS#10.
    #[error("malformed certificate signing request: {0}")]
    MalformedCsr(String),
    /// A CSR's self-signature does not verify with the key it carries.
    #[error("certificate signing request signature does not verify with its own public key")]
    CsrSignatureInvalid,
    /// A signature algorithm Lightwell does not accept (for example SHA-1 based).
    #[error("unsupported signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(String),
    /// A certificate could not be parsed.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// A certificate was offered as a CA but is not one.
    #[error("certificate is not a CA certificate: {0}")]
    NotACa(&'static str),
    /// A CA certificate's key usage does not allow signing CRLs.
    #[error("CA certificate's key usage does not include cRLSign")]
    CaCannotSignCrls,
    /// The parent CA's pathLenConstraint leaves no room for the requested subordinate CA.
    #[error("parent CA's pathLenConstraint of {parent} does not allow a subordinate CA with this path length")]
    PathLength {
        /// The parent's pathLenConstraint.
        parent: u32,
    },
    /// A private key does not belong to the certificate it was paired with.
    #[error("private key does not match the certificate's public key")]
    KeyMismatch,
    /// A signed CA certificate does not certify the key of the CSR it answers.
    #[error("signed certificate does not certify the public key of the certificate signing request")]
    CsrKeyMismatch,
    /// A self-signed certificate's signature does not verify with its own key.
    #[error("self-signed certificate's signature does not verify")]
    SelfSignatureInvalid,
    /// A certificate is not valid at the time given.
    #[error("certificate is not valid at {now} (valid from {not_before} to {not_after})")]
    NotValidAt {
        /// The time checked.
        now: OffsetDateTime,
        /// Start of the certificate's validity.
        not_before: OffsetDateTime,
        /// End of the certificate's validity.
        not_after: OffsetDateTime,
    },
    /// A requested notAfter lies beyond the issuing CA's notAfter.
    #[error("requested notAfter {not_after} is beyond the issuer's notAfter {issuer_not_after}")]
    BeyondIssuer {
        /// The requested end of validity.
        not_after: OffsetDateTime,
        /// The issuing CA's end of validity.
        issuer_not_after: OffsetDateTime,
    },
    /// A validity window or CRL update window is empty or reversed.
    #[error("invalid time window: {0}")]
    InvalidTimeWindow(&'static str),
    /// A time cannot be written into a certificate (before 1950 or after 9999).
    #[error("time {0} cannot be encoded in a certificate")]
    TimeOutOfRange(OffsetDateTime),
    /// A serial number is not positive, not minimally encoded, or longer than 20 octets.
    #[error("invalid serial number: {0}")]
    InvalidSerial(&'static str),
    /// A SPIFFE ID does not follow the SPIFFE specification.
    #[error("invalid SPIFFE ID {id:?}: {reason}")]
    InvalidSpiffeId {
        /// The refused input.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A name (DNS name, e-mail, URL, subject attribute) cannot be put in a certificate.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidName {
        /// What kind of name, for example `DNS name` or `CRL URL`.
        kind: &'static str,
        /// The refused input.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The pre-issuance lint refused a certificate or CRL before it was signed.
    #[error("pre-issuance lint {rule} failed: {detail}")]
    Lint {
        /// The RFC 5280 rule that failed.
        rule: LintRule,
        /// What exactly was wrong.
        detail: String,
    },
    /// An OCSP request is not DER this responder reads, or breaks a limit
    /// (size, number of CertIDs, hash algorithm, nonce length).
    #[error("malformed OCSP request: {0}")]
    MalformedOcspRequest(&'static str),
    /// An OCSP response is not about the certificate asked, or not signed
    /// by its CA or a responder that CA authorised.
    #[error("OCSP response refused: {0}")]
    OcspResponseRefused(&'static str),
    /// A CRL delta (from the network) does not apply to the CRL held, or
    /// the CRL it makes does not verify: fetch the whole CRL instead.
    #[error("CRL delta refused: {0}")]
    CrlDelta(&'static str),
    /// Internal encoding went wrong; a bug, never caused by input.
    #[error("internal encoding error: {0}")]
    Encoding(&'static str),
}
