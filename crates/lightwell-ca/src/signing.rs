//! How everything Lightwell signs gets signed. rcgen lays out the
//! certificate or CRL, signed by a key that only *pretends* to sign; the
//! issuer and subject names are then replaced with Lightwell's exact bytes;
//! the lint reads that to-be-signed structure; only then does the CA key sign
//! those same bytes. Nothing unlinted is ever signed by a CA key.
//!
//! A CRL's entry list is the exception to "rcgen lays it out": rcgen lays
//! out the CRL without entries and Lightwell's own encoding of the list
//! (`crl::entries`) is spliced into its place.
use rcgen::{
    CertificateParams, CertificateRevocationListParams, DistinguishedName, KeyIdMethod, KeyPair, PublicKeyData,
    SignatureAlgorithm, SigningKey as _,
};

use crate::Error;
use crate::crl::EntryList;
use crate::der::{self, BIT_STRING, SEQUENCE};
use crate::issuer::Issuer;
use crate::keys::SigningKey;
use crate::name::Name;

/// Fields of TBSCertificate (RFC 5280 section 4.1) that get replaced.
const TBS_CERT_ISSUER: usize = 3;
const TBS_CERT_SUBJECT: usize = 5;
/// Field of TBSCertList (RFC 5280 section 5.1) that gets replaced.
const TBS_CRL_ISSUER: usize = 2;
/// Where revokedCertificates sits in a TBSCertList: after version,
/// signature, issuer, thisUpdate and nextUpdate, before crlExtensions.
pub(crate) const TBS_CRL_REVOKED: usize = 5;
/// Tag of crlExtensions, `[0] EXPLICIT`.
const CRL_EXTENSIONS: u8 = 0xa0;

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

    /// A TBSCertList: rcgen lays out everything but the entries (`params`
    /// has none), and `entries` is written in their place, straight into the
    /// one buffer the to-be-signed bytes live in. `extra_extensions`
    /// (encoded Extension elements, maybe none) go after rcgen's.
    pub(crate) fn crl(
        params: &CertificateRevocationListParams,
        signer: &Signer<'_>,
        entries: &EntryList<'_>,
        extra_extensions: &[u8],
    ) -> Result<Self, Error> {
        let layout = params.signed_by(&signer.for_rcgen())?;
        let (mut fields, algorithm) = Self::split(layout.der())?;
        Self::replace(&mut fields, &[(TBS_CRL_ISSUER, signer.name_der)])?;
        // rcgen leaves an empty revokedCertificates out (RFC 5280 section
        // 5.1.2.6), so crlExtensions is where the list goes.
        if fields.len() != TBS_CRL_REVOKED + 1 || fields[TBS_CRL_REVOKED].first() != Some(&CRL_EXTENSIONS) {
            return Err(Error::Encoding("CRL layout is not entries-free with extensions"));
        }
        let extended;
        if !extra_extensions.is_empty() {
            let (explicit, _) = der::expect(fields[TBS_CRL_REVOKED], CRL_EXTENSIONS, "crlExtensions")?;
            let (extensions, _) = der::expect(explicit, SEQUENCE, "crlExtensions")?;
            extended = der::tlv(CRL_EXTENSIONS, &der::tlv(SEQUENCE, &[extensions, extra_extensions].concat()));
            fields[TBS_CRL_REVOKED] = &extended;
        }
        let (before, after) = fields.split_at(TBS_CRL_REVOKED);
        let content_len = before.iter().chain(after).map(|f| f.len()).sum::<usize>() + entries.der_len();
        let len = der::header_len(content_len) + content_len;
        let mut tbs = Vec::with_capacity(len);
        der::write_header(&mut tbs, SEQUENCE, content_len);
        before.iter().for_each(|field| tbs.extend_from_slice(field));
        entries.write(&mut tbs)?;
        after.iter().for_each(|field| tbs.extend_from_slice(field));
        if tbs.len() != len {
            return Err(Error::Encoding("CRL entry list is not the length it was measured at"));
        }
        Ok(Self { tbs, algorithm: algorithm.to_vec() })
    }

    /// A TBSCertList entirely laid out by rcgen, entries included: what
    /// [`ToBeSigned::crl`] must reproduce byte for byte.
    #[cfg(test)]
    pub(crate) fn crl_by_rcgen(params: &CertificateRevocationListParams, signer: &Signer<'_>) -> Result<Self, Error> {
        let layout = params.signed_by(&signer.for_rcgen())?;
        Self::from_layout(layout.der(), &[(TBS_CRL_ISSUER, signer.name_der)])
    }

    fn from_layout(layout: &[u8], replacements: &[(usize, &[u8])]) -> Result<Self, Error> {
        let (mut fields, algorithm) = Self::split(layout)?;
        Self::replace(&mut fields, replacements)?;
        Ok(Self { tbs: der::sequence(&fields), algorithm: algorithm.to_vec() })
    }

    /// The fields of rcgen's to-be-signed structure and its signature algorithm.
    fn split(layout: &[u8]) -> Result<(Vec<&[u8]>, &[u8]), Error> {
        let [tbs, algorithm, _empty_signature] = der::sequence_elements(layout)?[..] else {
            return Err(Error::Encoding("layout is not a signed structure"));
        };
        Ok((der::sequence_elements(tbs)?, algorithm))
    }

    fn replace<'f>(fields: &mut [&'f [u8]], replacements: &[(usize, &'f [u8])]) -> Result<(), Error> {
        for (index, replacement) in replacements {
            let field = fields.get_mut(*index).ok_or(Error::Encoding("to-be-signed structure too short"))?;
            if field.first() != Some(&SEQUENCE) {
                return Err(Error::Encoding("replaced field is not a name"));
            }
            *field = replacement;
        }
        Ok(())
    }

    /// The TBSCertificate or TBSCertList: the bytes the CA key signs.
    pub(crate) fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// The structure with an empty signature, so x509-parser reads it as a
    /// certificate and the lint sees exactly the bytes to be signed. (The
    /// CRL lint reads [`ToBeSigned::tbs`] in place instead: it can be 49 MB.)
    pub(crate) fn unsigned(&self) -> Vec<u8> {
        der::sequence(&[&self.tbs, &self.algorithm, &der::tlv(BIT_STRING, &[0])])
    }

    /// Signs with the real key. The signed structure is written once, into
    /// a buffer of its final size: a 1M-entry CRL is 35 to 49 MB.
    pub(crate) fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, Error> {
        let signature = key.pair().sign(&self.tbs)?;
        // BIT STRING content: zero unused bits, then the signature.
        let bits_len = 1 + signature.len();
        let content_len = self.tbs.len() + self.algorithm.len() + der::header_len(bits_len) + bits_len;
        let mut out = Vec::with_capacity(der::header_len(content_len) + content_len);
        der::write_header(&mut out, SEQUENCE, content_len);
        out.extend_from_slice(&self.tbs);
        out.extend_from_slice(&self.algorithm);
        der::write_header(&mut out, BIT_STRING, bits_len);
        out.push(0);
        out.extend_from_slice(&signature);
        Ok(out)
    }
}
