//! How everything Lightwell signs gets signed. rcgen lays out the
//! certificate or CRL, signed by a key that only *pretends* to sign; the
//! issuer and subject names are then replaced with Lightwell's exact bytes;
//! the lint reads that to-be-signed structure; only then does the CA key sign
//! those same bytes. Nothing unlinted is ever signed by a CA key.
use rcgen::{
    CertificateParams, CertificateRevocationListParams, DistinguishedName, KeyIdMethod, KeyPair, PublicKeyData,
    SignatureAlgorithm, SigningKey as _,
};

use crate::Error;
use crate::der::{self, BIT_STRING};
use crate::issuer::Issuer;
use crate::keys::SigningKey;
use crate::name::Name;

/// Fields of TBSCertificate (RFC 5280 section 4.1) that get replaced.
const TBS_CERT_ISSUER: usize = 3;
const TBS_CERT_SUBJECT: usize = 5;
/// Field of TBSCertList (RFC 5280 section 5.1) that gets replaced.
const TBS_CRL_ISSUER: usize = 2;

/// Presents the real key's public half and algorithm to rcgen, but signs
/// nothing: rcgen's output is only a layout.
struct LayoutKey<'a>(&'a KeyPair);

impl PublicKeyData for LayoutKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.algorithm()
    }
}

impl rcgen::SigningKey for LayoutKey<'_> {
    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(Vec::new())
    }
}

/// Who signs: the exact issuer name to write, the key identifier for the
/// authority key identifier, and the key.
pub(crate) struct Signer<'a> {
    pub(crate) name_der: &'a [u8],
    pub(crate) key_id: &'a [u8],
    pub(crate) key: &'a SigningKey,
}

impl<'a> Signer<'a> {
    pub(crate) fn issuer(issuer: &'a Issuer) -> Self {
        let cert = issuer.certificate();
        Self { name_der: cert.subject_der(), key_id: cert.key_id(), key: issuer.key() }
    }

    fn for_rcgen(&self) -> rcgen::Issuer<'static, LayoutKey<'a>> {
        let mut params = CertificateParams::default();
        // Replaced by `name_der` after layout.
        params.distinguished_name = DistinguishedName::new();
        params.key_identifier_method = KeyIdMethod::PreSpecified(self.key_id.to_vec());
        rcgen::Issuer::new(params, LayoutKey(self.key.pair()))
    }
}

/// A TBSCertificate or TBSCertList and the signature algorithm that goes with it.
pub(crate) struct ToBeSigned {
    tbs: Vec<u8>,
    algorithm: Vec<u8>,
}

impl ToBeSigned {
    pub(crate) fn certificate(
        params: &CertificateParams,
        subject_key: &impl PublicKeyData,
        subject: &Name,
        signer: &Signer<'_>,
    ) -> Result<Self, Error> {
        let layout = params.signed_by(subject_key, &signer.for_rcgen())?;
        Self::from_layout(layout.der(), &[(TBS_CERT_ISSUER, signer.name_der), (TBS_CERT_SUBJECT, &subject.to_der())])
    }

    pub(crate) fn crl(params: &CertificateRevocationListParams, signer: &Signer<'_>) -> Result<Self, Error> {
        let layout = params.signed_by(&signer.for_rcgen())?;
        Self::from_layout(layout.der(), &[(TBS_CRL_ISSUER, signer.name_der)])
    }

    fn from_layout(layout: &[u8], replacements: &[(usize, &[u8])]) -> Result<Self, Error> {
        let [tbs, algorithm, _empty_signature] = der::sequence_elements(layout)?[..] else {
            return Err(Error::Encoding("layout is not a signed structure"));
        };
        let mut fields = der::sequence_elements(tbs)?;
        for (index, replacement) in replacements {
            let field = fields.get_mut(*index).ok_or(Error::Encoding("to-be-signed structure too short"))?;
            if field.first() != Some(&der::SEQUENCE) {
                return Err(Error::Encoding("replaced field is not a name"));
            }
            *field = replacement;
        }
        Ok(Self { tbs: der::sequence(&fields), algorithm: algorithm.to_vec() })
    }

    /// The structure with an empty signature, so x509-parser reads it as a
    /// certificate or CRL and the lint sees exactly the bytes to be signed.
    pub(crate) fn unsigned(&self) -> Vec<u8> {
        der::sequence(&[&self.tbs, &self.algorithm, &der::tlv(BIT_STRING, &[0])])
    }

    /// Signs with the real key.
    pub(crate) fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, Error> {
        let signature = key.pair().sign(&self.tbs)?;
        // BIT STRING content: zero unused bits, then the signature.
        let bits = [&[0u8][..], &signature].concat();
        Ok(der::sequence(&[&self.tbs, &self.algorithm, &der::tlv(BIT_STRING, &bits)]))
    }
}
