//! X.509 v2 CRLs for a CA: CRL Number, thisUpdate/nextUpdate, AKI and (for
//! issuing CAs) an Issuing Distribution Point naming the CRL's own URL,
//! linted before signing.
//!
//! rcgen lays out the CRL; the entry list, up to a million entries, is
//! encoded by Lightwell (the private `entries` module) straight into the
//! to-be-signed buffer, which the lint then reads in place.
use std::fmt;
use std::str::FromStr;

use rcgen::{
    CertificateRevocationListParams, CrlDistributionPoint, CrlIssuingDistributionPoint, KeyIdMethod, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::issuer::Issuer;
use crate::serial::Serial;
use crate::signing::{Signer, ToBeSigned};
use crate::urls::http_url;
use crate::{Error, der, lint, timestamp};

pub mod delta;
mod entries;

pub(crate) use entries::EntryList;

/// Default distance from thisUpdate to nextUpdate.
pub const DEFAULT_VALIDITY: Duration = Duration::days(7);

/// RFC 5280 section 5.3.1 reason codes a full CRL may carry
/// (`removeFromCRL` belongs only in delta CRLs, and Lightwell's delta CRLs
/// only add entries: a revocation is never undone).
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

    /// Takes Lightwell's names (`key-compromise`) and RFC 5280's, as
    /// `openssl ca -crl_reason` spells them (`keyCompromise`), in any letter
    /// case, and the reason code (`1`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let fold = |name: &str| name.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_lowercase();
        let wanted = fold(s.trim());
        Self::ALL
            .into_iter()
            .find(|r| fold(r.as_str()) == wanted || s.trim().parse::<u8>().is_ok_and(|code| code == r.code()))
            .ok_or_else(|| Error::UnknownRevocationReason(s.chars().take(64).collect()))
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

/// How a CRL points at, or stands on, another CRL of the same CA (RFC 5280
/// sections 5.2.4 and 5.2.6). The default is neither: a complete CRL with no
/// delta CRLs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaLinks<'a> {
    /// `Some(n)` makes the CRL a delta CRL over the complete CRL numbered
    /// `n`: a critical Delta CRL Indicator naming that BaseCRLNumber.
    pub base_number: Option<u64>,
    /// Where the CA's delta CRLs are served, written as a non-critical
    /// Freshest CRL extension (complete CRLs only: RFC 5280 5.2.6 keeps it
    /// out of delta CRLs).
    pub freshest_crl: Option<&'a str>,
}

/// Builds, lints and signs a complete CRL for `issuer`.
pub fn build(issuer: &Issuer, spec: &CrlSpec<'_>) -> Result<Crl, Error> {
    build_linked(issuer, spec, &DeltaLinks::default())
}

/// Builds, lints and signs a complete CRL whose Freshest CRL extension
/// names `delta_url`, where this CA's delta CRLs are served.
pub fn build_complete(issuer: &Issuer, spec: &CrlSpec<'_>, delta_url: &str) -> Result<Crl, Error> {
    build_linked(issuer, spec, &DeltaLinks { base_number: None, freshest_crl: Some(delta_url) })
}

/// Builds, lints and signs a delta CRL: the entries revoked since the
/// complete CRL numbered `base_number`, with that base's issuer, AKI and
/// IDP (`spec.distribution_point` is the base's URL, not the delta's). Its
/// own number comes from the same sequence and so is above the base's.
pub fn build_delta(issuer: &Issuer, spec: &CrlSpec<'_>, base_number: u64) -> Result<Crl, Error> {
    if spec.number <= base_number {
        return Err(Error::CrlDelta("a delta CRL's number must be above its base's"));
    }
    build_linked(issuer, spec, &DeltaLinks { base_number: Some(base_number), freshest_crl: None })
}

fn build_linked(issuer: &Issuer, spec: &CrlSpec<'_>, links: &DeltaLinks<'_>) -> Result<Crl, Error> {
    let freshest = links.freshest_crl.map(|url| http_url("delta CRL URL", url)).transpose()?;
    let links = DeltaLinks { freshest_crl: freshest.as_deref(), ..*links };
    let (tbs, url) = to_be_signed_linked(issuer, spec, &links)?;
    lint::crl(tbs.tbs(), issuer.certificate(), url.as_deref(), &links)?;
    Ok(Crl { der: tbs.sign(issuer.key())? })
}

/// The to-be-signed CRL and its checked distribution point URL. Entries are
/// written in canonical order (by serial number, see [`canonical_order`])
/// whatever order `spec` lists them in: the CRL is then a function of the
/// entry *set*, which is what lets an agent rebuild it byte for byte from
/// its previous CRL and a [`delta::CrlDelta`].
#[cfg(test)]
pub(crate) fn to_be_signed(issuer: &Issuer, spec: &CrlSpec<'_>) -> Result<(ToBeSigned, Option<String>), Error> {
    to_be_signed_linked(issuer, spec, &DeltaLinks::default())
}

/// [`to_be_signed`] with the delta CRL extensions `links` asks for.
pub(crate) fn to_be_signed_linked(
    issuer: &Issuer,
    spec: &CrlSpec<'_>,
    links: &DeltaLinks<'_>,
) -> Result<(ToBeSigned, Option<String>), Error> {
    let (params, url) = layout(issuer, spec)?;
    let sorted;
    let revoked = if spec.revoked.is_sorted_by(|a, b| canonical_order(&a.serial, &b.serial).is_le()) {
        spec.revoked
    } else {
        let mut copy = spec.revoked.to_vec();
        // Stable: a (malformed) list naming a serial twice still has one encoding.
        copy.sort_by(|a, b| canonical_order(&a.serial, &b.serial));
        sorted = copy;
        &sorted
    };
    let entries = EntryList::new(revoked)?;
    let extra = links_extensions(links);
    Ok((ToBeSigned::crl(&params, &Signer::issuer(issuer), &entries, &extra)?, url))
}

/// DER of id-ce-deltaCRLIndicator (2.5.29.27).
pub(crate) const DELTA_CRL_INDICATOR_OID_DER: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x1b];
/// DER of id-ce-freshestCRL (2.5.29.46).
pub(crate) const FRESHEST_CRL_OID_DER: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x2e];

/// The encoded Extensions (rcgen has neither) that `links` asks for.
fn links_extensions(links: &DeltaLinks<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(base) = links.base_number {
        let critical = der::tlv(der::BOOLEAN, &[0xff]);
        let value = der::tlv(der::OCTET_STRING, &der::unsigned_integer(base));
        out.extend(der::sequence(&[DELTA_CRL_INDICATOR_OID_DER, &critical, &value]));
    }
    if let Some(url) = links.freshest_crl {
        let value = der::tlv(der::OCTET_STRING, &crate::urls::distribution_points(url));
        out.extend(der::sequence(&[FRESHEST_CRL_OID_DER, &value]));
    }
    out
}

/// The order of a CRL's entries: by serial number, numerically (a serial's
/// content octets are a minimal positive INTEGER, so shorter is smaller).
pub fn canonical_order(a: &Serial, b: &Serial) -> std::cmp::Ordering {
    serial_order(a.as_bytes(), b.as_bytes())
}

fn serial_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The CRL parameters, without entries, and the checked distribution point URL.
fn layout(issuer: &Issuer, spec: &CrlSpec<'_>) -> Result<(CertificateRevocationListParams, Option<String>), Error> {
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
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from_slice(&spec.number.to_be_bytes()),
        issuing_distribution_point: url.as_ref().map(|url| CrlIssuingDistributionPoint {
            distribution_point: CrlDistributionPoint { uris: vec![url.clone()] },
            scope: None,
        }),
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::PreSpecified(certificate.key_id().to_vec()),
    };
    Ok((params, url))
}

/// The to-be-signed CRL as rcgen lays it out with every entry (how Lightwell
/// built CRLs before [`entries`]): the reference [`to_be_signed`] must match.
#[cfg(test)]
fn to_be_signed_by_rcgen(issuer: &Issuer, spec: &CrlSpec<'_>) -> Result<ToBeSigned, Error> {
    let (mut params, _) = layout(issuer, spec)?;
    params.revoked_certs = spec
        .revoked
        .iter()
        .map(|entry| {
            Ok(rcgen::RevokedCertParams {
                serial_number: entry.serial.to_rcgen(),
                revocation_time: timestamp::encodable(entry.revoked_at)?,
                reason_code: Some(entry.reason.to_rcgen()),
                invalidity_date: None,
            })
        })
        .collect::<Result<_, Error>>()?;
    ToBeSigned::crl_by_rcgen(&params, &Signer::issuer(issuer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_parse_by_lightwell_and_rfc_5280_names_in_any_case_and_by_code() {
        for (text, reason) in [
            ("key-compromise", RevocationReason::KeyCompromise),
            ("keyCompromise", RevocationReason::KeyCompromise),
            ("KEYCOMPROMISE", RevocationReason::KeyCompromise),
            ("cACompromise", RevocationReason::CaCompromise),
            ("cessationOfOperation", RevocationReason::CessationOfOperation),
            ("privilegeWithdrawn", RevocationReason::PrivilegeWithdrawn),
            ("aACompromise", RevocationReason::AaCompromise),
            ("certificateHold", RevocationReason::CertificateHold),
            (" superseded ", RevocationReason::Superseded),
            ("1", RevocationReason::KeyCompromise),
            ("0", RevocationReason::Unspecified),
        ] {
            assert_eq!(text.parse::<RevocationReason>().unwrap(), reason, "{text}");
        }
        for bad in ["", "removeFromCRL", "8", "7", "key compromise!", "11"] {
            let err = bad.parse::<RevocationReason>().unwrap_err().to_string();
            assert!(err.contains("keyCompromise"), "{bad}: {err}");
        }
    }

    use time::macros::datetime;
    use x509_parser::oid_registry::OID_X509_EXT_REASON_CODE;

    use crate::lint::testing::root;

    fn serial(bytes: &[u8]) -> Serial {
        Serial::from_bytes(bytes).unwrap()
    }

    fn entry(serial_bytes: &[u8], revoked_at: OffsetDateTime, reason: RevocationReason) -> RevokedCertificate {
        RevokedCertificate { serial: serial(serial_bytes), revoked_at, reason }
    }

    fn spec<'a>(revoked: &'a [RevokedCertificate], url: Option<&'a str>) -> CrlSpec<'a> {
        let now = datetime!(2026-11-27 03:00:00 UTC);
        CrlSpec { number: 9, this_update: now, next_update: now + DEFAULT_VALIDITY, distribution_point: url, revoked }
    }

    /// Entries at every edge the encoder has: serial lengths and high bits,
    /// every reason, both time forms and the switch between them.
    fn edge_entries() -> Vec<RevokedCertificate> {
        let serials = [
            serial(&[1]),
            serial(&[0x7f]),
            serial(&[0, 0x80]),
            serial(&[0, 0xff, 0xfe]),
            serial(&[[0].as_slice(), &[0xff; 19]].concat()),
            serial(&[0x7f; 20]),
            serial(&[0x01, 0x00, 0x00]),
            Serial::random().unwrap(),
        ];
        let times = [
            datetime!(1950-01-01 00:00:00 UTC),
            datetime!(2026-11-27 02:59:59.999 UTC),
            datetime!(2049-12-31 23:59:59 UTC),
            // 2050-01-01 00:30 in UTC: GeneralizedTime.
            datetime!(2049-12-31 23:30:00 -01:00),
            datetime!(2050-01-01 00:00:00 UTC),
            datetime!(9999-12-31 23:59:59 UTC),
        ];
        let mut entries = Vec::new();
        for (i, serial) in serials.iter().enumerate() {
            for (j, revoked_at) in times.iter().enumerate() {
                let reason = RevocationReason::ALL[(i + j) % RevocationReason::ALL.len()];
                entries.push(RevokedCertificate { serial: serial.clone(), revoked_at: *revoked_at, reason });
            }
        }
        entries.extend(RevocationReason::ALL.map(|reason| RevokedCertificate {
            serial: Serial::random().unwrap(),
            revoked_at: datetime!(2026-11-27 01:00:00 UTC),
            reason,
        }));
        sorted(entries)
    }

    /// In the order a CRL lists them, so rcgen's layout (which keeps the
    /// given order) and x509-parser's reading line up with ours.
    fn sorted(mut entries: Vec<RevokedCertificate>) -> Vec<RevokedCertificate> {
        entries.sort_by(|a, b| canonical_order(&a.serial, &b.serial));
        entries
    }

    #[test]
    fn entries_are_written_in_serial_order_whatever_order_they_come_in() {
        let issuer = root();
        let entries = many_entries();
        let mut shuffled = entries.clone();
        shuffled.reverse();
        shuffled.swap(3, 60_000);
        let a = build(&issuer, &spec(&shuffled, None)).unwrap();
        let (ours, _) = to_be_signed(&issuer, &spec(&sorted(entries), None)).unwrap();
        let (theirs, _) = to_be_signed(&issuer, &spec(&shuffled, None)).unwrap();
        assert!(ours.tbs() == theirs.tbs());
        let (_, parsed) = x509_parser::parse_x509_crl(a.der()).unwrap();
        let serials: Vec<_> = parsed.iter_revoked_certificates().map(|r| r.raw_serial().to_vec()).collect();
        assert!(serials.is_sorted_by(|a, b| serial_order(a, b).is_le()));
    }

    /// 70,000 entries: the list and the TBS need three length octets.
    fn many_entries() -> Vec<RevokedCertificate> {
        sorted(
            (0..70_000)
                .map(|i| RevokedCertificate {
                    serial: Serial::random().unwrap(),
                    revoked_at: datetime!(2026-01-01 00:00:00 UTC) + Duration::seconds(i),
                    reason: RevocationReason::ALL[i as usize % RevocationReason::ALL.len()],
                })
                .collect(),
        )
    }

    #[test]
    fn the_entry_list_is_byte_identical_to_rcgens() {
        let issuer = root();
        let edge = edge_entries();
        let many = many_entries();
        let lists: [&[RevokedCertificate]; 5] = [&[], &edge[..1], &edge[7..8], &edge, &many];
        for revoked in lists {
            for url in [None, Some("http://pki.corp.example/crl")] {
                let spec = spec(revoked, url);
                let (ours, _) = to_be_signed(&issuer, &spec).unwrap();
                let rcgens = to_be_signed_by_rcgen(&issuer, &spec).unwrap();
                assert!(ours.tbs() == rcgens.tbs(), "{} entries, url {url:?}: TBS differs", revoked.len());
            }
        }
        let (big, _) = to_be_signed(&issuer, &spec(&many, None)).unwrap();
        assert_eq!(&big.tbs()[..2], [0x30, 0x83], "the TBS length takes three octets");
    }

    #[test]
    fn x509_parser_reads_every_entry_as_written() {
        let issuer = root();
        for revoked in [edge_entries(), many_entries()] {
            let crl = build(&issuer, &spec(&revoked, Some("http://pki.corp.example/crl"))).unwrap();
            let (rest, parsed) = x509_parser::parse_x509_crl(crl.der()).unwrap();
            assert!(rest.is_empty());
            let parsed: Vec<_> = parsed.iter_revoked_certificates().collect();
            assert_eq!(parsed.len(), revoked.len());
            for (entry, read) in revoked.iter().zip(parsed) {
                assert_eq!(read.raw_serial(), entry.serial.as_bytes());
                assert_eq!(read.revocation_date.to_datetime(), timestamp::encodable(entry.revoked_at).unwrap());
                let reason = read.reason_code().map(|(critical, code)| (critical, code.0));
                let expected = (entry.reason != RevocationReason::Unspecified).then_some((false, entry.reason.code()));
                assert_eq!(reason, expected, "serial {}", entry.serial);
                let others = read.extensions().iter().filter(|e| e.oid != OID_X509_EXT_REASON_CODE).count();
                assert_eq!(others, 0);
            }
        }
    }

    #[test]
    fn a_crl_without_entries_has_no_revoked_certificates_field() {
        let issuer = root();
        let (tbs, _) = to_be_signed(&issuer, &spec(&[], None)).unwrap();
        let fields = der::sequence_elements(tbs.tbs()).unwrap();
        assert_eq!(fields.len(), 6, "version, signature, issuer, thisUpdate, nextUpdate, crlExtensions");
        assert_eq!(fields[5][0], 0xa0);
    }

    #[test]
    fn an_entry_time_outside_what_x509_can_carry_is_refused() {
        let issuer = root();
        let revoked = [entry(&[1], datetime!(1949-12-31 23:59:59 UTC), RevocationReason::Superseded)];
        assert!(matches!(build(&issuer, &spec(&revoked, None)), Err(Error::TimeOutOfRange(_))));
    }

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

    const BASE_URL: &str = "http://pki.corp.example/pki/corp.example/ca/issuing.crl";
    const DELTA_URL: &str = "http://pki.corp.example/pki/corp.example/ca/issuing.delta.crl";

    fn extension<'c>(
        crl: &'c x509_parser::revocation_list::CertificateRevocationList<'c>,
        oid: &[u64],
    ) -> Option<&'c x509_parser::extensions::X509Extension<'c>> {
        let oid = x509_parser::oid_registry::Oid::from(oid).unwrap();
        crl.extensions().iter().find(|e| e.oid == oid)
    }

    #[test]
    fn a_delta_crl_names_its_base_and_shares_its_issuer_aki_and_idp() {
        use x509_parser::prelude::FromDer;
        use x509_parser::revocation_list::CertificateRevocationList;

        let issuer = root();
        let revoked = [entry(&[0x42], datetime!(2026-11-27 02:00:00 UTC), RevocationReason::KeyCompromise)];
        let base = build_complete(&issuer, &spec(&[], Some(BASE_URL)), DELTA_URL).unwrap();
        let delta = build_delta(&issuer, &CrlSpec { number: 10, ..spec(&revoked, Some(BASE_URL)) }, 9).unwrap();
        let (_, base) = CertificateRevocationList::from_der(base.der()).unwrap();
        let (_, delta) = CertificateRevocationList::from_der(delta.der()).unwrap();
        assert_eq!(base.issuer(), delta.issuer());
        for oid in [&[2, 5, 29, 35][..], &[2, 5, 29, 28]] {
            let (b, d) = (extension(&base, oid).unwrap(), extension(&delta, oid).unwrap());
            assert_eq!((b.critical, b.value), (d.critical, d.value), "{oid:?}");
        }
        let indicator = extension(&delta, &[2, 5, 29, 27]).unwrap();
        assert!(indicator.critical);
        assert_eq!(indicator.value, [0x02, 0x01, 9], "BaseCRLNumber 9");
        assert!(extension(&delta, &[2, 5, 29, 46]).is_none(), "no Freshest CRL in a delta CRL");
        assert!(extension(&base, &[2, 5, 29, 27]).is_none());
        let freshest = extension(&base, &[2, 5, 29, 46]).unwrap();
        assert!(!freshest.critical);
        assert!(freshest.value.windows(DELTA_URL.len()).any(|w| w == DELTA_URL.as_bytes()));
        assert_eq!(delta.iter_revoked_certificates().count(), 1);
    }

    #[test]
    fn a_delta_crl_never_reuses_or_goes_below_its_base_number() {
        let issuer = root();
        for number in [8, 9] {
            let err = build_delta(&issuer, &CrlSpec { number, ..spec(&[], Some(BASE_URL)) }, 9).unwrap_err();
            assert!(matches!(err, Error::CrlDelta(_)), "{number}: {err}");
        }
        assert!(build_complete(&issuer, &spec(&[], Some(BASE_URL)), "ldap://x").is_err());
    }
}
