//! SPIFFE bundles (SPIFFE Trust Domain and Bundle, section 4): a trust
//! domain's X.509 authorities (`use` `x509-svid`, one certificate in `x5c`)
//! and JWT authorities (`use` `jwt-svid`, with a `kid`) as one JWK Set, with
//! `spiffe_sequence` and `spiffe_refresh_hint`. What a tenant's bundle
//! endpoint serves and what a foreign trust domain's endpoint is read as.
//!
//! Reading follows the specification's rules: keys with a missing or
//! unknown `use`, or a key type this verifier does not know, are skipped;
//! anything else that is wrong (an `x5c` that is not one certificate, a key
//! that does not match its certificate, a JWT key without a `kid`, two keys
//! with one `kid`) refuses the whole bundle, so a half-read bundle never
//! replaces a good one.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_SIG_ED25519};
use x509_parser::public_key::PublicKey;

use crate::{Error, Jwk, Jwks, b64};

/// Largest bundle document read.
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024;
/// Most keys one bundle may hold.
const MAX_KEYS: usize = 256;
const X509_USE: &str = "x509-svid";
const JWT_USE: &str = "jwt-svid";

/// A trust domain's bundle.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpiffeBundle {
    /// `spiffe_sequence`: moves whenever the contents change.
    pub sequence: Option<u64>,
    /// `spiffe_refresh_hint`: how often to fetch it again, seconds.
    pub refresh_hint: Option<u64>,
    /// CA certificates X.509-SVIDs chain to (DER).
    pub x509_authorities: Vec<Vec<u8>>,
    /// Keys JWT-SVIDs are signed with (`use` `jwt-svid`, each with a `kid`).
    pub jwt_authorities: Jwks,
}

/// The JWK of a certificate's public key, `use` `x509-svid`, the certificate in `x5c`.
pub fn certificate_jwk(der: &[u8]) -> Result<Jwk, Error> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| Error::Malformed("x5c is not a certificate"))?;
    if !rest.is_empty() {
        return Err(Error::Malformed("x5c has bytes after the certificate"));
    }
    let spki = cert.public_key();
    let oid = &spki.algorithm.algorithm;
    let blank = Jwk::rsa(b"", b"");
    let mut jwk = if *oid == OID_SIG_ED25519 {
        Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(b64(&spki.subject_public_key.data)),
            n: None,
            e: None,
            ..blank
        }
    } else {
        match spki.parsed().map_err(|_| Error::Key("the certificate's key does not parse"))? {
            PublicKey::RSA(rsa) => {
                let strip = |b: &[u8]| b.iter().position(|&x| x != 0).map_or(vec![0], |i| b[i..].to_vec());
                Jwk::rsa(&strip(rsa.modulus), &strip(rsa.exponent))
            }
            PublicKey::EC(point) if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY => {
                let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
                let (crv, size) = match curve {
                    Some(c) if c == OID_EC_P256 => ("P-256", 32),
                    Some(c) if c == OID_NIST_EC_P384 => ("P-384", 48),
                    _ => return Err(Error::Key("unsupported curve (P-256 or P-384)")),
                };
                let data = point.data();
                if data.len() != 1 + 2 * size || data[0] != 4 {
                    return Err(Error::Key("EC point is not uncompressed"));
                }
                let mut jwk = Jwk::ec_p256(&data[1..=size], &data[1 + size..]);
                jwk.crv = Some(crv.into());
                jwk
            }
            _ => return Err(Error::Key("unsupported key type (EC, RSA or Ed25519)")),
        }
    };
    jwk.key_use = Some(X509_USE.into());
    jwk.x5c = Some(vec![STANDARD.encode(der)]);
    Ok(jwk)
}

impl SpiffeBundle {
    /// The bundle as its JWK Set document.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        let mut keys = Vec::with_capacity(self.x509_authorities.len() + self.jwt_authorities.keys.len());
        for der in &self.x509_authorities {
            keys.push(certificate_jwk(der)?);
        }
        for key in &self.jwt_authorities.keys {
            keys.push(Jwk { key_use: Some(JWT_USE.into()), x5c: None, ..key.clone() });
        }
        let mut doc = Map::new();
        doc.insert("keys".into(), serde_json::to_value(keys).map_err(|_| Error::Malformed("bundle"))?);
        if let Some(s) = self.sequence {
            doc.insert("spiffe_sequence".into(), s.into());
        }
        if let Some(h) = self.refresh_hint {
            doc.insert("spiffe_refresh_hint".into(), h.into());
        }
        serde_json::to_vec(&doc).map_err(|_| Error::Malformed("bundle"))
    }

    /// Reads a bundle document.
    pub fn parse(json: &[u8]) -> Result<Self, Error> {
        if json.len() > MAX_BUNDLE_BYTES {
            return Err(Error::Malformed("bundle larger than 256 KiB"));
        }
        let doc: Map<String, Value> =
            serde_json::from_slice(json).map_err(|_| Error::Malformed("bundle is not a JSON object"))?;
        let number = |name: &'static str| -> Result<Option<u64>, Error> {
            match doc.get(name) {
                None => Ok(None),
                Some(v) => v.as_u64().map(Some).ok_or(Error::Claim(name)),
            }
        };
        let sequence = number("spiffe_sequence")?;
        let refresh_hint = number("spiffe_refresh_hint")?;
        let keys = doc.get("keys").and_then(Value::as_array).ok_or(Error::Claim("keys"))?;
        if keys.len() > MAX_KEYS {
            return Err(Error::Malformed("bundle holds more than 256 keys"));
        }
        let mut bundle = Self { sequence, refresh_hint, ..Self::default() };
        let mut kids = HashSet::new();
        for key in keys {
            let jwk: Jwk =
                serde_json::from_value(key.clone()).map_err(|_| Error::Malformed("a bundle key is not a JWK"))?;
            match jwk.key_use.as_deref() {
                Some(X509_USE) => {
                    if !matches!(jwk.kty.as_str(), "EC" | "RSA" | "OKP") {
                        continue;
                    }
                    let [cert] = jwk.x5c.as_deref().unwrap_or_default() else {
                        return Err(Error::Malformed("an x509-svid key holds other than one certificate in x5c"));
                    };
                    let der = STANDARD.decode(cert).map_err(|_| Error::Malformed("x5c is not base64"))?;
                    let of_cert = certificate_jwk(&der)?;
                    let same = (&of_cert.kty, &of_cert.crv, &of_cert.x, &of_cert.y, &of_cert.n, &of_cert.e)
                        == (&jwk.kty, &jwk.crv, &jwk.x, &jwk.y, &jwk.n, &jwk.e);
                    if !same {
                        return Err(Error::Key("an x509-svid key does not match its certificate"));
                    }
                    bundle.x509_authorities.push(der);
                }
                Some(JWT_USE) => {
                    // Keys this verifier cannot use are skipped, as unknown types are.
                    if jwk.algorithm().is_err() {
                        continue;
                    }
                    let kid = jwk.kid.clone().filter(|k| !k.is_empty()).ok_or(Error::Claim("kid"))?;
                    if !kids.insert(kid) {
                        return Err(Error::Malformed("two jwt-svid keys share a kid"));
                    }
                    bundle.jwt_authorities.keys.push(Jwk { x5c: None, ..jwk });
                }
                _ => {}
            }
        }
        Ok(bundle)
    }

    /// The X.509 authorities concatenated (DER), as the Workload API carries them.
    pub fn x509_der(&self) -> Vec<u8> {
        self.x509_authorities.concat()
    }

    /// The JWT authorities as a JWK Set document, as the Workload API carries them.
    pub fn jwt_json(&self) -> Vec<u8> {
        let keys: Vec<Jwk> =
            self.jwt_authorities.keys.iter().map(|k| Jwk { key_use: Some(JWT_USE.into()), ..k.clone() }).collect();
        serde_json::to_vec(&Jwks { keys }).unwrap_or_else(|_| b"{\"keys\":[]}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, TokenSigner};

    fn cert(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn bundle() -> SpiffeBundle {
        let signer = TokenSigner::generate(Algorithm::Es256).unwrap();
        let mut jwk = signer.public_jwk();
        jwk.kid = Some(signer.kid().into());
        SpiffeBundle {
            sequence: Some(7),
            refresh_hint: Some(300),
            x509_authorities: vec![
                cert(&rcgen::PKCS_ECDSA_P256_SHA256),
                cert(&rcgen::PKCS_ECDSA_P384_SHA384),
                cert(&rcgen::PKCS_ED25519),
            ],
            jwt_authorities: Jwks { keys: vec![Jwk { key_use: Some(JWT_USE.into()), ..jwk }] },
        }
    }

    #[test]
    fn a_bundle_reads_back_as_written_with_each_key_matching_its_certificate() {
        let b = bundle();
        let json = b.to_json().unwrap();
        let doc: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(doc["spiffe_sequence"], 7);
        assert_eq!(doc["spiffe_refresh_hint"], 300);
        let keys = doc["keys"].as_array().unwrap();
        assert_eq!(keys[0]["use"], "x509-svid");
        assert_eq!(keys[0]["crv"], "P-256");
        assert_eq!(keys[1]["crv"], "P-384");
        assert_eq!(keys[2]["kty"], "OKP");
        assert_eq!(keys[3]["use"], "jwt-svid");
        assert_eq!(SpiffeBundle::parse(&json).unwrap(), b);
    }

    #[test]
    fn unknown_uses_and_types_are_skipped_and_wrong_keys_refuse_the_bundle() {
        let b = bundle();
        let mut doc: Value = serde_json::from_slice(&b.to_json().unwrap()).unwrap();
        let keys = doc["keys"].as_array_mut().unwrap();
        keys.push(serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}));
        keys.push(serde_json::json!({"kty": "EC", "use": "sig", "kid": "z"}));
        keys.push(serde_json::json!({"kty": "oct", "use": "x509-svid", "k": "AA"}));
        let parsed = SpiffeBundle::parse(&serde_json::to_vec(&doc).unwrap()).unwrap();
        assert_eq!(parsed.x509_authorities.len(), 3);
        assert_eq!(parsed.jwt_authorities.keys.len(), 1);

        let refused = |edit: &dyn Fn(&mut Value)| {
            let mut doc: Value = serde_json::from_slice(&b.to_json().unwrap()).unwrap();
            edit(&mut doc);
            SpiffeBundle::parse(&serde_json::to_vec(&doc).unwrap()).unwrap_err()
        };
        // The P-256 root's JWK carrying the P-384 root's certificate.
        refused(&|d| d["keys"][0]["x5c"] = d["keys"][1]["x5c"].clone());
        refused(&|d| d["keys"][0]["x5c"] = serde_json::json!([]));
        refused(&|d| d["keys"][0]["x5c"] = serde_json::json!(["bm90IGEgY2VydA=="]));
        refused(&|d| d["keys"][3]["kid"] = Value::Null);
        refused(&|d| {
            let again = d["keys"][3].clone();
            d["keys"].as_array_mut().unwrap().push(again);
        });
        refused(&|d| d["spiffe_sequence"] = serde_json::json!(-1));
        refused(&|d| d["keys"] = serde_json::json!({}));
        assert!(SpiffeBundle::parse(b"[]").is_err());
        assert!(SpiffeBundle::parse(&vec![b' '; MAX_BUNDLE_BYTES + 1]).is_err());
        let many = serde_json::json!({"keys": vec![serde_json::json!({}); MAX_KEYS + 1]});
        assert!(SpiffeBundle::parse(&serde_json::to_vec(&many).unwrap()).is_err());
    }

    #[test]
    fn an_empty_key_list_is_a_bundle_that_trusts_nothing() {
        let parsed = SpiffeBundle::parse(br#"{"keys":[]}"#).unwrap();
        assert!(parsed.x509_authorities.is_empty() && parsed.jwt_authorities.keys.is_empty());
        assert_eq!(parsed.jwt_json(), br#"{"keys":[]}"#);
    }
}
