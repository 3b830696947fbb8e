//! Times as certificates and CRLs hold them: UTC, whole seconds.
use time::{OffsetDateTime, UtcOffset};
use x509_parser::time::ASN1Time;

use crate::Error;

/// Normalises a time for encoding: UTC, sub-seconds dropped, year within what
/// UTCTime/GeneralizedTime can carry (the encoder would panic otherwise).
pub(crate) fn encodable(t: OffsetDateTime) -> Result<OffsetDateTime, Error> {
    let utc = t.to_offset(UtcOffset::UTC);
    if !(1950..=9999).contains(&utc.year()) {
        return Err(Error::TimeOutOfRange(t));
    }
    utc.replace_nanosecond(0).map_err(|_| Error::TimeOutOfRange(t))
}

/// `t + d`, refusing overflow instead of panicking.
pub(crate) fn add(t: OffsetDateTime, d: time::Duration) -> Result<OffsetDateTime, Error> {
    t.checked_add(d).ok_or(Error::TimeOutOfRange(t))
}

/// `t - d`, refusing overflow instead of panicking.
pub(crate) fn sub(t: OffsetDateTime, d: time::Duration) -> Result<OffsetDateTime, Error> {
    t.checked_sub(d).ok_or(Error::TimeOutOfRange(t))
}

pub(crate) fn from_asn1(t: ASN1Time) -> OffsetDateTime {
    t.to_datetime()
}
