//! Pre-issuance rules for CRLs (RFC 5280 section 5).
//!
//! The header (every field of the TBSCertList but revokedCertificates) is
//! parsed by x509-parser. The entry list, up to a million entries, is checked
//! in place by [`entries`]: x509-parser would take about a second to parse
//! 1M entries with their reason codes, the walker a few tens of milliseconds.
//! Both read the exact bytes that get signed.
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension, X509Extension};
use x509_parser::num_bigint::BigUint;
use x509_parser::oid_registry::{
    OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_CRL_NUMBER, OID_X509_EXT_DELTA_CRL_INDICATOR,
    OID_X509_EXT_ISSUER_DISTRIBUTION_POINT,
};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::TbsCertList;
use x509_parser::x509::X509Version;

use super::{LintRule, ensure, fail, freshest_crl, required, unique};
use crate::crl::DeltaLinks;
use crate::der::{self, INTEGER, SEQUENCE};
use crate::issuer::CaCertificate;
use crate::signing::TBS_CRL_REVOKED;
use crate::{Error, timestamp};

mod entries;

/// Lints a to-be-signed CRL (the TBSCertList): the checks of RFC 5280
/// section 5 Lightwell relies on, and the delta CRL extensions `links` asks
/// for (sections 5.2.4 and 5.2.6).
pub(crate) fn crl(tbs: &[u8], issuer: &CaCertificate, url: Option<&str>, links: &DeltaLinks<'_>) -> Result<(), Error> {
    let mut fields = der::sequence_elements(tbs)?;
    // Anything else at that place stays in the header for x509-parser to judge.
    let entries = match fields.get(TBS_CRL_REVOKED) {
        Some(field) if field.first() == Some(&SEQUENCE) => Some(fields.remove(TBS_CRL_REVOKED)),
        _ => None,
    };
    // The other fields, byte for byte as they are signed, in a header of their own.
    let header = der::sequence(&fields);
    let (rest, header) =
        TbsCertList::from_der(&header).map_err(|_| Error::Encoding("to-be-signed CRL does not parse"))?;
    if !rest.is_empty() || !header.revoked_certificates.is_empty() {
        return Err(Error::Encoding("to-be-signed CRL has misplaced fields"));
    }
    check_header(&header, issuer, url, links)?;
    entries.map_or(Ok(()), entries::check)
}

fn check_header(
    crl: &TbsCertList<'_>,
    issuer: &CaCertificate,
    url: Option<&str>,
    links: &DeltaLinks<'_>,
) -> Result<(), Error> {
    ensure(crl.version == Some(X509Version::V2), LintRule::CrlVersion, "not a v2 CRL")?;
    ensure(crl.issuer.as_raw() == issuer.subject_der(), LintRule::CrlIssuerName, "issuer is not the CA's subject")?;
    let this_update = timestamp::from_asn1(crl.this_update);
    let next_update = crl.next_update.map(timestamp::from_asn1);
    ensure(
        next_update.is_some_and(|n| n > this_update),
        LintRule::CrlUpdateTimes,
        "nextUpdate must follow thisUpdate",
    )?;
    let exts = crl.extensions();
    for ext in exts {
        let known_critical = ext.oid == OID_X509_EXT_ISSUER_DISTRIBUTION_POINT
            || (ext.oid == OID_X509_EXT_DELTA_CRL_INDICATOR && links.base_number.is_some());
        if ext.critical && !known_critical {
            return Err(fail(LintRule::UnknownCriticalExtension, format!("critical CRL extension {}", ext.oid)));
        }
    }
    let ParsedExtension::CRLNumber(number) = required(exts, &OID_X509_EXT_CRL_NUMBER, LintRule::CrlNumber, false)?
    else {
        return Err(fail(LintRule::CrlNumber, "unexpected content"));
    };
    ensure(number.to_bytes_be().len() <= 20, LintRule::CrlNumber, "longer than 20 octets")?;
    crl_delta_indicator(exts, number, links.base_number)?;
    freshest_crl(exts, links.freshest_crl)?;
    let rule = LintRule::CrlAuthorityKeyIdentifier;
    let ParsedExtension::AuthorityKeyIdentifier(aki) =
        required(exts, &OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, rule, false)?
    else {
        return Err(fail(rule, "unexpected content"));
    };
    ensure(aki.key_identifier.as_ref().is_some_and(|id| id.0 == issuer.key_id()), rule, "not the CA's key identifier")?;
    crl_idp(exts, url)
}

/// A critical Delta CRL Indicator exactly in a delta CRL, naming the base's
/// CRL Number, which is below the delta's own.
fn crl_delta_indicator(exts: &[X509Extension<'_>], number: &BigUint, base: Option<u64>) -> Result<(), Error> {
    let rule = LintRule::CrlDeltaIndicator;
    let Some(base) = base else {
        let found = unique(exts, &OID_X509_EXT_DELTA_CRL_INDICATOR, rule)?;
        return ensure(found.is_none(), rule, "a complete CRL has no delta CRL indicator");
    };
    let ext =
        unique(exts, &OID_X509_EXT_DELTA_CRL_INDICATOR, rule)?.ok_or_else(|| fail(rule, "extension is missing"))?;
    ensure(ext.critical, rule, "must be critical")?;
    let (content, rest) = der::expect(ext.value, INTEGER, "BaseCRLNumber").map_err(|e| fail(rule, e.to_string()))?;
    ensure(rest.is_empty(), rule, "trailing data after BaseCRLNumber")?;
    ensure(content.first().is_some_and(|b| b & 0x80 == 0), rule, "BaseCRLNumber is not positive")?;
    let named = BigUint::from_bytes_be(content);
    ensure(named == BigUint::from(base), rule, "BaseCRLNumber is not the base CRL's number")?;
    ensure(named < *number, rule, "BaseCRLNumber is not below the delta's CRL Number")
}

/// An IDP exactly when the CRL has a distribution point URL; then critical and naming that URL.
fn crl_idp(exts: &[X509Extension<'_>], url: Option<&str>) -> Result<(), Error> {
    let rule = LintRule::CrlIssuingDistributionPoint;
    let Some(url) = url else {
        let idp = unique(exts, &OID_X509_EXT_ISSUER_DISTRIBUTION_POINT, rule)?;
        return ensure(idp.is_none(), rule, "a full-scope CRL has no issuing distribution point");
    };
    let ParsedExtension::IssuingDistributionPoint(idp) =
        required(exts, &OID_X509_EXT_ISSUER_DISTRIBUTION_POINT, rule, true)?
    else {
        return Err(fail(rule, "unexpected content"));
    };
    let names_url = match &idp.distribution_point {
        Some(DistributionPointName::FullName(names)) => {
            names.iter().any(|n| matches!(n, GeneralName::URI(u) if *u == url))
        }
        _ => false,
    };
    ensure(names_url, rule, "distributionPoint is not the CRL's URL")
}

#[cfg(test)]
mod tests {
    use time::{Duration, OffsetDateTime};

    use super::*;
    use crate::crl::{CrlSpec, RevocationReason, RevokedCertificate};
    use crate::lint::testing::{root, rule_of};
    use crate::serial::Serial;

    fn lint_crl(url: Option<&str>, expected_url: Option<&str>, reason: RevocationReason) -> Result<(), Error> {
        let issuer = root();
        let now = OffsetDateTime::now_utc();
        let revoked = [RevokedCertificate { serial: Serial::random().unwrap(), revoked_at: now, reason }];
        let spec = CrlSpec {
            number: 1,
            this_update: now,
            next_update: now + Duration::days(1),
            distribution_point: url,
            revoked: &revoked,
        };
        let (tbs, _) = crate::crl::to_be_signed(&issuer, &spec)?;
        crl(tbs.tbs(), issuer.certificate(), expected_url, &DeltaLinks::default())
    }

    #[test]
    fn crl_distribution_point_must_match_what_was_asked() {
        let url = Some("http://pki.corp.example/crl");
        lint_crl(url, url, RevocationReason::Superseded).unwrap();
        lint_crl(None, None, RevocationReason::Unspecified).unwrap();
        assert_eq!(rule_of(lint_crl(url, None, RevocationReason::Superseded)), LintRule::CrlIssuingDistributionPoint);
        assert_eq!(rule_of(lint_crl(None, url, RevocationReason::Superseded)), LintRule::CrlIssuingDistributionPoint);
        let other = Some("http://pki.corp.example/other");
        assert_eq!(rule_of(lint_crl(url, other, RevocationReason::Superseded)), LintRule::CrlIssuingDistributionPoint);
    }

    #[test]
    fn an_entry_changed_inside_the_to_be_signed_bytes_is_caught() {
        let issuer = root();
        let now = OffsetDateTime::now_utc();
        let revoked = [RevokedCertificate {
            serial: Serial::from_bytes(&[0x11; 16]).unwrap(),
            revoked_at: now,
            reason: RevocationReason::KeyCompromise,
        }];
        let spec = CrlSpec {
            number: 1,
            this_update: now,
            next_update: now + Duration::days(1),
            distribution_point: None,
            revoked: &revoked,
        };
        let (tbs, _) = crate::crl::to_be_signed(&issuer, &spec).unwrap();
        let mut tbs = tbs.tbs().to_vec();
        crl(&tbs, issuer.certificate(), None, &DeltaLinks::default()).unwrap();
        // ENUMERATED keyCompromise becomes removeFromCRL: same length, still parses.
        let reason_extension = [0x06, 3, 0x55, 0x1d, 0x15, 0x04, 3, 0x0a, 1, 1];
        let at = tbs.windows(reason_extension.len()).position(|w| w == reason_extension).unwrap();
        tbs[at + reason_extension.len() - 1] = 8;
        assert_eq!(rule_of(crl(&tbs, issuer.certificate(), None, &DeltaLinks::default())), LintRule::CrlEntry);
    }

    /// Lints a CRL built with `built` against what `asked` says it should be.
    fn lint_links(built: &DeltaLinks<'_>, asked: &DeltaLinks<'_>) -> Result<(), Error> {
        let issuer = root();
        let now = OffsetDateTime::now_utc();
        let spec = CrlSpec {
            number: 5,
            this_update: now,
            next_update: now + Duration::days(1),
            distribution_point: None,
            revoked: &[],
        };
        let (tbs, _) = crate::crl::to_be_signed_linked(&issuer, &spec, built)?;
        crl(tbs.tbs(), issuer.certificate(), None, asked)
    }

    #[test]
    fn delta_indicator_and_freshest_crl_must_be_what_was_asked() {
        let delta = DeltaLinks { base_number: Some(4), freshest_crl: None };
        let url = "http://pki.corp.example/delta.crl";
        let complete = DeltaLinks { base_number: None, freshest_crl: Some(url) };
        let plain = DeltaLinks::default();
        lint_links(&delta, &delta).unwrap();
        lint_links(&complete, &complete).unwrap();
        lint_links(&plain, &plain).unwrap();
        assert_eq!(rule_of(lint_links(&delta, &plain)), LintRule::UnknownCriticalExtension);
        assert_eq!(rule_of(lint_links(&plain, &delta)), LintRule::CrlDeltaIndicator);
        let other_base = DeltaLinks { base_number: Some(3), freshest_crl: None };
        assert_eq!(rule_of(lint_links(&delta, &other_base)), LintRule::CrlDeltaIndicator);
        // The base must be below the delta's own number (5).
        let not_below = DeltaLinks { base_number: Some(5), freshest_crl: None };
        assert_eq!(rule_of(lint_links(&not_below, &not_below)), LintRule::CrlDeltaIndicator);
        assert_eq!(rule_of(lint_links(&complete, &plain)), LintRule::CrlFreshest);
        assert_eq!(rule_of(lint_links(&plain, &complete)), LintRule::CrlFreshest);
        let elsewhere = DeltaLinks { base_number: None, freshest_crl: Some("http://pki.corp.example/other.crl") };
        assert_eq!(rule_of(lint_links(&complete, &elsewhere)), LintRule::CrlFreshest);
    }
}
