//! The OCSP responder (RFC 6960): public, unauthenticated, per tenant.
//!
//! Each CA answers through a delegated responder certificate it signed
//! (`lightwell_ca::ocsp::issue_responder`), kept in `ocsp_responders` with
//! its key sealed under the KEK. The CA maintenance job issues a new one once
//! the current one is half-way through its life; a query that finds none (a
//! CA created since the last job) issues it on the spot.
//!
//! "A query is a lookup": a response for one CertID without a nonce is
//! signed once and kept in memory by (CA, CertID), next to the status and
//! responder it was signed for. Each query reads the certificate's row (one
//! indexed lookup) and serves the kept response only if the status read is
//! still the one signed, the responder is still the current one and the
//! response is less than half-way to its nextUpdate; so a revocation (on any
//! replica) invalidates it at once. A nonce or several CertIDs are signed
//! fresh, as their answer cannot be shared.
//!
//! Tenant isolation: only the CAs of the tenant in the URL are candidates. A
//! CertID naming any other issuer, another tenant's CA included, is answered
//! `unknown` (signed by the tenant's default issuing CA's responder), never
//! with that issuer's status.

use std::sync::Arc;

use lightwell_ca::crl::RevocationReason;
use lightwell_ca::ocsp::{
    self, CertId, CertStatus, ErrorStatus, OcspRequest, RESPONDER_VALIDITY, RESPONSE_VALIDITY, Responder,
    SingleResponse,
};
use lightwell_ca::{CaCertificate, KeyAlgorithm, SigningKey};
use lightwell_proto::ErrorCode;
use lightwell_store::{CaRecord, CaStatus, OcspResponderRecord, StoreExt, Tx};
use time::OffsetDateTime;

use super::super::{Inner, Service, cache::Cache};
use super::ca_error;
use crate::service::Tenant;
use crate::{Error, Result};

/// What an OCSP query is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspAnswer {
    /// The DER OCSPResponse (`application/ocsp-response`).
    pub der: Vec<u8>,
    /// nextUpdate of a successful response, for HTTP caching of GETs.
    pub next_update: Option<OffsetDateTime>,
}

impl OcspAnswer {
    fn error(status: ErrorStatus) -> Self {
        Self { der: ocsp::error_response(status), next_update: None }
    }
}

/// The in-memory state of the responder: unsealed responder keys and
/// pre-signed responses. Only saves work: every entry is checked against
/// what it was made from before use.
#[derive(Debug)]
pub(in crate::service) struct OcspState {
    responders: Cache<String, CachedResponder>,
    responses: Cache<(String, Vec<u8>), CachedResponse>,
}

impl Default for OcspState {
    fn default() -> Self {
        Self { responders: Cache::new(1024), responses: Cache::new(65_536) }
    }
}

#[derive(Debug, Clone)]
struct CachedResponder {
    cert_der: Vec<u8>,
    responder: Arc<Responder>,
}

#[derive(Debug, Clone)]
struct CachedResponse {
    responder_cert: Vec<u8>,
    status: CertStatus,
    refresh_at: OffsetDateTime,
    answer: OcspAnswer,
}

/// The sealed key's context: distinct from the CA key's (the bare CA id).
fn seal_context(ca_id: &str) -> Vec<u8> {
    format!("ocsp:{ca_id}").into_bytes()
}

/// CAs whose certificates may still be asked about.
fn answers(ca: &CaRecord) -> bool {
    !matches!(ca.status, CaStatus::Pending | CaStatus::Retired)
}

fn unix(t: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).map_err(Error::internal)
}

impl Service {
    /// Answers an OCSP request (DER) for `tenant`. Public: no authentication.
    /// Never fails: a request that does not parse is `malformedRequest`, an
    /// unknown tenant `unauthorized`, a failure `internalError`.
    pub async fn ocsp(&self, tenant: &str, request_der: Vec<u8>) -> OcspAnswer {
        let Ok(request) = OcspRequest::parse(&request_der) else {
            return OcspAnswer::error(ErrorStatus::MalformedRequest);
        };
        let tenant = tenant.to_string();
        match self.blocking(move |inner| inner.ocsp(&tenant, &request)).await {
            Ok(answer) => answer,
            // A tenant that does not exist, or has no CA to answer with.
            Err(e) if matches!(e.code, ErrorCode::TenantNotFound | ErrorCode::CaUnavailable) => {
                OcspAnswer::error(ErrorStatus::Unauthorized)
            }
            Err(e) => {
                tracing::warn!(error = %e, "OCSP response failed");
                OcspAnswer::error(ErrorStatus::InternalError)
            }
        }
    }
}

impl Inner {
    fn ocsp(&self, tenant: &str, request: &OcspRequest) -> Result<OcspAnswer> {
        let now = self.now_time();
        // Which of the tenant's CAs each CertID names, and its status there.
        let (t, signer, statuses) = self.tenant_read(tenant, |tx, t| {
            let cas: Vec<(CaRecord, CaCertificate)> = tx
                .list_cas(&t.id)?
                .into_iter()
                .filter(answers)
                .map(|c| CaCertificate::from_der(&c.cert_der).map(|cert| (c, cert)).map_err(Error::internal))
                .collect::<Result<_>>()?;
            let named = |id: &CertId| cas.iter().find(|(_, cert)| id.names_issuer(cert)).map(|(c, _)| c);
            // One responder signs: the first named CA's, else the default issuing CA's.
            let signer = request
                .cert_ids()
                .iter()
                .find_map(named)
                .or_else(|| cas.iter().map(|(c, _)| c).find(|c| c.is_default && c.status == CaStatus::Active))
                .cloned()
                .ok_or_else(|| Error::new(ErrorCode::CaUnavailable, "the tenant has no CA that answers OCSP"))?;
            // A revoked CA's leaves are never answered `good` (its own CRL,
            // the parent's, lists it): `unauthorized`, and no new responder.
            if signer.status == CaStatus::Revoked {
                return Err(Error::new(ErrorCode::CaUnavailable, "a revoked CA answers no OCSP"));
            }
            let mut statuses = Vec::with_capacity(request.cert_ids().len());
            for id in request.cert_ids() {
                let status = match (named(id), id.serial()) {
                    (Some(ca), Some(serial)) if ca.id == signer.id => status_of(tx, t, &ca.id, &serial.to_hex())?,
                    _ => CertStatus::Unknown,
                };
                statuses.push(status);
            }
            Ok((t.clone(), signer, statuses))
        })?;
        let responder = self.responder(&t, &signer, now)?;
        let cacheable =
            request.nonce().is_none() && request.cert_ids().len() == 1 && statuses[0] != CertStatus::Unknown;
        let key = (signer.id.clone(), request.cert_ids()[0].der().to_vec());
        if cacheable
            && let Some(hit) = self.ocsp.responses.get(&key)
            && hit.status == statuses[0]
            && hit.responder_cert == responder.certificate()
            && now < hit.refresh_at
        {
            return Ok(hit.answer);
        }
        let next_update = (now + RESPONSE_VALIDITY).min(responder.not_after());
        let singles: Vec<SingleResponse<'_>> = request
            .cert_ids()
            .iter()
            .zip(&statuses)
            .map(|(cert_id, status)| SingleResponse { cert_id, status: *status, this_update: now, next_update })
            .collect();
        let der = responder.sign(now, &singles, request.nonce()).map_err(ca_error)?;
        let answer = OcspAnswer { der, next_update: Some(next_update) };
        if cacheable {
            let refresh_at = now + (next_update - now) / 2;
            let entry = CachedResponse {
                responder_cert: responder.certificate().to_vec(),
                status: statuses[0],
                refresh_at,
                answer: answer.clone(),
            };
            self.ocsp.responses.insert(key, entry);
        }
        Ok(answer)
    }

    /// The current responder of `ca`, issuing one if there is none or the
    /// stored one is past half its life.
    fn responder(&self, t: &Tenant, ca: &CaRecord, now: OffsetDateTime) -> Result<Arc<Responder>> {
        let stored = self.store.read(|tx| tx.ocsp_responder(&t.id, &ca.id).map_err(Error::from))?;
        let record = match stored {
            Some(r) if !needs_rotation(&r, ca_not_after(ca).unwrap_or(i64::MAX), now) => r,
            _ => self.rotate_responder(t, ca, now)?,
        };
        if let Some(hit) = self.ocsp.responders.get(&record.ca_id)
            && hit.cert_der == record.cert_der
        {
            return Ok(hit.responder);
        }
        let pkcs8 = self.kek.open(&seal_context(&ca.id), &record.sealed_key).map_err(Error::internal)?;
        let key = SigningKey::from_pkcs8_der(&pkcs8).map_err(Error::internal)?;
        let responder = Arc::new(Responder::new(record.cert_der.clone(), key).map_err(Error::internal)?);
        let entry = CachedResponder { cert_der: record.cert_der, responder: responder.clone() };
        self.ocsp.responders.insert(ca.id.clone(), entry);
        Ok(responder)
    }

    /// Issues and stores a new responder certificate for `ca` (P-256 key).
    fn rotate_responder(&self, t: &Tenant, ca: &CaRecord, now: OffsetDateTime) -> Result<OcspResponderRecord> {
        let issuer = self.issuer(ca)?;
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).map_err(Error::internal)?;
        let cert_der = ocsp::issue_responder(&issuer, &t.domain, ocsp::RESPONDER_CN, &key, RESPONDER_VALIDITY, now)
            .map_err(ca_error)?;
        let responder = Responder::new(cert_der.clone(), key).map_err(Error::internal)?;
        let sealed_key =
            self.kek.seal(&seal_context(&ca.id), &responder.key().to_pkcs8_der()).map_err(Error::internal)?;
        let record = OcspResponderRecord {
            ca_id: ca.id.clone(),
            tenant_id: t.id.clone(),
            cert_der,
            sealed_key,
            not_before: now.unix_timestamp(),
            not_after: responder.not_after().unix_timestamp(),
            created_at: now.unix_timestamp(),
        };
        self.store.write(|tx| tx.put_ocsp_responder(&record).map_err(Error::from))?;
        Ok(record)
    }

    /// Rotates every responder of the tenant's answering CAs that is missing
    /// or past half its life; returns how many were issued.
    pub(in crate::service) fn rotate_ocsp_responders(&self, t: &Tenant) -> Result<usize> {
        let now = self.now_time();
        let due: Vec<CaRecord> = self.store.read(|tx| {
            let mut due = Vec::new();
            // A revoked CA answers nothing (see `ocsp`), and an expired one
            // cannot sign: neither gets a responder.
            for ca in tx.list_cas(&t.id)?.into_iter().filter(answers).filter(|c| c.status != CaStatus::Revoked) {
                let Some(ends) = ca_not_after(&ca).filter(|ends| *ends > now.unix_timestamp()) else { continue };
                if tx.ocsp_responder(&t.id, &ca.id)?.is_none_or(|r| needs_rotation(&r, ends, now)) {
                    due.push(ca);
                }
            }
            Ok::<_, Error>(due)
        })?;
        for ca in &due {
            self.rotate_responder(t, ca, now)?;
        }
        Ok(due.len())
    }
}

/// When the CA's certificate ends (Unix seconds).
fn ca_not_after(ca: &CaRecord) -> Option<i64> {
    CaCertificate::from_der(&ca.cert_der).ok().map(|c| c.not_after().unix_timestamp())
}

/// Past half of its life, or ending within a response's validity — unless
/// it already ends with its CA (a new one could end no later), in which case
/// only once it has ended: otherwise, in a CA's last day, every query would
/// issue a responder.
fn needs_rotation(r: &OcspResponderRecord, ca_not_after: i64, now: OffsetDateTime) -> bool {
    let now = now.unix_timestamp();
    if r.not_after >= ca_not_after {
        return now >= r.not_after;
    }
    let half = r.not_before + (r.not_after - r.not_before) / 2;
    now >= half || now + RESPONSE_VALIDITY.whole_seconds() >= r.not_after
}

/// good, revoked (time, reason) or unknown, from the certificates table.
fn status_of(tx: &mut dyn Tx, t: &Tenant, ca_id: &str, serial: &str) -> Result<CertStatus> {
    let Some(cert) = tx.certificate(&t.id, serial)? else { return Ok(CertStatus::Unknown) };
    if cert.ca_id != ca_id {
        return Ok(CertStatus::Unknown);
    }
    Ok(match cert.revoked_at {
        None => CertStatus::Good,
        Some(at) => {
            let reason = cert.revocation_reason.as_deref().and_then(|r| r.parse::<RevocationReason>().ok());
            CertStatus::Revoked { at: unix(at)?, reason: reason.unwrap_or_default() }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responder(not_before: i64, not_after: i64) -> OcspResponderRecord {
        OcspResponderRecord {
            ca_id: "ca".into(),
            tenant_id: lightwell_store::TenantId::new("t"),
            cert_der: Vec::new(),
            sealed_key: Vec::new(),
            not_before,
            not_after,
            created_at: not_before,
        }
    }

    #[test]
    fn a_responder_rotates_at_half_life_but_not_again_and_again_in_its_cas_last_day() {
        let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap();
        let week = 7 * 86_400;
        let r = responder(0, week);
        assert!(!needs_rotation(&r, 10 * week, at(week / 2 - 1)), "before half-life");
        assert!(needs_rotation(&r, 10 * week, at(week / 2)), "at half-life");
        // The CA ends in 12 h: the responder already ends with it, and a new
        // one could end no later. It is kept until it ends, not re-issued per query.
        let last = responder(0, 3_600 * 12);
        assert!(!needs_rotation(&last, 3_600 * 12, at(3_600 * 11)), "kept in the CA's last hours");
        assert!(needs_rotation(&last, 3_600 * 12, at(3_600 * 12)), "replaced once it ended");
    }
}
