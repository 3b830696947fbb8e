//! CRL deltas: what turns one signed CRL of a CA into its next one, small
//! enough to push to every agent on each revocation.
//!
//! A Lightwell CRL is a pure function of its header fields, its entry *set*
//! (entries are written in [`super::canonical_order`]) and its signature, so
//! the next CRL is the previous one with
//!
//! - the header bytes before the entry list (version, algorithm, issuer,
//!   thisUpdate, nextUpdate), the extensions after it (CRL Number, AKI,
//!   IDP) and the signature part each patched: a kept prefix, a kept suffix
//!   and the new bytes between (in practice the two times, a CRL Number octet
//!   and the signature);
//! - entries removed (by serial) and entries added (their DER).
//!
//! [`CrlDelta::between`] computes it from two CRLs and checks that
//! [`CrlDelta::apply`] to the first gives exactly the second, so a delta that
//! exists reproduces the CRL byte for byte. The receiver still checks the
//! base CRL Number and the signature of the result ([`verify`]): a delta from
//! the network is input, and any mismatch means "fetch the whole CRL".
//!
//! Wire form ([`CrlDelta::to_der`]), DER:
//!
//! ```text
//! CrlDelta ::= SEQUENCE {
//!     baseNumber INTEGER, number INTEGER,
//!     head Patch, extensions Patch, signature Patch,
//!     added   OCTET STRING,   -- entries (SEQUENCEs), concatenated
//!     removed OCTET STRING }  -- serials (INTEGERs), concatenated
//! Patch ::= SEQUENCE { keepPrefix INTEGER, keepSuffix INTEGER, middle OCTET STRING }
//! ```
use std::collections::HashSet;

use super::serial_order;
use crate::Error;
use crate::der::{self, SEQUENCE};

const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
/// crlExtensions, `[0] EXPLICIT`.
const CRL_EXTENSIONS: u8 = 0xa0;
/// The DER of OID 2.5.29.20, cRLNumber.
const CRL_NUMBER_OID: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x14];

/// The change from one CRL of a CA to the next (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlDelta {
    base_number: u64,
    number: u64,
    head: Patch,
    extensions: Patch,
    signature: Patch,
    added: Vec<u8>,
    removed: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Patch {
    keep_prefix: usize,
    keep_suffix: usize,
    middle: Vec<u8>,
}

impl Patch {
    fn between(old: &[u8], new: &[u8]) -> Self {
        let keep_prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
        let room = old.len().min(new.len()) - keep_prefix;
        let keep_suffix = old.iter().rev().zip(new.iter().rev()).take(room).take_while(|(a, b)| a == b).count();
        Self { keep_prefix, keep_suffix, middle: new[keep_prefix..new.len() - keep_suffix].to_vec() }
    }

    fn apply(&self, old: &[u8]) -> Result<Vec<u8>, Error> {
        let kept = self.keep_prefix.checked_add(self.keep_suffix).filter(|n| *n <= old.len());
        if kept.is_none() {
            return Err(Error::CrlDelta("a patch keeps more than the base CRL has"));
        }
        Ok([&old[..self.keep_prefix], &self.middle, &old[old.len() - self.keep_suffix..]].concat())
    }

    fn to_der(&self) -> Vec<u8> {
        der::sequence(&[
            &uint(self.keep_prefix as u64),
            &uint(self.keep_suffix as u64),
            &der::tlv(OCTET_STRING, &self.middle),
        ])
    }

    fn from_der(input: &[u8]) -> Result<(Self, &[u8]), Error> {
        let (content, rest) = expect(input, SEQUENCE)?;
        let (keep_prefix, content) = read_uint(content)?;
        let (keep_suffix, content) = read_uint(content)?;
        let (middle, content) = expect(content, OCTET_STRING)?;
        if !content.is_empty() {
            return Err(Error::CrlDelta("trailing data in a patch"));
        }
        let size = |n: u64| usize::try_from(n).map_err(|_| Error::CrlDelta("patch too large"));
        Ok((Self { keep_prefix: size(keep_prefix)?, keep_suffix: size(keep_suffix)?, middle: middle.to_vec() }, rest))
    }
}

/// A signed CRL cut where deltas cut it.
struct Parts<'a> {
    /// TBSCertList content before the entry list.
    head: &'a [u8],
    /// The entries, each a whole SEQUENCE.
    entries: Vec<&'a [u8]>,
    /// TBSCertList content after the entry list: crlExtensions.
    extensions: &'a [u8],
    /// After the TBSCertList: signatureAlgorithm and signatureValue.
    signature: &'a [u8],
    number: u64,
}

impl<'a> Parts<'a> {
    fn of(crl: &'a [u8]) -> Result<Self, Error> {
        let (outer, rest) = read(crl)?;
        if outer.tag != SEQUENCE || !rest.is_empty() {
            return Err(Error::CrlDelta("not a CRL"));
        }
        let (tbs, signature) = read(outer.content)?;
        if tbs.tag != SEQUENCE {
            return Err(Error::CrlDelta("not a CRL"));
        }
        // version, signature, issuer, thisUpdate, nextUpdate: five fields.
        let mut at = tbs.content;
        for _ in 0..crate::signing::TBS_CRL_REVOKED {
            at = read(at)?.1;
        }
        let head = &tbs.content[..tbs.content.len() - at.len()];
        let mut entries = Vec::new();
        let mut extensions = at;
        if let Some(&SEQUENCE) = at.first() {
            let (list, rest) = read(at)?;
            let mut content = list.content;
            while !content.is_empty() {
                let (entry, rest) = read(content)?;
                if entry.tag != SEQUENCE {
                    return Err(Error::CrlDelta("a CRL entry is not a SEQUENCE"));
                }
                entries.push(entry.whole);
                content = rest;
            }
            extensions = rest;
        }
        let number = crl_number(extensions)?;
        Ok(Self { head, entries, extensions, signature, number })
    }
}

impl CrlDelta {
    /// The delta from `previous` to `current`, two CRLs of the same CA; an
    /// error if they are not CRLs Lightwell could have made, or if the
    /// delta would not reproduce `current` exactly (send it whole then).
    pub fn between(previous: &[u8], current: &[u8]) -> Result<Self, Error> {
        let (old, new) = (Parts::of(previous)?, Parts::of(current)?);
        let had: HashSet<&[u8]> = old.entries.iter().copied().collect();
        let has: HashSet<&[u8]> = new.entries.iter().copied().collect();
        let added = new.entries.iter().filter(|e| !had.contains(*e)).copied().collect::<Vec<_>>().concat();
        let mut removed = Vec::new();
        for entry in old.entries.iter().filter(|e| !has.contains(*e)) {
            removed.extend_from_slice(serial_tlv(entry)?);
        }
        let delta = Self {
            base_number: old.number,
            number: new.number,
            head: Patch::between(old.head, new.head),
            extensions: Patch::between(old.extensions, new.extensions),
            signature: Patch::between(old.signature, new.signature),
            added,
            removed,
        };
        if delta.apply(previous)? != current {
            return Err(Error::CrlDelta("the delta does not reproduce the CRL (entries out of canonical order?)"));
        }
        Ok(delta)
    }

    /// The CRL Number of the CRL this delta applies to.
    pub fn base_number(&self) -> u64 {
        self.base_number
    }

    /// The CRL Number of the CRL it makes.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The next CRL, from `previous` (the CRL numbered [`CrlDelta::base_number`]).
    /// Does not check the signature: see [`verify`].
    pub fn apply(&self, previous: &[u8]) -> Result<Vec<u8>, Error> {
        let old = Parts::of(previous)?;
        if old.number != self.base_number {
            return Err(Error::CrlDelta("the delta is for another CRL Number"));
        }
        let mut removed = HashSet::new();
        let mut rest = self.removed.as_slice();
        while !rest.is_empty() {
            let (serial, more) = read(rest)?;
            if serial.tag != INTEGER {
                return Err(Error::CrlDelta("a removed serial is not an INTEGER"));
            }
            removed.insert(serial.whole);
            rest = more;
        }
        let mut entries = Vec::with_capacity(old.entries.len() + 1);
        for entry in old.entries {
            if !removed.contains(serial_tlv(entry)?) {
                entries.push(entry);
            }
        }
        let mut rest = self.added.as_slice();
        while !rest.is_empty() {
            let (entry, more) = read(rest)?;
            if entry.tag != SEQUENCE {
                return Err(Error::CrlDelta("an added entry is not a SEQUENCE"));
            }
            serial_tlv(entry.whole)?;
            entries.push(entry.whole);
            rest = more;
        }
        entries.sort_by(|a, b| serial_order(serial_key(a), serial_key(b)));
        let head = self.head.apply(old.head)?;
        let extensions = self.extensions.apply(old.extensions)?;
        let signature = self.signature.apply(old.signature)?;
        if crl_number(&extensions)? != self.number {
            return Err(Error::CrlDelta("the patched CRL has another CRL Number than announced"));
        }
        let list_len: usize = entries.iter().map(|e| e.len()).sum();
        let list_der_len = if entries.is_empty() { 0 } else { der::header_len(list_len) + list_len };
        let tbs_len = head.len() + list_der_len + extensions.len();
        let outer_len = der::header_len(tbs_len) + tbs_len + signature.len();
        let mut out = Vec::with_capacity(der::header_len(outer_len) + outer_len);
        der::write_header(&mut out, SEQUENCE, outer_len);
        der::write_header(&mut out, SEQUENCE, tbs_len);
        out.extend_from_slice(&head);
        if !entries.is_empty() {
            der::write_header(&mut out, SEQUENCE, list_len);
            entries.iter().for_each(|e| out.extend_from_slice(e));
        }
        out.extend_from_slice(&extensions);
        out.extend_from_slice(&signature);
        // The result must read as a CRL; patches could have broken its structure.
        Parts::of(&out)?;
        Ok(out)
    }

    /// The wire form (see the module documentation).
    pub fn to_der(&self) -> Vec<u8> {
        der::sequence(&[
            &uint(self.base_number),
            &uint(self.number),
            &self.head.to_der(),
            &self.extensions.to_der(),
            &self.signature.to_der(),
            &der::tlv(OCTET_STRING, &self.added),
            &der::tlv(OCTET_STRING, &self.removed),
        ])
    }

    /// Reads the wire form; structure only (applying checks the rest).
    pub fn from_der(input: &[u8]) -> Result<Self, Error> {
        let (content, rest) = expect(input, SEQUENCE)?;
        if !rest.is_empty() {
            return Err(Error::CrlDelta("trailing data after the delta"));
        }
        let (base_number, content) = read_uint(content)?;
        let (number, content) = read_uint(content)?;
        let (head, content) = Patch::from_der(content)?;
        let (extensions, content) = Patch::from_der(content)?;
        let (signature, content) = Patch::from_der(content)?;
        let (added, content) = expect(content, OCTET_STRING)?;
        let (removed, content) = expect(content, OCTET_STRING)?;
        if !content.is_empty() {
            return Err(Error::CrlDelta("trailing data in the delta"));
        }
        Ok(Self { base_number, number, head, extensions, signature, added: added.to_vec(), removed: removed.to_vec() })
    }
}

/// Why [`verify`] refuses a CA certificate that is not the CRL's issuer.
pub const NOT_THE_ISSUER: &str = "the CRL is not issued by that CA";

/// Checks that `crl` is signed by the CA whose certificate is `issuer_der`
/// and names it as issuer.
pub fn verify(crl: &[u8], issuer_der: &[u8]) -> Result<(), Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(issuer_der)
        .map_err(|_| Error::CrlDelta("the CA certificate is unreadable"))?;
    let (rest, parsed) = x509_parser::parse_x509_crl(crl).map_err(|_| Error::CrlDelta("the CRL is unreadable"))?;
    if !rest.is_empty() || parsed.tbs_cert_list.issuer.as_raw() != cert.subject().as_raw() {
        return Err(Error::CrlDelta(NOT_THE_ISSUER));
    }
    parsed.verify_signature(cert.public_key()).map_err(|_| Error::CrlDelta("the CRL's signature does not verify"))
}

fn read(input: &[u8]) -> Result<(der::Tlv<'_>, &[u8]), Error> {
    der::read(input).map_err(|_| Error::CrlDelta("malformed DER"))
}

fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), Error> {
    let (tlv, rest) = read(input)?;
    if tlv.tag != tag {
        return Err(Error::CrlDelta("unexpected DER tag"));
    }
    Ok((tlv.content, rest))
}

/// The whole serial INTEGER of an entry.
fn serial_tlv(entry: &[u8]) -> Result<&[u8], Error> {
    let (tlv, _) = read(entry)?;
    let (serial, _) = read(tlv.content)?;
    if serial.tag != INTEGER || serial.content.is_empty() {
        return Err(Error::CrlDelta("a CRL entry has no serial"));
    }
    Ok(serial.whole)
}

/// The serial's content octets, the sort key of an entry whose serial
/// [`serial_tlv`] already read (none otherwise).
fn serial_key(entry: &[u8]) -> &[u8] {
    serial_tlv(entry).ok().and_then(|s| read(s).ok()).map(|(s, _)| s.content).unwrap_or_default()
}

/// The CRL Number in crlExtensions (`[0] { SEQUENCE OF Extension }`).
fn crl_number(extensions: &[u8]) -> Result<u64, Error> {
    let (wrapper, rest) = read(extensions)?;
    if wrapper.tag != CRL_EXTENSIONS || !rest.is_empty() {
        return Err(Error::CrlDelta("a CRL without extensions"));
    }
    let (list, _) = expect(wrapper.content, SEQUENCE)?;
    let mut list = list;
    while !list.is_empty() {
        let (extension, more) = expect(list, SEQUENCE)?;
        if let Some(value) = extension.strip_prefix(&CRL_NUMBER_OID[..]) {
            let (octets, _) = expect(value, OCTET_STRING)?;
            return Ok(read_uint(octets)?.0);
        }
        list = more;
    }
    Err(Error::CrlDelta("a CRL without a CRL Number"))
}

fn uint(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut content = bytes[skip..].to_vec();
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    der::tlv(INTEGER, &content)
}

fn read_uint(input: &[u8]) -> Result<(u64, &[u8]), Error> {
    let (content, rest) = expect(input, INTEGER)?;
    let digits = match content {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    if content.is_empty() || content[0] & 0x80 != 0 || digits.len() > 8 {
        return Err(Error::CrlDelta("an integer out of range"));
    }
    Ok((digits.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)), rest))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::crl::{CrlSpec, RevocationReason, RevokedCertificate, build};
    use crate::lint::testing::root;
    use crate::serial::Serial;

    fn entries(n: usize) -> Vec<RevokedCertificate> {
        (0..n)
            .map(|i| RevokedCertificate {
                serial: Serial::random().unwrap(),
                revoked_at: datetime!(2026-01-01 00:00:00 UTC) + time::Duration::seconds(i as i64),
                reason: RevocationReason::ALL[i % RevocationReason::ALL.len()],
            })
            .collect()
    }

    fn crl(issuer: &crate::Issuer, number: u64, revoked: &[RevokedCertificate]) -> Vec<u8> {
        let now = datetime!(2026-11-27 03:00:00 UTC) + time::Duration::minutes(number as i64);
        let spec = CrlSpec {
            number,
            this_update: now,
            next_update: now + super::super::DEFAULT_VALIDITY,
            distribution_point: Some("http://pki.corp.example/pki/corp.example/crl/ca.crl"),
            revoked,
        };
        build(issuer, &spec).unwrap().into_der()
    }

    #[test]
    fn a_rebuilt_crl_is_byte_identical_to_the_built_one_for_random_changes() {
        let issuer = root();
        let mut pool = entries(3000);
        let mut current: Vec<RevokedCertificate> = pool.drain(..1000).collect();
        let mut previous = crl(&issuer, 1, &current);
        for (round, (add, remove)) in
            [(1, 0), (0, 1), (50, 20), (0, 0), (200, 999), (0, 250), (700, 0)].iter().enumerate()
        {
            let mut next: Vec<RevokedCertificate> = current
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 5 != 0 || *i / 5 >= *remove)
                .map(|(_, e)| e.clone())
                .collect();
            next.extend(pool.drain(..*add));
            next.reverse();
            let number = round as u64 + 2;
            let built = crl(&issuer, number, &next);
            let delta = CrlDelta::between(&previous, &built).unwrap();
            let wire = CrlDelta::from_der(&delta.to_der()).unwrap();
            assert_eq!(wire, delta);
            assert_eq!((wire.base_number(), wire.number()), (number - 1, number));
            let rebuilt = wire.apply(&previous).unwrap();
            assert!(rebuilt == built, "round {round}: rebuilt CRL differs");
            verify(&rebuilt, issuer.certificate().der()).unwrap();
            previous = built;
            current = next;
        }
    }

    #[test]
    fn one_revocation_among_100_000_is_a_delta_of_a_few_hundred_bytes() {
        let issuer = root();
        let mut revoked = entries(100_001);
        let last = revoked.pop().unwrap();
        let before = crl(&issuer, 7, &revoked);
        revoked.push(last);
        let after = crl(&issuer, 8, &revoked);
        let delta = CrlDelta::between(&before, &after).unwrap().to_der();
        assert!(after.len() > 3_000_000, "{}", after.len());
        assert!(delta.len() < 300, "a delta of {} bytes", delta.len());
    }

    #[test]
    fn a_tampered_signature_or_entry_is_detected_and_a_wrong_base_refused() {
        let issuer = root();
        let revoked = entries(20);
        let previous = crl(&issuer, 1, &revoked[..10]);
        let current = crl(&issuer, 2, &revoked);
        let good = CrlDelta::between(&previous, &current).unwrap();

        let mut bad_signature = good.clone();
        let last = bad_signature.signature.middle.len() - 1;
        bad_signature.signature.middle[last] ^= 1;
        let rebuilt = bad_signature.apply(&previous).unwrap();
        assert!(matches!(verify(&rebuilt, issuer.certificate().der()), Err(Error::CrlDelta(_))));

        let mut bad_entry = good.clone();
        let at = bad_entry.added.len() - 3;
        bad_entry.added[at] ^= 1;
        if let Ok(rebuilt) = bad_entry.apply(&previous) {
            assert!(verify(&rebuilt, issuer.certificate().der()).is_err());
        }

        let other = root();
        assert!(verify(&current, other.certificate().der()).is_err(), "another CA's certificate");
        assert!(matches!(good.apply(&current), Err(Error::CrlDelta(_))), "base CRL Number 2, not 1");
        assert!(CrlDelta::from_der(&good.to_der()[..20]).is_err());
        let mut huge = good;
        huge.head.keep_prefix = usize::MAX;
        assert!(huge.apply(&previous).is_err());
    }
}
