//! The URLs Lightwell writes into certificates and CRLs (CRL Distribution
//! Point, AIA caIssuers, Issuing Distribution Point): plain-HTTP locations
//! of a CA's CRL and certificate.
use rcgen::CustomExtension;

use crate::Error;
use crate::der::{self, GENERAL_NAME_URI};

/// id-pe-authorityInfoAccess (RFC 5280 4.2.2.1).
const OID_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// DER of id-ad-caIssuers (1.3.6.1.5.5.7.48.2).
const CA_ISSUERS_OID_DER: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];

/// Checks a URL that goes into an IA5String: ASCII, http or https, no spaces.
pub(crate) fn http_url(kind: &'static str, url: &str) -> Result<String, Error> {
    let refuse = |reason| Error::InvalidName { kind, value: url.to_owned(), reason };
    if !url.is_ascii() || url.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err(refuse("must be ASCII without spaces"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(refuse("must be an http:// or https:// URL"));
    }
    Ok(url.to_owned())
}

/// AuthorityInfoAccessSyntax with one caIssuers AccessDescription (rcgen has no AIA support).
pub(crate) fn authority_info_access(url: &str) -> CustomExtension {
    let description = der::sequence(&[CA_ISSUERS_OID_DER, &der::tlv(GENERAL_NAME_URI, url.as_bytes())]);
    CustomExtension::from_oid_content(OID_AUTHORITY_INFO_ACCESS, der::sequence(&[&description]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ascii_http_urls_are_accepted() {
        assert!(http_url("CRL URL", "http://pki.corp.example/crl").is_ok());
        assert!(http_url("CRL URL", "https://pki.corp.example/crl").is_ok());
        for bad in ["ldap://x", "http://exämple/", "http://a b/", "", "http://x/\n"] {
            assert!(http_url("CRL URL", bad).is_err(), "{bad:?}");
        }
    }
}
