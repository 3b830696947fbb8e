//! Applying trust changes (`GET .../trust/changes`) to the trust files the
//! agent holds, without fetching the whole trust state.
//!
//! A CA change replaces the bundle and the list of CRLs; a CRL change
//! replaces one CRL, whole or rebuilt from the CRL held and a
//! [`CrlDelta`]; a delta CRL change does the same for the CA's delta CRL
//! (RFC 5280 section 5.2.4), from the delta CRL held. A CRL, whole or rebuilt, must carry the CRL Number announced and, when
//! the agent knows the issuing CA's certificate (a root of the bundle, a CA
//! of its own chain, or one a CA change carried), verify under it. Anything
//! that does not apply is an error: the caller then fetches a snapshot.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lightwell_ca::crl::delta::{self, CrlDelta};
use lightwell_proto::TrustChangeBody;

use crate::error::AgentError;
use crate::state::CrlFile;

/// The trust files' contents: what `StateDir::write_trust` writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrustFiles {
    /// Root certificates (DER), in the server's order.
    pub roots: Vec<Vec<u8>>,
    /// CRLs, in the server's order.
    pub crls: Vec<CrlFile>,
    /// Delta CRLs of issuing CAs, by CA id.
    pub delta_crls: Vec<CrlFile>,
}

fn refused(why: impl Into<String>) -> AgentError {
    AgentError::Other(format!("trust change not applied: {}", why.into()))
}

fn decode(what: &str, b64: Option<&String>) -> Result<Vec<u8>, AgentError> {
    let text = b64.ok_or_else(|| refused(format!("no {what}")))?;
    STANDARD.decode(text).map_err(|_| refused(format!("{what} is not base64")))
}

/// Applies `changes` in order to `files`; `known_cas` are CA certificates
/// (DER) the agent holds besides the roots (its chain's intermediates).
pub fn apply(files: &TrustFiles, known_cas: &[Vec<u8>], changes: &[TrustChangeBody]) -> Result<TrustFiles, AgentError> {
    let mut next = files.clone();
    let mut issuers: Vec<Vec<u8>> = known_cas.to_vec();
    for change in changes {
        match change.kind.as_str() {
            "ca" => {
                let certificate = decode("CA certificate", change.certificate.as_ref())?;
                issuers.push(certificate);
                let bundle = change.bundle.as_ref().ok_or_else(|| refused("a CA change without the bundle"))?;
                next.roots = bundle.iter().map(|b| decode("root", Some(b))).collect::<Result<_, _>>()?;
                let order = change.crl_cas.as_ref().ok_or_else(|| refused("a CA change without the CRL list"))?;
                // Keep the CRLs still listed, in the new order; a new CA's CRL comes in its own change.
                let kept = |held: &[CrlFile]| {
                    order.iter().filter_map(|id| held.iter().find(|c| &c.ca_id == id)).cloned().collect::<Vec<_>>()
                };
                next.crls = kept(&next.crls);
                next.delta_crls = kept(&next.delta_crls);
            }
            "crl" => replace_crl(&mut next.crls, change, next.roots.iter().chain(&issuers))?,
            "delta_crl" => {
                if change.base_number.is_none() {
                    return Err(refused("a delta CRL change without its base number"));
                }
                replace_crl(&mut next.delta_crls, change, next.roots.iter().chain(&issuers))?;
            }
            // The JWT and federated bundles are not files: the Workload API fetches them again.
            "token_keys" | "federation" => {}
            other => {
                return Err(refused(format!("unknown change kind {:?}", other.chars().take(32).collect::<String>())));
            }
        }
    }
    Ok(next)
}

/// Replaces the CRL of `change`'s CA in `held` with the one `change`
/// carries whole or rebuilds from the held one; checks its number and
/// signature.
fn replace_crl<'a>(
    held: &mut Vec<CrlFile>,
    change: &TrustChangeBody,
    issuers: impl Iterator<Item = &'a Vec<u8>>,
) -> Result<(), AgentError> {
    let number = change.number.ok_or_else(|| refused("a CRL change without a number"))?;
    let der = if let Some(whole) = &change.crl {
        let der = decode("CRL", Some(whole))?;
        if crl_number(&der) != Some(number) {
            return Err(refused("the CRL carries another CRL Number than announced"));
        }
        der
    } else {
        let delta = CrlDelta::from_der(&decode("CRL delta", change.delta.as_ref())?)?;
        let base = held
            .iter()
            .find(|c| c.ca_id == change.ca_id)
            .ok_or_else(|| refused(format!("no CRL of {} to apply a delta to", change.ca_id)))?;
        let rebuilt = delta.apply(&base.der)?;
        if i64::try_from(delta.number()).ok() != Some(number) {
            return Err(refused("the delta makes another CRL Number than announced"));
        }
        rebuilt
    };
    check_signature(&der, issuers)?;
    match held.iter_mut().find(|c| c.ca_id == change.ca_id) {
        Some(file) => file.der = der,
        None => held.push(CrlFile { ca_id: change.ca_id.clone(), der }),
    }
    Ok(())
}

/// A CRL's CRL Number, if it parses and fits.
fn crl_number(der: &[u8]) -> Option<i64> {
    let (_, crl) = x509_parser::parse_x509_crl(der).ok()?;
    let bytes = crl.crl_number()?.to_bytes_be();
    if bytes.len() > 8 {
        return None;
    }
    i64::try_from(bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b))).ok()
}

/// Verifies a CRL under whichever known CA certificate names its issuer;
/// a CRL of a CA the agent holds no certificate of is taken as the
/// (TLS-authenticated) server sent it.
fn check_signature<'a>(crl: &[u8], candidates: impl Iterator<Item = &'a Vec<u8>>) -> Result<(), AgentError> {
    let mut refusal = None;
    for ca in candidates {
        match delta::verify(crl, ca) {
            Ok(()) => return Ok(()),
            // Only a CA that names the CRL's issuer can refuse it.
            Err(lightwell_ca::Error::CrlDelta(delta::NOT_THE_ISSUER)) => {}
            Err(e) => refusal = Some(e),
        }
    }
    match refusal {
        Some(e) => Err(refused(e.to_string())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use lightwell_ca::ca::{CaSpec, create_root};
    use lightwell_ca::crl::{self, CrlSpec, RevocationReason, RevokedCertificate};
    use lightwell_ca::{Issuer, KeyAlgorithm, Serial, SigningKey};
    use time::OffsetDateTime;

    use super::*;

    fn root() -> Issuer {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        create_root(&CaSpec::root("corp.example", "root"), key, OffsetDateTime::now_utc()).unwrap()
    }

    fn crl(issuer: &Issuer, number: u64, revoked: &[RevokedCertificate]) -> Vec<u8> {
        let now = OffsetDateTime::now_utc() + time::Duration::seconds(number as i64);
        let spec = CrlSpec {
            number,
            this_update: now,
            next_update: now + crl::DEFAULT_VALIDITY,
            distribution_point: None,
            revoked,
        };
        crl::build(issuer, &spec).unwrap().into_der()
    }

    fn entry() -> RevokedCertificate {
        RevokedCertificate {
            serial: Serial::random().unwrap(),
            revoked_at: OffsetDateTime::now_utc(),
            reason: RevocationReason::KeyCompromise,
        }
    }

    fn change(ca_id: &str, number: i64, delta: &[u8]) -> TrustChangeBody {
        TrustChangeBody {
            kind: "crl".into(),
            ca_id: ca_id.into(),
            certificate: None,
            bundle: None,
            crl_cas: None,
            number: Some(number),
            base_number: None,
            crl: None,
            delta: Some(STANDARD.encode(delta)),
        }
    }

    /// A root, its CRL of 200 entries held, and the delta to the next CRL (one more entry).
    fn setup() -> (Issuer, TrustFiles, Vec<u8>, Vec<u8>, RevokedCertificate) {
        let issuer = root();
        let mut revoked: Vec<_> = (0..200).map(|_| entry()).collect();
        let held = crl(&issuer, 4, &revoked);
        let new = entry();
        revoked.push(new.clone());
        let next = crl(&issuer, 5, &revoked);
        let delta = CrlDelta::between(&held, &next).unwrap().to_der();
        let files = TrustFiles {
            roots: vec![issuer.certificate().der().to_vec()],
            crls: vec![CrlFile { ca_id: "ca1".into(), der: held }],
            delta_crls: Vec::new(),
        };
        (issuer, files, next, delta, new)
    }

    #[test]
    fn a_delta_rebuilds_the_servers_crl_byte_for_byte() {
        let (_, files, next, delta, _) = setup();
        let applied = apply(&files, &[], &[change("ca1", 5, &delta)]).unwrap();
        assert_eq!(applied.roots, files.roots);
        assert!(applied.crls[0].der == next);
    }

    #[test]
    fn a_tampered_delta_a_wrong_base_or_a_wrong_number_is_refused_so_the_agent_takes_a_snapshot() {
        let (_, files, _, delta, new) = setup();
        // The added entry's serial, changed: the rebuilt CRL's signature no longer verifies.
        let at = delta.windows(new.serial.as_bytes().len()).position(|w| w == new.serial.as_bytes()).unwrap();
        let mut tampered = delta.clone();
        tampered[at + 3] ^= 0x01;
        let err = apply(&files, &[], &[change("ca1", 5, &tampered)]).unwrap_err().to_string();
        assert!(err.contains("signature"), "{err}");
        // A delta for CRL 5 applied to the CRL it made (number 5, not 4).
        let once = apply(&files, &[], &[change("ca1", 5, &delta)]).unwrap();
        assert!(apply(&once, &[], &[change("ca1", 5, &delta)]).is_err());
        // Announced as another number than the delta makes.
        assert!(apply(&files, &[], &[change("ca1", 6, &delta)]).is_err());
        // No CRL held for that CA, garbage, an unknown kind.
        assert!(apply(&files, &[], &[change("ca2", 5, &delta)]).is_err());
        assert!(apply(&files, &[], &[change("ca1", 5, b"\x30\x03\x02\x01\x00")]).is_err());
        let mut unknown = change("ca1", 5, &delta);
        unknown.kind = "rm -rf".into();
        assert!(apply(&files, &[], &[unknown]).is_err());
        // A token key change leaves every file as it is.
        let keys = TrustChangeBody { kind: "token_keys".into(), ca_id: String::new(), ..change("ca1", 5, &delta) };
        assert_eq!(apply(&files, &[], &[keys]).unwrap(), files);
    }

    #[test]
    fn a_whole_crl_signed_by_another_ca_is_refused() {
        let (_, files, _, _, _) = setup();
        let mut forged = change("ca1", 5, b"");
        forged.delta = None;
        // Same subject (corp.example root), another key.
        forged.crl = Some(STANDARD.encode(crl(&root(), 5, &[entry()])));
        let err = apply(&files, &[], &[forged]).unwrap_err().to_string();
        assert!(err.contains("signature"), "{err}");
    }

    #[test]
    fn a_whole_crl_announced_as_another_number_is_refused() {
        let (issuer, files, _, _, _) = setup();
        let whole = |announced: i64| TrustChangeBody {
            delta: None,
            crl: Some(STANDARD.encode(crl(&issuer, 5, &[entry()]))),
            ..change("ca1", announced, b"")
        };
        assert!(apply(&files, &[], &[whole(5)]).is_ok());
        // An older CRL replayed under a newer number would roll revocations back.
        let err = apply(&files, &[], &[whole(6)]).unwrap_err().to_string();
        assert!(err.contains("another CRL Number"), "{err}");
    }

    #[test]
    fn delta_crls_are_kept_beside_the_crls_and_follow_the_ca_list() {
        let (issuer, files, next, delta, _) = setup();
        let whole_delta = |number: i64, base: Option<i64>, der: &[u8]| TrustChangeBody {
            kind: "delta_crl".into(),
            base_number: base,
            delta: None,
            crl: Some(STANDARD.encode(der)),
            ..change("ca1", number, b"")
        };
        let first = crl(&issuer, 6, &[entry()]);
        let applied = apply(&files, &[], &[change("ca1", 5, &delta), whole_delta(6, Some(5), &first)]).unwrap();
        assert!(applied.crls[0].der == next, "the complete CRL is left as its own change made it");
        assert_eq!(applied.delta_crls, vec![CrlFile { ca_id: "ca1".into(), der: first.clone() }]);
        // The next delta CRL, as a patch from the one held.
        let second = crl(&issuer, 8, &[entry(), entry()]);
        let patch = CrlDelta::between(&first, &second).unwrap().to_der();
        let patched = TrustChangeBody { kind: "delta_crl".into(), base_number: Some(5), ..change("ca1", 8, &patch) };
        let applied = apply(&applied, &[], std::slice::from_ref(&patched)).unwrap();
        assert!(applied.delta_crls[0].der == second);
        // A patch meant for a delta CRL does not apply to the complete CRL, nor without a base number.
        assert!(apply(&files, &[], &[TrustChangeBody { kind: "crl".into(), ..patched.clone() }]).is_err());
        assert!(apply(&applied, &[], &[TrustChangeBody { base_number: None, ..patched }]).is_err());
        // A forged delta CRL is refused like a forged CRL.
        assert!(apply(&files, &[], &[whole_delta(6, Some(5), &crl(&root(), 6, &[]))]).is_err());
        // A CA change that no longer lists the CA drops both of its CRLs.
        let dropped = TrustChangeBody {
            kind: "ca".into(),
            ca_id: "ca2".into(),
            certificate: Some(STANDARD.encode(issuer.certificate().der())),
            bundle: Some(vec![STANDARD.encode(issuer.certificate().der())]),
            crl_cas: Some(vec![]),
            number: None,
            base_number: None,
            crl: None,
            delta: None,
        };
        let applied = apply(&applied, &[], &[dropped]).unwrap();
        assert!(applied.crls.is_empty() && applied.delta_crls.is_empty());
    }
}
