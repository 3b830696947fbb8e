//! The URLs Lightwell writes into certificates and CRLs (CRL Distribution
//! Point, AIA caIssuers and OCSP, Issuing Distribution Point): plain-HTTP
//! locations of a CA's CRL, its certificate and its tenant's OCSP responder.
use rcgen::CustomExtension;

use crate::Error;
use crate::der::{self, GENERAL_NAME_URI};

/// id-pe-authorityInfoAccess (RFC 5280 4.2.2.1).
const OID_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// DER of id-ad-caIssuers (1.3.6.1.5.5.7.48.2).
const CA_ISSUERS_OID_DER: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
/// DER of id-ad-ocsp (1.3.6.1.5.5.7.48.1).
const OCSP_OID_DER: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];

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

/// AuthorityInfoAccessSyntax with an OCSP AccessDescription, if given, then
/// one caIssuers (rcgen has no AIA support).
pub(crate) fn authority_info_access(ca_issuers: &str, ocsp: Option<&str>) -> CustomExtension {
    let describe = |method: &[u8], url: &str| der::sequence(&[method, &der::tlv(GENERAL_NAME_URI, url.as_bytes())]);
    let mut descriptions = Vec::new();
    if let Some(url) = ocsp {
        descriptions.push(describe(OCSP_OID_DER, url));
    }
    descriptions.push(describe(CA_ISSUERS_OID_DER, ca_issuers));
    let parts: Vec<&[u8]> = descriptions.iter().map(Vec::as_slice).collect();
    CustomExtension::from_oid_content(OID_AUTHORITY_INFO_ACCESS, der::sequence(&parts))
}

/// CRLDistributionPoints (the syntax of CDP and Freshest CRL) with one
/// DistributionPoint whose fullName is `url`.
pub(crate) fn distribution_points(url: &str) -> Vec<u8> {
    // distributionPoint [0] { fullName [0] IMPLICIT GeneralNames { uri } }
    let full_name = der::tlv(0xa0, &der::tlv(GENERAL_NAME_URI, url.as_bytes()));
    der::sequence(&[&der::sequence(&[&der::tlv(0xa0, &full_name)])])
}

/// id-ce-freshestCRL (RFC 5280 4.2.1.15).
const OID_FRESHEST_CRL: &[u64] = &[2, 5, 29, 46];

/// A leaf's non-critical Freshest CRL extension naming `delta_url`.
pub(crate) fn freshest_crl(delta_url: &str) -> CustomExtension {
    CustomExtension::from_oid_content(OID_FRESHEST_CRL, distribution_points(delta_url))
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
