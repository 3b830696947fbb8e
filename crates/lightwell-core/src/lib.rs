//! Lightwell's service layer: the decisions. Front ends (REST, LDAP, CLI)
//! translate requests into calls on [`Service`]; the service checks
//! permissions, applies policy and persists through the `Store` trait, writing
//! an audit record in the same transaction as every change.
#![forbid(unsafe_code)]

pub mod audit;
pub mod authz;
pub mod clock;
mod error;
pub mod ids;
pub mod lockout;
pub mod names;
pub mod password;
pub mod policy;
mod service;
pub mod throttle;

pub use error::{Error, Result};
pub use ids::{CaId, PrincipalId};
pub use service::*;

/// Re-exported so front ends name store types through the service layer.
pub use lightwell_store::{AuditRecord, PrincipalKind, TenantId};

/// Observes security-relevant events, for metrics. The server implements it
/// with Prometheus counters; the default does nothing.
pub trait Observer: Send + Sync + std::fmt::Debug + 'static {
    /// A login or bind failed.
    fn login_failed(&self) {}
    /// An account was locked out after repeated failures.
    fn locked_out(&self) {}
    /// A login was refused unexamined: too many failures from its address.
    fn login_throttled(&self) {}
    /// A join or re-enrolment was refused unexamined: too many failures from its address.
    fn enrolment_throttled(&self) {}
    /// A password check was refused: every password-hashing permit was busy.
    fn hashing_overloaded(&self) {}
    /// The CRL signer stored a CRL it re-signed after revocations were acknowledged.
    fn crl_signed_in_background(&self) {}
    /// The CRL signer threw a build away: someone else signed the CA's CRL meanwhile.
    fn crl_build_discarded(&self) {}
    /// CRLs waiting for the signer, as its last pass left them.
    fn crls_pending(&self, _count: usize) {}
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl Observer for NoopObserver {}
