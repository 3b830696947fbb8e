//! The machine certificate's OCSP response, kept beside it as `ocsp.der`
//! for TLS servers that staple from a file (HAProxy's `.ocsp` file, nginx's
//! `ssl_stapling_file`).
//!
//! The agent asks the responder its certificate names (AIA id-ad-ocsp, the
//! tenant's responder on the PKI listener) with one SHA-1 CertID and no
//! nonce, as TLS servers do, and keeps the answer only if it is a
//! successful response about exactly that certificate, good or revoked,
//! with a nextUpdate still ahead, at most 64 KiB, signed by the issuing CA
//! or a responder that CA authorised ([`lightwell_ca::ocsp::verify_response`]);
//! anything else leaves the last good file in place, so a TLS server is
//! never handed a staple its clients would refuse (or one about another
//! certificate, from a responder that is not the one asked). A
//! certificate that names no responder (the tenant's policy turned the URL
//! off) has no `ocsp.der`.

use std::path::Path;
use std::time::Duration;

use lightwell_ca::ocsp::{self, CertId, HashAlgorithm, OcspRequest, ParsedResponse};
use lightwell_ca::{CaCertificate, Serial};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP;
use x509_parser::prelude::FromDer;

use crate::error::AgentError;

/// The largest OCSP answer the agent reads.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What to ask and where, read from `chain.pem` (leaf, then issuing CA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StapleRequest {
    /// The responder's URL, from the leaf's AIA.
    pub url: String,
    /// The DER OCSP request.
    pub der: Vec<u8>,
    /// The CertID it asks about.
    pub id: CertId,
    /// The issuing CA's certificate (DER), which must vouch for the answer.
    pub issuer_der: Vec<u8>,
}

/// The request for the leaf of `chain_pem`; `None` when the leaf names no
/// OCSP responder.
pub fn request_for(chain_pem: &[u8]) -> Result<Option<StapleRequest>, AgentError> {
    let mut blocks = x509_parser::pem::Pem::iter_from_buffer(chain_pem);
    let mut next = || -> Result<Vec<u8>, AgentError> {
        match blocks.next() {
            Some(Ok(pem)) if pem.label == "CERTIFICATE" => Ok(pem.contents),
            _ => Err(AgentError::Other("chain.pem does not hold a leaf and its issuing CA".into())),
        }
    };
    let (leaf_der, issuer_der) = (next()?, next()?);
    let (_, leaf) = x509_parser::certificate::X509Certificate::from_der(&leaf_der)
        .map_err(|e| AgentError::Other(format!("chain.pem: the leaf does not parse: {e}")))?;
    let url = leaf.extensions().iter().find_map(|ext| match ext.parsed_extension() {
        ParsedExtension::AuthorityInfoAccess(aia) => aia.accessdescs.iter().find_map(|d| match &d.access_location {
            GeneralName::URI(uri) if d.access_method == OID_PKIX_ACCESS_DESCRIPTOR_OCSP => Some(uri.to_string()),
            _ => None,
        }),
        _ => None,
    });
    let Some(url) = url.filter(|u| u.starts_with("http://") || u.starts_with("https://")) else { return Ok(None) };
    let issuer = CaCertificate::from_der(&issuer_der)?;
    let serial = Serial::from_bytes(leaf.raw_serial())?;
    let id = CertId::new(&issuer, &serial, HashAlgorithm::Sha1);
    let der = OcspRequest::encode(std::slice::from_ref(&id), None);
    Ok(Some(StapleRequest { url, der, id, issuer_der }))
}

/// Checks an answer to `request` is worth stapling at `now` (Unix
/// seconds); returns its nextUpdate.
pub fn check(answer: &[u8], request: &StapleRequest, now: i64) -> Result<i64, AgentError> {
    let refuse = |why: &str| AgentError::Other(format!("OCSP answer not kept: {why}"));
    let parsed = ParsedResponse::parse(answer).map_err(|e| refuse(&e.to_string()))?;
    if parsed.status != 0 {
        return Err(refuse(&format!("response status {}", parsed.status)));
    }
    if parsed.cert_statuses.len() != 1 {
        return Err(refuse("not about exactly one certificate"));
    }
    // good (0) or revoked (1): `unknown` is nothing a client should be handed.
    if parsed.cert_statuses[0] > 1 {
        return Err(refuse("the responder does not know the certificate"));
    }
    let next_update = parsed.next_update.ok_or_else(|| refuse("no nextUpdate"))?.unix_timestamp();
    if next_update <= now {
        return Err(refuse("already past its nextUpdate"));
    }
    let at = time::OffsetDateTime::from_unix_timestamp(now).map_err(|e| refuse(&e.to_string()))?;
    ocsp::verify_response(answer, &request.id, &request.issuer_der, at).map_err(|e| refuse(&e.to_string()))?;
    Ok(next_update)
}

/// Asks the responder; returns the DER answer if [`check`] keeps it, with
/// its nextUpdate.
pub async fn fetch(request: &StapleRequest, now: i64) -> Result<(Vec<u8>, i64), AgentError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| AgentError::Other(format!("OCSP client: {e}")))?;
    let answer = client
        .post(&request.url)
        .header("content-type", "application/ocsp-request")
        .body(request.der.clone())
        .send()
        .await
        .map_err(|e| AgentError::Other(format!("asking the OCSP responder {}: {e}", request.url)))?;
    if !answer.status().is_success() {
        return Err(AgentError::Other(format!("the OCSP responder {} answered {}", request.url, answer.status())));
    }
    let too_large = || AgentError::Other("the OCSP answer is too large".into());
    if answer.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(too_large());
    }
    // Read chunk by chunk so a body without a length cannot grow past the cap.
    let mut der = Vec::new();
    let mut answer = answer;
    while let Some(chunk) =
        answer.chunk().await.map_err(|e| AgentError::Other(format!("reading the OCSP answer: {e}")))?
    {
        if der.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        der.extend_from_slice(&chunk);
    }
    let next_update = check(&der, request, now)?;
    Ok((der, next_update))
}

/// Removes `ocsp.der` (a certificate that names no responder); returns
/// whether there was one.
pub fn remove(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA, a responder it authorised, and the request for one of its certificates.
    fn setup() -> (ocsp::Responder, StapleRequest) {
        use lightwell_ca::ca::{self, CaSpec};
        use lightwell_ca::{KeyAlgorithm, SigningKey};
        let now = time::OffsetDateTime::now_utc();
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let issuer = ca::create_root(&CaSpec::root("corp.example", "root"), key, now).unwrap();
        let responder_key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let cert =
            ocsp::issue_responder(&issuer, "corp.example", "OCSP", &responder_key, ocsp::RESPONDER_VALIDITY, now)
                .unwrap();
        let id = CertId::new(issuer.certificate(), &Serial::random().unwrap(), HashAlgorithm::Sha1);
        let der = OcspRequest::encode(std::slice::from_ref(&id), None);
        let request = StapleRequest {
            url: "http://pki.invalid/ocsp".into(),
            der,
            id,
            issuer_der: issuer.certificate().der().to_vec(),
        };
        (ocsp::Responder::new(cert, responder_key).unwrap(), request)
    }

    fn good(id: &CertId, now: time::OffsetDateTime) -> ocsp::SingleResponse<'_> {
        ocsp::SingleResponse {
            cert_id: id,
            status: ocsp::CertStatus::Good,
            this_update: now,
            next_update: now + ocsp::RESPONSE_VALIDITY,
        }
    }

    #[test]
    fn answers_not_worth_stapling_are_refused() {
        let (responder, request) = setup();
        let now = time::OffsetDateTime::now_utc();
        let answer = responder.sign(now, &[good(&request.id, now)], None).unwrap();
        assert!(check(&answer, &request, now.unix_timestamp()).is_ok(), "the CA's responder about the certificate");
        for hostile in [&b""[..], b"garbage", &[0x30, 0x03, 0x0a, 0x01, 0x00], &[0x30, 0x03, 0x0a, 0x01, 0x01]] {
            assert!(check(hostile, &request, 0).is_err(), "{hostile:?}");
        }
        // An error response (malformedRequest) is no staple.
        let error = ocsp::error_response(ocsp::ErrorStatus::MalformedRequest);
        assert!(check(&error, &request, 0).is_err());
        // Signed by a responder of another CA, or about another certificate: refused.
        let (stranger, stranger_request) = setup();
        let forged = stranger.sign(now, &[good(&request.id, now)], None).unwrap();
        assert!(check(&forged, &request, now.unix_timestamp()).is_err(), "a responder this CA did not authorise");
        let other = responder.sign(now, &[good(&stranger_request.id, now)], None).unwrap();
        assert!(check(&other, &request, now.unix_timestamp()).is_err(), "about another certificate");
    }

    #[test]
    fn a_chain_without_an_issuer_is_refused() {
        assert!(request_for(b"").is_err());
        assert!(request_for(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
    }
}
