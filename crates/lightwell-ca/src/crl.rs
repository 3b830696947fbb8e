//! X.509 v2 CRLs for a CA: CRL Number, thisUpdate/nextUpdate, AKI and (for
//! issuing CAs) an Issuing Distribution Point naming the CRL's own URL,
//! linted before signing.
use std::fmt;
use std::str::FromStr;

use rcgen::{
    CertificateRevocationListParams, CrlDistributionPoint, CrlIssuingDistributionPoint, KeyIdMethod, RevokedCertParams,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::issuer::Issuer;
use crate::serial::Serial;
use crate::signing::{Signer, ToBeSigned};
use crate::urls::http_url;
use crate::{Error, lint, timestamp};

/// Default distance from thisUpdate to nextUpdate.
pub const DEFAULT_VALIDITY: Duration = Duration::days(7);

/// RFC 5280 section 5.3.1 reason codes a full CRL may carry
/// (`removeFromCRL` belongs only in delta CRLs, which Lightwell does not make).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RevocationReason {
    /// 0; written as an entry without a reason code, as RFC 5280 asks.
    #[default]
    Unspecified,
    /// 1
    KeyCompromise,
    /// 2
    CaCompromise,
    /// 3
    AffiliationChanged,
    /// 4
    Superseded,
    /// 5
    CessationOfOperation,
    /// 6
    CertificateHold,
    /// 9
    PrivilegeWithdrawn,
    /// 10
    AaCompromise,
}

impl RevocationReason {
    /// Every reason.
    pub const ALL: [Self; 9] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The RFC 5280 CRLReason code.
    pub fn code(self) -> u8 {
        self.to_rcgen() as u8
    }

    /// The reason for an RFC 5280 code.
    pub fn from_code(code: u8) -> Result<Self, Error> {
        Self::ALL.into_iter().find(|r| r.code() == code).ok_or_else(|| Error::UnknownRevocationReason(code.to_string()))
    }

    /// The stable name used in the API and the CLI (`key-compromise`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "key-compromise",
            Self::CaCompromise => "ca-compromise",
            Self::AffiliationChanged => "affiliation-changed",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessation-of-operation",
            Self::CertificateHold => "certificate-hold",
            Self::PrivilegeWithdrawn => "privilege-withdrawn",
            Self::AaCompromise => "aa-compromise",
        }
    }

    fn to_rcgen(self) -> rcgen::RevocationReason {
        use rcgen::RevocationReason as R;
        match self {
            Self::Unspecified => R::Unspecified,
            Self::KeyCompromise => R::KeyCompromise,
            Self::CaCompromise => R::CaCompromise,
            Self::AffiliationChanged => R::AffiliationChanged,
            Self::Superseded => R::Superseded,
            Self::CessationOfOperation => R::CessationOfOperation,
            Self::CertificateHold => R::CertificateHold,
            Self::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
            Self::AaCompromise => R::AaCompromise,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevocationReason {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| Error::UnknownRevocationReason(s.to_owned()))
    }
}

/// One entry of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// Serial of the revoked certificate.
    pub serial: Serial,
    /// When the CA processed the revocation.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}

/// What a CRL says.
#[derive(Debug, Clone, Copy)]
pub struct CrlSpec<'a> {
    /// The CRL Number; the caller keeps it growing across restarts.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate; must be after `this_update`.
    pub next_update: OffsetDateTime,
    /// The plain-HTTP URL the CRL is served at (the CDP of the certificates it
    /// covers), written as the critical Issuing Distribution Point. `Some` for
    /// an issuing CA's CRL.
    ///
    /// `None` for a root's CRL, which then has no IDP and covers everything the
    /// root signed, itself included: `openssl verify -crl_check_all` checks the
    /// root against its own CRL, and a root has no CDP to match an IDP against
    /// (OpenSSL reports "different CRL scope").
    pub distribution_point: Option<&'a str>,
    /// The entries.
    pub revoked: &'a [RevokedCertificate],
}

/// A signed CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    der: Vec<u8>,
}

impl Crl {
    /// DER (served over plain HTTP as `application/pkix-crl`).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM (`X509 CRL`).
    pub fn to_pem(&self) -> String {
        crate::pem::encode("X509 CRL", &self.der)
    }

    /// The DER, by value.
    pub fn into_der(self) -> Vec<u8> {
        self.der
    }
}

/// Builds, lints and signs a CRL for `issuer`.
pub fn build(issuer: &Issuer, spec: &CrlSpec<'_>) -> Result<Crl, Error> {
    let (params, url) = layout(issuer, spec)?;
    let tbs = ToBeSigned::crl(&params, &Signer::issuer(issuer))?;
    lint::crl(&tbs.unsigned(), issuer.certificate(), url.as_deref())?;
    Ok(Crl { der: tbs.sign(issuer.key())? })
}

/// The CRL parameters and checked distribution point URL.
pub(crate) fn layout(
    issuer: &Issuer,
    spec: &CrlSpec<'_>,
) -> Result<(CertificateRevocationListParams, Option<String>), Error> {
    let certificate = issuer.certificate();
    if !certificate.can_sign_crls() {
        return Err(Error::CaCannotSignCrls);
    }
    let this_update = timestamp::encodable(spec.this_update)?;
    let next_update = timestamp::encodable(spec.next_update)?;
    if next_update <= this_update {
        return Err(Error::InvalidTimeWindow("nextUpdate must be after thisUpdate"));
    }
    let url = spec.distribution_point.map(|url| http_url("CRL URL", url)).transpose()?;
    let revoked_certs = spec
        .revoked
        .iter()
        .map(|entry| {
            Ok(RevokedCertParams {
                serial_number: entry.serial.to_rcgen(),
                revocation_time: timestamp::encodable(entry.revoked_at)?,
                reason_code: Some(entry.reason.to_rcgen()),
                invalidity_date: None,
            })
        })
        .collect::<Result<_, Error>>()?;
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from_slice(&spec.number.to_be_bytes()),
        issuing_distribution_point: url.as_ref().map(|url| CrlIssuingDistributionPoint {
            distribution_point: CrlDistributionPoint { uris: vec![url.clone()] },
            scope: None,
        }),
        revoked_certs,
        key_identifier_method: KeyIdMethod::PreSpecified(certificate.key_id().to_vec()),
    };
    Ok((params, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_by_name_and_code() {
        for reason in RevocationReason::ALL {
            assert_eq!(reason.as_str().parse::<RevocationReason>().unwrap(), reason);
            assert_eq!(RevocationReason::from_code(reason.code()).unwrap(), reason);
        }
        assert_eq!(RevocationReason::KeyCompromise.code(), 1);
        assert_eq!(RevocationReason::AaCompromise.code(), 10);
        assert!(RevocationReason::from_code(7).is_err());
        assert!(RevocationReason::from_code(8).is_err(), "removeFromCRL is for delta CRLs only");
        assert!("lost".parse::<RevocationReason>().is_err());
    }
}
