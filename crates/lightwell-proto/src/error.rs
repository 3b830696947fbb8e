//! Error codes: stable strings scripts can match on.

use serde::{Deserialize, Serialize};

/// Every error code the API returns. The string form (`snake_case`) is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not valid JSON.
    InvalidJson,
    /// The request is well-formed JSON but not a valid request (wrong types, missing or unknown fields, bad values).
    InvalidRequest,
    /// A name (domain, host, user, group) breaks the naming rules.
    InvalidName,
    /// A password does not satisfy the tenant's password policy.
    WeakPassword,
    /// The body exceeds the size limit.
    BodyTooLarge,
    /// No such route.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// No tenant with that domain.
    TenantNotFound,
    /// No principal (user, group, machine, service) with that name.
    PrincipalNotFound,
    /// An object with that name already exists.
    AlreadyExists,
    /// Adding the member would make a group contain itself.
    GroupCycle,
    /// Built-in objects cannot be deleted or changed that way.
    BuiltinProtected,
    /// No credentials were presented.
    Unauthenticated,
    /// Wrong user name or password.
    InvalidCredentials,
    /// The bearer token is unknown, expired or revoked.
    InvalidToken,
    /// Too many failed logins: the account is locked for a while. Only a
    /// signed-in user changing their own password sees it; a login answers
    /// `invalid_credentials` whether the account is locked or not.
    AccountLocked,
    /// The account is disabled.
    AccountDisabled,
    /// Authenticated, but not allowed to do this.
    Forbidden,
    /// The request took too long.
    Timeout,
    /// The server cannot serve the request now (for example the database is down).
    Unavailable,
    /// Too many failed logins from the caller's address: no login from it is
    /// looked at until the `Retry-After` delay (seconds) has passed.
    TooManyRequests,
    /// The server is busy checking other passwords and did not start on this
    /// one; nothing was done. Retry after the `Retry-After` delay (seconds).
    Overloaded,
    /// An unexpected server error.
    Internal,
    /// The certificate request is not a well-formed PKCS#10 request, or its signature does not verify.
    InvalidCsr,
    /// The key (in a CSR or a requested key type) is of a type or size that is not accepted.
    UnsupportedKey,
    /// The issuance policy refused what was asked (a name, CA:true, keyCertSign, a wildcard, a lifetime...).
    PolicyViolation,
    /// No CA with that name or id in the tenant.
    CaNotFound,
    /// No certificate with that serial in the tenant.
    CertificateNotFound,
    /// The CA cannot do this in its state (revoked, retired, no default issuing CA).
    CaUnavailable,
    /// The TLS client certificate is not valid for this tenant (unknown, expired, revoked, or its principal disabled).
    InvalidClientCertificate,
    /// The join token is unknown, expired, used up, revoked, or bound to another host name.
    InvalidJoinToken,
    /// A CA certificate or key brought into a tenant (import, install) is unusable: not a CA,
    /// not able to sign CRLs, not valid now, not matching its key or the pending request, or malformed.
    InvalidCaCertificate,
    /// No Kubernetes cluster with that name in the tenant.
    ClusterNotFound,
    /// No workload entry with that name in the tenant (or none assigned to the calling machine).
    WorkloadNotFound,
    /// No foreign trust domain with that name registered in the tenant.
    FederationNotFound,
}

impl ErrorCode {
    /// The stable string form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidName => "invalid_name",
            Self::WeakPassword => "weak_password",
            Self::BodyTooLarge => "body_too_large",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TenantNotFound => "tenant_not_found",
            Self::PrincipalNotFound => "principal_not_found",
            Self::AlreadyExists => "already_exists",
            Self::GroupCycle => "group_cycle",
            Self::BuiltinProtected => "builtin_protected",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidToken => "invalid_token",
            Self::AccountLocked => "account_locked",
            Self::AccountDisabled => "account_disabled",
            Self::Forbidden => "forbidden",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::TooManyRequests => "too_many_requests",
            Self::Overloaded => "overloaded",
            Self::Internal => "internal",
            Self::InvalidCsr => "invalid_csr",
            Self::UnsupportedKey => "unsupported_key",
            Self::PolicyViolation => "policy_violation",
            Self::CaNotFound => "ca_not_found",
            Self::CertificateNotFound => "certificate_not_found",
            Self::CaUnavailable => "ca_unavailable",
            Self::InvalidClientCertificate => "invalid_client_certificate",
            Self::InvalidJoinToken => "invalid_join_token",
            Self::InvalidCaCertificate => "invalid_ca_certificate",
            Self::ClusterNotFound => "cluster_not_found",
            Self::WorkloadNotFound => "workload_not_found",
            Self::FederationNotFound => "federation_not_found",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidJson | Self::InvalidRequest | Self::InvalidName | Self::WeakPassword => 400,
            Self::InvalidCsr | Self::UnsupportedKey | Self::InvalidCaCertificate => 400,
            Self::Unauthenticated | Self::InvalidCredentials | Self::InvalidToken => 401,
            Self::InvalidClientCertificate => 401,
            Self::InvalidJoinToken => 401,
            Self::AccountDisabled | Self::Forbidden | Self::PolicyViolation => 403,
            Self::NotFound | Self::TenantNotFound | Self::PrincipalNotFound => 404,
            Self::CaNotFound | Self::CertificateNotFound | Self::ClusterNotFound => 404,
            Self::WorkloadNotFound | Self::FederationNotFound => 404,
            Self::CaUnavailable => 409,
            Self::MethodNotAllowed => 405,
            Self::Timeout => 408,
            Self::AlreadyExists | Self::GroupCycle | Self::BuiltinProtected => 409,
            Self::BodyTooLarge => 413,
            Self::AccountLocked => 423,
            Self::TooManyRequests => 429,
            Self::Internal => 500,
            Self::Unavailable | Self::Overloaded => 503,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and human-readable message of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_stable_strings() {
        for code in [
            ErrorCode::InvalidJson,
            ErrorCode::AccountLocked,
            ErrorCode::TenantNotFound,
            ErrorCode::TooManyRequests,
            ErrorCode::Overloaded,
        ] {
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{}\"", code.as_str()));
        }
    }
}
