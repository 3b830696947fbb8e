//! The service layer's error: a stable code from `lightwell-proto` and a
//! message safe to show the caller (it never carries secrets or internals).

use lightwell_proto::ErrorCode;
use lightwell_store::StoreError;

/// Result with the service layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error the caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Stable code.
    pub code: ErrorCode,
    /// Message for people.
    pub message: String,
    /// For a refusal that passes with time (`too_many_requests`,
    /// `overloaded`): seconds after which a retry may succeed, sent as
    /// `Retry-After` by the REST API.
    pub retry_after_secs: Option<u64>,
}

impl std::error::Error for Error {}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl Error {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after_secs: None }
    }

    /// The same error, saying that a retry after `secs` seconds may succeed.
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Whether the server failed to decide the request (the database is
    /// down, something broke, no capacity): such a failure is no refusal —
    /// it is not audited as one, does not count toward a throttle, and
    /// aborts the transaction it happened in.
    pub fn is_undecided(&self) -> bool {
        matches!(self.code, ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::Overloaded)
    }

    /// `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// `internal`, logged here with the detail; the caller sees only a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(ErrorCode::Internal, "internal server error")
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => Self::new(ErrorCode::AlreadyExists, "an object with that name already exists"),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                Self::new(ErrorCode::Unavailable, "the database is unavailable; try again")
            }
            other => Self::internal(other),
        }
    }
}
