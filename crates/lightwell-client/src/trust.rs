//! How the client trusts the server: a CA file, or a pinned fingerprint.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::{ClientError, Result};

/// The trust anchor for the server.
#[derive(Debug, Clone)]
pub enum Trust {
    /// CA certificates (PEM), e.g. the contents of `server-ca.pem`.
    CaPem(Vec<u8>),
    /// SHA-256 of a certificate in the server's chain (its CA, or the leaf).
    Fingerprint([u8; 32]),
}

impl Trust {
    /// Parses `sha256:HEX`.
    pub fn fingerprint(s: &str) -> Result<Self> {
        lightwell_ca::fingerprint::parse_fingerprint(s)
            .map(Self::Fingerprint)
            .ok_or_else(|| ClientError::Trust(format!("{s:?} is not a sha256:HEX fingerprint")))
    }

    pub(crate) fn client_config(&self, identity: Option<&ClientIdentity>) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Trust(e.to_string()))?;
        let config = match self {
            Trust::CaPem(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| ClientError::Trust(format!("bad CA file: {e}")))?;
                    roots.add(cert).map_err(|e| ClientError::Trust(format!("bad CA certificate: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(ClientError::Trust("the CA file holds no certificate".into()));
                }
                with_identity(builder.with_root_certificates(roots), identity)?
            }
            Trust::Fingerprint(pin) => with_identity(
                builder.dangerous().with_custom_certificate_verifier(Arc::new(PinnedVerifier { pin: *pin, provider })),
                identity,
            )?,
        };
        Ok(config)
    }
}

/// A TLS client certificate chain and its key, both PEM: mutual TLS.
#[derive(Clone)]
pub struct ClientIdentity {
    /// Leaf followed by intermediates.
    pub chain_pem: String,
    /// PKCS#8 private key.
    pub key_pem: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientIdentity(..)")
    }
}

fn with_identity(
    builder: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
    identity: Option<&ClientIdentity>,
) -> Result<rustls::ClientConfig> {
    let Some(id) = identity else { return Ok(builder.with_no_client_auth()) };
    let chain = CertificateDer::pem_slice_iter(id.chain_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Trust(format!("bad client certificate: {e}")))?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())
        .map_err(|e| ClientError::Trust(format!("bad client key: {e}")))?;
    builder.with_client_auth_cert(chain, key).map_err(|e| ClientError::Trust(format!("client certificate: {e}")))
}

/// Accepts the server if a certificate in its chain has the pinned SHA-256
/// and the chain verifies up to that certificate (name and validity checked
/// as usual); a pinned leaf is accepted as itself.
#[derive(Debug)]
struct PinnedVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let matches = |c: &CertificateDer<'_>| lightwell_ca::fingerprint::sha256(c) == self.pin;
        if matches(end_entity) {
            return Ok(ServerCertVerified::assertion());
        }
        let Some(anchor) = intermediates.iter().find(|c| matches(c)) else {
            return Err(rustls::Error::General(
                "no certificate in the server's chain matches the pinned fingerprint".into(),
            ));
        };
        let mut roots = RootCertStore::empty();
        roots.add(anchor.clone().into_owned())?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
