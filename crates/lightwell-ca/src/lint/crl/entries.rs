//! The entry list of a to-be-signed CRL, walked in place.
//!
//! Written by hand for the same reason as the encoder (`crl::entries`): a
//! CRL can hold a million entries, and x509-parser builds a parsed entry with
//! its extensions for each (about a microsecond apiece). This walker reads
//! the exact bytes to be signed without copying them and accepts only what
//! Lightwell means to sign:
//!
//! ```text
//! SEQUENCE (non-empty) OF SEQUENCE {
//!     INTEGER                      -- a valid serial (`lint::serial`)
//!     UTCTime | GeneralizedTime    -- UTCTime through 2049, GeneralizedTime from 2050
//!     SEQUENCE {                   -- optional: exactly one non-critical reasonCode
//!         SEQUENCE { OID 2.5.29.21, OCTET STRING { ENUMERATED code } } } }
//! ```
//!
//! with a code RFC 5280 section 5.3.1 allows in a full CRL, other than 0
//! (`unspecified`, written as no reason code) and 8 (`removeFromCRL`).
use x509_parser::oid_registry::OID_X509_EXT_REASON_CODE;

use crate::crl::RevocationReason;
use crate::der::{self, SEQUENCE};
use crate::lint::{LintRule, fail, serial};
use crate::{Error, timestamp};

const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const ENUMERATED: u8 = 0x0a;

/// Checks a whole revokedCertificates TLV; fails with [`LintRule::CrlEntry`]
/// naming the first bad entry.
pub(super) fn check(list: &[u8]) -> Result<(), Error> {
    let refuse = |detail: String| fail(LintRule::CrlEntry, detail);
    let (mut entries, rest) = der::expect(list, SEQUENCE, "not a SEQUENCE").map_err(|e| refuse(detail(e)))?;
    if !rest.is_empty() {
        return Err(refuse("bytes after revokedCertificates".into()));
    }
    if entries.is_empty() {
        return Err(refuse("an empty revokedCertificates must be absent (RFC 5280 5.1.2.6)".into()));
    }
    let mut index = 0usize;
    while !entries.is_empty() {
        entries = der::expect(entries, SEQUENCE, "entry is not a SEQUENCE")
            .and_then(|(entry, rest)| check_entry(entry).map(|()| rest))
            .map_err(|e| refuse(format!("entry {index}: {}", detail(e))))?;
        index += 1;
    }
    Ok(())
}

fn check_entry(entry: &[u8]) -> Result<(), Error> {
    let (serial_octets, rest) = der::expect(entry, INTEGER, "serial is not an INTEGER")?;
    serial(serial_octets, LintRule::CrlEntry)?;
    let (time, rest) = der::read(rest)?;
    timestamp::parse_der(time.tag, time.content).map_err(Error::Encoding)?;
    if rest.is_empty() {
        return Ok(());
    }
    let (extensions, rest) = der::expect(rest, SEQUENCE, "crlEntryExtensions is not a SEQUENCE")?;
    if !rest.is_empty() {
        return Err(Error::Encoding("bytes after crlEntryExtensions"));
    }
    let (extension, rest) = der::expect(extensions, SEQUENCE, "extension is not a SEQUENCE")?;
    if !rest.is_empty() {
        return Err(Error::Encoding("an entry extension besides the reason code"));
    }
    reason_code(extension)
}

/// The content of one Extension, which must be a non-critical reasonCode.
fn reason_code(extension: &[u8]) -> Result<(), Error> {
    let (oid, rest) = der::expect(extension, OID, "extnID is not an OID")?;
    if oid != OID_X509_EXT_REASON_CODE.as_bytes() {
        return Err(Error::Encoding("an entry extension other than the reason code"));
    }
    let (value, rest) = der::read(rest)?;
    match value.tag {
        OCTET_STRING if rest.is_empty() => {}
        // DER leaves the default FALSE out: any BOOLEAN here is a critical
        // flag or not DER.
        BOOLEAN => return Err(Error::Encoding("reason code with a criticality flag")),
        _ => return Err(Error::Encoding("reason code extension is malformed")),
    }
    let (code, rest) = der::expect(value.content, ENUMERATED, "reason code is not an ENUMERATED")?;
    let ([code], true) = (code, rest.is_empty()) else {
        return Err(Error::Encoding("reason code is not one octet"));
    };
    if *code == 0 {
        return Err(Error::Encoding("reason code unspecified (written as no reason code)"));
    }
    // Refuses 8 (removeFromCRL, delta CRLs only) and codes RFC 5280 does not define.
    RevocationReason::from_code(*code).map(|_| ()).map_err(|_| Error::Encoding("reason code not allowed in a full CRL"))
}

fn detail(error: Error) -> String {
    match error {
        Error::Lint { detail, .. } => detail,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::tlv;
    use crate::lint::testing::rule_of;

    const TIME: &[u8] = b"\x17\x0d261127030405Z";
    const KEY_COMPROMISE: &[u8] = &[0x30, 12, 0x30, 10, 0x06, 3, 0x55, 0x1d, 0x15, 0x04, 3, 0x0a, 1, 1];

    fn entry(parts: &[&[u8]]) -> Vec<u8> {
        tlv(SEQUENCE, &parts.concat())
    }

    fn list(entries: &[Vec<u8>]) -> Vec<u8> {
        tlv(SEQUENCE, &entries.concat())
    }

    fn good() -> Vec<u8> {
        entry(&[&tlv(INTEGER, &[0x40; 16]), TIME, KEY_COMPROMISE])
    }

    /// A list of a good entry and then `bad`: the walker must get past the first.
    fn refused(bad: &[u8]) -> bool {
        let checked = check(&list(&[good(), bad.to_vec()]));
        checked.is_err() && rule_of(checked) == LintRule::CrlEntry
    }

    fn reason_extension(extension: &[&[u8]]) -> Vec<u8> {
        tlv(SEQUENCE, &tlv(SEQUENCE, &extension.concat()))
    }

    #[test]
    fn entries_lightwell_writes_pass() {
        let serial20 = [[0].as_slice(), &[0x80; 19]].concat();
        let entries = [
            good(),
            entry(&[&tlv(INTEGER, &[1]), TIME]),
            entry(&[&tlv(INTEGER, &serial20), b"\x18\x0f20500101000000Z"]),
            entry(&[&tlv(INTEGER, &[0x7f; 20]), TIME, &KEY_COMPROMISE[..13], &[10]]),
        ];
        check(&list(&entries)).unwrap();
        check(&list(&vec![good(); 70_000])).unwrap();
    }

    #[test]
    fn an_empty_or_malformed_list_is_refused() {
        assert_eq!(rule_of(check(&list(&[]))), LintRule::CrlEntry);
        let mut trailing = list(&[good()]);
        trailing.push(0);
        assert_eq!(rule_of(check(&trailing)), LintRule::CrlEntry);
        let whole = list(&[good(), good()]);
        assert_eq!(rule_of(check(&whole[..whole.len() - 1])), LintRule::CrlEntry, "truncated list");
        assert_eq!(rule_of(check(&tlv(0x31, &good()))), LintRule::CrlEntry, "a SET, not a SEQUENCE");
    }

    #[test]
    fn a_truncated_or_mislabelled_entry_is_refused() {
        let good = good();
        let mut short = good.clone();
        short[1] += 1; // claims one octet more than the list holds
        assert!(refused(&short[..]));
        assert!(refused(&good[..good.len() - 1]), "truncated");
        assert!(refused(&[&[0x31], &good[1..]].concat()), "entry tagged SET");
        assert!(refused(&entry(&[&tlv(0x04, &[1]), TIME])), "serial is an OCTET STRING");
        assert!(refused(&entry(&[&tlv(INTEGER, &[1])])), "no revocation date");
        assert!(refused(&entry(&[TIME, &tlv(INTEGER, &[1])])), "fields swapped");
        assert!(refused(&entry(&[&tlv(INTEGER, &[1]), TIME, KEY_COMPROMISE, &[0x05, 0]])), "trailing field");
        assert!(refused(&[0x30, 0x81, 0x05, 0x02, 0x01, 0x01, 0x05, 0x00]), "length in long form for 5");
        assert!(refused(&[0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00]), "indefinite length");
    }

    #[test]
    fn serials_rfc_5280_forbids_are_refused() {
        for serial in [&[][..], &[0], &[0x80], &[0xff, 0x01], &[0, 1], &[0x01; 21]] {
            assert!(refused(&entry(&[&tlv(INTEGER, serial), TIME])), "{serial:02x?}");
        }
    }

    #[test]
    fn malformed_revocation_dates_are_refused() {
        for time in [
            &b"\x17\x0d26112703040aZ"[..],
            b"\x17\x0b2611270304Z",
            b"\x17\x0d261127030405+",
            b"\x17\x0d261327030405Z",
            b"\x18\x0f20261127030405Z",
            b"\x18\x1120501127030405.5Z",
            b"\x04\x0d261127030405Z",
        ] {
            assert!(refused(&entry(&[&tlv(INTEGER, &[1]), time])), "{}", String::from_utf8_lossy(time));
        }
    }

    #[test]
    fn reason_codes_other_than_lightwells_are_refused() {
        let oid: &[u8] = &[0x06, 3, 0x55, 0x1d, 0x15];
        let code = |c: &[u8]| tlv(OCTET_STRING, &tlv(ENUMERATED, c));
        for (what, extensions) in [
            ("unspecified", reason_extension(&[oid, &code(&[0])])),
            ("removeFromCRL", reason_extension(&[oid, &code(&[8])])),
            ("undefined 7", reason_extension(&[oid, &code(&[7])])),
            ("undefined 11", reason_extension(&[oid, &code(&[11])])),
            ("two-octet code", reason_extension(&[oid, &code(&[0, 1])])),
            ("INTEGER code", reason_extension(&[oid, &tlv(OCTET_STRING, &tlv(INTEGER, &[1]))])),
            ("critical", reason_extension(&[oid, &[BOOLEAN, 1, 0xff], &code(&[1])])),
            ("explicit non-critical", reason_extension(&[oid, &[BOOLEAN, 1, 0], &code(&[1])])),
            ("invalidityDate", reason_extension(&[&[0x06, 3, 0x55, 0x1d, 0x18], &tlv(OCTET_STRING, TIME)])),
            ("two extensions", tlv(SEQUENCE, &[&KEY_COMPROMISE[2..], &KEY_COMPROMISE[2..]].concat())),
            ("no extension", tlv(SEQUENCE, &[])),
            ("extensions in a SET", tlv(0x31, &KEY_COMPROMISE[2..])),
        ] {
            assert!(refused(&entry(&[&tlv(INTEGER, &[1]), TIME, &extensions])), "{what}");
        }
    }
}
