//! The revokedCertificates list of a CRL, encoded by Lightwell itself.
//!
//! Everything else in a CRL is laid out by rcgen (see `signing.rs`). The
//! entry list is the one structure written by hand: rcgen needs a
//! `RevokedCertParams` per entry and yasna writes each through its own
//! allocations, about 0.4 µs an entry or 0.4 s of a 1M-entry CRL, and issue 8
//! asks for incremental CRL encoding. No crate writes a list of fixed-shape
//! entries straight into one pre-sized buffer, so this module does, and
//! `crl::tests` pins its output byte for byte to rcgen's for the same entries.
//!
//! ```text
//! revokedCertificates SEQUENCE OF SEQUENCE {
//!     userCertificate    INTEGER,
//!     revocationDate     Time,
//!     crlEntryExtensions Extensions OPTIONAL }  -- only a reasonCode here
//! ```
use time::OffsetDateTime;

use super::{RevocationReason, RevokedCertificate};
use crate::der::{self, SEQUENCE};
use crate::{Error, timestamp};

const INTEGER: u8 = 0x02;

/// The crlEntryExtensions of an entry with a reason code (RFC 5280 section
/// 5.3.1), the code being the last octet:
/// `SEQUENCE { SEQUENCE { OID 2.5.29.21, OCTET STRING { ENUMERATED code } } }`.
const REASON_EXTENSIONS: [u8; 14] = [0x30, 12, 0x30, 10, 0x06, 3, 0x55, 0x1d, 0x15, 0x04, 3, 0x0a, 1, 0];

/// The most content octets an entry can have: a 20-octet serial, a
/// GeneralizedTime and a reason code. Under 128, so every entry's length is
/// one octet.
const MAX_ENTRY_CONTENT: usize = (2 + 20) + (2 + 15) + REASON_EXTENSIONS.len();
const _: () = assert!(MAX_ENTRY_CONTENT < 0x80);

/// A CRL's entries, checked and measured, ready to be written into the
/// to-be-signed CRL.
#[derive(Debug)]
pub(crate) struct EntryList<'a> {
    revoked: &'a [RevokedCertificate],
    content_len: usize,
}

impl<'a> EntryList<'a> {
    /// Checks every entry's time and sums the encoded length, so the
    /// to-be-signed CRL can be allocated once at its final size.
    pub(crate) fn new(revoked: &'a [RevokedCertificate]) -> Result<Self, Error> {
        let mut content_len = 0;
        for entry in revoked {
            content_len += 2 + Entry::of(entry)?.content_len();
        }
        Ok(Self { revoked, content_len })
    }

    /// Octets [`EntryList::write`] appends: none for no entries (RFC 5280
    /// section 5.1.2.6: an empty list is absent, as rcgen writes it).
    pub(crate) fn der_len(&self) -> usize {
        if self.revoked.is_empty() { 0 } else { der::header_len(self.content_len) + self.content_len }
    }

    /// Appends the revokedCertificates SEQUENCE, or nothing for no entries.
    pub(crate) fn write(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.revoked.is_empty() {
            return Ok(());
        }
        der::write_header(out, SEQUENCE, self.content_len);
        for entry in self.revoked {
            Entry::of(entry)?.write(out);
        }
        Ok(())
    }
}

/// One entry as it is encoded.
struct Entry<'a> {
    serial: &'a [u8],
    revoked_at: OffsetDateTime,
    /// None for `unspecified`: RFC 5280 section 5.3.1 asks for no reason code then.
    reason: Option<u8>,
}

impl<'a> Entry<'a> {
    fn of(entry: &'a RevokedCertificate) -> Result<Self, Error> {
        Ok(Self {
            // A `Serial` holds the content octets of a positive, minimal INTEGER
            // of at most 20 octets: exactly what DER writes.
            serial: entry.serial.as_bytes(),
            revoked_at: timestamp::encodable(entry.revoked_at)?,
            reason: (entry.reason != RevocationReason::Unspecified).then(|| entry.reason.code()),
        })
    }

    fn content_len(&self) -> usize {
        2 + self.serial.len()
            + timestamp::der_len(self.revoked_at)
            + if self.reason.is_some() { REASON_EXTENSIONS.len() } else { 0 }
    }

    fn write(&self, out: &mut Vec<u8>) {
        // At most MAX_ENTRY_CONTENT, so both lengths fit in one octet.
        out.extend_from_slice(&[SEQUENCE, self.content_len() as u8, INTEGER, self.serial.len() as u8]);
        out.extend_from_slice(self.serial);
        timestamp::write_der(out, self.revoked_at);
        if let Some(code) = self.reason {
            let mut extensions = REASON_EXTENSIONS;
            extensions[REASON_EXTENSIONS.len() - 1] = code;
            out.extend_from_slice(&extensions);
        }
    }
}
