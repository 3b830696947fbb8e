//! Pre-issuance rules for CRLs (RFC 5280 section 5).
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension, X509Extension};
use x509_parser::oid_registry::{
    OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_CRL_NUMBER, OID_X509_EXT_ISSUER_DISTRIBUTION_POINT,
};
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::X509Version;

use super::{LintRule, ensure, fail, required, serial, unique};
use crate::issuer::CaCertificate;
use crate::{Error, timestamp};

/// Lints a to-be-signed CRL: the checks of RFC 5280 section 5 Lightwell relies on.
pub(crate) fn crl(der: &[u8], issuer: &CaCertificate, url: Option<&str>) -> Result<(), Error> {
    let (_, crl) = x509_parser::parse_x509_crl(der).map_err(|_| Error::Encoding("to-be-signed CRL does not parse"))?;
    check_crl(&crl, issuer, url)
}

fn check_crl(crl: &CertificateRevocationList<'_>, issuer: &CaCertificate, url: Option<&str>) -> Result<(), Error> {
    ensure(crl.version() == Some(X509Version::V2), LintRule::CrlVersion, "not a v2 CRL")?;
    ensure(crl.issuer().as_raw() == issuer.subject_der(), LintRule::CrlIssuerName, "issuer is not the CA's subject")?;
    let this_update = timestamp::from_asn1(crl.last_update());
    let next_update = crl.next_update().map(timestamp::from_asn1);
    ensure(
        next_update.is_some_and(|n| n > this_update),
        LintRule::CrlUpdateTimes,
        "nextUpdate must follow thisUpdate",
    )?;
    let exts = crl.extensions();
    for ext in exts {
        if ext.critical && ext.oid != OID_X509_EXT_ISSUER_DISTRIBUTION_POINT {
            return Err(fail(LintRule::UnknownCriticalExtension, format!("critical CRL extension {}", ext.oid)));
        }
    }
    let ParsedExtension::CRLNumber(number) = required(exts, &OID_X509_EXT_CRL_NUMBER, LintRule::CrlNumber, false)?
    else {
        return Err(fail(LintRule::CrlNumber, "unexpected content"));
    };
    ensure(number.to_bytes_be().len() <= 20, LintRule::CrlNumber, "longer than 20 octets")?;
    let rule = LintRule::CrlAuthorityKeyIdentifier;
    let ParsedExtension::AuthorityKeyIdentifier(aki) =
        required(exts, &OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, rule, false)?
    else {
        return Err(fail(rule, "unexpected content"));
    };
    ensure(aki.key_identifier.as_ref().is_some_and(|id| id.0 == issuer.key_id()), rule, "not the CA's key identifier")?;
    crl_idp(exts, url)?;
    for entry in crl.iter_revoked_certificates() {
        serial(entry.raw_serial(), LintRule::CrlEntry)?;
        if let Some((_, reason)) = entry.reason_code() {
            // RFC 5280 5.3.1: omit `unspecified`; `removeFromCRL` belongs only in delta CRLs.
            ensure(reason.0 != 0 && reason.0 != 8, LintRule::CrlEntry, "reason code unspecified or removeFromCRL")?;
        }
    }
    Ok(())
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
    use crate::signing::{Signer, ToBeSigned};

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
        let (params, _) = crate::crl::layout(&issuer, &spec).unwrap();
        let tbs = ToBeSigned::crl(&params, &Signer::issuer(&issuer))?;
        crl(&tbs.unsigned(), issuer.certificate(), expected_url)
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
}
