//! Lightwell's certificate authority primitives.
//!
//! Everything here is pure and synchronous: no storage, no network, and the
//! current time is always a parameter. The service layer (`lightwell-core`)
//! decides *what* to issue; this crate computes it.
#![forbid(unsafe_code)]

pub mod fingerprint;
pub mod kek;
pub mod pem;
pub mod random;
pub mod server_tls;

/// Errors from the CA primitives.
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
}
