//! Certificate serial numbers: 16 random bytes, positive, as RFC 5280 and the
//! CA/Browser Forum ask. Uniqueness is the store's job.
use std::fmt;

use crate::{Error, random};

/// RFC 5280 section 4.1.2.2: conforming CAs must not use serials longer than 20 octets.
const MAX_OCTETS: usize = 20;

/// A certificate serial number, as the content octets of its DER INTEGER.
///
/// A `Serial` is always positive, minimally encoded and at most 20 octets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A fresh random serial: 16 bytes, positive, never starting with a zero octet.
    pub fn random() -> Result<Self, Error> {
        let mut bytes = random::bytes::<16>()?;
        // High bit clear keeps it positive; the 0x40 bit keeps the DER INTEGER
        // exactly 16 octets, so every serial has the same length.
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
        Ok(Self(bytes.to_vec()))
    }

    /// Takes the content octets of a DER INTEGER (as found in a certificate or CRL).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::check(bytes)?;
        Ok(Self(bytes.to_vec()))
    }

    /// Whether `bytes` would make a `Serial`, without keeping a copy (the
    /// CRL lint checks a million of them).
    pub(crate) fn check(bytes: &[u8]) -> Result<(), Error> {
        match bytes {
            [] => Err(Error::InvalidSerial("empty")),
            [first, ..] if first & 0x80 != 0 => Err(Error::InvalidSerial("negative")),
            [0] => Err(Error::InvalidSerial("zero")),
            [0, second, ..] if second & 0x80 == 0 => Err(Error::InvalidSerial("not minimally encoded")),
            _ if bytes.len() > MAX_OCTETS => Err(Error::InvalidSerial("longer than 20 octets")),
            _ => Ok(()),
        }
    }

    /// Parses lower- or upper-case hex, as printed by [`Serial::to_hex`] or `openssl x509 -serial`.
    pub fn from_hex(hex: &str) -> Result<Self, Error> {
        let bytes = hex::decode(hex.trim()).map_err(|_| Error::InvalidSerial("not hex"))?;
        // The decoded octets become the serial: no second copy (the server
        // parses one per CRL entry).
        Self::check(&bytes)?;
        Ok(Self(bytes))
    }

    /// The content octets of the DER INTEGER.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex of [`Serial::as_bytes`].
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    pub(crate) fn to_rcgen(&self) -> rcgen::SerialNumber {
        rcgen::SerialNumber::from_slice(&self.0)
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_sixteen_positive_octets() {
        for _ in 0..64 {
            let serial = Serial::random().unwrap();
            assert_eq!(serial.as_bytes().len(), 16);
            assert_eq!(Serial::from_bytes(serial.as_bytes()).unwrap(), serial);
        }
        assert_ne!(Serial::random().unwrap(), Serial::random().unwrap());
    }

    #[test]
    fn serials_that_rfc_5280_forbids_are_refused() {
        assert!(Serial::from_bytes(&[]).is_err());
        assert!(Serial::from_bytes(&[0]).is_err());
        assert!(Serial::from_bytes(&[0x80]).is_err());
        assert!(Serial::from_bytes(&[0, 1]).is_err());
        assert!(Serial::from_bytes(&[1; 21]).is_err());
        assert!(Serial::from_bytes(&[0, 0x80]).is_ok());
        assert!(Serial::from_bytes(&[0x7f; 20]).is_ok());
    }

    #[test]
    fn hex_form_round_trips() {
        let serial = Serial::random().unwrap();
        assert_eq!(Serial::from_hex(&serial.to_hex().to_uppercase()).unwrap(), serial);
        assert!(Serial::from_hex("xyz").is_err());
    }
}
