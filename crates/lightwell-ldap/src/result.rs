//! LDAP result codes for service-layer errors, and the error type the
//! operation handlers return.

use ldap3_proto::proto::{LdapResult, LdapResultCode};
use lightwell_proto::ErrorCode;

/// An operation's failure: an LDAP result code and a diagnostic message.
#[derive(Debug, Clone)]
pub(crate) struct LdapError {
    pub(crate) code: LdapResultCode,
    pub(crate) message: String,
    pub(crate) matched: String,
}

impl LdapError {
    /// A failure with a code and message.
    pub(crate) fn new(code: LdapResultCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), matched: String::new() }
    }

    /// `noSuchObject` with the closest existing ancestor.
    pub(crate) fn no_such_object(matched: impl Into<String>) -> Self {
        Self { code: LdapResultCode::NoSuchObject, message: "no such object".into(), matched: matched.into() }
    }

    /// The result to send.
    pub(crate) fn into_result(self) -> LdapResult {
        LdapResult { code: self.code, matcheddn: self.matched, message: self.message, referral: vec![] }
    }
}

/// The result code for a service-layer error. A disabled account (told
/// only with its right password) answers `invalidCredentials` with a
/// diagnostic saying so; a locked one is not told apart from a wrong
/// password by the service layer. Logins refused unexamined — too many
/// failures from the address, or every password-hashing permit busy —
/// answer `busy` (51) with the retry delay in the diagnostic.
pub(crate) fn code_for(code: ErrorCode) -> LdapResultCode {
    match code {
        ErrorCode::InvalidCredentials | ErrorCode::AccountLocked | ErrorCode::AccountDisabled => {
            LdapResultCode::InvalidCredentials
        }
        ErrorCode::Forbidden | ErrorCode::Unauthenticated | ErrorCode::InvalidToken => {
            LdapResultCode::InsufficentAccessRights
        }
        ErrorCode::PrincipalNotFound | ErrorCode::TenantNotFound | ErrorCode::NotFound => LdapResultCode::NoSuchObject,
        ErrorCode::AlreadyExists => LdapResultCode::EntryAlreadyExists,
        ErrorCode::InvalidName => LdapResultCode::NamingViolation,
        ErrorCode::InvalidRequest | ErrorCode::InvalidJson => LdapResultCode::InvalidAttributeSyntax,
        ErrorCode::WeakPassword => LdapResultCode::ConstraintViolation,
        ErrorCode::GroupCycle | ErrorCode::BuiltinProtected => LdapResultCode::UnwillingToPerform,
        ErrorCode::BodyTooLarge => LdapResultCode::AdminLimitExceeded,
        ErrorCode::Timeout => LdapResultCode::TimeLimitExceeded,
        ErrorCode::Unavailable => LdapResultCode::Unavailable,
        ErrorCode::TooManyRequests | ErrorCode::Overloaded => LdapResultCode::Busy,
        _ => LdapResultCode::Other,
    }
}

impl From<lightwell_core::Error> for LdapError {
    fn from(e: lightwell_core::Error) -> Self {
        Self::new(code_for(e.code), e.message)
    }
}

/// A success result.
pub(crate) fn success() -> LdapResult {
    LdapResult { code: LdapResultCode::Success, matcheddn: String::new(), message: String::new(), referral: vec![] }
}

/// Shorthand for handler results.
pub(crate) type OpResult<T> = Result<T, LdapError>;
