//! OpenSSL's subject-name hash (`openssl x509 -hash`, `X509_NAME_hash_ex`),
//! which names the files of a hashed CApath directory: `HASH.0` for a CA
//! certificate, `HASH.r0` for a CRL of that issuer.
//!
//! Written by hand because no crate computes it: the hash is the first four
//! bytes (little-endian) of SHA-1 over OpenSSL's *canonical* name encoding —
//! each RDN re-encoded as a SET whose string values are converted to
//! UTF8String, trimmed of ASCII whitespace, ASCII-lower-cased, with inner
//! whitespace runs collapsed to one space; the outer SEQUENCE header omitted.

use aws_lc_rs::digest;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::Error;
use crate::der::{SET, UTF8_STRING, sequence, tlv};

const OID: u8 = 0x06;

/// The hash of a certificate's subject, as `openssl x509 -hash` prints it.
pub fn certificate_subject_hash(cert_der: &[u8]) -> Result<u32, Error> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|_| Error::Encoding("malformed certificate"))?;
    Ok(name_hash(cert.subject()))
}

/// The hash of a CRL's issuer, as `openssl crl -hash` prints it.
pub fn crl_issuer_hash(crl_der: &[u8]) -> Result<u32, Error> {
    let (_, crl) = CertificateRevocationList::from_der(crl_der).map_err(|_| Error::Encoding("malformed CRL"))?;
    Ok(name_hash(crl.issuer()))
}

/// The OpenSSL hash of a name.
pub fn name_hash(name: &X509Name<'_>) -> u32 {
    let mut canonical = Vec::new();
    for rdn in name.iter_rdn() {
        let mut atvs: Vec<Vec<u8>> = rdn
            .iter()
            .map(|atv| {
                let oid = tlv(OID, atv.attr_type().as_bytes());
                let value = canonical_value(atv.attr_value().tag(), atv.attr_value().data);
                sequence(&[&oid, &value])
            })
            .collect();
        atvs.sort(); // DER orders the members of a SET OF
        canonical.extend(tlv(SET, &atvs.concat()));
    }
    let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &canonical);
    let b = d.as_ref();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The canonical TLV of one attribute value.
fn canonical_value(tag: Tag, data: &[u8]) -> Vec<u8> {
    let text: Option<String> = match tag {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            Some(String::from_utf8_lossy(data).into_owned())
        }
        // OpenSSL reads T61String as Latin-1.
        Tag::T61String => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            Some(String::from_utf16_lossy(&units))
        }
        Tag::UniversalString => Some(
            data.chunks_exact(4).filter_map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        ),
        _ => None,
    };
    match text {
        Some(t) => tlv(UTF8_STRING, &canonical_bytes(t.as_bytes())),
        // Other types are kept as they are.
        None => tlv(u8::try_from(tag.0).unwrap_or(0), data),
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Trim ASCII whitespace, lower-case ASCII, collapse inner whitespace runs.
fn canonical_bytes(s: &[u8]) -> Vec<u8> {
    let start = s.iter().position(|b| !is_space(*b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_space(*b)).map_or(start, |i| i + 1);
    let mut out = Vec::with_capacity(end - start);
    let mut in_space = false;
    for &b in &s[start..end] {
        if is_space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b.to_ascii_lowercase());
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_strings_are_trimmed_lowered_and_collapsed() {
        assert_eq!(canonical_bytes(b"  Corp   Example\t CA "), b"corp example ca");
        assert_eq!(canonical_bytes(b"   "), b"");
        assert_eq!(canonical_bytes("Ünï".as_bytes()), "Ünï".as_bytes(), "only ASCII is lower-cased");
    }
}
