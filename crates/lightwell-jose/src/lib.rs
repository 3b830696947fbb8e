//! JOSE for Lightwell: the tenant's token keys sign JWTs (JWT-SVIDs, later
//! OpenID Connect tokens) and relying parties verify them against the
//! tenant's JWKS.
//!
//! Pure and synchronous like `lightwell-ca`: no storage, no network, the
//! current time is a parameter. The cryptography is aws-lc-rs's, the
//! project's one crypto provider. The JWS layer is written here rather than
//! taken from `jsonwebtoken` because the same verifier has to serve compact
//! JWTs and, when ACME lands, RFC 8555's flattened JSON JWS with `jwk`/`kid`
//! headers, which that crate does not parse; what is here is small
//! (RFC 7515 §5, RFC 7518 §3.3–3.4, RFC 7517, RFC 7638) and fuzzable.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bundle;
pub mod jwk;
pub mod jws;
pub mod jwt;

pub use crate::bundle::SpiffeBundle;
pub use crate::jwk::{Jwk, Jwks};
pub use crate::jws::{Algorithm, TokenSigner};
pub use crate::jwt::{Validation, VerifiedJwt};

/// Why a token or key was refused. Messages name the check that failed and
/// never echo key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The token is not three base64url segments of JSON, or is too long.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm Lightwell does not accept (`none` included).
    #[error("token algorithm {0:?} is not accepted (ES256 or RS256)")]
    Algorithm(String),
    /// No key in the bundle has the token's `kid` (and algorithm).
    #[error("no key in the bundle matches the token's key id")]
    UnknownKey,
    /// The signature does not verify.
    #[error("token signature does not verify")]
    Signature,
    /// `exp` has passed (or is missing).
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `aud` does not include the audience asked for.
    #[error("token audience does not include {0:?}")]
    Audience(String),
    /// A required claim is missing or has the wrong type.
    #[error("token claim {0:?} is missing or malformed")]
    Claim(&'static str),
    /// A key could not be generated, loaded or used.
    #[error("key error: {0}")]
    Key(&'static str),
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn unb64(text: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| Error::Malformed("not base64url"))
}
