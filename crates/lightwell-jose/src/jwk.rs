//! JSON Web Keys (RFC 7517) and key sets, public keys only.

use serde::{Deserialize, Serialize};

use crate::jws::Algorithm;
use crate::{Error, b64, unb64};

/// A public JWK: EC (`crv`, `x`, `y`), RSA (`n`, `e`) or, for a SPIFFE
/// bundle's X.509 authorities only, OKP Ed25519 (`crv`, `x`). Tokens verify
/// under EC P-256 and RSA keys; other members are ignored when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `EC` or `RSA`.
    pub kty: String,
    /// `P-256` for EC keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC X coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC Y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The algorithm the key signs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig` in an OpenID JWKS, `jwt-svid` in a SPIFFE bundle.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// The certificate the key is of (base64 DER, one): an `x509-svid` key
    /// of a SPIFFE bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5c: Option<Vec<String>>,
}

/// A JWK Set: `{"keys": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwk {
    pub(crate) fn ec_p256(x: &[u8], y: &[u8]) -> Self {
        Self {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some(b64(x)),
            y: Some(b64(y)),
            n: None,
            e: None,
            kid: None,
            alg: None,
            key_use: None,
            x5c: None,
        }
    }

    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Self {
        Self {
            kty: "RSA".into(),
            crv: None,
            x: None,
            y: None,
            n: Some(b64(n)),
            e: Some(b64(e)),
            kid: None,
            alg: None,
            key_use: None,
            x5c: None,
        }
    }

    /// The RFC 7638 thumbprint (SHA-256 of the required members in
    /// lexicographic order), base64url.
    pub fn thumbprint(&self) -> String {
        let s = |v: &Option<String>| serde_json::Value::from(v.clone().unwrap_or_default()).to_string();
        let canonical = match self.kty.as_str() {
            "EC" => format!(r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#, s(&self.crv), s(&self.x), s(&self.y)),
            _ => format!(
                r#"{{"e":{},"kty":{},"n":{}}}"#,
                s(&self.e),
                serde_json::Value::from(self.kty.clone()),
                s(&self.n)
            ),
        };
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// The algorithm this key verifies, from `kty`/`crv` (and `alg` when present, which must agree).
    pub fn algorithm(&self) -> Result<Algorithm, Error> {
        let by_type = match (self.kty.as_str(), self.crv.as_deref()) {
            ("EC", Some("P-256")) => Algorithm::Es256,
            ("RSA", None) => Algorithm::Rs256,
            _ => return Err(Error::Key("unsupported key type (EC P-256 or RSA)")),
        };
        match self.alg.as_deref() {
            Some(alg) if alg != by_type.as_str() => Err(Error::Key("the key's alg does not match its type")),
            _ => Ok(by_type),
        }
    }

    /// Verifies `signature` over `message` with this key under `alg`.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        if self.algorithm()? != alg {
            return Err(Error::UnknownKey);
        }
        let field = |v: &Option<String>| unb64(v.as_deref().ok_or(Error::Key("key member missing"))?);
        let ok = match alg {
            Algorithm::Es256 => {
                let (x, y) = (field(&self.x)?, field(&self.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(Error::Key("P-256 coordinates are 32 bytes"));
                }
                let point = [&[4u8][..], &x, &y].concat();
                aws_lc_rs::signature::UnparsedPublicKey::new(alg.verification(), point).verify(message, signature)
            }
            Algorithm::Rs256 => {
                let (n, e) = (field(&self.n)?, field(&self.e)?);
                aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e }.verify(
                    &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                    message,
                    signature,
                )
            }
        };
        ok.map_err(|_| Error::Signature)
    }
}

impl Jwks {
    /// Reads a JWK Set, refusing anything that is not one.
    pub fn parse(json: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(json).map_err(|_| Error::Malformed("not a JWK Set"))
    }

    /// The key with id `kid`.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thumbprint_is_rfc_7638s_example() {
        // RFC 7638 §3.1.
        let jwk = Jwk {
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
            ..Jwk::rsa(b"", b"")
        };
        assert_eq!(jwk.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn keys_of_other_types_or_contradicting_alg_are_refused() {
        let mut jwk = Jwk::ec_p256(&[1; 32], &[2; 32]);
        assert_eq!(jwk.algorithm(), Ok(Algorithm::Es256));
        jwk.alg = Some("RS256".into());
        assert!(jwk.algorithm().is_err());
        jwk.crv = Some("P-384".into());
        jwk.alg = None;
        assert!(jwk.algorithm().is_err());
        assert!(Jwks::parse(b"{\"keys\": 1}").is_err());
        assert!(Jwks::parse(b"[]").is_err());
        let parsed =
            Jwks::parse(br#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"a","x5c":["MII"]}]}"#).unwrap();
        assert!(parsed.find("a").is_some() && parsed.find("b").is_none(), "unknown members are ignored");
    }
}
