//! Times as certificates and CRLs hold them: UTC, whole seconds. The DER
//! `Time` of CRL entries is written and read here (the rest is rcgen's and
//! x509-parser's), following the same rule rcgen does.
use time::{Date, Month, OffsetDateTime, Time, UtcOffset};
use x509_parser::time::ASN1Time;

use crate::Error;

/// DER tags of the two forms of the X.509 `Time` CHOICE.
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
const FIRST_GENERALIZED_YEAR: i32 = 2050;

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

/// Octets of the DER `Time` (tag, length, content) of an [`encodable`] time.
pub(crate) fn der_len(t: OffsetDateTime) -> usize {
    if t.year() < FIRST_GENERALIZED_YEAR { 2 + 13 } else { 2 + 15 }
}

/// Appends the DER `Time` of an [`encodable`] time, as rcgen writes it:
/// `YYMMDDHHMMSSZ` before 2050, `YYYYMMDDHHMMSSZ` from 2050.
pub(crate) fn write_der(out: &mut Vec<u8>, t: OffsetDateTime) {
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second) = t.to_hms();
    if year < FIRST_GENERALIZED_YEAR {
        out.extend_from_slice(&[UTC_TIME, 13]);
        push_two_digits(out, (year % 100) as u8);
    } else {
        out.extend_from_slice(&[GENERALIZED_TIME, 15]);
        push_two_digits(out, (year / 100) as u8);
        push_two_digits(out, (year % 100) as u8);
    }
    for field in [month as u8, day, hour, minute, second] {
        push_two_digits(out, field);
    }
    out.push(b'Z');
}

fn push_two_digits(out: &mut Vec<u8>, n: u8) {
    out.extend_from_slice(&[b'0' + n / 10, b'0' + n % 10]);
}

/// Reads the content of a DER `Time` as RFC 5280 section 4.1.2.5 allows it:
/// UTCTime `YYMMDDHHMMSSZ` for 1950 to 2049, GeneralizedTime
/// `YYYYMMDDHHMMSSZ` from 2050, no fractions, a real calendar date.
pub(crate) fn parse_der(tag: u8, content: &[u8]) -> Result<OffsetDateTime, &'static str> {
    let (year, rest) = match (tag, content.len()) {
        (UTC_TIME, 13) => {
            let yy = i32::from(two_digits(content)?);
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &content[2..])
        }
        (GENERALIZED_TIME, 15) => {
            let year = i32::from(two_digits(content)?) * 100 + i32::from(two_digits(&content[2..])?);
            if year < FIRST_GENERALIZED_YEAR {
                return Err("GeneralizedTime before 2050");
            }
            (year, &content[4..])
        }
        (UTC_TIME | GENERALIZED_TIME, _) => return Err("time of the wrong length"),
        _ => return Err("not a UTCTime or GeneralizedTime"),
    };
    let [m, m2, d, d2, h, h2, mi, mi2, s, s2, b'Z'] = *rest else {
        return Err("time does not end in Z");
    };
    let month = Month::try_from(two_digits(&[m, m2])?).map_err(|_| "no such month")?;
    let date = Date::from_calendar_date(year, month, two_digits(&[d, d2])?).map_err(|_| "no such day")?;
    let time = Time::from_hms(two_digits(&[h, h2])?, two_digits(&[mi, mi2])?, two_digits(&[s, s2])?)
        .map_err(|_| "no such time of day")?;
    Ok(date.with_time(time).assume_utc())
}

fn two_digits(digits: &[u8]) -> Result<u8, &'static str> {
    match digits {
        [a @ b'0'..=b'9', b @ b'0'..=b'9', ..] => Ok((a - b'0') * 10 + (b - b'0')),
        _ => Err("time has a non-digit"),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn times_use_utctime_until_2049_and_generalizedtime_from_2050() {
        for (t, der) in [
            (datetime!(1950-01-01 00:00:00 UTC), &b"\x17\x0d500101000000Z"[..]),
            (datetime!(2026-11-27 03:04:05 UTC), b"\x17\x0d261127030405Z"),
            (datetime!(2049-12-31 23:59:59 UTC), b"\x17\x0d491231235959Z"),
            (datetime!(2050-01-01 00:00:00 UTC), b"\x18\x0f20500101000000Z"),
            (datetime!(9999-12-31 23:59:59 UTC), b"\x18\x0f99991231235959Z"),
        ] {
            let mut out = Vec::new();
            write_der(&mut out, t);
            assert_eq!(out, der, "{t}");
            assert_eq!(der_len(t), der.len());
            assert_eq!(parse_der(der[0], &der[2..]), Ok(t));
        }
    }

    #[test]
    fn malformed_times_are_refused() {
        for (tag, content) in [
            (UTC_TIME, &b"2611270304Z"[..]),
            (UTC_TIME, b"261127030405+"),
            (UTC_TIME, b"26112703040.Z"),
            (UTC_TIME, b"261327030405Z"),
            (UTC_TIME, b"260230030405Z"),
            (UTC_TIME, b"261127240000Z"),
            (UTC_TIME, b"261127036000Z"),
            (GENERALIZED_TIME, b"20261127030405Z"),
            (GENERALIZED_TIME, b"20501127030405.5Z"),
            (0x04, b"261127030405Z"),
        ] {
            assert!(parse_der(tag, content).is_err(), "{}", String::from_utf8_lossy(content));
        }
    }
}
