//! Pre-issuance lint: RFC 5280 rules checked on the exact to-be-signed
//! certificate or CRL before the CA key signs it, the way Let's Encrypt's
//! Boulder lints a "linting certificate". A failure refuses issuance with
//! [`Error::Lint`] naming the [`LintRule`].
//!
//! The certificate rules are in `certificate`, the CRL rules in `crl`.
use std::fmt;

use x509_parser::extensions::{
    CRLDistributionPoints, DistributionPointName, GeneralName, ParsedExtension, X509Extension,
};
use x509_parser::oid_registry::{OID_X509_EXT_FRESHEST_CRL, Oid};
use x509_parser::prelude::FromDer;

use crate::Error;

mod certificate;
mod crl;

pub(crate) use certificate::{Expected, Role, certificate};
pub(crate) use crl::crl;

/// The rules the pre-issuance lint checks, each with a stable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LintRule {
    /// Certificates are X.509 v3.
    Version,
    /// The serial is positive and at most 20 octets (RFC 5280 4.1.2.2).
    SerialNumber,
    /// notBefore is before notAfter.
    ValidityWindow,
    /// The validity lies inside the issuer's.
    ValidityWithinIssuer,
    /// The issuer name is the issuing CA's subject, byte for byte.
    IssuerName,
    /// The certified key is the one requested.
    SubjectPublicKey,
    /// basicConstraints is present, critical, and says CA or not as intended.
    BasicConstraints,
    /// keyUsage is present, critical, and exactly what the profile or CA role asks.
    KeyUsage,
    /// extendedKeyUsage matches the profile (and is absent on CAs).
    ExtendedKeyUsage,
    /// subjectKeyIdentifier is present and not critical.
    SubjectKeyIdentifier,
    /// authorityKeyIdentifier is present, not critical, and equals the issuer's key identifier.
    AuthorityKeyIdentifier,
    /// A leaf has SANs, critical exactly when the subject is empty (RFC 5280 4.2.1.6).
    SubjectAltName,
    /// A common name that is a DNS name or IP address also appears among the SANs.
    CommonNameInSubjectAltName,
    /// Exactly one URI SAN, and it is a SPIFFE ID (X.509-SVID).
    SpiffeUri,
    /// A leaf names where its CRL is (non-critical, an HTTP URI).
    CrlDistributionPoint,
    /// A leaf names where its issuer's certificate is (AIA caIssuers).
    AuthorityInfoAccess,
    /// DNS names lie inside the issuer's name constraints; a CA's constraints are critical.
    NameConstraints,
    /// No critical extension that Lightwell does not write.
    UnknownCriticalExtension,
    /// A delegated OCSP responder carries id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1).
    OcspNoCheck,
    /// CRLs are version 2.
    CrlVersion,
    /// The CRL issuer is the CA's subject, byte for byte.
    CrlIssuerName,
    /// nextUpdate is present and after thisUpdate.
    CrlUpdateTimes,
    /// A CRL number is present, not critical, at most 20 octets.
    CrlNumber,
    /// The CRL's authority key identifier is the CA's key identifier.
    CrlAuthorityKeyIdentifier,
    /// The issuing distribution point, when the CRL has one, is critical and names the CRL's own URL.
    CrlIssuingDistributionPoint,
    /// A delta CRL has a critical Delta CRL Indicator naming its base's CRL
    /// Number, below its own; a complete CRL has none.
    CrlDeltaIndicator,
    /// A Freshest CRL extension, non-critical and naming the delta CRL URL,
    /// exactly when one was asked for (never in a delta CRL), in CRLs and leaves.
    CrlFreshest,
    /// Entries have valid serials and no reason code `unspecified` or `removeFromCRL`.
    CrlEntry,
}

impl LintRule {
    /// The stable name of the rule, used in errors, audit records and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Version => "version",
            Self::SerialNumber => "serial-number",
            Self::ValidityWindow => "validity-window",
            Self::ValidityWithinIssuer => "validity-within-issuer",
            Self::IssuerName => "issuer-name",
            Self::SubjectPublicKey => "subject-public-key",
            Self::BasicConstraints => "basic-constraints",
            Self::KeyUsage => "key-usage",
            Self::ExtendedKeyUsage => "extended-key-usage",
            Self::SubjectKeyIdentifier => "subject-key-identifier",
            Self::AuthorityKeyIdentifier => "authority-key-identifier",
            Self::SubjectAltName => "subject-alt-name",
            Self::CommonNameInSubjectAltName => "common-name-in-san",
            Self::SpiffeUri => "spiffe-uri-san",
            Self::CrlDistributionPoint => "crl-distribution-point",
            Self::AuthorityInfoAccess => "authority-info-access",
            Self::NameConstraints => "name-constraints",
            Self::UnknownCriticalExtension => "unknown-critical-extension",
            Self::OcspNoCheck => "ocsp-nocheck",
            Self::CrlVersion => "crl-version",
            Self::CrlIssuerName => "crl-issuer-name",
            Self::CrlUpdateTimes => "crl-update-times",
            Self::CrlNumber => "crl-number",
            Self::CrlAuthorityKeyIdentifier => "crl-authority-key-identifier",
            Self::CrlIssuingDistributionPoint => "crl-issuing-distribution-point",
            Self::CrlDeltaIndicator => "crl-delta-indicator",
            Self::CrlFreshest => "crl-freshest",
            Self::CrlEntry => "crl-entry",
        }
    }
}

impl fmt::Display for LintRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn fail(rule: LintRule, detail: impl Into<String>) -> Error {
    Error::Lint { rule, detail: detail.into() }
}

fn ensure(condition: bool, rule: LintRule, detail: &str) -> Result<(), Error> {
    if condition { Ok(()) } else { Err(fail(rule, detail)) }
}

fn serial(raw: &[u8], rule: LintRule) -> Result<(), Error> {
    crate::serial::Serial::check(raw).map_err(|e| fail(rule, e.to_string()))
}

fn unique<'c>(
    extensions: &'c [X509Extension<'c>],
    oid: &Oid<'_>,
    rule: LintRule,
) -> Result<Option<&'c X509Extension<'c>>, Error> {
    let mut found = extensions.iter().filter(|e| e.oid == *oid);
    let first = found.next();
    if found.next().is_some() {
        return Err(fail(rule, "extension appears more than once"));
    }
    if let Some(ParsedExtension::ParseError { error }) = first.map(X509Extension::parsed_extension) {
        return Err(fail(rule, format!("extension does not parse: {error}")));
    }
    Ok(first)
}

fn required<'c>(
    extensions: &'c [X509Extension<'c>],
    oid: &Oid<'_>,
    rule: LintRule,
    critical: bool,
) -> Result<&'c ParsedExtension<'c>, Error> {
    let ext = unique(extensions, oid, rule)?.ok_or_else(|| fail(rule, "extension is missing"))?;
    ensure(ext.critical == critical, rule, if critical { "must be critical" } else { "must not be critical" })?;
    Ok(ext.parsed_extension())
}

/// A non-critical Freshest CRL naming the delta CRL URL exactly when one is
/// asked for (complete CRLs and leaves of a CA that publishes delta CRLs).
fn freshest_crl(exts: &[X509Extension<'_>], delta_url: Option<&str>) -> Result<(), Error> {
    let rule = LintRule::CrlFreshest;
    let found = unique(exts, &OID_X509_EXT_FRESHEST_CRL, rule)?;
    let Some(delta_url) = delta_url else {
        return ensure(found.is_none(), rule, "no Freshest CRL was asked for");
    };
    let ext = found.ok_or_else(|| fail(rule, "extension is missing"))?;
    ensure(!ext.critical, rule, "must not be critical")?;
    let (rest, points) = CRLDistributionPoints::from_der(ext.value).map_err(|e| fail(rule, e.to_string()))?;
    ensure(rest.is_empty(), rule, "trailing data after the distribution points")?;
    let names_url = points.iter().any(|point| match &point.distribution_point {
        Some(DistributionPointName::FullName(names)) => {
            names.iter().any(|n| matches!(n, GeneralName::URI(u) if *u == delta_url))
        }
        _ => false,
    });
    ensure(names_url, rule, "does not name the delta CRL URL")
}

#[cfg(test)]
pub(crate) mod testing {
    use time::OffsetDateTime;

    use super::LintRule;
    use crate::Error;
    use crate::ca::{self, CaSpec};
    use crate::issuer::Issuer;
    use crate::keys::{KeyAlgorithm, SigningKey};

    pub(crate) fn root() -> Issuer {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        ca::create_root(&CaSpec::root("corp.example", "root"), key, OffsetDateTime::now_utc()).unwrap()
    }

    pub(crate) fn rule_of(result: Result<(), Error>) -> LintRule {
        match result {
            Err(Error::Lint { rule, .. }) => rule,
            other => panic!("expected a lint failure, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_distinct() {
        let all = [
            LintRule::Version,
            LintRule::SerialNumber,
            LintRule::ValidityWindow,
            LintRule::ValidityWithinIssuer,
            LintRule::IssuerName,
            LintRule::SubjectPublicKey,
            LintRule::BasicConstraints,
            LintRule::KeyUsage,
            LintRule::ExtendedKeyUsage,
            LintRule::SubjectKeyIdentifier,
            LintRule::AuthorityKeyIdentifier,
            LintRule::SubjectAltName,
            LintRule::CommonNameInSubjectAltName,
            LintRule::SpiffeUri,
            LintRule::CrlDistributionPoint,
            LintRule::AuthorityInfoAccess,
            LintRule::NameConstraints,
            LintRule::UnknownCriticalExtension,
            LintRule::OcspNoCheck,
            LintRule::CrlVersion,
            LintRule::CrlIssuerName,
            LintRule::CrlUpdateTimes,
            LintRule::CrlNumber,
            LintRule::CrlAuthorityKeyIdentifier,
            LintRule::CrlIssuingDistributionPoint,
            LintRule::CrlEntry,
        ];
        let names: std::collections::HashSet<_> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), all.len());
    }
}
