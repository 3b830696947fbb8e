//! JWTs (RFC 7519): issuing with a [`TokenSigner`], verifying against a
//! [`Jwks`] with the registered claims checked at an injected time.

use serde_json::{Map, Value};

use crate::jwk::Jwks;
use crate::jws::{Algorithm, TokenSigner};
use crate::{Error, unb64};

/// Longest token accepted: JWT-SVIDs and ID tokens are well under 2 KiB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Signs `claims` (a JSON object) as a JWT with `typ: JWT`.
pub fn issue(signer: &TokenSigner, claims: &Map<String, Value>) -> Result<String, Error> {
    let payload = serde_json::to_vec(claims).map_err(|_| Error::Malformed("claims do not serialize"))?;
    signer.sign_compact("JWT", &payload)
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct Validation<'a> {
    /// The audience that must be among the token's `aud`.
    pub audience: &'a str,
    /// Now, Unix seconds.
    pub now: i64,
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    pub leeway: i64,
}

/// A token whose signature and claims checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedJwt {
    /// The key that signed it.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Its header's `typ` (`JWT`, `JOSE`, or `at+jwt` for an RFC 9068 access token).
    pub typ: Option<String>,
    /// `sub`.
    pub subject: String,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    /// Every claim.
    pub claims: Map<String, Value>,
}

fn object(segment: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_slice(&unb64(segment)?) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Malformed("a segment is not a JSON object")),
    }
}

/// The claims of a compact JWT, NOT verified: only to choose how to
/// [`verify`] it (which trust domain's keys, which audience), after which
/// the caller checks the verified claims agree. Never an answer on its own.
pub fn unverified_claims(token: &str) -> Result<Map<String, Value>, Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::Malformed("token too long"));
    }
    let payload = token.split('.').nth(1).ok_or(Error::Malformed("a JWT has three segments"))?;
    object(payload)
}

/// The `sub` of a compact JWT, NOT verified (see [`unverified_claims`]).
pub fn unverified_subject(token: &str) -> Result<String, Error> {
    let claims = unverified_claims(token)?;
    claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string).ok_or(Error::Claim("sub"))
}

/// Verifies a compact JWT: the header's `alg` is ES256 or RS256 (never
/// `none`), `kid` names a key of `keys` of that algorithm, no `crit`
/// extension, the signature verifies, `exp` is ahead, `nbf` (if any) has
/// passed, `sub` is present and `aud` includes `validation.audience`.
pub fn verify(token: &str, keys: &Jwks, validation: &Validation<'_>) -> Result<VerifiedJwt, Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::Malformed("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Error::Malformed("a JWT has three segments"));
    };
    let header = object(h)?;
    let algorithm: Algorithm = header.get("alg").and_then(Value::as_str).ok_or(Error::Claim("alg"))?.parse()?;
    if header.contains_key("crit") {
        return Err(Error::Malformed("critical header extensions are not understood"));
    }
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(t)) if matches!(t.as_str(), "JWT" | "JOSE" | "at+jwt") => Some(t.clone()),
        Some(_) => return Err(Error::Malformed("typ is neither JWT, JOSE nor at+jwt")),
    };
    let kid = header.get("kid").and_then(Value::as_str).ok_or(Error::Claim("kid"))?;
    let key = keys.find(kid).ok_or(Error::UnknownKey)?;
    let signature = unb64(s)?;
    key.verify(algorithm, &token.as_bytes()[..h.len() + 1 + p.len()], &signature)?;
    let claims = object(p)?;
    let time = |name: &'static str| -> Result<Option<i64>, Error> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).map(Some).ok_or(Error::Claim(name)),
        }
    };
    let expires_at = time("exp")?.ok_or(Error::Claim("exp"))?;
    if validation.now >= expires_at.saturating_add(validation.leeway) {
        return Err(Error::Expired);
    }
    if time("nbf")?.is_some_and(|nbf| nbf > validation.now.saturating_add(validation.leeway)) {
        return Err(Error::NotYetValid);
    }
    let subject = claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or(Error::Claim("sub"))?;
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == validation.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(validation.audience)),
        _ => return Err(Error::Claim("aud")),
    };
    if !audience_ok {
        return Err(Error::Audience(validation.audience.chars().take(64).collect()));
    }
    Ok(VerifiedJwt {
        kid: kid.to_string(),
        algorithm,
        typ,
        subject: subject.to_string(),
        expires_at,
        claims: claims.clone(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::b64;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn setup(alg: Algorithm) -> (TokenSigner, Jwks) {
        let key = TokenSigner::generate(alg).unwrap();
        let jwks = Jwks { keys: vec![key.public_jwk()] };
        (key, jwks)
    }

    const AT: Validation<'static> = Validation { audience: "db", now: 1_000, leeway: 0 };

    fn good() -> Map<String, Value> {
        claims(json!({"sub": "spiffe://corp.example/service/web", "aud": ["db"], "exp": 1_300, "iat": 1_000}))
    }

    #[test]
    fn a_token_verifies_with_its_key_and_audience() {
        for alg in Algorithm::ALL {
            let (key, jwks) = setup(alg);
            let token = issue(&key, &good()).unwrap();
            let ok = verify(&token, &jwks, &AT).unwrap();
            assert_eq!(
                (ok.subject.as_str(), ok.expires_at, ok.algorithm),
                ("spiffe://corp.example/service/web", 1_300, alg)
            );
            let one = claims(json!({"sub": "s", "aud": "db", "exp": 1_300}));
            assert!(verify(&issue(&key, &one).unwrap(), &jwks, &AT).is_ok(), "aud may be one string");
        }
    }

    #[test]
    fn another_audience_an_expired_or_early_token_is_refused() {
        let (key, jwks) = setup(Algorithm::Es256);
        let token = issue(&key, &good()).unwrap();
        assert_eq!(
            verify(&token, &jwks, &Validation { audience: "other", ..AT }),
            Err(Error::Audience("other".into()))
        );
        assert_eq!(verify(&token, &jwks, &Validation { now: 1_300, ..AT }), Err(Error::Expired));
        assert!(verify(&token, &jwks, &Validation { now: 1_300, leeway: 30, ..AT }).is_ok());
        let mut early = good();
        early.insert("nbf".into(), json!(1_100));
        assert_eq!(verify(&issue(&key, &early).unwrap(), &jwks, &AT), Err(Error::NotYetValid));
        for missing in ["sub", "aud", "exp"] {
            let mut c = good();
            c.remove(missing);
            assert!(matches!(verify(&issue(&key, &c).unwrap(), &jwks, &AT), Err(Error::Claim(_))), "{missing}");
        }
    }

    #[test]
    fn forged_tokens_are_refused() {
        let (key, jwks) = setup(Algorithm::Es256);
        let token = issue(&key, &good()).unwrap();
        let (h, rest) = token.split_once('.').unwrap();
        let (_, s) = rest.split_once('.').unwrap();
        // The payload changed under the same signature.
        let other = b64(serde_json::to_vec(&claims(
            json!({"sub": "spiffe://corp.example/service/admin", "aud": "db", "exp": 9_999}),
        ))
        .unwrap()
        .as_slice());
        assert_eq!(verify(&format!("{h}.{other}.{s}"), &jwks, &AT), Err(Error::Signature));
        // alg none, and an HMAC "signed" with the public key (algorithm confusion).
        for alg in ["none", "HS256", "ES384"] {
            let header = b64(json!({"alg": alg, "kid": key.kid()}).to_string().as_bytes());
            let payload = token.split('.').nth(1).unwrap();
            assert!(
                matches!(verify(&format!("{header}.{payload}.{s}"), &jwks, &AT), Err(Error::Algorithm(_))),
                "{alg}"
            );
            assert!(verify(&format!("{header}.{payload}."), &jwks, &AT).is_err(), "{alg} unsigned");
        }
        // Signed by a key the bundle does not hold, under a kid it does.
        let (stranger, _) = setup(Algorithm::Es256);
        let stranger = TokenSigner::from_pkcs8(Algorithm::Es256, &stranger.to_pkcs8().unwrap(), key.kid()).unwrap();
        assert_eq!(verify(&issue(&stranger, &good()).unwrap(), &jwks, &AT), Err(Error::Signature));
        // An RS256 header under the EC key's kid.
        let (rsa, _) = setup(Algorithm::Rs256);
        let rsa = TokenSigner::from_pkcs8(Algorithm::Rs256, &rsa.to_pkcs8().unwrap(), key.kid()).unwrap();
        assert_eq!(verify(&issue(&rsa, &good()).unwrap(), &jwks, &AT), Err(Error::UnknownKey));
        let (_, empty) = (0, Jwks::default());
        assert_eq!(verify(&token, &empty, &AT), Err(Error::UnknownKey));
    }

    #[test]
    fn malformed_tokens_get_clear_errors() {
        let (key, jwks) = setup(Algorithm::Es256);
        let token = issue(&key, &good()).unwrap();
        let crit = b64(json!({"alg": "ES256", "kid": key.kid(), "crit": ["exp"]}).to_string().as_bytes());
        let body = token.split_once('.').unwrap().1;
        for bad in [
            String::new(),
            "a.b".into(),
            "a.b.c.d".into(),
            "!!.??.**".into(),
            format!("{}.{}", b64(b"[1]"), body),
            format!("{crit}.{body}"),
            "a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(matches!(verify(&bad, &jwks, &AT), Err(Error::Malformed(_) | Error::Claim(_))), "{bad:.40}");
        }
    }
}
